"""The typeahead half of a search index generation: every ARN, its name order, managed policies."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import tantivy
from tantivy import Document

from inventory.web.search_index import (
    Entry,
    arn_key,
    bucket_of,
    bucket_term,
    bucket_trigram_codes,
    bucket_trigram_pairs,
    buckets_of,
    name_key,
    name_of,
    names_schema,
    trigram_strings,
)
from inventory.web.search_labels import Labels
from inventory.web.search_part import BATCH, Part, Progress


def _name_arn(key: bytes) -> str:
    """The ARN of a name key (name, NUL, ARN, NUL, kind, NUL, account)."""
    return key.split(b"\0")[1].decode()


def name_document(
    entry: Entry, label: int, text: str, key: bytes, bucket: int | None = None
) -> Document:
    arn, _, kind, _ = entry
    doc = Document()
    doc.add_text("arn", arn)
    doc.add_text("kind", kind)
    doc.add_text("bucket", bucket_term(bucket_of(label) if bucket is None else bucket))
    doc.add_text("text", text)
    doc.add_unsigned("by_name", label)
    doc.add_bytes("key", key)
    return doc


class NamesPart(Part):
    """``names/`` and ``names.sqlite``: the ARN and name orders, name buckets, managed policies."""

    name = "names"
    tables = """
CREATE TABLE IF NOT EXISTS arn_order (key BLOB PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bucket_trigrams (
  trigram BLOB NOT NULL, bucket INTEGER NOT NULL, PRIMARY KEY (trigram, bucket)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS policies (
  account_id TEXT NOT NULL, arn TEXT NOT NULL, name TEXT COLLATE NOCASE NOT NULL,
  aws_managed INTEGER NOT NULL,
  PRIMARY KEY (account_id, arn));
CREATE INDEX IF NOT EXISTS policies_name ON policies(account_id, name COLLATE NOCASE);
"""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.order = Labels(self.db, "name_order")
        self.order.create()
        self.db.commit()
        #: Name labels given since the last commit, by ARN.
        self.fresh: dict[str, int] = {}

    def schema(self) -> tantivy.Schema:
        return names_schema()

    def fill(self, entries: Sequence[Entry], progress: Progress) -> None:
        """Write every typeahead entry of an empty generation."""
        keys = [name_key(a, k, acc, name) for a, name, k, acc in entries]
        labels = self.order.fill(keys, self.bulk)
        by_arn = sorted(arn_key(a, k, acc) for a, _, k, acc in entries)
        self.bulk("INSERT INTO arn_order VALUES (?)", [(key,) for key in by_arn])
        buckets = buckets_of(labels)
        codes = []
        for start in range(0, len(entries), BATCH * 4):
            batch = entries[start : start + BATCH * 4]
            texts = trigram_strings([name.lower().encode() for _, name, _, _ in batch])
            for i, (entry, text) in enumerate(zip(batch, texts, strict=True), start=start):
                self.writer.add_document(name_document(entry, labels[i], text, keys[i], buckets[i]))
            codes.append(bucket_trigram_codes(texts, buckets[start : start + len(batch)]))
            progress(len(batch))
        pairs = bucket_trigram_pairs(np.concatenate(codes)) if codes else []
        self.bulk("INSERT INTO bucket_trigrams VALUES (?, ?)", pairs)

    def _key(self, arn: str) -> bytes | None:
        """The ARN-order key of an ARN (it carries the kind and account)."""
        found = self.db.execute(
            "SELECT key FROM arn_order WHERE key > ? AND key < ?",
            (arn.encode() + b"\0", arn.encode() + b"\x01"),
        ).fetchone()
        return None if found is None else bytes(found[0])

    def put(self, entries: Iterable[tuple[str, str, str]]) -> None:
        """Add or replace typeahead entries: (arn, kind, account_id)."""
        for arn, kind, account in entries:
            key = arn_key(arn, kind, account)
            old = self._key(arn)
            if old == key:
                continue
            if old is not None:
                self.remove([arn])
            self.db.execute("INSERT INTO arn_order VALUES (?)", (key,))
            label, moved = self.order.insert(name_key(arn, kind, account))
            self.fresh[arn] = label
            for moved_key, moved_label in moved.items():
                self.fresh[_name_arn(moved_key)] = moved_label
            self.pending([arn, *(_name_arn(k) for k in moved)])

    def remove(self, arns: Iterable[str]) -> None:
        for arn in arns:
            old = self._key(arn)
            if old is None:
                continue
            _, kind, account = old.decode().split("\0")
            self.db.execute("DELETE FROM arn_order WHERE key = ?", (old,))
            self.order.remove(name_key(arn, kind, account))
            self.fresh.pop(arn, None)
            self.pending([arn])

    def put_policies(self, policies: Iterable[tuple[str, str, str, int]]) -> None:
        self.db.executemany("INSERT OR REPLACE INTO policies VALUES (?,?,?,?)", policies)

    def remove_policies(self, pairs: Iterable[tuple[str, str]]) -> None:
        self.db.executemany("DELETE FROM policies WHERE account_id=? AND arn=?", pairs)

    def add_documents(self, arns: list[str]) -> None:
        """Write the typeahead documents of the ARNs still in the ARN order."""
        entries = self._entries(arns)
        keys = [name_key(arn, kind, account) for arn, _, kind, account in entries]
        labels = self._labels(entries, keys)
        texts = trigram_strings([e[1].lower().encode() for e in entries])
        for entry, text, key, label in zip(entries, texts, keys, labels, strict=True):
            self.writer.add_document(name_document(entry, label, text, key))
        # Buckets once holding a trigram keep saying so: a superset, which the search checks.
        if entries:
            codes = bucket_trigram_codes(texts, buckets_of(labels))
            self.db.executemany(
                "INSERT OR IGNORE INTO bucket_trigrams VALUES (?, ?)", bucket_trigram_pairs(codes)
            )
        self.fresh.clear()

    def _entries(self, arns: list[str]) -> list[Entry]:
        """(arn, name, kind, account) of each ARN in the ARN order; the others are left out."""
        entries = []
        for arn in arns:
            key = self._key(arn)
            if key is not None:
                _, kind, account = key.decode().split("\0")
                entries.append((arn, name_of(arn), kind, account))
        return entries

    def _labels(self, entries: list[Entry], keys: list[bytes]) -> list[int]:
        """The name label of each entry: given since the last commit, else read from the order."""
        unknown = [k for e, k in zip(entries, keys, strict=True) if e[0] not in self.fresh]
        sql = "SELECT key, label FROM name_order WHERE key IN ({})"
        read = {bytes(k): v for k, v in self.select_in(sql, unknown)}
        return [self.fresh.get(e[0], read.get(k, 0)) for e, k in zip(entries, keys, strict=True)]
