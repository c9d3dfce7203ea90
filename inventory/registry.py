"""The declared resource kinds: each names its fetcher, whether it is regional, its schedule.

Adding a kind is one fetcher module in ``inventory/aws/``, one entry here and its tests: the
``cache_<stem>_for_account`` / ``_across_accounts`` tasks and the beat entry come from this table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from inventory.aws import s3, sns, sqs
from inventory.aws.listing import Listing

MINUTE = 60.0
HOUR = 60 * MINUTE

#: ``collect(client, account_id, region) -> Listing``; network + pure transform, no storage.
Collect = Callable[[Any, str, str], Listing]


@dataclass(frozen=True)
class ResourceKind:
    """One kind of cached resource and how it is synced."""

    kind: str
    stem: str
    service: str
    collect: Collect | None
    regional: bool
    every: float
    description: str
    durable: bool = True

    @property
    def for_account_task(self) -> str:
        return f"inventory.cache_{self.stem}_for_account"

    @property
    def across_accounts_task(self) -> str:
        return f"inventory.cache_{self.stem}_across_accounts"

    @property
    def schedule_name(self) -> str:
        return f"cache_{self.stem}_across_accounts"


def _collect_config(client: Any, account_id: str, region: str) -> Listing:
    from inventory.aws.config import collect_config_resources

    return collect_config_resources(client, account_id, region)


KINDS: tuple[ResourceKind, ...] = (
    ResourceKind(
        kind="managed_policy",
        stem="managed_policies",
        service="iam",
        collect=None,  # needs the shared AWS managed policy documents: tasks/resources.py
        regional=False,
        every=45 * MINUTE,
        description="Customer and AWS managed policies attached in each account (typeahead)",
    ),
    ResourceKind(
        kind=s3.KIND,
        stem="s3_buckets",
        service="s3",
        collect=s3.collect_buckets,
        regional=False,
        every=45 * MINUTE,
        description="S3 buckets with region, tags and bucket policy",
    ),
    ResourceKind(
        kind=sqs.KIND,
        stem="sqs_queues",
        service="sqs",
        collect=sqs.collect_queues,
        regional=True,
        every=45 * MINUTE,
        description="SQS queues in every enabled region: policy, KMS key, redrive, tags",
    ),
    ResourceKind(
        kind=sns.KIND,
        stem="sns_topics",
        service="sns",
        collect=sns.collect_topics,
        regional=True,
        every=45 * MINUTE,
        description="SNS topics in every enabled region: policy, KMS key, tags",
    ),
    ResourceKind(
        kind="config_resource",
        stem="resources_from_aws_config",
        service="config",
        collect=_collect_config,
        regional=True,
        every=1 * HOUR,
        description="AWS Config resources (advanced query, list + batch-get fallback)",
    ),
)

BY_KIND = {k.kind: k for k in KINDS}
BY_STEM = {k.stem: k for k in KINDS}
