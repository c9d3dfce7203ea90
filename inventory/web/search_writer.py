"""The one writer of a search index generation: its two halves, committed together.

Each half (``search_rows``, ``search_names``) keeps the change-stream cursor it has applied; a
commit writes both SQLite files, then both tantivy indexes. After a crash between them the
earlier cursor is the one to go on from (changes apply idempotently: rows and entries by ARN).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from inventory.web.search_names import NamesPart
from inventory.web.search_rows import RowsPart


def stream_id(value: str) -> tuple[int, int]:
    milliseconds, sequence = value.split("-")
    return int(milliseconds), int(sequence)


class GenerationWriter:
    """Writes one generation directory; only one may exist per directory at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = RowsPart(path)
        self.names = NamesPart(path)
        self.parts = (self.rows, self.names)

    def cursor(self) -> str | None:
        """The change-stream position both halves have applied (None: an unfinished build)."""
        cursors = [part.meta("cursor") for part in self.parts]
        if None in cursors:
            return None
        return min((c for c in cursors if c is not None), key=stream_id)

    def put_rows(self, rows: Iterable[Mapping[str, Any]]) -> None:
        self.rows.put(rows)

    def remove_rows(self, arns: Iterable[str]) -> None:
        self.rows.remove(arns)

    def put_names(self, entries: Iterable[tuple[str, str, str]]) -> None:
        self.names.put(entries)

    def remove_names(self, arns: Iterable[str]) -> None:
        self.names.remove(arns)

    def put_policies(self, policies: Iterable[tuple[str, str, str, int]]) -> None:
        self.names.put_policies(policies)

    def remove_policies(self, pairs: Iterable[tuple[str, str]]) -> None:
        self.names.remove_policies(pairs)

    def commit(self, cursor: str) -> int:
        """Rewrite pending documents, commit SQLite, then tantivy; how many were rewritten."""
        rewritten = 0
        for part in self.parts:
            rewritten += part.rewrite()
            part.set_meta("cursor", cursor)
            part.db.commit()
        for part in self.parts:
            part.writer.commit()
            part.clear_pending()
        return rewritten

    def counts(self) -> tuple[int, int]:
        """(rows, ARNs) committed."""
        return self.rows.count(), self.names.count()

    def close(self) -> None:
        for part in self.parts:
            part.close()
