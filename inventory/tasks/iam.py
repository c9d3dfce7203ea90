"""IAM: the per-account sync (generated with the others, see tasks/resources.py) and the
removal of IAM entries no listing has returned for a while."""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import Task, shared_task

from inventory.cache.keys import IAM_KINDS
from inventory.registry import BY_STEM
from inventory.runtime import Runtime
from inventory.schedule import CONSOLEME_ALIASES, deprecation
from inventory.tasks.base import (
    FANOUT,
    MAINTENANCE,
    InventoryTask,
)
from inventory.tasks.resources import sync_kind

IAM = BY_STEM["iam_resources"]
log = logging.getLogger(__name__)


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


def _forward_old_name(old: str) -> Any:
    """A task under ConsoleMe's old name that sends its message on to the task's current name."""
    current = f"inventory.{CONSOLEME_ALIASES[old]}"

    def forward(self: Task, *args: Any, **kwargs: Any) -> dict[str, Any]:
        log.warning("%s", deprecation(old, "Celery task"))
        sent = self.app.send_task(current, args=args, kwargs=kwargs)
        return {"forwarded_to": current, "task_id": sent.id}

    forward.__name__ = forward.__qualname__ = old
    forward.__doc__ = f"Deprecated (ConsoleMe's name): forwards to {current}, never waits for it."
    return shared_task(
        bind=True,
        name=f"inventory.{old}",
        routing_queue=FANOUT,
        acks_late=True,
        reject_on_worker_lost=True,
        # It only sends one message: short limits. Its old name's settings apply to the
        # current task, so the delivery safety check counts the current task's configured
        # limits for it.
        soft_time_limit=10,
        time_limit=15,
    )(forward)


#: ConsoleMe's task names, still accepted: each forwards to ours (schedule.CONSOLEME_ALIASES).
OLD_NAMES = {old: _forward_old_name(old) for old in CONSOLEME_ALIASES}
