"""The policies table: rebuilt and verified on a schedule (it also follows every change)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from inventory.cache.keys import Partition
from inventory.cache.policies_table import build_row, is_row
from inventory.registry import TABLE_KINDS
from inventory.runtime import Runtime
from inventory.tasks.accounts import account_mapping
from inventory.tasks.base import MAINTENANCE, InventoryTask


def _comparable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "last_updated"}


def rebuild_policies_table(runtime: Runtime) -> dict[str, int]:
    """Recompute every row from the cached partitions; fix rows that drifted, drop orphans and
    the keys of the former index."""
    table = runtime.policies_table
    expected = expected_rows(runtime)
    current = table.rows()
    fixed = [
        row | {"last_updated": current.get(arn, row)["last_updated"]}
        for arn, row in expected.items()
        if arn not in current or _comparable(current[arn]) != _comparable(row)
    ]
    orphans = [arn for arn in current if arn not in expected]
    table.upsert(fixed)
    table.remove(orphans)
    if fixed or orphans:
        # Tell search indexes about the repair (they reload or apply these rows).
        table.publish(Partition("policies_table", "all"), {}, [], fixed, orphans)
    obsolete = table.forget_obsolete()
    return {
        "rows": len(expected),
        "fixed": len(fixed),
        "removed": len(orphans),
        "obsolete_keys": obsolete,
    }


def expected_rows(runtime: Runtime) -> dict[str, dict[str, Any]]:
    """Every row as the cached partitions, account names, errors and findings make it."""
    cache = runtime.redis_cache
    names = {a["id"]: a["name"] for a in account_mapping(runtime)}
    expected: dict[str, dict[str, Any]] = {}
    for p in cache.partitions():
        if p.kind in TABLE_KINDS:
            expected.update(_partition_rows(runtime, p, names.get(p.account_id)))
    return expected


def _partition_rows(
    runtime: Runtime, p: Partition, account_name: str | None
) -> dict[str, dict[str, Any]]:
    cache, table = runtime.redis_cache, runtime.policies_table
    items = cache.items(p)
    meta = cache.meta(p)
    changed_at = meta.changed_at if meta else 0.0
    errors = table.error_counts(p.account_id, list(items))
    findings = table.finding_summaries(p.account_id, list(items))
    return {
        arn: build_row(
            record, p.kind, account_name, errors.get(arn, 0), changed_at, findings.get(arn)
        )
        for arn, record in items.items()
        if is_row(p.kind, record)
    }


@shared_task(
    bind=True,
    base=InventoryTask,
    name="inventory.cache_policies_table_details",
    routing_queue=MAINTENANCE,
)
def cache_policies_table_details(self: InventoryTask) -> dict[str, int]:
    """Rebuild and verify the policies table rows the web UI filters, sorts and pages."""
    return rebuild_policies_table(self.runtime)
