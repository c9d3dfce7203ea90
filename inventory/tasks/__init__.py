"""Task modules by family; importing this package registers every task."""

from inventory.tasks import accounts, iam, resources

__all__ = ["accounts", "iam", "resources"]
