"""Task modules by family; importing this package registers every task."""

from inventory.tasks import (
    access,
    accounts,
    cloudtrail,
    events,
    findings,
    iam,
    limits,
    metrics,
    policies_table,
    requests,
    resources,
)

__all__ = [
    "access",
    "accounts",
    "cloudtrail",
    "events",
    "findings",
    "iam",
    "limits",
    "metrics",
    "policies_table",
    "requests",
    "resources",
]
