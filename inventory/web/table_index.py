"""An immutable, query-ready snapshot of the policies table (numpy; no row is touched per query).

Facet filters are comparisons on integer code arrays; free text uses a trigram index (every
3-byte sequence of a row's lowercase ARN, name and tags -> the sorted rows containing it), so a
substring query intersects a few posting lists and checks only the candidates; every sortable
column has a precomputed order. A filtered, sorted page is a few vector operations.
Text shorter than three characters matches name prefixes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

FACETS = ("kind", "account_id", "region")
TEXT_SORTS = ("name", "arn", "kind", "account_id", "account_name", "region")
NUMBER_SORTS = ("errors", "last_updated")
SORT_COLUMNS = TEXT_SORTS + NUMBER_SORTS


def searchable(row: Mapping[str, Any]) -> str:
    """The text free-text search looks in: ARN, name and every tag, lowercased, on one line."""
    tags = row.get("tags") or {}
    parts = [row["arn"], row.get("name") or "", *(f"{k}={v}" for k, v in tags.items())]
    return " ".join(parts).replace("\n", " ").lower()


class TableIndex:
    """Rows plus the arrays that answer filters, text, sorting and paging."""

    def __init__(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """``rows`` sorted by ARN: stable sorts then break ties by ARN for free."""
        self.rows = list(rows)
        n = len(self.rows)
        self.size = n
        self.codes: dict[str, np.ndarray] = {}
        self.values: dict[str, dict[str, int]] = {}
        for column in FACETS:
            raw = [str(r.get(column) or "") for r in self.rows]
            mapping = {v: i for i, v in enumerate(sorted(set(raw)))}
            self.values[column] = mapping
            self.codes[column] = np.fromiter((mapping[v] for v in raw), np.int32, n)
        self.errors = np.fromiter((int(r.get("errors") or 0) for r in self.rows), np.int64, n)
        self.orders: dict[str, np.ndarray] = {}
        self.sort_keys: dict[str, np.ndarray] = {}
        for column in TEXT_SORTS:
            keys = np.array([str(r.get(column) or "").lower() for r in self.rows] or [""])[:n]
            self.sort_keys[column] = keys
            self.orders[column] = np.argsort(keys, kind="stable").astype(np.int64)
        for column in NUMBER_SORTS:
            numbers = np.array([float(r.get(column) or 0) for r in self.rows], dtype=np.float64)
            self.orders[column] = np.argsort(numbers, kind="stable").astype(np.int64)
        self.names_sorted = self.sort_keys["name"][self.orders["name"]]
        self.texts = [searchable(r).encode() for r in self.rows]
        self._index_trigrams()

    def _index_trigrams(self) -> None:
        """Posting lists of every trigram, built with vector operations (no Python per trigram)."""
        n = self.size
        lengths = np.fromiter((len(t) for t in self.texts), np.int64, n)
        data = np.frombuffer(b"".join(self.texts), dtype=np.uint8).astype(np.int64)
        row_of = np.repeat(np.arange(n, dtype=np.int64), lengths)
        if data.size < 3:
            self.trigram_keys = np.zeros(0, dtype=np.int64)
            return
        codes = (data[:-2] << 16) | (data[1:-1] << 8) | data[2:]
        same_row = row_of[:-2] == row_of[2:]
        keys = codes[same_row] * max(n, 1) + row_of[:-2][same_row]
        keys.sort()  # a plain sort: np.unique's hashing is far slower on this many keys
        if keys.size:
            keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
        self.trigram_keys = keys  # sorted: trigram-major, then row

    def _posting(self, trigram: bytes) -> np.ndarray:
        n = max(self.size, 1)
        code = (trigram[0] << 16) | (trigram[1] << 8) | trigram[2]
        lo = np.searchsorted(self.trigram_keys, code * n)
        hi = np.searchsorted(self.trigram_keys, (code + 1) * n)
        return self.trigram_keys[lo:hi] - code * n

    def text_mask(self, text: str, within: np.ndarray | None = None) -> np.ndarray:
        """Rows (among ``within``) whose ARN, name or tags contain ``text``, case-insensitive."""
        mask = np.zeros(self.size, dtype=bool)
        needle = text.lower().encode()
        if not needle or not self.size:
            return mask
        if len(needle) < 3:
            # Too short for trigrams: names that start with it (a range of the name order).
            prefix = needle.decode()
            lo = np.searchsorted(self.names_sorted, prefix, side="left")
            hi = np.searchsorted(self.names_sorted, prefix + "\U0010ffff", side="left")
            mask[self.orders["name"][lo:hi]] = True
            return mask
        postings = sorted(
            (self._posting(needle[i : i + 3]) for i in range(len(needle) - 2)), key=len
        )
        candidates = postings[0]
        for posting in postings[1:]:
            if not candidates.size:
                break
            candidates = np.intersect1d(candidates, posting, assume_unique=True)
        if within is not None and candidates.size:
            candidates = candidates[within[candidates]]
        if len(needle) > 3 and candidates.size:
            # Every trigram present does not make the whole needle present: check each.
            texts = self.texts
            candidates = np.array([i for i in candidates.tolist() if needle in texts[i]], np.int64)
        mask[candidates] = True
        return mask

    def select(
        self,
        text: str | None,
        filters: Mapping[str, str | None],
        has_errors: bool | None,
        sort: str,
        descending: bool,
        offset: int,
        limit: int,
    ) -> tuple[int, list[Mapping[str, Any]]]:
        """(total matches, the requested page of rows)."""
        mask = np.ones(self.size, dtype=bool)
        for column, value in filters.items():
            if value is None:
                continue
            code = self.values[column].get(value)
            if code is None:
                return 0, []
            mask &= self.codes[column] == code
        if has_errors is not None:
            mask &= (self.errors > 0) if has_errors else (self.errors == 0)
        if text:
            mask &= self.text_mask(text, within=mask)
        order = self.orders[sort]
        selected = order[mask[order]]
        if descending:
            selected = selected[::-1]
        page = selected[offset : offset + limit]
        return int(selected.size), [self.rows[i] for i in page.tolist()]

    def facets(self) -> dict[str, list[str]]:
        return {column: sorted(v for v in self.values[column] if v) for column in FACETS}
