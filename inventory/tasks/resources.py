"""Tasks for every sync in the registry, generated: one per-account sync and one fan-out each."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from celery import group, shared_task

from inventory.aws.kind import CollectContext
from inventory.aws.listing import DetailReads, Listing
from inventory.cache.keys import GLOBAL
from inventory.cache.shared_documents import DocumentClaims
from inventory.cache.store import PartitionResult, PartitionWrite
from inventory.observability import carry_context, region_context
from inventory.registry import BY_KIND, SYNCS, Sync
from inventory.runtime import Runtime
from inventory.tasks.accounts import account_to_sync, active_accounts
from inventory.tasks.base import (
    AWS,
    FANOUT,
    FANOUT_HARD_LIMIT,
    FANOUT_SOFT_LIMIT,
    InventoryTask,
    log_result,
    should_retry,
)

log = logging.getLogger(__name__)


class RegionsFailed(Exception):
    """Some regions of a regional sync failed; the others were stored."""

    def __init__(self, what: str, account_id: str, failures: dict[str, BaseException]) -> None:
        self.failures = failures
        detail = "; ".join(f"{r}: {type(e).__name__}: {e}" for r, e in sorted(failures.items()))
        super().__init__(f"{what} in {account_id}: {len(failures)} region(s) failed: {detail}")

    @property
    def retryable(self) -> bool:
        return all(should_retry(e) for e in self.failures.values())


def regions_for(runtime: Runtime, account: dict[str, Any]) -> list[str]:
    """Settings' regions, else the regions enabled in the account (known for a while)."""
    configured = runtime.settings.aws.regions
    if configured:
        return list(configured)
    region = runtime.settings.deployment_region
    return runtime.enabled_regions.get(
        account["id"], lambda: runtime.account_client("ec2", account, region)
    )


def result_summary(result: PartitionResult, listing: Listing) -> dict[str, Any]:
    return {
        "listed": result.listed,
        "created": result.created,
        "updated": result.updated,
        "removed": result.removed,
        "complete": result.complete,
        "dynamo_writes": result.dynamo_writes,
        "s3_objects": result.s3_objects,
        "skipped": [{"record": s.identifier, "reason": s.reason} for s in listing.skipped],
    }


def store_listings(
    runtime: Runtime, account_id: str, region: str, listings: dict[str, Listing]
) -> dict[str, dict[str, Any]]:
    """Every kind one collect listed in one region, their DynamoDB writes sharing batches.

    (An account's four IAM partitions cost ceil(items / 25) BatchWriteItem calls per table.)
    """
    writes = []
    for kind, listing in listings.items():
        for bad in listing.skipped:
            log.warning(
                "%s %s %s: skipped %s: %s", kind, account_id, region, bad.identifier, bad.reason
            )
        spec = BY_KIND[kind]
        writes.append(
            PartitionWrite(
                kind,
                spec.shared_account or account_id,
                region,
                listing.records,
                complete=listing.complete,
                keep=listing.keep,
                durable=spec.durable,
                listed_at=listing.listed_at,
                enabled=listing.enabled,
            )
        )
    results = runtime.store.replace_partitions(writes)
    for result in results:
        log_result(result)
    return {
        r.kind: result_summary(r, listing)
        for r, listing in zip(results, listings.values(), strict=True)
    }


def sync_options(runtime: Runtime, sync: Sync) -> dict[str, Any]:
    """The sync's settings section as a dict (``Sync.settings``), or {}."""
    section = getattr(runtime.settings, sync.settings) if sync.settings else None
    return section.model_dump() if section is not None else {}


def aggregator_of(runtime: Runtime, sync: Sync) -> dict[str, Any] | None:
    """The aggregator the settings name for this sync, or None (then: per account)."""
    aggregator = sync_options(runtime, sync).get("aggregator") or {}
    return aggregator if sync.aggregate is not None and aggregator.get("name") else None


def _collect_region(
    runtime: Runtime, sync: Sync, account: dict[str, Any], region: str
) -> dict[str, dict[str, Any]]:
    """One sync's listing of one account and region, stored."""
    client_region = runtime.settings.deployment_region if region == GLOBAL else region
    claims = DocumentClaims(runtime.shared_documents, sync.every)
    with region_context(region), DetailReads(runtime.settings.aws.detail_reads) as reads:
        client = runtime.account_client(sync.service, account, client_region)
        try:
            options = sync_options(runtime, sync)
            ctx = CollectContext(client, account["id"], region, claims, reads, options)
            listings = sync.collect(ctx)
            stored = store_listings(runtime, account["id"], region, listings)
        except BaseException:
            claims.release()
            raise
    for kind, listing in listings.items():
        if BY_KIND[kind].shared_account is not None:
            claims.stored(listing.records)
    return stored


#: At most this many regions of one account's regional sync are read at once (each with its own
#: pool of detail reads); aws.detail_reads 1, the serial path, reads one region after another.
MAX_REGIONS_AT_ONCE = 4


def regions_at_once(detail_reads: int, regions: int) -> int:
    """How many regions of one account's sync are read at once: a quarter of the detail reads."""
    return max(1, min(MAX_REGIONS_AT_ONCE, detail_reads // 4, regions))


def _collect_regions(
    runtime: Runtime, sync: Sync, account: dict[str, Any], regions: list[str]
) -> dict[str, Future[dict[str, dict[str, Any]]]]:
    """Every region's listing, stored, a few regions at once: each region's outcome, in order."""
    at_once = regions_at_once(runtime.settings.aws.detail_reads, len(regions))
    runtime.store  # noqa: B018 - made once here, not raced for by the region threads
    with ThreadPoolExecutor(at_once, thread_name_prefix="region") as pool:
        return {
            region: pool.submit(carry_context(_collect_region), runtime, sync, account, region)
            for region in regions
        }


def sync_account(runtime: Runtime, sync: Sync, account_id: str) -> dict[str, dict[str, Any]]:
    """One sync in one account (every region for a regional one): by region, by kind.

    A region that fails keeps its cached data; the others are stored, then the failure raises.
    """
    account = account_to_sync(runtime, account_id)
    if not sync.regional:
        return {GLOBAL: _collect_region(runtime, sync, account, GLOBAL)}
    outcomes = _collect_regions(runtime, sync, account, regions_for(runtime, account))
    by_region: dict[str, dict[str, Any]] = {}
    failures: dict[str, BaseException] = {}
    for region, outcome in outcomes.items():
        exc = outcome.exception()
        if exc is None:
            by_region[region] = outcome.result()
        elif isinstance(exc, Exception):
            log.warning("%s %s %s failed: %s", sync.stem, account_id, region, exc)
            failures[region] = exc
        else:
            raise exc
    if failures:
        raise RegionsFailed(sync.stem, account_id, failures)
    return by_region


def sync_aggregated(runtime: Runtime, sync: Sync, account_id: str) -> dict[str, Any]:
    """One aggregator query (in ``account_id``, which holds it) for every active account and
    region: each (account, region) stored as the per-account sync would store it."""
    aggregator = aggregator_of(runtime, sync)
    if aggregator is None or sync.aggregate is None:
        raise ValueError(f"{sync.stem}: no aggregator configured")
    region = aggregator.get("region") or runtime.settings.active_region
    client = runtime.account_client(sync.service, account_to_sync(runtime, account_id), region)
    found = sync.aggregate(
        client,
        aggregator["name"],
        region,
        {a["id"] for a in active_accounts(runtime)},
        runtime.settings.aws.regions,
        sync_options(runtime, sync).get("resource_types") or (),
    )
    stored = {
        f"{account} {where}": store_listings(runtime, account, where, listings)
        for (account, where), listings in found.items()
    }
    return {"aggregator": aggregator["name"], "account_id": account_id, "partitions": stored}


def summarise(sync: Sync, account_id: str, by_region: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What a for_account task returns: its first kind's summary by region, every kind's too."""
    main = sync.kinds[0]
    partitions = {
        kind if not sync.regional else f"{kind} {region}": summary
        for region, kinds in by_region.items()
        for kind, summary in kinds.items()
    }
    summaries = list(partitions.values())
    return {
        "account_id": account_id,
        "regions": {region: kinds[main] for region, kinds in by_region.items()},
        "partitions": partitions,
        "dynamo_writes": sum(s["dynamo_writes"] for s in summaries),
        "s3_objects": sum(s["s3_objects"] for s in summaries),
        "skipped": [x for s in summaries for x in s["skipped"]],
    }


def shares_documents(sync: Sync) -> bool:
    """The sync also lists what every account shares (once per sweep, by its first account)."""
    return any(BY_KIND[kind].shared_account is not None for kind in sync.kinds)


def sync_kind(runtime: Runtime, sync: Sync, account_id: str) -> dict[str, Any]:
    """Run one sync for one account in this process; its summary (see :func:`summarise`)."""
    return summarise(sync, account_id, sync_account(runtime, sync, account_id))


def _make_tasks(sync: Sync) -> tuple[Any, Any]:
    def for_account(
        self: InventoryTask, account_id: str, aggregate: bool = False
    ) -> dict[str, Any]:
        if aggregate:
            return sync_aggregated(self.runtime, sync, account_id)
        return sync_kind(self.runtime, sync, account_id)

    def across_accounts(self: InventoryTask) -> dict[str, Any]:
        accounts = [a["id"] for a in active_accounts(self.runtime)]
        if shares_documents(sync):
            self.runtime.shared_documents.new_sweep()
        if not accounts:
            return {"accounts": [], "task_ids": []}
        aggregator = aggregator_of(self.runtime, sync)
        if aggregator is not None:  # one query serves every account: no fan-out
            sent = self.app.send_task(
                sync.for_account_task, (aggregator["account_id"],), {"aggregate": True}
            )
            return {"accounts": accounts, "task_ids": [sent.id], "aggregator": aggregator["name"]}
        signatures = (self.app.signature(sync.for_account_task, (a,)) for a in accounts)
        result = group(signatures).apply_async()
        return {"accounts": accounts, "task_ids": [r.id for r in result.results]}

    _name(for_account, f"cache_{sync.stem}_for_account", f"{sync.description}: one account.")
    _name(
        across_accounts,
        f"cache_{sync.stem}_across_accounts",
        f"Send one cache_{sync.stem}_for_account per active account; never waits for them.",
    )
    per_account = shared_task(
        bind=True,
        base=InventoryTask,
        name=sync.for_account_task,
        routing_queue=AWS,
        per_account=True,
        active_only=True,
        replicates=sync.kinds,
        **sync.options,
    )(for_account)
    fan_out = shared_task(
        bind=True,
        base=InventoryTask,
        name=sync.across_accounts_task,
        routing_queue=FANOUT,
        active_only=True,
        replicates=sync.kinds,
        soft_time_limit=FANOUT_SOFT_LIMIT,
        time_limit=FANOUT_HARD_LIMIT,
    )(across_accounts)
    return per_account, fan_out


def _name(fn: Callable[..., Any], name: str, doc: str) -> None:
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc


TASKS = {sync.stem: _make_tasks(sync) for sync in SYNCS}
