"""``replace_partition``: make one cached partition equal a listing, writing only what changed."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from inventory.cache.dynamo import DynamoStore
from inventory.cache.history import Cause, Change, ChangeHistory, diff_records
from inventory.cache.keys import Partition
from inventory.cache.redis_cache import PartitionMeta, RedisCache
from inventory.cache.replication import ReplicationLog
from inventory.cache.s3_snapshot import S3Snapshots
from inventory.observability import carry_context
from inventory.registry import UNTRACKED_KINDS, VOLATILE_FIELDS

_T = TypeVar("_T")
#: Partitions of one listing whose round trips (state load, publication) are made at once.
PARTITIONS_AT_ONCE = 8


def canonical_json(record: Mapping[str, Any]) -> str:
    """The one serialisation we hash, store and compare."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(document: str) -> str:
    return hashlib.blake2b(document.encode(), digest_size=16).hexdigest()


def encode(kind: str, record: Mapping[str, Any]) -> tuple[str, str]:
    """A record's canonical JSON and its content hash (volatile fields left out of the hash)."""
    document = canonical_json(record)
    volatile = VOLATILE_FIELDS.get(kind)
    if not volatile:
        return document, content_hash(document)
    durable_part = {k: v for k, v in record.items() if k not in volatile}
    return document, content_hash(canonical_json(durable_part))


def partition_digest(hashes: Mapping[str, str]) -> str:
    """A digest of a whole partition's contents, to know whether its S3 snapshot is current."""
    h = hashlib.blake2b(digest_size=16)
    for arn in sorted(hashes):
        h.update(f"{arn}\0{hashes[arn]}\n".encode())
    return h.hexdigest()


@dataclass(frozen=True)
class PartitionResult:
    """What one ``replace_partition`` call did."""

    kind: str
    account_id: str
    region: str
    listed: int
    created: int
    updated: int
    removed: int
    complete: bool
    dynamo_writes: int
    s3_objects: int

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.removed)


@dataclass(frozen=True)
class PartitionWrite:
    """One partition's listing, as :meth:`Store.replace_partition` takes it."""

    kind: str
    account_id: str
    region: str
    records: Iterable[Mapping[str, Any]]
    complete: bool
    keep: Iterable[str] = ()
    durable: bool = True
    remove: Iterable[str] = ()
    partial: bool = False
    causes: Mapping[str, Cause] | None = None
    listed_at: float | None = None
    #: False: the service is not set up in the account and region (nothing to list there).
    enabled: bool = True

    @property
    def partition(self) -> Partition:
        return Partition(self.kind, self.account_id, self.region)


@dataclass
class _Plan:
    """A partition write worked out, before its DynamoDB items are written."""

    write: PartitionWrite
    p: Partition
    now: float
    meta: PartitionMeta | None
    encoded: dict[str, tuple[str, str]]
    cached: dict[str, str]
    stored: dict[str, str]
    removed: list[str]
    redis_removed: list[str]
    dynamo_upserts: dict[str, tuple[str, str]]
    redis_upserts: dict[str, tuple[str, str]]
    writes: dict[str, tuple[str, str]]
    renewed_at: float | None
    changes: list[Change]

    @property
    def complete_flag(self) -> bool:
        """Completeness for S3 and the manifest: a targeted refresh keeps the cached flag."""
        if not self.write.partial:
            return self.write.complete
        return self.meta.complete if self.meta is not None else False


@dataclass
class _State:
    """A partition before a write: Redis's hashes (``cached``) and DynamoDB's (``stored``)."""

    cached: dict[str, str]
    stored: dict[str, str]
    meta: PartitionMeta | None
    known: bool  # Redis has held the partition
    renewed_at: float | None


@dataclass
class _Diff:
    """What a write removes and upserts, in DynamoDB and in Redis."""

    removed: list[str]
    redis_removed: list[str]
    dynamo_upserts: dict[str, tuple[str, str]]
    redis_upserts: dict[str, tuple[str, str]]

    @classmethod
    def of(
        cls,
        w: PartitionWrite,
        encoded: dict[str, tuple[str, str]],
        keep: set[str],
        state: _State,
    ) -> _Diff:
        present = encoded.keys() | keep
        gone = {arn for arn in w.remove if arn not in encoded}

        def drops(arn: str) -> bool:
            return (w.complete and arn not in present) or arn in gone

        return cls(
            removed=[a for a in state.stored if drops(a)],
            redis_removed=[a for a in state.cached if drops(a)],
            dynamo_upserts=_changed(encoded, state.stored),
            redis_upserts=_changed(encoded, state.cached),
        )


def _changed(
    encoded: dict[str, tuple[str, str]], hashes: Mapping[str, str]
) -> dict[str, tuple[str, str]]:
    return {a: v for a, v in encoded.items() if hashes.get(a) != v[1]}


class PartitionListener(Protocol):
    """Told about every change a partition write made (e.g. the policies table index)."""

    def partition_changed(
        self, p: Partition, upserts: Mapping[str, str], removed: list[str]
    ) -> None: ...


class Store:
    """Redis (read path), DynamoDB (durable) and optionally S3 (snapshots), kept in step."""

    def __init__(
        self,
        redis: RedisCache,
        dynamo: DynamoStore,
        s3: S3Snapshots | None = None,
        clock: Callable[[], float] = time.time,
        listeners: list[PartitionListener] | None = None,
        log: ReplicationLog | None = None,
        history: ChangeHistory | None = None,
    ) -> None:
        self.redis = redis
        self.dynamo = dynamo
        self.s3 = s3
        self.log = log
        self.history = history
        self.clock = clock
        self.listeners = listeners or []

    def replace_partition(
        self,
        kind: str,
        account_id: str,
        region: str,
        records: Iterable[Mapping[str, Any]],
        *,
        complete: bool,
        keep: Iterable[str] = (),
        durable: bool = True,
        remove: Iterable[str] = (),
        partial: bool = False,
        causes: Mapping[str, Cause] | None = None,
        listed_at: float | None = None,
    ) -> PartitionResult:
        """Write new and changed records; with ``complete``, remove items the listing lacks.

        The listing's options are keyword-only (they are :class:`PartitionWrite`'s fields).

        ``keep`` names ARNs that were listed but could not be transformed: their cached copies
        stay, as a failed record must never delete data. ``remove`` names ARNs to remove even
        from an incomplete listing (a deletion confirmed one by one). ``partial`` marks a
        targeted refresh of some items: the partition's listing freshness is left alone.
        Every durable change is recorded in the history, with its ``causes`` (by ARN) if given.
        ``listed_at`` (when the listing began) keeps items an event refresh read after that:
        an older listing never overwrites a newer targeted read.

        Every listed item is rewritten to DynamoDB once a third of the item TTL has passed since
        the partition was last renewed, so DynamoDB never expires a resource that still exists.

        The history is written first, then DynamoDB, then Redis in one transaction, then S3 and
        the manifest: a failure at any step raises, and the retry rewrites whatever is still
        different (a change is never lost; a crash may record it twice, which readers fold).
        """
        write = PartitionWrite(
            kind, account_id, region, records, complete=complete, keep=keep, durable=durable,
            remove=remove, partial=partial, causes=causes, listed_at=listed_at,
        )  # fmt: skip
        return self.replace_partitions([write])[0]

    def replace_partitions(self, writes: Sequence[PartitionWrite]) -> list[PartitionResult]:
        """Several partitions of one listing (e.g. an account's four IAM kinds) at once.

        Each is handled as :meth:`replace_partition` describes, except that their DynamoDB
        writes share BatchWriteItem calls (25 items each, per table), so the whole listing
        costs ceil(items / 25) calls per table rather than per partition.
        """
        now = self.clock()
        states = self._each(lambda w: self._load(w, now), writes)
        plans = [self._plan(w, now, state) for w, state in zip(writes, states, strict=True)]
        durable = [pl for pl in plans if pl.write.durable]
        counts = self.dynamo.write_many([(pl.p, pl.writes, pl.removed) for pl in durable], now)
        written = {pl.p: count for pl, count in zip(durable, counts, strict=True)}
        finals = [self._apply_redis(pl) for pl in plans]
        published = self._each(lambda job: self._publish(*job), zip(plans, finals, strict=True))
        return [
            self._result(pl, written.get(pl.p, 0), s3_objects)
            for pl, s3_objects in zip(plans, published, strict=True)
        ]

    def _each(self, fn: Callable[[Any], _T], items: Iterable[Any]) -> list[_T]:
        """``fn`` of each item, in order; several at once when there are several.

        A partition's state load and its publication wait on AWS round trips (a conditional
        PutItem; an S3 object and a manifest), not on our CPU: one listing's partitions take
        one round trip's time, not one each. Every item has finished before any failure raises.
        """
        items = list(items)
        if len(items) <= 1:
            return [fn(item) for item in items]
        self._build_clients()
        workers = min(len(items), PARTITIONS_AT_ONCE)
        with ThreadPoolExecutor(workers, thread_name_prefix="partition") as pool:
            futures = [pool.submit(carry_context(fn), item) for item in items]
            wait(futures)
        return [future.result() for future in futures]

    def _build_clients(self) -> None:
        """Build the botocore clients the pool threads use, here, once (see build_clients)."""
        if self.log is not None:
            _ = self.log.model._get_connection().connection.client
        self.dynamo.build_clients()

    def _plan(self, w: PartitionWrite, now: float, state: _State) -> _Plan:
        """Everything up to the DynamoDB item writes (the history is written here)."""
        p = w.partition
        encoded = {record["arn"]: encode(w.kind, record) for record in w.records}
        keep = set(w.keep)
        if w.listed_at is not None:
            self._keep_newer_reads(encoded, state.stored, keep, w.complete, w.listed_at)
        diff = _Diff.of(w, encoded, keep, state)
        renew = w.durable and not w.partial and self._due(state.renewed_at, now, state.stored)
        changes = self._history(w, p, now, state, diff)
        return _Plan(
            write=w,
            p=p,
            now=now,
            meta=state.meta,
            encoded=encoded,
            cached=state.cached,
            stored=state.stored,
            removed=diff.removed,
            redis_removed=diff.redis_removed,
            dynamo_upserts=diff.dynamo_upserts,
            redis_upserts=diff.redis_upserts,
            writes=dict(encoded) if renew else diff.dynamo_upserts,
            # Every listed item is in DynamoDB as of now: renewed, or written the first time.
            renewed_at=now if w.durable and (renew or not state.stored) else state.renewed_at,
            changes=changes,
        )

    def _load(self, w: PartitionWrite, now: float) -> _State:
        """What Redis holds of the partition, and what DynamoDB holds (from Redis when warm)."""
        p = w.partition
        cached, meta = self.redis.load_state(p)
        renewed_at = meta.renewed_at if meta is not None else None
        if not w.durable:
            return _State(cached or {}, cached or {}, meta, cached is not None, renewed_at)
        if cached is not None:
            return _State(cached, cached, meta, True, renewed_at)
        if self.log is not None and self.log.claim_first_write(p, now):
            # Never written: a manifest (at least a "writing" one) precedes every item write,
            # so without one there are no items and no index Query is needed. The claim put
            # the "writing" one before this write's items.
            return _State({}, {}, meta, False, renewed_at)
        index = self.dynamo.load_index(p)
        stored = {arn: entry[0] for arn, entry in index.items()}
        oldest = min((entry[1] for entry in index.values()), default=None)
        return _State({}, stored, meta, False, oldest)

    def _history(
        self, w: PartitionWrite, p: Partition, now: float, state: _State, diff: _Diff
    ) -> list[Change]:
        """Record each durable change before it is written (a first load is no change)."""
        initial = not state.known and not state.stored
        if (
            self.history is None
            or not w.durable
            or initial
            or w.kind in UNTRACKED_KINDS
            or not (diff.dynamo_upserts or diff.removed)
        ):
            return []
        previous = self._previous(p, diff.dynamo_upserts, state.stored, diff.removed)
        new = {a: json.loads(v[0]) for a, v in diff.dynamo_upserts.items()}
        changes = diff_records(p, previous, new, diff.removed, now, w.causes)
        self.history.write(changes)
        return changes

    def _apply_redis(self, pl: _Plan) -> dict[str, str]:
        """The Redis side in one transaction (with the history feed), then the listeners.

        Returns the partition's content hashes by ARN as it now stands.
        """
        final = {a: h for a, h in pl.cached.items() if a not in pl.redis_removed}
        final.update({a: v[1] for a, v in pl.encoded.items()})
        history = self.history
        self.redis.apply(
            pl.p,
            pl.redis_upserts,
            pl.redis_removed,
            pl.encoded,
            pl.now,
            pl.write.complete,
            len(final),
            partial=pl.write.partial,
            feed=history.feed_entries(pl.changes) if history else (),
            feed_max=history.feed_max_entries if history else 0,
            renewed_at=pl.renewed_at,
            enabled=pl.write.enabled,
        )
        if pl.redis_upserts or pl.redis_removed:
            documents = {a: v[0] for a, v in pl.redis_upserts.items()}
            for listener in self.listeners:
                listener.partition_changed(pl.p, documents, pl.redis_removed)
        return final

    def _result(self, pl: _Plan, dynamo_writes: int, s3_objects: int) -> PartitionResult:
        w = pl.write
        created = sum(1 for a in pl.dynamo_upserts if a not in pl.stored)
        return PartitionResult(
            kind=w.kind,
            account_id=w.account_id,
            region=w.region,
            listed=len(pl.encoded),
            created=created,
            updated=len(pl.dynamo_upserts) - created,
            removed=len(pl.removed),
            complete=w.complete,
            dynamo_writes=dynamo_writes,
            s3_objects=s3_objects,
        )

    def _due(self, renewed_at: float | None, now: float, stored: Mapping[str, str]) -> bool:
        """Whether the partition's items must be rewritten to push their DynamoDB TTL back."""
        if not stored:
            return False  # nothing durable yet: this write is the first
        every = self.dynamo.ttl.total_seconds() / 3
        return renewed_at is None or now - renewed_at > every

    def _keep_newer_reads(
        self,
        encoded: dict[str, tuple[str, str]],
        stored: Mapping[str, str],
        keep: set[str],
        complete: bool,
        listed_at: float,
    ) -> None:
        """Leave alone items an event refresh read after this listing began."""
        candidates = [a for a, v in encoded.items() if stored.get(a) != v[1]]
        if complete:
            candidates += [a for a in stored if a not in encoded]
        if not candidates:
            return
        reads = self.redis.client.hmget(self.redis.keys.event_applied(), candidates)
        for arn, read in zip(candidates, reads, strict=True):
            if read is not None and float(read) > listed_at:
                encoded.pop(arn, None)
                keep.add(arn)

    def _previous(
        self,
        p: Partition,
        upserts: Mapping[str, tuple[str, str]],
        stored: Mapping[str, str],
        removed: list[str],
    ) -> dict[str, dict[str, Any]]:
        """The versions a write replaces or removes: from Redis, else from DynamoDB."""
        before = [a for a in upserts if a in stored] + removed
        if not before:
            return {}
        old = self.redis.get_items(p, before)
        missing = [a for a in before if a not in old]
        if missing:
            old.update({a: doc for a, (doc, _) in self.dynamo.documents(p, missing).items()})
        return {a: json.loads(doc) for a, doc in old.items()}

    def _publish(self, pl: _Plan, final: Mapping[str, str]) -> int:
        """Write the S3 snapshot and the replication manifest when the partition moved.

        Each is written only when the digest (for the manifest: or the completeness) differs
        from the one last written, so a sweep that changes nothing writes neither. The manifest
        is stamped when it is written, after the items: a secondary reading it sees a time no
        earlier than the items'. Returns the S3 objects written.
        """
        if not pl.write.durable:
            return 0
        digest = partition_digest(final)
        s3_objects = 0
        if self.s3 is not None and (pl.meta is None or pl.meta.s3_digest != digest):
            self._put_snapshot(self.s3, pl, final)
            self.redis.set_s3_digest(pl.p, digest)
            s3_objects = 1
        published = f"{digest}|{int(pl.complete_flag)}"
        if self.log is not None and (pl.meta is None or pl.meta.manifest_digest != published):
            self.log.put_manifest(pl.p, digest, len(final), pl.complete_flag, self.clock())
            self.redis.set_manifest_digest(pl.p, published)
        return s3_objects

    def _put_snapshot(self, s3: S3Snapshots, pl: _Plan, final: Mapping[str, str]) -> None:
        """The whole partition to S3: this write's documents, and the kept ones from Redis."""
        documents = {a: v[0] for a, v in pl.encoded.items()}
        kept = [a for a in final if a not in documents]
        documents.update(self.redis.get_items(pl.p, kept))
        s3.put(pl.p, documents, pl.now)

    def _mirrored_feed(
        self,
        p: Partition,
        upserts: Mapping[str, tuple[str, str]],
        removed: list[str],
        written_at: float,
    ) -> list[dict[str, str]]:
        """The history feed entries of a mirrored diff (the active region wrote the history)."""
        if self.history is None or not (upserts or removed):
            return []
        old = self.redis.get_items(p, [*upserts, *removed])
        changes = diff_records(
            p,
            {a: json.loads(doc) for a, doc in old.items()},
            {a: json.loads(v[0]) for a, v in upserts.items()},
            removed,
            written_at,
        )
        return self.history.feed_entries(changes)

    def mirror_partition(
        self,
        p: Partition,
        upserts: Mapping[str, tuple[str, str]],
        removed: list[str],
        count: int,
        complete: bool,
        written_at: float,
        digest: str,
        first_load: bool = False,
    ) -> None:
        """Apply a diff read from the durable copy to Redis (a secondary region's refresh).

        ``upserts`` maps ARN -> (document, content hash) exactly as the active region stored
        them; freshness is stamped with the active region's write time, not ours.
        """
        # As in the active region, a partition's first load is not a change of every item.
        feed = [] if first_load else self._mirrored_feed(p, upserts, removed, written_at)
        self.redis.apply(
            p,
            upserts,
            removed,
            upserts.keys(),
            written_at,
            complete,
            count,
            feed=feed,
            feed_max=self.history.feed_max_entries if self.history else 0,
        )
        self.redis.set_manifest_digest(p, digest)
        if upserts or removed:
            documents = {a: v[0] for a, v in upserts.items()}
            for listener in self.listeners:
                listener.partition_changed(p, documents, removed)
