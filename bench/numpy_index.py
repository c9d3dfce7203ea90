"""The web tier's former search index, kept as the benchmark's baseline (``bench web``).

Until issue 18 every web process built this in memory from Redis (about 1.5 GB and 23 s at
200,000 rows and 1,000,000 ARNs); ``bench web`` runs the same queries on it and on the index on
disk and checks that both answer the same. ``NumpySearch`` loads it as the old PolicySearch did.

An immutable, query-ready snapshot of the policies table (numpy; no row is touched per query).

Facet filters are comparisons on integer code arrays; free text uses a trigram index (every
3-byte sequence of a row's lowercase ARN, name and tags -> the sorted rows containing it), so a
substring query intersects a few posting lists and checks only the candidates; every sortable
column has a precomputed order. A filtered, sorted page is a few vector operations.
Text shorter than three characters matches name prefixes.
"""

from __future__ import annotations

import bisect
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
        self.text = _PositionIndex([searchable(r).encode() for r in self.rows])

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
            return mask if within is None else mask & within
        mask[self.text.rows_containing(needle)] = True
        return mask if within is None else mask & within

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


class NameIndex:
    """Every cached ARN by name: prefix matches by binary search, substrings by trigrams."""

    #: How many entries a filtered prefix scan may look at before it stops.
    SCAN_LIMIT = 20_000

    def __init__(self, entries: Sequence[tuple[str, str, str, str]]) -> None:
        """``entries``: (arn, name, kind, account_id)."""
        self.entries = sorted(entries, key=lambda e: (e[1].lower(), e[0]))
        self.lower = [e[1].lower() for e in self.entries]
        kinds = sorted({e[2] for e in self.entries})
        self.kind_codes = {k: i for i, k in enumerate(kinds)}
        self.kinds = np.fromiter(
            (self.kind_codes[e[2]] for e in self.entries), np.int32, len(self.entries)
        )
        encoded = [name.encode() for name in self.lower]
        self.text = _PositionIndex(encoded)
        self.arns = sorted(range(len(self.entries)), key=lambda i: self.entries[i][0])
        self.arns_sorted = [self.entries[i][0] for i in self.arns]

    def arn_prefix(
        self, prefix: str, kind: str | None, limit: int
    ) -> list[tuple[str, str, str, str]]:
        """Entries whose ARN starts with ``prefix`` (case-sensitive, as ARNs are), in ARN order."""
        found = []
        start = bisect.bisect_left(self.arns_sorted, prefix)
        for position in range(start, min(len(self.arns), start + self.SCAN_LIMIT)):
            if not self.arns_sorted[position].startswith(prefix) or len(found) >= limit:
                break
            entry = self.entries[self.arns[position]]
            if kind is None or entry[2] == kind:
                found.append(entry)
        return found

    def _allowed(self, index: int, kind: str | None) -> bool:
        return kind is None or self.entries[index][2] == kind

    def search(self, text: str, kind: str | None, limit: int) -> list[tuple[str, str, str, str]]:
        """Names starting with ``text`` first (in name order), then names containing it."""
        needle = text.lower()
        found: list[int] = []
        start = bisect.bisect_left(self.lower, needle)
        for i in range(start, min(len(self.lower), start + self.SCAN_LIMIT)):
            if not self.lower[i].startswith(needle) or len(found) >= limit:
                break
            if self._allowed(i, kind):
                found.append(i)
        if len(found) < limit and len(needle) >= 3:
            allowed = None
            if kind is not None:
                code = self.kind_codes.get(kind, -1)
                allowed = self.kinds == code
            rows = self.text.rows_containing(needle.encode(), limit + len(found), allowed)
            seen = set(found)
            for i in rows.tolist():
                if len(found) >= limit:
                    break
                if i not in seen:
                    found.append(i)
        return [self.entries[i] for i in found]


class _PositionIndex:
    """Positional trigram index over byte strings (one per row), built with vector operations.

    ``keys`` holds ``code * span + position`` sorted: for each trigram, the sorted byte
    positions where it occurs in the concatenated texts. Trigrams that would cross from one
    row into the next are left out, so no match spans two rows. A needle matches where its
    rarest trigram occurs and every other trigram follows at its offset: an exact substring.
    """

    def __init__(self, texts: Sequence[bytes]) -> None:
        n = len(texts)
        lengths = np.fromiter((len(t) for t in texts), np.int64, n)
        self.starts = np.zeros(n, dtype=np.int64)
        if n:
            self.starts[1:] = np.cumsum(lengths)[:-1]
        data = np.frombuffer(b"".join(texts), dtype=np.uint8).astype(np.int64)
        self.span = max(int(data.size), 1)
        if data.size < 3:
            self.keys = np.zeros(0, dtype=np.int64)
            return
        row_of = np.repeat(np.arange(n, dtype=np.int64), lengths)
        codes = (data[:-2] << 16) | (data[1:-1] << 8) | data[2:]
        same_row = row_of[:-2] == row_of[2:]
        keys = codes[same_row] * self.span + np.arange(codes.size, dtype=np.int64)[same_row]
        keys.sort()
        self.keys = keys

    def _positions(self, trigram: bytes) -> np.ndarray:
        code = (trigram[0] << 16) | (trigram[1] << 8) | trigram[2]
        lo = np.searchsorted(self.keys, code * self.span)
        hi = np.searchsorted(self.keys, (code + 1) * self.span)
        return self.keys[lo:hi] - code * self.span

    def rows_containing(
        self, needle: bytes, limit: int | None = None, allowed: np.ndarray | None = None
    ) -> np.ndarray:
        """Sorted row numbers whose text contains ``needle`` (at least 3 bytes).

        With ``limit``, only the first rows are wanted: positions are checked in chunks in
        row order and the scan stops once enough rows matched (and passed ``allowed``).
        """
        postings = [(self._positions(needle[j : j + 3]), j) for j in range(len(needle) - 2)]
        postings.sort(key=lambda item: item[0].size)
        rarest, offset = postings[0]
        chunk = 4096 if limit else max(rarest.size, 1)
        found: list[np.ndarray] = []
        count = 0
        for begin in range(0, rarest.size, chunk):
            starts = rarest[begin : begin + chunk] - offset
            for positions, j in postings[1:]:
                if not starts.size:
                    break
                wanted = starts + j
                index = np.minimum(np.searchsorted(positions, wanted), positions.size - 1)
                starts = starts[positions[index] == wanted] if positions.size else starts[:0]
            if not starts.size:
                continue
            rows = np.unique(np.searchsorted(self.starts, starts, side="right") - 1)
            if allowed is not None:
                rows = rows[allowed[rows]]
            found.append(rows)
            count += rows.size
            if limit is not None and count >= limit:
                break
        if not found:
            return np.zeros(0, dtype=np.int64)
        rows = np.unique(np.concatenate(found))
        return rows if limit is None else rows[:limit]


class NumpySearch:
    """The former PolicySearch's load and queries (no change following: a benchmark baseline)."""

    def __init__(self, client: Any, keys: Any) -> None:
        self.client, self.keys = client, keys
        self.table = TableIndex([])
        self.names = NameIndex([])

    def load(self) -> None:
        import json

        from inventory.cache.keys import MANAGED_POLICY
        from inventory.cache.redis_cache import RedisCache
        from inventory.web.search_index import name_of
        from inventory.web.search_indexer import TYPEAHEAD_SKIP

        raw = self.client.hgetall(f"{self.keys.prefix}pt:rows").values()
        rows = sorted((json.loads(v) for v in raw), key=lambda r: r["arn"])
        entries: dict[str, tuple[str, str, str, str]] = {}
        for p in RedisCache(self.client, self.keys).partitions():
            if p.kind != MANAGED_POLICY and p.kind not in TYPEAHEAD_SKIP:
                for arn in self.client.hkeys(self.keys.items(p)):
                    entries[arn] = (arn, name_of(arn), p.kind, p.account_id)
        self.table = TableIndex(rows)
        self.names = NameIndex(list(entries.values()))

    def query(self, q: Any) -> dict[str, Any]:
        total, rows = self.table.select(
            q.text,
            {"kind": q.kind, "account_id": q.account, "region": q.region},
            q.has_errors,
            q.sort,
            q.descending,
            q.offset,
            q.limit,
        )
        return {"total": total, "rows": rows}

    def typeahead_resources(self, text: str, kind: str | None, limit: int) -> list[dict[str, Any]]:
        if text.startswith("arn:"):
            found = self.names.arn_prefix(text, kind, limit)
        else:
            found = self.names.search(text, kind, limit)
        return [{"arn": a, "name": n, "kind": k, "account_id": acc} for a, n, k, acc in found]
