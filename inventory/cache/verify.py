"""Compare each partition's copies (Redis, DynamoDB, the S3 snapshot) and report differences.

Redis is what the web tier serves, DynamoDB what a failover or a Redis rebuild restores, S3 what
other readers take: they must hold the same items. A difference means lost or stale data in
one copy (e.g. items two partitions overwrote under one DynamoDB key), found here by content
hash, item by item.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from inventory.cache.dynamo import DynamoStore
from inventory.cache.keys import Partition
from inventory.cache.redis_cache import RedisCache
from inventory.cache.replication import ReplicationLog
from inventory.cache.s3_snapshot import S3Snapshots
from inventory.cache.store import encode
from inventory.registry import REDIS_ONLY_KINDS


@dataclass(frozen=True)
class CopyDiff:
    """How one copy differs from Redis: ARNs it lacks, ARNs only it has, ARNs it holds changed."""

    copy: str
    missing: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()

    @property
    def equal(self) -> bool:
        return not (self.missing or self.extra or self.changed)


@dataclass(frozen=True)
class PartitionCheck:
    partition: Partition
    redis_items: int
    diffs: tuple[CopyDiff, ...]

    @property
    def equal(self) -> bool:
        return all(d.equal for d in self.diffs)


def _difference(check: PartitionCheck, written: int | None, resolved: bool) -> dict[str, Any]:
    return {
        "partition": check.partition.id,
        "redis_items": check.redis_items,
        "repaired_items": written,
        "resolved": resolved,
        "copies": [
            {
                "copy": d.copy,
                "missing": list(d.missing),
                "extra": list(d.extra),
                "changed": list(d.changed),
            }
            for d in check.diffs
            if not d.equal
        ],
    }


def compare(copy: str, redis: dict[str, str], other: dict[str, str]) -> CopyDiff:
    return CopyDiff(
        copy,
        missing=tuple(sorted(a for a in redis if a not in other)),
        extra=tuple(sorted(a for a in other if a not in redis)),
        changed=tuple(sorted(a for a in redis if a in other and other[a] != redis[a])),
    )


class Verifier:
    """Reads every copy of a partition and compares them with Redis."""

    def __init__(
        self,
        redis: RedisCache,
        dynamo: DynamoStore,
        s3: S3Snapshots | None = None,
        log: ReplicationLog | None = None,
    ) -> None:
        self.redis = redis
        self.dynamo = dynamo
        self.s3 = s3
        self.log = log

    def partitions(self, kinds: Iterable[str]) -> list[Partition]:
        """Durable partitions Redis holds, and those the replication log knows of."""
        found = {p for p in self.redis.partitions() if p.kind not in REDIS_ONLY_KINDS}
        if self.log is not None:
            for kind in kinds:
                found.update(m.partition for m in self.log.manifests(kind))
        return sorted(found, key=lambda p: (p.kind, p.account_id, p.region))

    def check(self, p: Partition) -> PartitionCheck:
        redis = self.redis.load_hashes(p) or {}
        diffs = [compare("dynamodb", redis, self.dynamo.load_hashes(p))]
        if self.s3 is not None:
            diffs.append(compare("s3", redis, self._snapshot_hashes(p)))
        return PartitionCheck(p, len(redis), tuple(diffs))

    def check_all(self, kinds: Iterable[str]) -> Iterator[PartitionCheck]:
        for p in self.partitions(kinds):
            yield self.check(p)

    def repair(self, p: Partition, now: float) -> int:
        """Write to DynamoDB and S3 what Redis holds and they lack or hold changed (active region).

        Items only DynamoDB holds are reported, never deleted: Redis may be the copy that lost
        them. A partition Redis has never held is left alone. Returns the items written.
        """
        hashes = self.redis.load_hashes(p)
        if not hashes:
            return 0
        check = self.check(p)
        written = 0
        for diff in check.diffs:
            stale = [*diff.missing, *diff.changed]
            if diff.copy == "dynamodb" and stale:
                documents = self.redis.get_items(p, stale)
                upserts = {a: (documents[a], hashes[a]) for a in stale if a in documents}
                written += self.dynamo.write(p, upserts, (), now)
            elif diff.copy == "s3" and not diff.equal and self.s3 is not None:
                self.s3.put(p, self.redis.get_items(p, hashes), now)  # the whole snapshot
        return written

    def report(
        self, kinds: set[str], accounts: set[str], repair: bool, now: float
    ) -> tuple[int, list[dict[str, Any]]]:
        """Every difference of the partitions of ``kinds`` (of ``accounts``, if any), repaired
        first when asked: (partitions checked, the differences as JSON-safe dicts)."""
        checked, differences = 0, []
        for p in self.partitions(sorted(kinds)):
            if p.kind not in kinds or (accounts and p.account_id not in accounts):
                continue
            checked += 1
            check = self.check(p)
            if check.equal:
                continue
            written = self.repair(p, now) if repair else None
            resolved = repair and self.check(p).equal
            differences.append(_difference(check, written, resolved))
        return checked, differences

    def _snapshot_hashes(self, p: Partition) -> dict[str, str]:
        assert self.s3 is not None
        snapshot = self.s3.get(p)
        data = (snapshot or {}).get("data", {})
        return {arn: encode(p.kind, record)[1] for arn, record in data.items()}
