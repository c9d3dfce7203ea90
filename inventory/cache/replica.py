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
from dataclasses import dataclass
from typing import Any

import redis

from inventory.cache.dynamo import DynamoStore
from inventory.cache.keys import Keys, Partition
from inventory.cache.redis_cache import RedisCache
from inventory.cache.replication import OUTCOMES_STREAM, Manifest, ReplicationLog
from inventory.cache.store import Store, partition_digest
from inventory.metrics import TaskOutcomes, TaskStatus

log = logging.getLogger(__name__)


class ReplicaState:
    """A region's place in the replication log: cursors, partitions pending, outcomes sent."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    def cursor(self, stream: str) -> float | None:
        raw = self.client.hget(self.keys.replica_cursor(), stream)
        return None if raw is None else float(raw)

    def set_cursor(self, stream: str, value: float) -> None:
        self.client.hset(self.keys.replica_cursor(), stream, repr(value))

    def pending(self) -> set[str]:
        return set(self.client.smembers(self.keys.replica_pending()))

    def set_pending(self, p: Partition, waiting: bool) -> None:
        key = self.keys.replica_pending()
        if waiting:
            self.client.sadd(key, p.id)
        else:
            self.client.srem(key, p.id)

    def published(self) -> dict[str, str]:
        return dict(self.client.hgetall(self.keys.published_outcomes()))

    def set_published(self, digests: dict[str, str]) -> None:
        self.client.hset(self.keys.published_outcomes(), mapping=digests)


@dataclass
class Replica:
    """Follows the active region's writes (secondary) and publishes its outcomes (active)."""

    redis_cache: RedisCache
    dynamo: DynamoStore
    store: Store
    log: ReplicationLog
    state: ReplicaState
    outcomes: TaskOutcomes
    overlap_seconds: float

    def follow(
        self, kinds: Iterable[str], account_id: str | None = None
    ) -> dict[str, dict[str, int]]:
        """Bring every partition of ``kinds`` (of one account, if given) up to the active's."""
        return {kind: self.follow_kind(kind, account_id) for kind in kinds}

    def follow_kind(self, kind: str, account_id: str | None = None) -> dict[str, int]:
        """Apply the manifests of one kind written since the cursor (all for one account).

        Manifests are re-read from ``overlap_seconds`` before the cursor, because a replicated
        write can arrive later than a newer one; applying a manifest twice is a no-op. A
        partition whose items have not all replicated yet (their digest is not the manifest's)
        is kept in a pending set and checked again every round until it matches: it is never
        marked applied before that. The cursor moves on as manifests are handled, so a long
        first load that runs out of time resumes where it stopped.
        """
        counts = {"partitions": 0, "upserted": 0, "removed": 0, "unchanged": 0, "pending": 0}
        handled = self._new_manifests(kind, account_id, counts)
        self._still_pending(kind, account_id, handled, counts)
        if counts["partitions"]:
            log.info("followed %s: %s", kind, counts)
        if counts["pending"]:
            log.warning(
                "%s: %d partition(s) wait for their items to replicate", kind, counts["pending"]
            )
        return counts

    def _new_manifests(self, kind: str, account_id: str | None, counts: dict[str, int]) -> set[str]:
        """Apply the manifests written since the cursor (moving it); the partitions handled."""
        cursor = None if account_id else self.state.cursor(kind)
        since = None if cursor is None else cursor - self.overlap_seconds
        handled: set[str] = set()
        for manifest in self.log.manifests(kind, since):
            if account_id is not None and manifest.partition.account_id != account_id:
                continue
            handled.add(manifest.partition.id)
            self._apply(manifest, counts)
            if account_id is None and (cursor is None or manifest.updated_at > cursor):
                cursor = manifest.updated_at
                self.state.set_cursor(kind, cursor)
        return handled

    def _still_pending(
        self, kind: str, account_id: str | None, handled: set[str], counts: dict[str, int]
    ) -> None:
        """Partitions still waiting for their items, whatever the cursor says."""
        for raw in self.state.pending():
            p = Partition.parse(raw)
            if p.kind != kind or raw in handled or account_id not in (None, p.account_id):
                continue
            waiting = self.log.manifest(p)
            if waiting is None:
                self.state.set_pending(p, False)
                continue
            self._apply(waiting, counts)

    def _apply(self, manifest: Manifest, counts: dict[str, int]) -> None:
        p = manifest.partition
        if not manifest.digest:
            counts["unchanged"] += 1  # a first write under way: its real manifest follows
            return
        meta = self.redis_cache.meta(p)
        if meta is not None and meta.manifest_digest == manifest.digest:
            counts["unchanged"] += 1
            self.state.set_pending(p, False)
            return
        upserted, removed, caught_up = self.mirror(manifest)
        counts["partitions"] += 1
        counts["upserted"] += upserted
        counts["removed"] += removed
        self.state.set_pending(p, not caught_up)
        counts["pending"] += not caught_up

    def mirror(self, manifest: Manifest) -> tuple[int, int, bool]:
        """Make one partition in Redis equal to its durable copy: (upserted, removed, done).

        ``done`` is False while the durable copy does not match the manifest yet (replication
        lag): then the manifest is not recorded as applied.
        """
        p = manifest.partition
        local = self.redis_cache.load_hashes(p)
        durable = self.dynamo.load_hashes(p)
        removed = [arn for arn in local or {} if arn not in durable]
        changed = [arn for arn, h in durable.items() if (local or {}).get(arn) != h]
        upserts = self.dynamo.documents(p, changed)
        caught_up = partition_digest(durable) == manifest.digest
        self.store.mirror_partition(
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

    # --- task outcomes: the active region's freshness, visible in every region ---------------

    def publish_outcomes(self, tasks: Collection[str], now: float | None = None) -> int:
        """Active region: write each account's outcomes of ``tasks`` that changed since."""
        now = time.time() if now is None else now
        by_account = _outcomes_by_account(self.outcomes.status(), tasks)
        published = self.state.published()
        digests = {
            account: hashlib.blake2b(
                json.dumps(entries, sort_keys=True).encode(), digest_size=12
            ).hexdigest()
            for account, entries in by_account.items()
        }
        changed = {a: by_account[a] for a, d in digests.items() if published.get(a) != d}
        if not changed:
            return 0
        self.log.put_outcomes(changed, now)
        self.state.set_published({a: digests[a] for a in changed})
        return len(changed)

    def import_outcomes(self) -> int:
        """Secondary region: copy the active region's outcomes into this region's Redis."""
        cursor = self.state.cursor(OUTCOMES_STREAM)
        since = None if cursor is None else cursor - self.overlap_seconds
        newest, imported = cursor or 0.0, 0
        entries: list[tuple[str, str, tuple[Any, Any, Any]]] = []
        for account_id, tasks, written_at in self.log.outcomes(since):
            newest = max(newest, written_at)
            for task, outcome in tasks.items():
                entries.append((task, account_id, tuple(outcome)))
                imported += 1
        self.outcomes.restore(entries)
        if newest:
            self.state.set_cursor(OUTCOMES_STREAM, newest)
        return imported


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
