"""Change history: one record per created, updated or deleted item, with a diff of its fields.

Every write path that changes a durable item (``Store.replace_partition`` for sweeps and for
event-driven refreshes) records a :class:`Change`: the item's ARN, kind, account and region,
when we stored it, the change type, a JSON diff of the durable fields (fields that move
without the resource changing, such as a role's last use, are left out; a change of only
those is no change) and, when an event caused it, the CloudTrail actor and event.

Changes are kept in two places: DynamoDB (``<prefix>changes``, per resource, with a TTL of
``history.retention_days``) for a resource's whole history, and a capped Redis stream
(``inv:history``) for the recent feed across every resource.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from pynamodb.attributes import BinaryAttribute, NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.models import Model

from inventory.cache.keys import TABLE_CHANGES, Keys, Partition
from inventory.cache.tables import bind, ensure_table
from inventory.registry import BY_KIND

CREATED, UPDATED, DELETED = "created", "updated", "deleted"
CHANGE_TYPES = (CREATED, UPDATED, DELETED)
# Diffs above this many characters are stored compressed (DynamoDB items are capped at 400 KB).
INLINE_DIFF_LIMIT = 100_000


def ignored_fields(kind: str) -> frozenset[str]:
    """Fields a diff leaves out: volatile ones, and those that move with use, not change."""
    found = BY_KIND.get(kind)
    return found.volatile | found.unversioned if found is not None else frozenset()


def json_diff(old: Any, new: Any, path: str = "") -> list[dict[str, Any]]:
    """RFC 6902-style operations (with the old value) that turn ``old`` into ``new``.

    Objects are compared key by key and lists of equal length item by item; anything else
    that differs is one ``replace``. Paths use JSON Pointer escaping.
    """
    if isinstance(old, dict) and isinstance(new, dict):
        return _dict_diff(old, new, path)
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return _list_diff(old, new, path)
    if type(old) is type(new) and old == new:  # 1 == True in Python, not in JSON
        return []
    return [{"op": "replace", "path": path or "/", "old": old, "new": new}]


def _list_diff(old: list[Any], new: list[Any], path: str) -> list[dict[str, Any]]:
    ops: list[dict[str, Any]] = []
    for i, (a, b) in enumerate(zip(old, new, strict=True)):
        ops.extend(json_diff(a, b, f"{path}/{i}"))
    return ops


def _dict_diff(old: dict[Any, Any], new: dict[Any, Any], path: str) -> list[dict[str, Any]]:
    ops: list[dict[str, Any]] = []
    for key in sorted(old.keys() | new.keys(), key=str):
        sub = f"{path}/{_escape(str(key))}"
        if key not in new:
            ops.append({"op": "remove", "path": sub, "old": old[key]})
        elif key not in old:
            ops.append({"op": "add", "path": sub, "new": new[key]})
        else:
            ops.extend(json_diff(old[key], new[key], sub))
    return ops


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


@dataclass(frozen=True)
class Cause:
    """The CloudTrail event behind an event-driven change."""

    actor: str | None
    event_name: str
    event_time: float
    event_id: str | None = None


@dataclass(frozen=True)
class Change:
    arn: str
    kind: str
    account_id: str
    region: str
    at: float
    change: str
    diff: list[dict[str, Any]]
    actor: str | None = None
    event_name: str | None = None
    event_time: float | None = None
    event_id: str | None = None
    id: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def diff_records(
    p: Partition,
    old: Mapping[str, Mapping[str, Any]],
    new: Mapping[str, Mapping[str, Any]],
    removed: Iterable[str],
    at: float,
    causes: Mapping[str, Cause] | None = None,
) -> list[Change]:
    """Changes for items written (``new``, with their previous versions in ``old``) and removed.

    An item whose only differences are in ignored fields yields no change.
    """
    ignored = ignored_fields(p.kind)
    causes = causes or {}

    def durable(record: Mapping[str, Any] | None) -> dict[str, Any]:
        return {k: v for k, v in (record or {}).items() if k not in ignored}

    changes = []
    for arn, record in new.items():
        previous = old.get(arn)
        diff = json_diff(durable(previous), durable(record))
        if not diff:
            continue
        kind = CREATED if previous is None else UPDATED
        changes.append(_change(p, arn, at, kind, diff, causes.get(arn)))
    for arn in removed:
        previous = old.get(arn)
        diff = json_diff(durable(previous), {}) if previous is not None else []
        changes.append(_change(p, arn, at, DELETED, diff, causes.get(arn)))
    return changes


def _change(
    p: Partition, arn: str, at: float, kind: str, diff: list[dict[str, Any]], cause: Cause | None
) -> Change:
    return Change(
        arn=arn,
        kind=p.kind,
        account_id=p.account_id,
        region=p.region,
        at=at,
        change=kind,
        diff=diff,
        actor=cause.actor if cause else None,
        event_name=cause.event_name if cause else None,
        event_time=cause.event_time if cause else None,
        event_id=cause.event_id if cause else None,
        id=f"{at:.6f}|{kind}",
    )


class ChangeItem(Model):
    class Meta:
        table_name = "unbound"

    resource = UnicodeAttribute(hash_key=True)  # "<kind>|<arn>": ARNs repeat across kinds
    changeId = UnicodeAttribute(range_key=True)  # "<at>|<change type>": sorts by time
    arn = UnicodeAttribute()
    kind = UnicodeAttribute()
    accountId = UnicodeAttribute()
    region = UnicodeAttribute()
    at = NumberAttribute()
    change = UnicodeAttribute()
    diff = UnicodeAttribute(null=True)
    diffZ = BinaryAttribute(null=True, legacy_encoding=False)
    actor = UnicodeAttribute(null=True)
    eventName = UnicodeAttribute(null=True)
    eventTime = NumberAttribute(null=True)
    eventId = UnicodeAttribute(null=True)
    ttl = TTLAttribute(null=True)

    def as_change(self) -> Change:
        raw = self.diff if self.diff is not None else zlib.decompress(self.diffZ or b"").decode()
        return Change(
            arn=self.arn,
            kind=self.kind,
            account_id=self.accountId,
            region=self.region,
            at=float(self.at),
            change=self.change,
            diff=json.loads(raw or "[]"),
            actor=self.actor,
            event_name=self.eventName,
            event_time=None if self.eventTime is None else float(self.eventTime),
            event_id=self.eventId,
            id=self.changeId,
        )


class ChangeHistory:
    """Writes changes (DynamoDB batch, and entries for the Redis feed); reads both."""

    def __init__(
        self,
        table_prefix: str,
        region: str,
        host: str | None,
        client: redis.Redis,
        keys: Keys,
        retention_days: int = 365,
        feed_max_entries: int = 50_000,
    ) -> None:
        self.model = bind(ChangeItem, table_prefix + TABLE_CHANGES, region, host)
        self.client = client
        self.keys = keys
        self.retention = timedelta(days=retention_days)
        self.feed_max_entries = feed_max_entries

    def ensure_table(self) -> bool:
        return ensure_table(self.model, ttl_attribute="ttl")

    def write(self, changes: list[Change]) -> int:
        """Store changes in DynamoDB (BatchWriteItem, 25 per call)."""
        if not changes:
            return 0
        with self.model.batch_write() as batch:
            for c in changes:
                diff = json.dumps(c.diff, sort_keys=True, separators=(",", ":"))
                item = self.model(
                    f"{c.kind}|{c.arn}",
                    c.id,
                    arn=c.arn,
                    kind=c.kind,
                    accountId=c.account_id,
                    region=c.region,
                    at=c.at,
                    change=c.change,
                    actor=c.actor,
                    eventName=c.event_name,
                    eventTime=c.event_time,
                    eventId=c.event_id,
                    ttl=datetime.fromtimestamp(c.at, UTC) + self.retention,
                )
                if len(diff) > INLINE_DIFF_LIMIT:
                    item.diffZ = zlib.compress(diff.encode(), 6)
                else:
                    item.diff = diff
                batch.save(item)
        return len(changes)

    def feed_entries(self, changes: list[Change]) -> list[dict[str, str]]:
        """Stream entries for :meth:`RedisCache.apply` to add in the partition's transaction."""
        return [
            {"change": json.dumps(c.as_dict(), sort_keys=True, separators=(",", ":"))}
            for c in changes
        ]

    def for_resource(self, kind: str, arn: str, limit: int = 100) -> list[Change]:
        """A resource's changes, newest first, within the retention period."""
        query = self.model.query(f"{kind}|{arn}", scan_index_forward=False, limit=limit)
        folded: list[Change] = []
        for change in (item.as_change() for item in query):
            # A crash between the history write and the Redis write repeats a change on retry.
            last = folded[-1] if folded else None
            if last and (last.change, last.diff, last.event_id) == (
                change.change,
                change.diff,
                change.event_id,
            ):
                continue
            folded.append(change)
        return folded

    def feed(
        self,
        account_id: str | None = None,
        kind: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> tuple[list[Change], str | None]:
        """Recent changes, newest first, filtered; returns a cursor for the next (older) page."""
        # One account's stream, else one kind's, else everything: the other filter applies
        # only to entries of the stream read.
        stream = self.keys.history_feed(account_id=account_id, kind=None if account_id else kind)
        high = f"({cursor}" if cursor else ("+" if until is None else str(int(until * 1000)))
        low = "-" if since is None else str(int(since * 1000))
        found: list[Change] = []
        batch = max(limit * 4, 200)

        def wanted(change: Change) -> bool:
            return account_id in (None, change.account_id) and kind in (None, change.kind)

        while True:
            entries = self.client.xrevrange(stream, high, low, count=batch)
            for entry_id, fields in entries:
                change = Change(**json.loads(fields["change"]))
                if wanted(change):
                    found.append(change)
                    if len(found) == limit:
                        return found, entry_id
            if len(entries) < batch:
                return found, None
            high = f"({entries[-1][0]}"

    def feed_span(self) -> tuple[float, float] | None:
        """The times of the oldest and newest entries the feed still holds."""
        first = self.client.xrange(self.keys.history_feed(), count=1)
        last = self.client.xrevrange(self.keys.history_feed(), count=1)
        if not first or not last:
            return None
        return _entry_time(first[0][0]), _entry_time(last[0][0])


def _entry_time(entry_id: str) -> float:
    return int(entry_id.split("-")[0]) / 1000
