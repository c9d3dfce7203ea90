"""IAM tasks: the per-account sync, its fan-out, and the removal of stale Redis entries."""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import group, shared_task

from inventory.aws.iam import get_authorization_details, transform_authorization_details
from inventory.cache.keys import GLOBAL, IAM_KINDS
from inventory.cache.store import PartitionResult, PartitionWrite
from inventory.observability import region_context
from inventory.runtime import Runtime
from inventory.tasks.accounts import account_to_sync, active_accounts
from inventory.tasks.base import (
    FANOUT_HARD_LIMIT,
    FANOUT_SOFT_LIMIT,
    InventoryTask,
    log_result,
)

log = logging.getLogger(__name__)

FOR_ACCOUNT = "inventory.cache_iam_resources_for_account"


def summarise(results: list[PartitionResult], skipped: list[Any]) -> dict[str, Any]:
    """A JSON-safe summary of what a sync changed."""
    return {
        "partitions": {
            r.kind: {
                "listed": r.listed,
                "created": r.created,
                "updated": r.updated,
                "removed": r.removed,
                "complete": r.complete,
            }
            for r in results
        },
        "dynamo_writes": sum(r.dynamo_writes for r in results),
        "s3_objects": sum(r.s3_objects for r in results),
        "skipped": [{"record": s.identifier, "reason": s.reason} for s in skipped],
    }


def sync_iam_account(runtime: Runtime, account_id: str) -> dict[str, Any]:
    """Fetch one account's IAM listing and make the four IAM partitions equal to it."""
    account = account_to_sync(runtime, account_id)
    client = runtime.account_client("iam", account, runtime.settings.deployment_region)
    listed_at = time.time()
    details = get_authorization_details(client)
    records = transform_authorization_details(details, account_id)
    for bad in records.skipped:
        log.warning("account %s: skipped %s: %s", account_id, bad.identifier, bad.reason)
    # A bad record we cannot even name could be any cached item: then delete nothing.
    complete = all(bad.arn for bad in records.skipped)
    keep = {bad.arn for bad in records.skipped if bad.arn}
    store = runtime.store
    with region_context(GLOBAL):
        # The four partitions' DynamoDB writes share batches: ceil(items / 25) calls per table.
        results = store.replace_partitions(
            [
                PartitionWrite(
                    kind,
                    account_id,
                    GLOBAL,
                    records.by_kind[kind],
                    complete=complete,
                    keep=keep,
                    listed_at=listed_at,
                )
                for kind in IAM_KINDS
            ]
        )
        for result in results:
            log_result(result)
    return summarise(results, records.skipped) | {"account_id": account_id, "pages": details.pages}


@shared_task(
    bind=True,
    base=InventoryTask,
    name=FOR_ACCOUNT,
    per_account=True,
    active_only=True,
    replicates=IAM_KINDS,
    soft_time_limit=900,
    time_limit=960,
)
def cache_iam_resources_for_account(self: InventoryTask, account_id: str) -> dict[str, Any]:
    """GetAccountAuthorizationDetails -> one account's roles, users, groups, local policies."""
    return sync_iam_account(self.runtime, account_id)


@shared_task(
    bind=True,
    base=InventoryTask,
    name="inventory.cache_iam_resources_across_accounts",
    active_only=True,
    replicates=IAM_KINDS,
    soft_time_limit=FANOUT_SOFT_LIMIT,
    time_limit=FANOUT_HARD_LIMIT,
)
def cache_iam_resources_across_accounts(self: InventoryTask) -> dict[str, Any]:
    """Send one cache_iam_resources_for_account per active account; never waits for them."""
    accounts = [a["id"] for a in active_accounts(self.runtime)]
    if not accounts:
        return {"accounts": [], "task_ids": []}
    signatures = (self.app.signature(FOR_ACCOUNT, (a,)) for a in accounts)
    result = group(signatures).apply_async()
    return {"accounts": accounts, "task_ids": [r.id for r in result.results]}


def clear_stale_iam(runtime: Runtime, now: float | None = None) -> dict[str, int]:
    """Remove IAM entries no listing has returned for ``stale_after_seconds``.

    They go from DynamoDB too (with a history entry), so Redis and DynamoDB, and every
    region following them, agree.
    """
    cutoff = (now or time.time()) - runtime.settings.iam.stale_after_seconds
    removed: dict[str, int] = {}
    cache = runtime.redis_cache
    for kind in IAM_KINDS:
        for p in cache.partitions(kind):
            stale = cache.stale_arns(p, cutoff)
            if stale:
                runtime.store.replace_partition(
                    kind, p.account_id, p.region, [], complete=False, remove=stale, partial=True
                )
                removed[p.id] = len(stale)
    return removed


# In a secondary region removals follow the active region's, so this runs there only.
@shared_task(
    bind=True, base=InventoryTask, name="inventory.clear_old_redis_iam_cache", active_only=True
)
def clear_old_redis_iam_cache(self: InventoryTask) -> dict[str, Any]:
    """Remove IAM entries not listed within iam.stale_after_seconds (Redis and DynamoDB)."""
    removed = clear_stale_iam(self.runtime)
    pruned = prune_event_reads(self.runtime)
    return {"removed": removed, "total": sum(removed.values()), "event_reads_pruned": pruned}


def prune_event_reads(runtime: Runtime, now: float | None = None) -> int:
    """Forget event read times older than the event de-duplication window (they only grow)."""
    cutoff = (now or time.time()) - runtime.settings.events.seen_ttl_seconds
    key = runtime.keys.event_applied()
    old = [f for f, t in runtime.redis.hscan_iter(key, count=1000) if float(t) < cutoff]
    for start in range(0, len(old), 1000):
        runtime.redis.hdel(key, *old[start : start + 1000])
    return len(old)
