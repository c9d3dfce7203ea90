"""Secondary regions: keep Redis equal to the replicated DynamoDB tables, never calling AWS.

Only ``settings.active_region`` calls AWS. Everywhere else the same tasks run on the same
schedule, but :class:`~inventory.tasks.base.InventoryTask` sends an AWS-calling task here
instead (one decision, in one place): :func:`follow` reads the replication log's manifests
written since the last cursor, and for each partition whose digest differs from what Redis
holds it reads the partition's ``(arn, contentHash)`` pairs from the ``partition-index`` GSI
(keys only, no documents), fetches only the documents that changed and applies the diff to Redis
in one transaction. Items the active region removed are removed here. Freshness is stamped with
the active region's write time, and the active region's task outcomes are imported, so a stalled
active region shows as stale in every region.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Collection, Iterable
from typing import Any

from inventory.cache.keys import Partition
from inventory.cache.replication import OUTCOMES_STREAM, Manifest
from inventory.cache.store import partition_digest
from inventory.metrics import TaskStatus
from inventory.runtime import Runtime

log = logging.getLogger(__name__)


def _cursor(runtime: Runtime, stream: str) -> float | None:
    raw = runtime.redis.hget(runtime.keys.replica_cursor(), stream)
    return None if raw is None else float(raw)


def follow(
    runtime: Runtime, kinds: Iterable[str], account_id: str | None = None
) -> dict[str, dict[str, int]]:
    """Bring every partition of ``kinds`` (of one account, if given) up to the active region's."""
    return {kind: follow_kind(runtime, kind, account_id) for kind in kinds}


def follow_kind(runtime: Runtime, kind: str, account_id: str | None = None) -> dict[str, int]:
    """Apply the manifests of one kind written since the cursor (all of them for one account).

    Manifests are re-read from ``overlap_seconds`` before the cursor, because a replicated
    write can arrive later than a newer one; applying a manifest twice is a no-op. A partition
    whose items have not all replicated yet (their digest is not the manifest's) is kept in a
    pending set and checked again every round until it matches: it is never marked applied
    before that. The cursor moves on as manifests are handled, so a long first load that runs
    out of time resumes where it stopped.
    """
    overlap = runtime.settings.replication.overlap_seconds
    cursor = None if account_id else _cursor(runtime, kind)
    since = None if cursor is None else cursor - overlap
    counts = {"partitions": 0, "upserted": 0, "removed": 0, "unchanged": 0, "pending": 0}
    handled: set[str] = set()
    pending_key = runtime.keys.replica_pending()
    for manifest in runtime.replication.manifests(kind, since):
        if account_id is not None and manifest.partition.account_id != account_id:
            continue
        handled.add(manifest.partition.id)
        _apply(runtime, manifest, counts)
        if account_id is None and (cursor is None or manifest.updated_at > cursor):
            cursor = manifest.updated_at
            runtime.redis.hset(runtime.keys.replica_cursor(), kind, repr(cursor))
    # Partitions still waiting for their items, whatever the cursor says.
    for raw in runtime.redis.smembers(pending_key):
        p = Partition.parse(raw)
        if p.kind != kind or raw in handled or (account_id and p.account_id != account_id):
            continue
        manifest = runtime.replication.manifest(p)
        if manifest is None:
            runtime.redis.srem(pending_key, raw)
            continue
        _apply(runtime, manifest, counts)
    if counts["partitions"]:
        log.info("followed %s: %s", kind, counts)
    if counts["pending"]:
        log.warning(
            "%s: %d partition(s) wait for their items to replicate", kind, counts["pending"]
        )
    return counts


def _apply(runtime: Runtime, manifest: Manifest, counts: dict[str, int]) -> None:
    pending_key = runtime.keys.replica_pending()
    if not manifest.digest:
        counts["unchanged"] += 1  # a first write under way: its real manifest follows
        return
    meta = runtime.redis_cache.meta(manifest.partition)
    if meta is not None and meta.manifest_digest == manifest.digest:
        counts["unchanged"] += 1
        runtime.redis.srem(pending_key, manifest.partition.id)
        return
    upserted, removed, caught_up = mirror(runtime, manifest)
    counts["partitions"] += 1
    counts["upserted"] += upserted
    counts["removed"] += removed
    if caught_up:
        runtime.redis.srem(pending_key, manifest.partition.id)
    else:
        counts["pending"] += 1
        runtime.redis.sadd(pending_key, manifest.partition.id)


def mirror(runtime: Runtime, manifest: Manifest) -> tuple[int, int, bool]:
    """Make one partition in Redis equal to its durable copy; returns (upserted, removed, done).

    ``done`` is False while the durable copy does not match the manifest yet (replication
    lag): then the manifest is not recorded as applied.
    """
    p = manifest.partition
    local = runtime.redis_cache.load_hashes(p)
    durable = runtime.dynamo.load_hashes(p)
    removed = [arn for arn in local or {} if arn not in durable]
    changed = [arn for arn, h in durable.items() if (local or {}).get(arn) != h]
    upserts = runtime.dynamo.documents(p, changed)
    caught_up = partition_digest(durable) == manifest.digest
    runtime.store.mirror_partition(
        p,
        upserts,
        removed,
        count=len(durable),
        complete=manifest.complete,
        written_at=manifest.updated_at,
        digest=manifest.digest if caught_up else "",
        first_load=local is None,
    )
    return len(upserts), len(removed), caught_up


# --- Task outcomes: the active region's freshness, visible in every region ------------------


def _outcomes_by_account(
    statuses: Iterable[TaskStatus], tasks: Collection[str]
) -> dict[str, dict[str, list[Any]]]:
    by_account: dict[str, dict[str, list[Any]]] = {}
    for s in statuses:
        if s.task in tasks:
            by_account.setdefault(s.account_id, {})[s.task] = [
                s.last_success,
                s.last_failure,
                s.last_error,
            ]
    return by_account


def publish_outcomes(runtime: Runtime, tasks: Collection[str], now: float | None = None) -> int:
    """Active region: write each account's outcomes of ``tasks`` that changed since last time."""
    now = time.time() if now is None else now
    by_account = _outcomes_by_account(runtime.outcomes.status(), tasks)
    published = runtime.redis.hgetall(runtime.keys.published_outcomes())
    digests = {
        account: hashlib.blake2b(
            json.dumps(entries, sort_keys=True).encode(), digest_size=12
        ).hexdigest()
        for account, entries in by_account.items()
    }
    changed = {a: by_account[a] for a, d in digests.items() if published.get(a) != d}
    if not changed:
        return 0
    runtime.ensure_tables()
    runtime.replication.put_outcomes(changed, now)
    runtime.redis.hset(runtime.keys.published_outcomes(), mapping={a: digests[a] for a in changed})
    return len(changed)


def import_outcomes(runtime: Runtime) -> int:
    """Secondary region: copy the active region's outcomes into this region's Redis."""
    overlap = runtime.settings.replication.overlap_seconds
    cursor = _cursor(runtime, OUTCOMES_STREAM)
    since = None if cursor is None else cursor - overlap
    k = runtime.keys
    newest, imported = cursor or 0.0, 0
    pipe = runtime.redis.pipeline(transaction=False)
    for account_id, tasks, written_at in runtime.replication.outcomes(since):
        newest = max(newest, written_at)
        for task, (success, failure, error) in tasks.items():
            field = f"{task}|{account_id}"
            if success is not None:
                pipe.hset(k.last_success(), field, success)
            if failure is not None:
                pipe.hset(k.last_failure(), field, failure)
                pipe.hset(k.last_error(), field, error or "")
            imported += 1
    if newest:
        pipe.hset(k.replica_cursor(), OUTCOMES_STREAM, repr(newest))
    pipe.execute()
    return imported
