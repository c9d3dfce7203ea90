"""IAM: the per-account sync (generated with the others, see tasks/resources.py) and the
removal of IAM entries no listing has returned for a while."""

from __future__ import annotations

import time
from typing import Any

from celery import shared_task

from inventory.cache.keys import IAM_KINDS
from inventory.registry import BY_STEM
from inventory.runtime import Runtime
from inventory.tasks.base import MAINTENANCE, InventoryTask
from inventory.tasks.resources import sync_kind

IAM = BY_STEM["iam_resources"]


def sync_iam_account(runtime: Runtime, account_id: str) -> dict[str, Any]:
    """Fetch one account's IAM listing and make the four IAM partitions equal to it."""
    return sync_kind(runtime, IAM, account_id)


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


def prune_event_reads(runtime: Runtime, now: float | None = None) -> int:
    """Forget event read times older than the event de-duplication window (they only grow)."""
    cutoff = (now or time.time()) - runtime.settings.events.seen_ttl_seconds
    return runtime.event_ledger.prune_reads(cutoff)


# In a secondary region removals follow the active region's, so this runs there only.
@shared_task(
    bind=True,
    base=InventoryTask,
    name="inventory.clear_old_redis_iam_cache",
    routing_queue=MAINTENANCE,
    active_only=True,
)
def clear_old_redis_iam_cache(self: InventoryTask) -> dict[str, Any]:
    """Remove IAM entries not listed within iam.stale_after_seconds (Redis and DynamoDB)."""
    removed = clear_stale_iam(self.runtime)
    pruned = prune_event_reads(self.runtime)
    return {"removed": removed, "total": sum(removed.values()), "event_reads_pruned": pruned}
