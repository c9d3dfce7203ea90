"""The Redis side of a partition: atomic apply of a diff, and the reads the web tier needs."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from inventory.cache.keys import SUMMARY_FIELDS, Keys, Partition
from inventory.registry import UNINDEXED_KINDS


@dataclass(frozen=True)
class PartitionMeta:
    """Freshness of one partition as last written."""

    refreshed_at: float
    changed_at: float
    complete: bool
    count: int
    s3_digest: str | None = None
    #: Secondary region: the manifest digest last applied. Active: the manifest last published.
    manifest_digest: str | None = None
    #: When every listed item was last written to DynamoDB (its TTL pushed back).
    renewed_at: float | None = None
    #: False when the last listing found the service not set up there (no AWS Config recorder).
    enabled: bool = True


def connect(url: str, socket_timeout: float = 10.0) -> redis.Redis:
    """A client whose connection errors raise (never turn into empty results)."""
    return redis.Redis.from_url(
        url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=min(socket_timeout, 5.0),
        health_check_interval=30,
        decode_responses=True,
    )


class RedisCache:
    """Partition reads and writes; every write of a partition is one MULTI/EXEC."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    def load_hashes(self, p: Partition) -> dict[str, str] | None:
        """Content hashes by ARN, or None when Redis has never held this partition (cold)."""
        return self.load_state(p)[0]

    def load_state(self, p: Partition) -> tuple[dict[str, str] | None, PartitionMeta | None]:
        """Content hashes by ARN and the partition's meta, in one round trip (None: cold)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(self.keys.meta(p))
        pipe.hgetall(self.keys.hashes(p))
        raw, hashes = pipe.execute()
        meta = _meta(raw)
        return (hashes if meta is not None else None), meta

    def get_items(self, p: Partition, arns: Iterable[str]) -> dict[str, str]:
        arns = list(arns)
        if not arns:
            return {}
        values = self.client.hmget(self.keys.items(p), arns)
        return {arn: v for arn, v in zip(arns, values, strict=True) if v is not None}

    def apply(
        self,
        p: Partition,
        upserts: Mapping[str, tuple[str, str]],
        removed: Iterable[str],
        seen: Iterable[str],
        now: float,
        complete: bool,
        count: int,
        partial: bool = False,
        feed: Sequence[Mapping[str, str]] = (),
        feed_max: int = 0,
        renewed_at: float | None = None,
        enabled: bool = True,
    ) -> None:
        """Write changed items, drop removed ones and stamp freshness, atomically.

        ``partial`` (a targeted refresh of some items) leaves the listing's freshness and
        completeness alone. ``feed`` entries are added to the capped history stream in the
        same transaction.
        """
        removed = list(removed)
        k = self.keys
        pipe = self.client.pipeline(transaction=True)
        self._stage_items(pipe, p, upserts, removed)
        seen_scores = dict.fromkeys(seen, now)
        if seen_scores:
            pipe.zadd(k.seen(p), seen_scores)
        meta: dict[str, Any] = {"count": count}
        if not partial:
            meta.update(refreshed_at=now, complete=int(complete), enabled=int(enabled))
        if upserts or removed:
            meta["changed_at"] = now
        if renewed_at is not None:
            meta["renewed_at"] = renewed_at
        pipe.hset(k.meta(p), mapping=meta)
        pipe.hsetnx(k.meta(p), "changed_at", now)
        pipe.hsetnx(k.meta(p), "refreshed_at", now)
        pipe.hsetnx(k.meta(p), "complete", 0)
        feeds = (
            k.history_feed(),
            k.history_feed(account_id=p.account_id),
            k.history_feed(kind=p.kind),
        )
        for entry in feed:
            for stream in feeds:
                pipe.xadd(stream, dict(entry), maxlen=feed_max or None, approximate=True)
        pipe.sadd(k.partitions(), p.id)
        pipe.execute()

    def _stage_items(
        self,
        pipe: Any,
        p: Partition,
        upserts: Mapping[str, tuple[str, str]],
        removed: list[str],
    ) -> None:
        """Queue the item writes and deletes, with the ARN index and summaries that follow them."""
        k = self.keys
        indexed = p.kind not in UNINDEXED_KINDS
        summarised = SUMMARY_FIELDS.get(p.kind)
        if upserts:
            pipe.hset(k.items(p), mapping={arn: v[0] for arn, v in upserts.items()})
            pipe.hset(k.hashes(p), mapping={arn: v[1] for arn, v in upserts.items()})
            if indexed:
                pipe.hset(k.arn_index(), mapping=dict.fromkeys(upserts, p.id))
            if summarised:
                summaries = {arn: _summary(v[0], summarised) for arn, v in upserts.items()}
                pipe.hset(k.summaries(p), mapping=summaries)
        if removed:
            pipe.hdel(k.items(p), *removed)
            pipe.hdel(k.hashes(p), *removed)
            pipe.zrem(k.seen(p), *removed)
            if indexed:
                pipe.hdel(k.arn_index(), *removed)
            if summarised:
                pipe.hdel(k.summaries(p), *removed)

    def set_s3_digest(self, p: Partition, digest: str) -> None:
        self.client.hset(self.keys.meta(p), "s3_digest", digest)

    def set_manifest_digest(self, p: Partition, digest: str) -> None:
        """The digest last published (active) or applied (secondary) as the partition manifest."""
        self.client.hset(self.keys.meta(p), "manifest_digest", digest)

    def meta(self, p: Partition) -> PartitionMeta | None:
        return _meta(self.client.hgetall(self.keys.meta(p)))

    def items(self, p: Partition) -> dict[str, dict[str, Any]]:
        """Every record of a partition, by ARN."""
        return {arn: json.loads(v) for arn, v in self.client.hgetall(self.keys.items(p)).items()}

    def summaries(self, p: Partition) -> dict[str, dict[str, Any]]:
        """The ``SUMMARY_FIELDS`` of every item, by ARN, without reading the items themselves.

        A partition written before its kind had summaries gets them built once from its items
        (under WATCH, so a write in between makes it start again rather than store stale ones).
        """
        fields = SUMMARY_FIELDS[p.kind]
        pipe = self.client.pipeline(transaction=False)
        pipe.hlen(self.keys.items(p))
        pipe.hgetall(self.keys.summaries(p))
        count, raw = pipe.execute()
        if len(raw) != count:
            raw = self._rebuild_summaries(p, fields)
        return {arn: json.loads(v) for arn, v in raw.items()}

    def _rebuild_summaries(self, p: Partition, fields: tuple[str, ...]) -> dict[str, str]:
        items, summaries = self.keys.items(p), self.keys.summaries(p)
        for _ in range(5):
            with self.client.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(items)
                    built = {a: _summary(v, fields) for a, v in pipe.hgetall(items).items()}
                    pipe.multi()
                    pipe.delete(summaries)
                    if built:
                        pipe.hset(summaries, mapping=built)
                    pipe.execute()
                    return built
                except redis.WatchError:
                    continue
        raise redis.RedisError(f"{items} kept changing while its summaries were built")

    def locate(self, arn: str) -> Partition | None:
        """The partition an indexed ARN lives in."""
        partition_id = self.client.hget(self.keys.arn_index(), arn)
        return None if partition_id is None else Partition.parse(partition_id)

    def scan_arns(self, pattern: str) -> Iterator[tuple[str, Partition]]:
        """(ARN, partition) of every indexed ARN matching a Redis glob, matched by Redis."""
        for arn, partition_id in self.client.hscan_iter(
            self.keys.arn_index(), match=pattern, count=1000
        ):
            yield arn, Partition.parse(partition_id)

    def item(self, p: Partition, arn: str) -> dict[str, Any] | None:
        raw = self.client.hget(self.keys.items(p), arn)
        return None if raw is None else json.loads(raw)

    def get(self, arn: str) -> dict[str, Any] | None:
        """One record by ARN, wherever it lives."""
        partition_id = self.client.hget(self.keys.arn_index(), arn)
        if partition_id is None:
            return None
        raw = self.client.hget(self.keys.items(Partition.parse(partition_id)), arn)
        return None if raw is None else json.loads(raw)

    def partitions(self, kind: str | None = None) -> list[Partition]:
        found = [Partition.parse(p) for p in self.client.smembers(self.keys.partitions())]
        return sorted(
            (p for p in found if kind is None or p.kind == kind),
            key=lambda p: (p.kind, p.account_id, p.region),
        )

    def stale_arns(self, p: Partition, older_than: float) -> list[str]:
        """ARNs a listing last returned before ``older_than``."""
        return list(self.client.zrangebyscore(self.keys.seen(p), "-inf", f"({older_than}"))


def _summary(document: str, fields: tuple[str, ...]) -> str:
    record = json.loads(document)
    return json.dumps({f: record.get(f) for f in fields}, separators=(",", ":"))


def _meta(raw: Mapping[str, str]) -> PartitionMeta | None:
    if not raw or "refreshed_at" not in raw:
        return None
    return PartitionMeta(
        refreshed_at=float(raw["refreshed_at"]),
        changed_at=float(raw.get("changed_at", raw["refreshed_at"])),
        complete=raw.get("complete") == "1",
        count=int(raw.get("count", 0)),
        s3_digest=raw.get("s3_digest"),
        manifest_digest=raw.get("manifest_digest"),
        renewed_at=float(raw["renewed_at"]) if raw.get("renewed_at") else None,
        enabled=raw.get("enabled", "1") == "1",
    )
