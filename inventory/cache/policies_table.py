"""The policies table: one row per resource across kinds and accounts, kept in Redis.

Rows live in one hash, with one set of ARNs per account (a renamed account's rows are found
without reading every row). Rows follow partition changes as they happen
(``partition_changed``), and every change is appended to a stream: the web tier's search index
(``inventory.web.search_indexer``) follows it and does the filtering, sorting and paging. The
scheduled task rebuilds and verifies the whole table.

Releases before 2026-12 also kept facet sets by kind, region and errors and six sorted sets
for the web tier's former index; nothing reads them now, and the rebuild deletes them
(``OBSOLETE``): they took 72% of a row's memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import redis

from inventory.cache.keys import (
    ACCOUNT,
    ALL_ACCOUNTS,
    CLOUDTRAIL_ERRORS,
    FINDING,
    GLOBAL,
    TYPEAHEAD_POLICY_KINDS,
    Keys,
    Partition,
)
from inventory.registry import BY_KIND, TABLE_KINDS

#: Entries kept in the change stream; a reader further behind than this reloads in full.
STREAM_LENGTH = 200_000
#: The former index's keys (sorted sets ``s:*``, facet sets ``f:*``) under the table's
#: prefix, but for the account sets, which stay: deleted by ``forget_obsolete``.
OBSOLETE = "[sf]:*"
OWNER_TAGS = ("owner", "Owner", "team", "Team")
TEMPLATE_TAGS = ("template", "aws:cloudformation:stack-name")


def is_row(kind: str, record: Mapping[str, Any]) -> bool:
    """Whether a cached record of the kind is a policies-table row."""
    if kind not in TABLE_KINDS:
        return False
    only = BY_KIND[kind].table_row
    return only is None or only(record)


def build_row(
    record: Mapping[str, Any],
    kind: str,
    account_name: str | None,
    errors: int,
    last_updated: float,
    findings: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A policies-table row from a cached record (and its findings record, if it has one)."""
    tags = record.get("tags") or {}
    row = {
        "arn": record["arn"],
        "name": record.get("name") or record["arn"].rsplit("/", 1)[-1],
        "kind": kind,
        "account_id": record.get("account_id"),
        "account_name": account_name,
        "region": record.get("region") or GLOBAL,
        "tags": tags,
        "errors": errors,
        "owner": next((tags[t] for t in OWNER_TAGS if tags.get(t)), None),
        "template": next((tags[t] for t in TEMPLATE_TAGS if tags.get(t)), None),
        "last_updated": last_updated,
        "findings": int(findings["count"]) if findings else 0,
        "severity": findings["worst"] if findings else None,
    }
    return row | _link(kind, record)


def _link(kind: str, record: Mapping[str, Any]) -> dict[str, str]:
    """``link`` for kinds with a page elsewhere (other kinds' rows stay as they were)."""
    link = BY_KIND[kind].link if kind in BY_KIND else None
    url = link(record) if link is not None else None
    return {"link": url} if url else {}


class PoliciesTable:
    """Maintains the rows and their indexes; also a :class:`PartitionListener`."""

    def __init__(self, client: redis.Redis, keys: Keys, clock: Any = None) -> None:
        import time

        self.client = client
        self.keys = keys
        self.clock = clock or time.time
        self.prefix = f"{keys.prefix}pt:"

    # --- key names -------------------------------------------------------------------------
    def rows_key(self) -> str:
        return f"{self.prefix}rows"

    def account_key(self, account_id: object) -> str:
        """The set of an account's rows (ARNs)."""
        return f"{self.prefix}f:account_id:{account_id}"

    # --- writes -----------------------------------------------------------------------------
    def upsert(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Write rows and their accounts' sets: one command per key, not one per row."""
        rows = list(rows)
        if not rows:
            return 0
        accounts = {r["arn"]: r["account_id"] for r in rows}
        old = self._rows(list(accounts))
        # Rows whose account changed leave their former account's set.
        moved = [r for a, r in old.items() if r["account_id"] != accounts[a]]
        pipe = self.client.pipeline(transaction=True)
        for former, arns in _by_account(moved).items():
            pipe.srem(self.account_key(former), *arns)
        pipe.hset(self.rows_key(), mapping={r["arn"]: json.dumps(r, sort_keys=True) for r in rows})
        for account, arns in _by_account(rows).items():
            pipe.sadd(self.account_key(account), *arns)
        pipe.execute()
        return len(rows)

    def remove(self, arns: Iterable[str]) -> int:
        old = self._rows(list(arns))
        if not old:
            return 0
        pipe = self.client.pipeline(transaction=True)
        for account, members in _by_account(old.values()).items():
            pipe.srem(self.account_key(account), *members)
        pipe.hdel(self.rows_key(), *old)
        pipe.execute()
        return len(old)

    def forget_obsolete(self) -> int:
        """Delete the former index's keys (see the module's docstring); how many there were."""
        keep = self.account_key("")
        matching = self.client.scan_iter(match=f"{self.prefix}{OBSOLETE}", count=1_000)
        found = [key for key in matching if not key.startswith(keep)]  # one pass of SCAN
        if found:
            self.client.unlink(*found)
        return len(found)

    def _rows(self, arns: list[str]) -> dict[str, dict[str, Any]]:
        if not arns:
            return {}
        values = self.client.hmget(self.rows_key(), arns)
        return {a: json.loads(v) for a, v in zip(arns, values, strict=True) if v is not None}

    # --- reads ------------------------------------------------------------------------------
    def rows(self) -> dict[str, dict[str, Any]]:
        return {a: json.loads(v) for a, v in self.client.hgetall(self.rows_key()).items()}

    def count(self) -> int:
        return int(self.client.hlen(self.rows_key()))

    # --- incremental maintenance ------------------------------------------------------------
    def account_name(self, account_id: str) -> str | None:
        raw = self.client.hget(
            self.keys.items(Partition(ACCOUNT, ALL_ACCOUNTS, GLOBAL)),
            f"arn:aws:iam::{account_id}:root",
        )
        return json.loads(raw)["name"] if raw else None

    def error_counts(self, account_id: str, arns: list[str]) -> dict[str, int]:
        if not arns:
            return {}
        values = self.client.hmget(self.keys.items(Partition(CLOUDTRAIL_ERRORS, account_id)), arns)
        return {a: json.loads(v)["count"] for a, v in zip(arns, values, strict=True) if v}

    def finding_summaries(self, account_id: str, arns: list[str]) -> dict[str, dict[str, Any]]:
        """Findings records by ARN (count and worst severity are what a row shows)."""
        if not arns:
            return {}
        values = self.client.hmget(self.keys.items(Partition(FINDING, account_id)), arns)
        return {a: json.loads(v) for a, v in zip(arns, values, strict=True) if v}

    def partition_changed(
        self, p: Partition, upserts: Mapping[str, str], removed: list[str]
    ) -> None:
        """Update rows for a changed partition, then append the change to the stream."""
        rows: list[dict[str, Any]] = []
        rows_removed: list[str] = []
        if p.kind == CLOUDTRAIL_ERRORS:
            rows = self._errors_changed(upserts, removed)
        elif p.kind == FINDING:
            rows = self._findings_changed(upserts, removed)
        elif p.kind == ACCOUNT:
            rows = self._accounts_changed(upserts)
        elif p.kind in TABLE_KINDS:
            rows = self._resources_changed(p, upserts)
            # Only this kind's rows: another kind may have a row of the same ARN (a bucket
            # Config also records).
            rows_removed = [a for a, r in self._rows(list(removed)).items() if r["kind"] == p.kind]
            self.remove(rows_removed)
        self.publish(p, upserts, removed, rows, rows_removed)

    def _resources_changed(self, p: Partition, upserts: Mapping[str, str]) -> list[dict[str, Any]]:
        now = self.clock()
        name = self.account_name(p.account_id)
        errors = self.error_counts(p.account_id, list(upserts))
        findings = self.finding_summaries(p.account_id, list(upserts))
        records = {arn: json.loads(doc) for arn, doc in upserts.items()}
        rows = [
            build_row(record, p.kind, name, errors.get(arn, 0), now, findings.get(arn))
            for arn, record in records.items()
            if is_row(p.kind, record)
        ]
        self.upsert(rows)
        return rows

    def _accounts_changed(self, upserts: Mapping[str, str]) -> list[dict[str, Any]]:
        """Rows of the accounts whose mapping entry changed carry its name (rows written before
        the mapping was cached have none until then)."""
        rows: list[dict[str, Any]] = []
        for document in upserts.values():
            account = json.loads(document)
            if "id" not in account:  # not a mapping entry: no rows to name
                continue
            arns = list(self.client.smembers(self.account_key(account["id"])))
            rows += [
                row | {"account_name": account.get("name")}
                for row in self._rows(arns).values()
                if row.get("account_name") != account.get("name")
            ]
        self.upsert(rows)
        return rows

    def publish(
        self,
        p: Partition,
        upserts: Mapping[str, str],
        removed: list[str],
        rows: list[dict[str, Any]],
        rows_removed: list[str],
    ) -> None:
        """Append one change to the stream the web tier's search index follows."""
        fields = {
            "partition": p.id,
            "added": json.dumps(list(upserts)),
            "removed": json.dumps(removed),
            "rows": json.dumps(rows),
            "rows_removed": json.dumps(rows_removed),
        }
        if p.kind in TYPEAHEAD_POLICY_KINDS:
            policies = {}
            for arn, document in upserts.items():
                record = json.loads(document)
                policies[arn] = [record.get("name") or arn, bool(record.get("aws_managed"))]
            fields["policies"] = json.dumps(policies)
        self.client.xadd(self.keys.changes(), fields, maxlen=STREAM_LENGTH, approximate=True)

    def _errors_changed(
        self, upserts: Mapping[str, str], removed: list[str]
    ) -> list[dict[str, Any]]:
        counts = {arn: json.loads(doc)["count"] for arn, doc in upserts.items()}
        counts.update(dict.fromkeys(removed, 0))
        existing = self._rows(list(counts))
        rows = [row | {"errors": counts[arn]} for arn, row in existing.items()]
        self.upsert(rows)
        return rows

    def _findings_changed(
        self, upserts: Mapping[str, str], removed: list[str]
    ) -> list[dict[str, Any]]:
        found = {arn: json.loads(doc) for arn, doc in upserts.items()}
        existing = self._rows([*found, *removed])
        rows = [
            row
            | {
                "findings": int(found[arn]["count"]) if arn in found else 0,
                "severity": found[arn]["worst"] if arn in found else None,
            }
            for arn, row in existing.items()
        ]
        self.upsert(rows)
        return rows


def _by_account(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """The rows' ARNs by account."""
    found: dict[str, list[str]] = {}
    for row in rows:
        found.setdefault(str(row["account_id"]), []).append(row["arn"])
    return found
