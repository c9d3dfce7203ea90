"""Task modules by family; importing this package registers every task."""

from inventory.tasks import accounts, iam

__all__ = ["accounts", "iam"]
