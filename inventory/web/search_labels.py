"""Order-preserving integer labels for byte-string keys, kept in a SQLite table.

tantivy orders hits by an integer fast field several times faster than by a string one, and the
sort orders are strings (a value, then the ARN). So each key gets a label that sorts like the
key: evenly spaced at a full build (the middle half of the space, leaving room at both ends),
the midpoint of its neighbours when inserted later (a bounded step at either end, where inserts
come in runs: new timestamps, new names), and when neighbours leave no room, a window of keys
around the insert is spread out again; the caller rewrites their documents.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

SPACE = 1 << 62
#: Largest step from the last (or first) label for a key past either end.
END_STEP = 1 << 32
#: Spread a window only if its keys end up at least this far apart.
MIN_GAP = 1 << 12
Bulk = Callable[[str, Sequence[tuple[Any, ...]]], object]


class Labels:
    """Integer labels in key order for the keys of one SQLite table."""

    def __init__(self, db: sqlite3.Connection, table: str) -> None:
        self.db = db
        self.table = table

    def create(self) -> None:
        self.db.execute(
            f"CREATE TABLE IF NOT EXISTS {self.table} "
            "(key BLOB PRIMARY KEY, label INTEGER NOT NULL) WITHOUT ROWID"
        )

    def fill(self, keys: Sequence[bytes], bulk: Bulk | None = None) -> list[int]:
        """Label every key of an empty table; the labels, in the order the keys were given.

        ``bulk(sql, rows)`` runs the inserts (the writer may run them in the background).
        """
        order = sorted(range(len(keys)), key=keys.__getitem__)
        step = (SPACE // 2) // (len(keys) + 1)
        labels = [0] * len(keys)
        for rank, i in enumerate(order, start=1):
            labels[i] = SPACE // 4 + rank * step
        (bulk or self.db.executemany)(
            f"INSERT INTO {self.table} VALUES (?, ?)", [(keys[i], labels[i]) for i in order]
        )
        return labels

    def get(self, key: bytes) -> int | None:
        found = self.db.execute(f"SELECT label FROM {self.table} WHERE key = ?", (key,)).fetchone()
        return None if found is None else int(found[0])

    def remove(self, key: bytes) -> None:
        self.db.execute(f"DELETE FROM {self.table} WHERE key = ?", (key,))

    def _neighbours(self, key: bytes, count: int) -> tuple[list, list]:
        before = self.db.execute(
            f"SELECT key, label FROM {self.table} WHERE key < ? ORDER BY key DESC LIMIT ?",
            (key, count),
        ).fetchall()
        after = self.db.execute(
            f"SELECT key, label FROM {self.table} WHERE key > ? ORDER BY key LIMIT ?",
            (key, count),
        ).fetchall()
        return before, after

    def insert(self, key: bytes) -> tuple[int, dict[bytes, int]]:
        """Label a new key: (its label, the new labels of keys moved to make room)."""
        before, after = self._neighbours(key, 1)
        low = before[0][1] if before else 0
        high = after[0][1] if after else SPACE
        if high - low >= 2:
            if not after:
                label = low + min((high - low) // 2, END_STEP)
            elif not before:
                label = high - min((high - low) // 2, END_STEP)
            else:
                label = low + (high - low) // 2
            self.db.execute(f"INSERT INTO {self.table} VALUES (?, ?)", (key, label))
            return label, {}
        return self._spread(key)

    def _spread(self, key: bytes) -> tuple[int, dict[bytes, int]]:
        """Spread the labels of a window around ``key``, widening it until there is room."""
        width = 16
        while True:
            low, high, window, whole = self._window(key, width)
            step = (high - low) // (len(window) + 1)
            if step >= MIN_GAP or whole:
                break
            width *= 4
        labels = {k: low + i * step for i, k in enumerate(window, start=1)}
        self.db.executemany(
            f"UPDATE {self.table} SET label = ? WHERE key = ?",
            ((label, k) for k, label in labels.items() if k != key),
        )
        label = labels.pop(key)
        self.db.execute(f"INSERT INTO {self.table} VALUES (?, ?)", (key, label))
        return label, labels

    def _window(self, key: bytes, width: int) -> tuple[int, int, list[bytes], bool]:
        """Up to ``width`` keys either side of ``key`` with it, in order; the labels just outside
        them (or the ends of the space), and whether the window holds the whole table."""
        before, after = self._neighbours(key, width + 1)
        low = before[width][1] if len(before) > width else 0
        high = after[width][1] if len(after) > width else SPACE
        window = [k for k, _ in reversed(before[:width])]
        window += [key, *(k for k, _ in after[:width])]
        return low, high, window, len(before) <= width and len(after) <= width
