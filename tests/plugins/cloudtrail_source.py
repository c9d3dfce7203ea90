"""A user's CloudTrail source plugin: ``cloudtrail.source: tests.plugins.cloudtrail_source:make``.

It returns fixed events and records every call, so a test can see what the task did with it.
"""

from __future__ import annotations

import logging
from typing import Any

from inventory.aws.cloudtrail import ErrorEvent

ROLE = "arn:aws:iam::333333333333:role/plugin-role"
USER = "arn:aws:iam::444444444444:user/plugin-user"
EVENTS = [
    ErrorEvent(
        event_id="plugin-1",
        time=1_714_557_600.0,  # 2024-05-01T10:00:00Z
        principal_arn=ROLE,
        account_id="333333333333",
        error_code="AccessDenied",
        error_message="denied",
        action="kms:Decrypt",
        resources=["arn:aws:kms:us-east-1:333333333333:key/k1"],
        region="us-east-1",
    ),
    ErrorEvent(
        event_id="plugin-2",
        time=1_714_557_660.0,
        principal_arn=USER,
        account_id="444444444444",
        error_code="UnauthorizedOperation",
        error_message=None,
        action="ec2:RunInstances",
        resources=[],
        region="us-west-2",
    ),
]
HANDLES = ["handle-a", "handle-b"]
CALLS: list[tuple[Any, ...]] = []


class FixedSource:
    bad_messages = 0

    def __init__(self, settings: Any, aws: Any) -> None:
        self.settings = settings
        self.aws = aws

    def fetch(self) -> tuple[list[ErrorEvent], list[str]]:
        CALLS.append(("fetch",))
        return list(EVENTS), list(HANDLES)

    def ack(self, receipt_handles: list[str]) -> None:
        CALLS.append(("ack", list(receipt_handles)))


def make(settings: Any, aws: Any) -> FixedSource:
    CALLS.append(("make", settings.cloudtrail.source, aws))
    return FixedSource(settings, aws)


def broken(settings: object, aws: object) -> object:
    """A plugin whose set-up fails: the task fails loudly (and Sentry hears of it)."""
    raise RuntimeError("cloudtrail plugin exploded")


def leaky(settings: Any, aws: object) -> object:
    """A careless plugin: its log line and its error quote the cache URL, password and all."""
    logging.getLogger(__name__).warning("leaky plugin: cannot use %s", settings.redis.url)
    raise RuntimeError(f"cannot reach {settings.redis.url}")
