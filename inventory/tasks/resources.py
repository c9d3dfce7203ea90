"""Tasks for every kind in the registry, generated: one per-account sync and one fan-out each."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery import group, shared_task

from inventory.aws.listing import Listing
from inventory.aws.managed_policies import (
    AWS_ACCOUNT,
    AWS_DOCUMENT_KIND,
    collect_managed_policies,
)
from inventory.aws.regions import get_enabled_regions
from inventory.cache.keys import GLOBAL, MANAGED_POLICY
from inventory.cache.shared_documents import SharedDocuments
from inventory.cache.store import PartitionResult
from inventory.observability import region_context
from inventory.registry import KINDS, ResourceKind
from inventory.runtime import Runtime
from inventory.tasks.accounts import account_to_sync, active_accounts
from inventory.tasks.base import (
    FANOUT_HARD_LIMIT,
    FANOUT_SOFT_LIMIT,
    InventoryTask,
    log_result,
    should_retry,
)

log = logging.getLogger(__name__)


class RegionsFailed(Exception):
    """Some regions of a regional kind failed; the others were stored."""

    def __init__(self, kind: str, account_id: str, failures: dict[str, BaseException]) -> None:
        self.failures = failures
        detail = "; ".join(f"{r}: {type(e).__name__}: {e}" for r, e in sorted(failures.items()))
        super().__init__(f"{kind} in {account_id}: {len(failures)} region(s) failed: {detail}")

    @property
    def retryable(self) -> bool:
        return all(should_retry(e) for e in self.failures.values())


def regions_for(runtime: Runtime, account: dict[str, Any]) -> list[str]:
    """Settings' regions, else the regions enabled in the account."""
    configured = runtime.settings.aws.regions
    if configured:
        return list(configured)
    client = runtime.account_client("ec2", account, runtime.settings.deployment_region)
    return get_enabled_regions(client)


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


def store_listing(
    runtime: Runtime, kind: ResourceKind, account_id: str, region: str, listing: Listing
) -> dict[str, Any]:
    for bad in listing.skipped:
        log.warning(
            "%s %s %s: skipped %s: %s", kind.kind, account_id, region, bad.identifier, bad.reason
        )
    result = runtime.store.replace_partition(
        kind.kind,
        account_id,
        region,
        listing.records,
        complete=listing.complete,
        keep=listing.keep,
        durable=kind.durable,
        listed_at=listing.listed_at,
    )
    log_result(result)
    return result_summary(result, listing)


def sync_kind(runtime: Runtime, kind: ResourceKind, account_id: str) -> dict[str, Any]:
    """Fetch one kind in one account (every region for regional kinds) and store each partition.

    A region that fails keeps its cached data; the others are stored, then the failure raises.
    """
    account = account_to_sync(runtime, account_id)
    if kind.kind == "managed_policy":
        return {
            "account_id": account_id,
            "regions": {GLOBAL: sync_managed_policies(runtime, account)},
        }
    assert kind.collect is not None
    regions = regions_for(runtime, account) if kind.regional else [GLOBAL]
    summaries: dict[str, Any] = {}
    failures: dict[str, BaseException] = {}
    for region in regions:
        client_region = runtime.settings.deployment_region if region == GLOBAL else region
        try:
            with region_context(region):
                client = runtime.account_client(kind.service, account, client_region)
                listing = kind.collect(client, account_id, region)
                summaries[region] = store_listing(runtime, kind, account_id, region, listing)
        except Exception as exc:
            if not kind.regional:
                raise
            log.warning("%s %s %s failed: %s", kind.kind, account_id, region, exc)
            failures[region] = exc
    if failures:
        raise RegionsFailed(kind.kind, account_id, failures)
    return {"account_id": account_id, "regions": summaries}


def sync_managed_policies(runtime: Runtime, account: dict[str, Any]) -> dict[str, Any]:
    """Attached policies of one account; AWS managed documents fetched once per version overall."""
    shared = SharedDocuments(runtime.redis, runtime.keys)
    claimed: list[tuple[str, str]] = []

    def need(arn: str, version: str) -> bool:
        if shared.need(arn, version):
            claimed.append((arn, version))
            return True
        return False

    client = runtime.account_client("iam", account, runtime.settings.deployment_region)
    try:
        listing, documents = collect_managed_policies(client, account["id"], need)
        if documents:
            runtime.store.replace_partition(
                AWS_DOCUMENT_KIND, AWS_ACCOUNT, GLOBAL, documents, complete=False
            )
            shared.stored((d["arn"], d["version_id"]) for d in documents)
    except BaseException:
        shared.release(claimed)
        raise
    kind = next(k for k in KINDS if k.kind == "managed_policy")
    summary = store_listing(runtime, kind, account["id"], GLOBAL, listing)
    return summary | {"aws_documents_fetched": len(documents)}


def _make_tasks(kind: ResourceKind) -> tuple[Any, Any]:
    def for_account(self: InventoryTask, account_id: str) -> dict[str, Any]:
        return sync_kind(self.runtime, kind, account_id)

    def across_accounts(self: InventoryTask) -> dict[str, Any]:
        accounts = [a["id"] for a in active_accounts(self.runtime)]
        if not accounts:
            return {"accounts": [], "task_ids": []}
        signatures = (self.app.signature(kind.for_account_task, (a,)) for a in accounts)
        result = group(signatures).apply_async()
        return {"accounts": accounts, "task_ids": [r.id for r in result.results]}

    _name(for_account, f"cache_{kind.stem}_for_account", f"{kind.description}: one account.")
    _name(
        across_accounts,
        f"cache_{kind.stem}_across_accounts",
        f"Send one cache_{kind.stem}_for_account per active account; never waits for them.",
    )
    replicates = (kind.kind, AWS_DOCUMENT_KIND) if kind.kind == MANAGED_POLICY else (kind.kind,)
    per_account = shared_task(
        bind=True,
        base=InventoryTask,
        name=kind.for_account_task,
        per_account=True,
        active_only=True,
        replicates=replicates,
    )(for_account)
    fan_out = shared_task(
        bind=True,
        base=InventoryTask,
        name=kind.across_accounts_task,
        active_only=True,
        replicates=replicates,
        soft_time_limit=FANOUT_SOFT_LIMIT,
        time_limit=FANOUT_HARD_LIMIT,
    )(across_accounts)
    return per_account, fan_out


def _name(fn: Callable[..., Any], name: str, doc: str) -> None:
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc


TASKS = {kind.stem: _make_tasks(kind) for kind in KINDS}
