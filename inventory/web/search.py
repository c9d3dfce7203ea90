"""The web tier's search index: a local read model of the policies table and of every ARN.

Each web process keeps its own copy, loaded from Redis at start and kept current by the change
stream that every partition write appends to (``Keys.changes``). Queries touch indexes only
(see ``table_index``: facet codes, presorted orders, positional trigram indexes), so a filtered,
sorted page over 200,000 rows and a typeahead over a million ARNs stay fast. Changes are applied
to the source dicts at once and the snapshots are rebuilt in the background, at most every
``rebuild_seconds``. Managed policies per account (small) live in an in-memory SQLite table.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis

from inventory.cache.keys import MANAGED_POLICY, Keys, Partition
from inventory.cache.redis_cache import RedisCache
from inventory.web.table_index import SORT_COLUMNS, NameIndex, TableIndex

__all__ = ["MAX_LIMIT", "SORT_COLUMNS", "PolicySearch", "Query"]

log = logging.getLogger(__name__)

MAX_LIMIT = 500
#: Kinds offered by the resource typeahead (every cached ARN but derived views).
TYPEAHEAD_SKIP = {
    "account",
    "cloudtrail_errors",
    "role_access",
    "principal_access",
    "policy_request",
    "iam_role_limit",
    "managed_policy",
    "finding",
}

SCHEMA = """
CREATE TABLE policies (
  account_id TEXT NOT NULL, arn TEXT NOT NULL, name TEXT COLLATE NOCASE NOT NULL,
  aws_managed INTEGER NOT NULL,
  PRIMARY KEY (account_id, arn));
CREATE INDEX policies_name ON policies(account_id, name COLLATE NOCASE);
"""


@dataclass(frozen=True)
class Query:
    """A policies-table query, validated by the handler."""

    text: str | None = None
    account: str | None = None
    kind: str | None = None
    region: str | None = None
    has_errors: bool | None = None
    #: The worst finding's severity (critical, high, medium, low).
    severity: str | None = None
    sort: str = "name"
    descending: bool = False
    offset: int = 0
    limit: int = 50


def _like_escape(text: str) -> str:
    """Escape LIKE wildcards with '!' (the ESCAPE character used in every query)."""
    return text.replace("!", "!!").replace("%", "!%").replace("_", "!_")


def _name_of(arn: str) -> str:
    tail = arn.rsplit(":", 1)[-1]
    return tail.rsplit("/", 1)[-1] or arn


class PolicySearch:
    """Local, indexed copy of the policies table and of every cached ARN."""

    def __init__(self, client: redis.Redis, keys: Keys, rebuild_seconds: float = 0.0) -> None:
        self.client = client
        self.keys = keys
        self.cache = RedisCache(client, keys)
        self.db = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        self.db.executescript(SCHEMA)
        self.lock = threading.RLock()
        self.cursor: str | None = None
        self.loaded = False
        #: Rows by ARN (the source the table snapshot is built from) and the snapshot itself.
        self.rows: dict[str, dict[str, Any]] = {}
        self.table = TableIndex([])
        self.rebuild_seconds = rebuild_seconds
        #: Every cached ARN: (name, kind, account_id) by ARN, and the typeahead snapshot.
        self.arn_entries: dict[str, tuple[str, str, str]] = {}
        self.names = NameIndex([])
        self._names_dirty = False
        self._names_built_at = 0.0
        self._names_building: threading.Thread | None = None
        self._dirty = False
        self._built_at = 0.0
        self._building: threading.Thread | None = None

    def _rebuild_names(self, force: bool = False) -> None:
        """Like _rebuild, for the (much larger) ARN typeahead index: at most 6x less often."""
        now = time.monotonic()
        interval = self.rebuild_seconds * 6
        if not self._names_dirty or (not force and now - self._names_built_at < interval):
            return
        if self._names_building is not None and self._names_building.is_alive():
            return
        entries = [(arn, *rest) for arn, rest in self.arn_entries.items()]
        self._names_dirty = False
        self._names_built_at = now
        if force or interval <= 0:
            self.names = NameIndex(entries)
            return

        def build() -> None:
            self.names = NameIndex(entries)

        self._names_building = threading.Thread(target=build, name="names-rebuild", daemon=True)
        self._names_building.start()

    def _rebuild(self, force: bool = False) -> None:
        """Swap in a fresh snapshot when rows changed, at most every ``rebuild_seconds``.

        With a rebuild interval the snapshot is built in a background thread and swapped in
        when ready, so queries never wait for it; without one (tests) it is built at once.
        """
        now = time.monotonic()
        if not self._dirty or (not force and now - self._built_at < self.rebuild_seconds):
            return
        if self._building is not None and self._building.is_alive():
            return
        rows = sorted(self.rows.values(), key=lambda r: r["arn"])
        self._dirty = False
        self._built_at = now
        if force or self.rebuild_seconds <= 0:
            self.table = TableIndex(rows)
            return

        def build() -> None:
            self.table = TableIndex(rows)

        self._building = threading.Thread(target=build, name="search-rebuild", daemon=True)
        self._building.start()

    # --- loading and following changes ---------------------------------------------------
    def load(self) -> None:
        """(Re)build from Redis: remember the stream position first, so nothing is missed."""
        last = self.client.xrevrange(self.keys.changes(), count=1)
        cursor = last[0][0] if last else "0-0"
        rows = [json.loads(v) for v in self.client.hgetall(f"{self.keys.prefix}pt:rows").values()]
        arns: list[tuple[str, str, str, str]] = []
        policies: list[tuple[str, str, str, int]] = []
        for p in self.cache.partitions():
            if p.kind == MANAGED_POLICY:
                for record in self.cache.items(p).values():
                    policies.append(
                        (
                            p.account_id,
                            record["arn"],
                            record["name"],
                            int(bool(record["aws_managed"])),
                        )
                    )
            elif p.kind not in TYPEAHEAD_SKIP:
                for arn in self.client.hkeys(self.keys.items(p)):
                    arns.append((arn, _name_of(arn), p.kind, p.account_id))
        with self.lock:
            self.db.execute("BEGIN")
            self.db.execute("DELETE FROM policies")
            self.db.executemany("INSERT OR REPLACE INTO policies VALUES (?,?,?,?)", policies)
            self.db.execute("COMMIT")
            self.rows = {r["arn"]: r for r in rows}
            self._dirty = True
            self._rebuild(force=True)
            self.arn_entries = {arn: (name, kind, account) for arn, name, kind, account in arns}
            self._names_dirty = True
            self._rebuild_names(force=True)
            self.cursor = cursor
            self.loaded = True

    def sync_safely(self) -> None:
        """sync(), logging instead of raising: the index stays as it was while Redis is away."""
        try:
            self.sync()
        except redis.RedisError as exc:
            log.warning("search index not updated: %s", exc)

    def sync(self, block_ms: int | None = None) -> int:
        """Apply changes appended since the last sync; a gap in the stream means a full reload."""
        if not self.loaded:
            self.load()
            return 0
        entries = self.client.xread(
            {self.keys.changes(): self.cursor}, count=10_000, block=block_ms
        )
        if not entries:
            return 0
        events = entries[0][1]
        first = self.client.xrange(self.keys.changes(), count=1)
        if first and self._before(self.cursor, first[0][0]) and self.cursor != "0-0":
            log.warning("change stream trimmed past our position; reloading the search index")
            self.load()
            return len(events)
        with self.lock:
            self.db.execute("BEGIN")
            for _id, fields in events:
                self._apply(fields)
            self.db.execute("COMMIT")
            self.cursor = events[-1][0]
            self._rebuild()
            self._rebuild_names()
        return len(events)

    @staticmethod
    def _before(a: str | None, b: str) -> bool:
        if a is None:
            return True
        pa, pb = (tuple(int(x) for x in v.split("-")) for v in (a, b))
        return pa < pb

    def _apply(self, fields: Mapping[str, str]) -> None:
        """One change event (see PoliciesTable.partition_changed for its fields)."""
        p = Partition.parse(fields["partition"])
        added = json.loads(fields.get("added", "[]"))
        removed = json.loads(fields.get("removed", "[]"))
        if p.kind == MANAGED_POLICY:
            policies = json.loads(fields.get("policies", "{}"))
            self.db.executemany(
                "INSERT OR REPLACE INTO policies VALUES (?,?,?,?)",
                [(p.account_id, a, n, int(m)) for a, (n, m) in policies.items()],
            )
            self.db.executemany(
                "DELETE FROM policies WHERE account_id=? AND arn=?",
                [(p.account_id, a) for a in removed],
            )
        elif p.kind not in TYPEAHEAD_SKIP:
            for arn in removed:
                self.arn_entries.pop(arn, None)
            for arn in added:
                self.arn_entries[arn] = (_name_of(arn), p.kind, p.account_id)
            self._names_dirty = bool(self._names_dirty or removed or added)
        for arn in json.loads(fields.get("rows_removed", "[]")):
            self.rows.pop(arn, None)
            self._dirty = True
        for row in json.loads(fields.get("rows", "[]")):
            self.rows[row["arn"]] = row
            self._dirty = True

    # --- queries -----------------------------------------------------------------------------
    def query(self, q: Query) -> dict[str, Any]:
        """A page of rows matching the filters, sorted, with the total count."""
        self._rebuild()
        table = self.table
        total, rows = table.select(
            q.text,
            {"kind": q.kind, "account_id": q.account, "region": q.region, "severity": q.severity},
            q.has_errors,
            q.sort,
            q.descending,
            q.offset,
            q.limit,
        )
        return {"total": total, "rows": rows}

    def facets(self) -> dict[str, list[str]]:
        """Distinct accounts, kinds and regions, for the filter menus."""
        self._rebuild()
        return self.table.facets()

    def typeahead_resources(self, text: str, kind: str | None, limit: int) -> list[dict[str, Any]]:
        """ARNs whose name starts with, then contains, ``text``; a typed ARN is a prefix."""
        self._rebuild_names()
        names = self.names
        if text.startswith("arn:"):
            found = names.arn_prefix(text, kind, limit)
        else:
            found = names.search(text, kind, limit)
        return [{"arn": a, "name": n, "kind": k, "account_id": acc} for a, n, k, acc in found]

    def typeahead_managed_policies(
        self, account: str, text: str, limit: int
    ) -> list[dict[str, Any]]:
        """Managed policies attached in an account whose name starts with, then contains, text."""
        like = _like_escape(text.lower())
        with self.lock:
            rows = self.db.execute(
                "SELECT arn, name, aws_managed FROM policies WHERE account_id = ? AND "
                "name LIKE ? ESCAPE '!' ORDER BY (name LIKE ? ESCAPE '!') DESC, "
                "name COLLATE NOCASE LIMIT ?",
                (account, f"%{like}%", f"{like}%", limit),
            ).fetchall()
        return [{"arn": a, "name": n, "aws_managed": bool(m)} for a, n, m in rows]
