"""The one writer of a search index generation (see ``search_index`` for what it holds).

SQLite is the generation's source of truth (rows, orders and their labels, the typeahead orders,
managed policies, the change-stream cursor); the tantivy documents are derived from it. A change
is written to SQLite with the ARNs whose documents it touches (``pending_*``), then the documents
of those ARNs are rewritten and both stores commit, SQLite first: after a crash in between, the
next writer finds the pending ARNs and rewrites their documents, so the two never disagree.
"""

from __future__ import annotations

import json
import sqlite3
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import tantivy
from tantivy import Document

from inventory.web.search_index import (
    FACETS,
    SORT_COLUMNS,
    Entry,
    arn_key,
    bucket_of,
    bucket_term,
    bucket_trigram_pairs,
    errors_class,
    name_key,
    name_of,
    names_schema,
    rows_schema,
    searchable,
    sort_key,
    trigram_strings,
    with_trigrams,
)
from inventory.web.search_labels import Labels

WRITER_HEAP = 128_000_000
#: A row's labels, one per sort column, stored beside it.
LABELS = struct.Struct(f">{len(SORT_COLUMNS)}Q")
BATCH = 5_000
Progress = Callable[[int], None]

TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rows (
  arn TEXT PRIMARY KEY, row BLOB NOT NULL, labels BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS arn_order (key BLOB PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bucket_trigrams (
  trigram BLOB NOT NULL, bucket INTEGER NOT NULL, PRIMARY KEY (trigram, bucket)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pending_rows (arn TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS pending_names (arn TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS policies (
  account_id TEXT NOT NULL, arn TEXT NOT NULL, name TEXT COLLATE NOCASE NOT NULL,
  aws_managed INTEGER NOT NULL,
  PRIMARY KEY (account_id, arn));
CREATE INDEX IF NOT EXISTS policies_name ON policies(account_id, name COLLATE NOCASE);
"""


def _sort_arn(key: bytes) -> str:
    """The ARN of a sort key (value, NUL, ARN)."""
    return key.split(b"\0", 1)[1].decode()


def _name_arn(key: bytes) -> str:
    """The ARN of a name key (name, NUL, ARN, NUL, kind, NUL, account)."""
    return key.split(b"\0")[1].decode()


def row_document(
    row: Mapping[str, Any], labels: Mapping[str, int], text: str, encoded: str | None = None
) -> Document:
    doc = Document()
    doc.add_text("arn", row["arn"])
    for facet in FACETS:
        doc.add_text(facet, str(row.get(facet) or ""))
    doc.add_text("errors_class", errors_class(row))
    name = str(row.get("name") or "").lower()
    for head in dict.fromkeys((name[:1], name[:2])):
        if head:
            doc.add_text("head", head)
    doc.add_text("text", text)
    for column in SORT_COLUMNS:
        doc.add_unsigned(f"s_{column}", labels[column])
    doc.add_bytes("row", (encoded or json.dumps(row)).encode())
    return doc


def name_document(entry: Entry, label: int, text: str, key: bytes | None = None) -> Document:
    arn, _, kind, account = entry
    doc = Document()
    doc.add_text("arn", arn)
    doc.add_text("kind", kind)
    doc.add_text("bucket", bucket_term(bucket_of(label)))
    doc.add_text("text", text)
    doc.add_unsigned("by_name", label)
    doc.add_bytes("key", key or name_key(arn, kind, account))
    return doc


class GenerationWriter:
    """Writes one generation directory; only one may exist per directory at a time."""

    def __init__(self, path: Path, create: bool = False, heap: int = WRITER_HEAP) -> None:
        self.path = path
        if create:
            (path / "rows").mkdir(parents=True)
            (path / "names").mkdir()
            self.rows = tantivy.Index(rows_schema(), str(path / "rows"), reuse=False)
            self.names = tantivy.Index(names_schema(), str(path / "names"), reuse=False)
        else:
            self.rows = tantivy.Index.open(str(path / "rows"))
            self.names = tantivy.Index.open(str(path / "names"))
        with_trigrams(self.rows)
        with_trigrams(self.names)
        self.row_writer = self.rows.writer(heap, 1)
        self.name_writer = self.names.writer(heap, 1)
        self.db = sqlite3.connect(path / "index.sqlite", check_same_thread=False)
        # A new generation is thrown away if its build fails: no journal until it is done.
        self.db.execute(f"PRAGMA journal_mode={'OFF' if create else 'WAL'}")
        self.db.execute("PRAGMA cache_size=-65536")
        self.db.executescript(TABLES)
        self._pool = ThreadPoolExecutor(1, "search-build") if create else None
        #: Written since the last commit: rows (row, JSON, labels) and name labels by ARN.
        self._fresh_rows: dict[str, tuple[dict[str, Any], str, list[int]]] = {}
        self._fresh_names: dict[str, int] = {}
        self._writes: list[Future[Any]] = []
        self.orders = {column: Labels(self.db, f"o_{column}") for column in SORT_COLUMNS}
        self.name_order = Labels(self.db, "name_order")
        for labels in (*self.orders.values(), self.name_order):
            labels.create()
        self.db.commit()

    # --- state ---------------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        found = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if found is None else str(found[0])

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def _name_key(self, arn: str) -> bytes | None:
        found = self.db.execute(
            "SELECT key FROM arn_order WHERE key > ? AND key < ?",
            (arn.encode() + b"\0", arn.encode() + b"\x01"),
        ).fetchone()
        return None if found is None else bytes(found[0])

    # --- a full build (an empty generation) ------------------------------------------------------
    def _bulk(self, sql: str, rows: Iterable[tuple]) -> None:
        """Run bulk inserts of a full build in the background (SQLite lets go of the GIL)."""
        if self._pool is None:
            self.db.executemany(sql, rows)
        else:
            self._writes.append(self._pool.submit(self.db.executemany, sql, rows))

    def fill_rows(self, rows: Sequence[Mapping[str, Any]], progress: Progress) -> None:
        """Write every row of an empty generation (labels spread evenly)."""
        labels = {
            c: self.orders[c].fill([sort_key(r, c) for r in rows], self._bulk) for c in SORT_COLUMNS
        }
        for start in range(0, len(rows), BATCH):
            batch = rows[start : start + BATCH]
            texts = trigram_strings([searchable(r).encode() for r in batch])
            encoded = [json.dumps(r) for r in batch]
            for i, (row, text) in enumerate(zip(batch, texts, strict=True), start=start):
                self.row_writer.add_document(
                    row_document(
                        row, {c: labels[c][i] for c in SORT_COLUMNS}, text, encoded[i - start]
                    )
                )
            self._bulk(
                "INSERT OR REPLACE INTO rows VALUES (?, ?, ?)",
                [
                    (r["arn"], e.encode(), LABELS.pack(*(labels[c][i] for c in SORT_COLUMNS)))
                    for i, (r, e) in enumerate(zip(batch, encoded, strict=True), start=start)
                ],
            )
            progress(len(batch))

    def fill_names(self, entries: Sequence[Entry], progress: Progress) -> None:
        """Write every typeahead entry of an empty generation."""
        keys = [name_key(a, k, acc, name) for a, name, k, acc in entries]
        labels = self.name_order.fill(keys, self._bulk)
        self._bulk(
            "INSERT INTO arn_order VALUES (?)",
            sorted((arn_key(a, k, acc),) for a, _, k, acc in entries),
        )
        pairs: set[tuple[bytes, int]] = set()
        for start in range(0, len(entries), BATCH * 4):
            batch = entries[start : start + BATCH * 4]
            texts = trigram_strings([name.lower().encode() for _, name, _, _ in batch])
            for i, (entry, text) in enumerate(zip(batch, texts, strict=True), start=start):
                self.name_writer.add_document(name_document(entry, labels[i], text, keys[i]))
            buckets = [bucket_of(label) for label in labels[start : start + len(batch)]]
            pairs |= bucket_trigram_pairs(texts, buckets)
            progress(len(batch))
        self._bulk("INSERT INTO bucket_trigrams VALUES (?, ?)", sorted(pairs))

    def finish_fill(self) -> None:
        """After a full build: journal from now on (WAL: readers never wait for the writer)."""
        if self._pool is not None:
            for write in self._writes:
                write.result()
            self._pool.shutdown()
            self._pool, self._writes = None, []
        self.db.commit()
        self.db.execute("PRAGMA journal_mode=WAL")

    # --- changes ---------------------------------------------------------------------------------
    def _stored_row(self, arn: str) -> tuple[dict[str, Any], list[int]] | None:
        found = self.db.execute("SELECT row, labels FROM rows WHERE arn = ?", (arn,)).fetchone()
        return None if found is None else (json.loads(found[0]), list(LABELS.unpack(found[1])))

    def put_rows(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Add or replace rows (their documents are rewritten at the next ``commit``)."""
        for row in rows:
            arn = row["arn"]
            stored = self._stored_row(arn)
            labels = [0] * len(SORT_COLUMNS)
            for i, (column, order) in enumerate(self.orders.items()):
                key = sort_key(row, column)
                if stored is not None:
                    previous = sort_key(stored[0], column)
                    if previous == key:
                        labels[i] = stored[1][i]
                        continue
                    order.remove(previous)
                labels[i], moved = order.insert(key)
                self._moved_rows(i, moved)
            encoded = json.dumps(row)
            self.db.execute(
                "INSERT OR REPLACE INTO rows VALUES (?, ?, ?)",
                (arn, encoded.encode(), LABELS.pack(*labels)),
            )
            self._fresh_rows[arn] = (dict(row), encoded, labels)
            self._pending("pending_rows", [arn])

    def _moved_rows(self, column: int, moved: Mapping[bytes, int]) -> None:
        """Labels a spread changed: into the rows' stored labels, and their documents."""
        for key, label in moved.items():
            arn = _sort_arn(key)
            found = self.db.execute("SELECT labels FROM rows WHERE arn = ?", (arn,)).fetchone()
            if found is None:
                continue
            labels = list(LABELS.unpack(found[0]))
            labels[column] = label
            self.db.execute("UPDATE rows SET labels = ? WHERE arn = ?", (LABELS.pack(*labels), arn))
            if arn in self._fresh_rows:
                self._fresh_rows[arn][2][column] = label
            self._pending("pending_rows", [arn])

    def remove_rows(self, arns: Iterable[str]) -> None:
        for arn in arns:
            stored = self._stored_row(arn)
            if stored is None:
                continue
            for column, labels in self.orders.items():
                labels.remove(sort_key(stored[0], column))
            self.db.execute("DELETE FROM rows WHERE arn = ?", (arn,))
            self._fresh_rows.pop(arn, None)
            self._pending("pending_rows", [arn])

    def put_names(self, entries: Iterable[tuple[str, str, str]]) -> None:
        """Add or replace typeahead entries: (arn, kind, account_id)."""
        for arn, kind, account in entries:
            key = arn_key(arn, kind, account)
            old = self._name_key(arn)
            if old == key:
                continue
            if old is not None:
                self.remove_names([arn])
            self.db.execute("INSERT INTO arn_order VALUES (?)", (key,))
            label, moved = self.name_order.insert(name_key(arn, kind, account))
            self._fresh_names[arn] = label
            for moved_key, moved_label in moved.items():
                self._fresh_names[_name_arn(moved_key)] = moved_label
            self._pending("pending_names", [arn, *(_name_arn(k) for k in moved)])

    def remove_names(self, arns: Iterable[str]) -> None:
        for arn in arns:
            old = self._name_key(arn)
            if old is None:
                continue
            _, kind, account = old.decode().split("\0")
            self.db.execute("DELETE FROM arn_order WHERE key = ?", (old,))
            self.name_order.remove(name_key(arn, kind, account))
            self._fresh_names.pop(arn, None)
            self._pending("pending_names", [arn])

    def put_policies(self, policies: Iterable[tuple[str, str, str, int]]) -> None:
        self.db.executemany("INSERT OR REPLACE INTO policies VALUES (?,?,?,?)", policies)

    def remove_policies(self, pairs: Iterable[tuple[str, str]]) -> None:
        self.db.executemany("DELETE FROM policies WHERE account_id=? AND arn=?", pairs)

    def _pending(self, table: str, arns: Iterable[str]) -> None:
        self.db.executemany(f"INSERT OR IGNORE INTO {table} VALUES (?)", ((a,) for a in arns))

    # --- commit ----------------------------------------------------------------------------------
    def _select_in(self, sql: str, values: Sequence[Any]) -> list[tuple[Any, ...]]:
        """``sql`` with ``IN ({})`` filled with each chunk of ``values`` (SQLite's bound)."""
        found: list[tuple[Any, ...]] = []
        for start in range(0, len(values), 500):
            chunk = values[start : start + 500]
            found += self.db.execute(sql.format(",".join("?" * len(chunk))), chunk).fetchall()
        return found

    def _rewrite_pending(self) -> int:
        """Rewrite the documents of every pending ARN; how many were pending."""
        return self._rewrite_rows() + self._rewrite_names()

    def _rewrite_rows(self) -> int:
        arns = [a for (a,) in self.db.execute("SELECT arn FROM pending_rows")]
        for arn in arns:
            self.row_writer.delete_documents_by_term("arn", arn)
        # Rows written since the last commit are at hand; others (moved, or left pending by
        # a crash) are read back.
        items = [self._fresh_rows[a] for a in arns if a in self._fresh_rows]
        others = [a for a in arns if a not in self._fresh_rows]
        for _, row, labels in self._select_in(
            "SELECT arn, row, labels FROM rows WHERE arn IN ({})", others
        ):
            items.append((json.loads(row), row.decode(), list(LABELS.unpack(labels))))
        texts = trigram_strings([searchable(row).encode() for row, _, _ in items])
        for (row, encoded, labels), text in zip(items, texts, strict=True):
            own = dict(zip(SORT_COLUMNS, labels, strict=True))
            self.row_writer.add_document(row_document(row, own, text, encoded))
        self._fresh_rows.clear()
        return len(arns)

    def _rewrite_names(self) -> int:
        names = [a for (a,) in self.db.execute("SELECT arn FROM pending_names")]
        entries = []
        for arn in names:
            self.name_writer.delete_documents_by_term("arn", arn)
            key = self._name_key(arn)
            if key is not None:
                _, kind, account = key.decode().split("\0")
                entries.append((arn, name_of(arn), kind, account))
        keys = [name_key(arn, kind, account) for arn, _, kind, account in entries]
        others = [
            k for (a, _, _, _), k in zip(entries, keys, strict=True) if a not in self._fresh_names
        ]
        sql = "SELECT key, label FROM name_order WHERE key IN ({})"
        read = {bytes(k): v for k, v in self._select_in(sql, others)}
        labels = [
            self._fresh_names.get(e[0], read.get(k, 0)) for e, k in zip(entries, keys, strict=True)
        ]
        texts = trigram_strings([e[1].lower().encode() for e in entries])
        for entry, text, key, label in zip(entries, texts, keys, labels, strict=True):
            self.name_writer.add_document(name_document(entry, label, text, key))
        # Buckets once holding a trigram keep saying so: a superset, which the search checks.
        self.db.executemany(
            "INSERT OR IGNORE INTO bucket_trigrams VALUES (?, ?)",
            sorted(bucket_trigram_pairs(texts, [bucket_of(label) for label in labels])),
        )
        self._fresh_names.clear()
        return len(names)

    def commit(self, cursor: str) -> int:
        """Rewrite pending documents and commit SQLite, then tantivy; how many were rewritten."""
        self.set_meta("cursor", cursor)
        rewritten = self._rewrite_pending()
        self.db.commit()
        self.row_writer.commit()
        self.name_writer.commit()
        self.db.execute("DELETE FROM pending_rows")
        self.db.execute("DELETE FROM pending_names")
        self.db.commit()
        return rewritten

    def counts(self) -> tuple[int, int]:
        """(rows, ARNs) committed (tantivy counts them without a scan, unlike SQLite)."""
        self.rows.reload()
        self.names.reload()
        return self.rows.searcher().num_docs, self.names.searcher().num_docs

    def close(self) -> None:
        """Let go of the tantivy writers (and their directory locks) and of SQLite."""
        self.db.close()
        del self.row_writer, self.name_writer
