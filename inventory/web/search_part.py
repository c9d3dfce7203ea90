"""One half of a search index generation: a tantivy index and the SQLite file it is derived from.

SQLite is the source of truth (rows or names, their orders and labels, the change-stream
cursor); the tantivy documents are derived from it. A change is written to SQLite together with
the ARNs whose documents it touches (``pending``); at a commit those documents are rewritten,
SQLite commits, then tantivy: after a crash in between, the next writer finds the pending ARNs
and rewrites their documents, so the two never disagree. The two halves (``search_rows``,
``search_names``) are built at the same time by two processes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import tantivy

from inventory.web.search_index import with_trigrams

WRITER_HEAP = 128_000_000
BATCH = 5_000
Progress = Callable[[int], None]

COMMON_TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pending (arn TEXT PRIMARY KEY);
"""


class Part:
    """A tantivy index ``<path>/<name>/`` and ``<path>/<name>.sqlite``, opened for writing."""

    name = ""
    tables = ""

    def __init__(self, path: Path, create: bool = False, heap: int = WRITER_HEAP) -> None:
        directory = path / self.name
        if create:
            directory.mkdir(parents=True)
            self.index = tantivy.Index(self.schema(), str(directory), reuse=False)
        else:
            self.index = tantivy.Index.open(str(directory))
        with_trigrams(self.index)
        self.writer = self.index.writer(heap, 1)
        self.db = sqlite3.connect(path / f"{self.name}.sqlite", check_same_thread=False)
        # A new generation is thrown away if its build fails: no journal until it is done.
        self.db.execute(f"PRAGMA journal_mode={'OFF' if create else 'WAL'}")
        self.db.execute("PRAGMA cache_size=-65536")
        # WAL without a sync per commit: a commit lost to a power cut is replayed from the
        # cursor, which lives in the same file.
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(COMMON_TABLES + self.tables)
        # A full build's bulk inserts run beside the documents (SQLite lets go of the GIL).
        self._pool = ThreadPoolExecutor(1, f"search-{self.name}") if create else None
        self._writes: list[Future[Any]] = []

    def schema(self) -> tantivy.Schema:
        raise NotImplementedError

    def meta(self, key: str) -> str | None:
        found = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if found is None else str(found[0])

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def bulk(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """Bulk inserts: in the background during a full build, else at once."""
        if self._pool is None:
            self.db.executemany(sql, rows)
        else:
            self._writes.append(self._pool.submit(self.db.executemany, sql, rows))

    def finish_fill(self) -> None:
        """End a full build: wait for its inserts, commit everything, journal from now on."""
        if self._pool is not None:
            for write in self._writes:
                write.result()
            self._pool.shutdown()
            self._pool, self._writes = None, []
        self.db.commit()
        self.db.execute("PRAGMA journal_mode=WAL")
        self.writer.commit()

    def pending(self, arns: Iterable[str]) -> None:
        self.db.executemany("INSERT OR IGNORE INTO pending VALUES (?)", ((a,) for a in arns))

    def select_in(self, sql: str, values: Sequence[Any]) -> list[tuple[Any, ...]]:
        """``sql`` with ``IN ({})`` filled with each chunk of ``values`` (SQLite's bound)."""
        found: list[tuple[Any, ...]] = []
        for start in range(0, len(values), 500):
            chunk = values[start : start + 500]
            found += self.db.execute(sql.format(",".join("?" * len(chunk))), chunk).fetchall()
        return found

    def rewrite(self) -> int:
        """Rewrite the documents of the pending ARNs (not yet committed); how many."""
        arns = [a for (a,) in self.db.execute("SELECT arn FROM pending")]
        for arn in arns:
            self.writer.delete_documents_by_term("arn", arn)
        self.add_documents(arns)
        return len(arns)

    def add_documents(self, arns: list[str]) -> None:
        raise NotImplementedError

    def clear_pending(self) -> None:
        self.db.execute("DELETE FROM pending")
        self.db.commit()

    def count(self) -> int:
        """Documents committed (tantivy counts them without a scan, unlike SQLite)."""
        self.index.reload()
        return int(self.index.searcher().num_docs)

    def close(self) -> None:
        """Let go of the tantivy writer (and its directory lock) and of SQLite."""
        self.db.close()
        del self.writer
