"""CloudTrail errors by principal ARN, from a pluggable source (SQS, LookupEvents, or yours)."""

from __future__ import annotations

import importlib
import logging
import time
from collections import defaultdict
from typing import Any

from celery import shared_task

from inventory.aws.cloudtrail import (
    ErrorEvent,
    EventSource,
    LookupEventsSource,
    SqsEventSource,
    aggregate,
)
from inventory.cache.keys import CLOUDTRAIL_ERRORS, GLOBAL, Partition
from inventory.runtime import Runtime
from inventory.settings import Settings
from inventory.tasks.base import AWS, InventoryTask

log = logging.getLogger(__name__)


def load_source(runtime: Runtime) -> EventSource | None:
    """The configured source: 'sqs', 'lookup_events', 'none', or a 'module:factory' path."""
    settings: Settings = runtime.settings
    cfg = settings.cloudtrail
    region = cfg.queue_region or settings.active_region
    if cfg.source == "none":
        return None
    if cfg.source == "sqs":
        assert cfg.queue_url is not None
        client = runtime.aws.hub_client("sqs", region)
        return SqsEventSource(client, cfg.queue_url, cfg.max_messages)
    if cfg.source == "lookup_events":
        return LookupEventsSource(
            runtime.aws.hub_client("cloudtrail", region), cfg.lookback_seconds
        )
    module_name, _, attribute = cfg.source.partition(":")
    factory = getattr(importlib.import_module(module_name), attribute)
    source: EventSource = factory(settings, runtime.aws)
    return source


def store_errors(
    runtime: Runtime, events: list[ErrorEvent], now: float, retention_seconds: float
) -> dict[str, int]:
    """Merge events into each principal account's aggregates; drop those past retention."""
    by_account: dict[str, list[ErrorEvent]] = defaultdict(list)
    for event in events:
        by_account[event.account_id].append(event)
    cached = {p.account_id for p in runtime.redis_cache.partitions(CLOUDTRAIL_ERRORS)}
    principals = 0
    for account_id in sorted(cached | set(by_account)):
        p = Partition(CLOUDTRAIL_ERRORS, account_id, GLOBAL)
        existing = runtime.redis_cache.items(p)
        merged = aggregate(existing, by_account.get(account_id, []), now, retention_seconds)
        if merged == existing:
            continue
        runtime.store.replace_partition(
            CLOUDTRAIL_ERRORS, account_id, GLOBAL, list(merged.values()), complete=True
        )
        principals += len(merged)
    return {"events": len(events), "accounts": len(by_account), "principals_written": principals}


def sync_cloudtrail_errors(runtime: Runtime, now: float | None = None) -> dict[str, Any]:
    source = load_source(runtime)
    now = time.time() if now is None else now
    retention = runtime.settings.cloudtrail.retention_days * 86400.0
    if source is None:
        return store_errors(runtime, [], now, retention) | {"source": "none"}
    events, handles = source.fetch()
    summary = store_errors(runtime, events, now, retention)
    # Acknowledge only after the aggregates are stored: a crash before this redelivers,
    # and aggregate() ignores event ids it has already counted.
    source.ack(handles)
    bad = getattr(source, "bad_messages", 0)
    if bad:
        log.warning("cloudtrail source: %d messages were not CloudTrail events", bad)
    return summary | {"bad_messages": bad}


@shared_task(
    bind=True,
    base=InventoryTask,
    name="inventory.cache_cloudtrail_errors_by_arn",
    routing_queue=AWS,
    active_only=True,
    replicates=(CLOUDTRAIL_ERRORS,),
)
def cache_cloudtrail_errors_by_arn(self: InventoryTask) -> dict[str, Any]:
    """Drain CloudTrail error events and keep per-principal counts, codes, actions, resources."""
    return sync_cloudtrail_errors(self.runtime)
