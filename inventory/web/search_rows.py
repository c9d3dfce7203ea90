"""The policies-table half of a search index generation: rows, their sort orders and labels."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import tantivy
from tantivy import Document

from inventory.web.search_index import (
    FACETS,
    SORT_COLUMNS,
    errors_class,
    rows_schema,
    searchable,
    sort_key,
    trigram_strings,
)
from inventory.web.search_labels import Labels
from inventory.web.search_part import BATCH, Part, Progress

#: A row's labels, one per sort column, stored beside it.
LABELS = struct.Struct(f">{len(SORT_COLUMNS)}Q")
#: (row, its JSON, its labels in SORT_COLUMNS order)
Stored = tuple[dict[str, Any], str, list[int]]


def _sort_arn(key: bytes) -> str:
    """The ARN of a sort key (value, NUL, ARN)."""
    return key.split(b"\0", 1)[1].decode()


def _same(old: Any, new: Any) -> bool:
    """Equal values of one type (1 and True are equal, and sort apart as text)."""
    return type(old) is type(new) and old == new


def row_document(
    row: Mapping[str, Any], labels: Sequence[int], text: str, encoded: str
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
    for column, label in zip(SORT_COLUMNS, labels, strict=True):
        doc.add_unsigned(f"s_{column}", label)
    doc.add_bytes("row", encoded.encode())
    return doc


class RowsPart(Part):
    """``rows/`` and ``rows.sqlite``: a document per row, a label per row and sort column."""

    name = "rows"
    tables = """
CREATE TABLE IF NOT EXISTS rows (
  arn TEXT PRIMARY KEY, row BLOB NOT NULL, labels BLOB NOT NULL) WITHOUT ROWID;
"""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.orders = {column: Labels(self.db, f"o_{column}") for column in SORT_COLUMNS}
        for labels in self.orders.values():
            labels.create()
        self.db.commit()
        #: Rows written since the last commit, at hand for rewriting their documents.
        self.fresh: dict[str, Stored] = {}

    def schema(self) -> tantivy.Schema:
        return rows_schema()

    def fill(self, rows: Sequence[Mapping[str, Any]], progress: Progress) -> None:
        """Write every row of an empty generation (labels spread evenly)."""
        labels = [
            self.orders[c].fill([sort_key(r, c) for r in rows], self.bulk) for c in SORT_COLUMNS
        ]
        for start in range(0, len(rows), BATCH):
            batch = rows[start : start + BATCH]
            own = [[column[i] for column in labels] for i in range(start, start + len(batch))]
            encoded = [json.dumps(r) for r in batch]
            texts = trigram_strings([searchable(r).encode() for r in batch])
            for row, mine, text, line in zip(batch, own, texts, encoded, strict=True):
                self.writer.add_document(row_document(row, mine, text, line))
            self.bulk(
                "INSERT OR REPLACE INTO rows VALUES (?, ?, ?)",
                [
                    (r["arn"], line.encode(), LABELS.pack(*mine))
                    for r, line, mine in zip(batch, encoded, own, strict=True)
                ],
            )
            progress(len(batch))

    def _stored(self, arn: str) -> tuple[dict[str, Any], list[int]] | None:
        found = self.db.execute("SELECT row, labels FROM rows WHERE arn = ?", (arn,)).fetchone()
        return None if found is None else (json.loads(found[0]), list(LABELS.unpack(found[1])))

    def put(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Add or replace rows (their documents are rewritten at the next commit)."""
        for row in rows:
            arn = row["arn"]
            stored = self._stored(arn)
            labels = [0] * len(SORT_COLUMNS)
            for i, (column, order) in enumerate(self.orders.items()):
                if stored is not None and _same(stored[0].get(column), row.get(column)):
                    labels[i] = stored[1][i]  # unchanged: no sort key to compute
                    continue
                key = sort_key(row, column)
                if stored is not None:
                    previous = sort_key(stored[0], column)
                    if previous == key:
                        labels[i] = stored[1][i]
                        continue
                    order.remove(previous)
                labels[i], moved = order.insert(key)
                self._moved(i, moved)
            encoded = json.dumps(row)
            self.db.execute(
                "INSERT OR REPLACE INTO rows VALUES (?, ?, ?)",
                (arn, encoded.encode(), LABELS.pack(*labels)),
            )
            self.fresh[arn] = (dict(row), encoded, labels)
            self.pending([arn])

    def _moved(self, column: int, moved: Mapping[bytes, int]) -> None:
        """Labels a spread changed: into the rows' stored labels, and their documents."""
        for key, label in moved.items():
            arn = _sort_arn(key)
            found = self.db.execute("SELECT labels FROM rows WHERE arn = ?", (arn,)).fetchone()
            if found is None:
                continue
            labels = list(LABELS.unpack(found[0]))
            labels[column] = label
            self.db.execute("UPDATE rows SET labels = ? WHERE arn = ?", (LABELS.pack(*labels), arn))
            if arn in self.fresh:
                self.fresh[arn][2][column] = label
            self.pending([arn])

    def remove(self, arns: Iterable[str]) -> None:
        for arn in arns:
            stored = self._stored(arn)
            if stored is None:
                continue
            for column, labels in self.orders.items():
                labels.remove(sort_key(stored[0], column))
            self.db.execute("DELETE FROM rows WHERE arn = ?", (arn,))
            self.fresh.pop(arn, None)
            self.pending([arn])

    def add_documents(self, arns: list[str]) -> None:
        # Rows written since the last commit are at hand; others (moved, or left pending by a
        # crash) are read back. Removed rows have none.
        items = [self.fresh[a] for a in arns if a in self.fresh]
        others = [a for a in arns if a not in self.fresh]
        sql = "SELECT arn, row, labels FROM rows WHERE arn IN ({})"
        for _, row, labels in self.select_in(sql, others):
            items.append((json.loads(row), row.decode(), list(LABELS.unpack(labels))))
        texts = trigram_strings([searchable(row).encode() for row, _, _ in items])
        for (row, encoded, labels), text in zip(items, texts, strict=True):
            self.writer.add_document(row_document(row, labels, text, encoded))
        self.fresh.clear()
