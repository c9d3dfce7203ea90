"""One generation of the search index on disk, read side: tantivy (mmap'd) plus SQLite.

A generation directory holds two tantivy indexes and one SQLite file, written by the host's one
indexer (``search_writer``) and read by every web process on the host:

- ``rows/`` (tantivy): a document per policies-table row: the facets and an errors class as
  terms, the name's first one and two characters (text under three bytes matches name
  prefixes), positional byte trigrams of the searchable text (a substring is a phrase of
  trigrams, so matches are exact), an integer label per sort column and the row as JSON.
- ``names/`` (tantivy): a document per cached ARN for the typeahead: its kind, trigrams of its
  lowercase name and the label of its place in name order.
- ``names.sqlite``: the typeahead's name and ARN orders (B-trees: a prefix is a seek and a short
  scan), which buckets of the name order hold which trigrams, and the managed policies.
- ``rows.sqlite``: the rows and the sort orders behind their labels (only the writer reads it).

Sort keys are the value (lowercased text, or 16 hex digits that order numbers), NUL, then the
ARN: unique, so ties break by ARN and a descending page is the ascending order reversed. Labels
are integers in key order (see ``search_labels``): tantivy orders by an integer field several
times faster than by a string one. Trigrams are cut by the tokenizer (a regex over a string of
every overlapping three bytes), because tantivy's n-gram tokenizer puts every token at position 0.
"""

from __future__ import annotations

import json
import sqlite3
import struct
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tantivy
from tantivy import Occur, Order, Query

from inventory.cache.keys import AWS_MANAGED_ACCOUNT
from inventory.web.search_labels import SPACE as LABEL_SPACE

#: ``severity`` is the row's worst finding's (docs/findings.md).
FACETS = ("kind", "account_id", "region", "severity")
TEXT_SORTS = ("name", "arn", "kind", "account_id", "account_name", "region")
NUMBER_SORTS = ("errors", "last_updated", "findings")
SORT_COLUMNS = TEXT_SORTS + NUMBER_SORTS
TRIGRAMS = "inventory_trigrams"
#: Each byte of UTF-8 text becomes one character (latin-1): three characters are three bytes.
BYTE_CHARS = "latin-1"
#: How many entries a prefix scan of the typeahead may look at before it stops.
SCAN_LIMIT = 20_000
#: The name order is cut into this many buckets by label (a term per ARN: a cheap filter).
BUCKETS = 256
#: Text whose rarest trigram is in fewer names than this is searched in one ranked search.
DIRECT = 20_000
Entry = tuple[str, str, str, str]


def searchable(row: Mapping[str, Any]) -> str:
    """The text free-text search looks in: ARN, name and every tag, lowercased, on one line."""
    tags = row.get("tags") or {}
    parts = [row["arn"], row.get("name") or "", *(f"{k}={v}" for k, v in tags.items())]
    return " ".join(parts).replace("\n", " ").lower()


def matched(row: Mapping[str, Any], text: str) -> dict[str, str]:
    """Which of ``searchable``'s parts holds the text: the name, the ARN or a tag (key, value)."""
    needle = text.lower()
    if needle in str(row.get("name") or "").lower():
        return {"field": "name"}
    if needle in row["arn"].lower():
        return {"field": "arn"}
    for key, value in (row.get("tags") or {}).items():
        if needle in f"{key}={value}".replace("\n", " ").lower():
            return {"field": "tag", "key": str(key), "value": str(value)}
    return {"field": "text"}  # across two parts (the text joins them with spaces)


def name_of(arn: str) -> str:
    """The typeahead's name of an ARN: its last path segment."""
    tail = arn.rsplit(":", 1)[-1]
    return tail.rsplit("/", 1)[-1] or arn


def trigram_strings(texts: Sequence[bytes]) -> list[str]:
    """Per text, every overlapping 3-byte window in order, concatenated (vectorised)."""
    lengths = np.fromiter((len(t) for t in texts), np.int64, len(texts))
    counts = np.maximum(lengths - 2, 0)
    total = int(counts.sum())
    if not total:
        return [""] * len(texts)
    data = np.frombuffer(b"".join(texts), dtype=np.uint8)
    starts = np.zeros(len(texts), dtype=np.int64)
    starts[1:] = np.cumsum(lengths)[:-1]
    first = np.zeros(len(texts), dtype=np.int64)
    first[1:] = np.cumsum(counts)[:-1]
    positions = np.arange(total, dtype=np.int64) + np.repeat(starts - first, counts)
    windows = np.stack([data[positions], data[positions + 1], data[positions + 2]], axis=1)
    joined = windows.tobytes().decode(BYTE_CHARS)
    ends = np.cumsum(counts * 3).tolist()
    return [joined[b:e] for b, e in zip([0, *ends[:-1]], ends, strict=True)]


def number_key(value: Any) -> str:
    """16 hex digits that order floats as numpy's sort does (-0.0 equals 0.0, NaN last)."""
    number = float(value or 0) + 0.0
    if number != number:
        return "f" * 16
    bits = struct.unpack(">Q", struct.pack(">d", number))[0]
    bits = bits ^ 0xFFFF_FFFF_FFFF_FFFF if bits >> 63 else bits | (1 << 63)
    return f"{bits:016x}"


def sort_key(row: Mapping[str, Any], column: str) -> bytes:
    """The column's order, then the ARN (unique, so ties break by ARN), as UTF-8 bytes."""
    if column in NUMBER_SORTS:
        value = number_key(row.get(column))
    else:
        value = str(row.get(column) or "").lower()
    return f"{value}\0{row['arn']}".encode()


def name_key(arn: str, kind: str, account: str, name: str | None = None) -> bytes:
    """The typeahead's name order: lowercase name, ARN; kind and account ride along."""
    return f"{(name or name_of(arn)).lower()}\0{arn}\0{kind}\0{account}".encode()


def arn_key(arn: str, kind: str, account: str) -> bytes:
    return f"{arn}\0{kind}\0{account}".encode()


def entry_of(key: bytes, name_first: bool) -> Entry:
    """(arn, name, kind, account_id) from a name or ARN key."""
    parts = key.decode().split("\0")
    arn, kind, account = parts[1:4] if name_first else parts[0:3]
    return arn, name_of(arn), kind, account


#: Labels a bucket spans: the middle half of the label space (where a build puts them) in BUCKETS.
BUCKET_SPAN = (LABEL_SPACE // 2) // BUCKETS


def bucket_of(label: int) -> int:
    """The bucket of a name label (labels past the middle half go to the first or last)."""
    return min(BUCKETS - 1, max(0, (label - LABEL_SPACE // 4) // BUCKET_SPAN))


def buckets_of(labels: Sequence[int]) -> list[int]:
    """``bucket_of`` for many labels at once."""
    found = (np.asarray(labels, dtype=np.int64) - LABEL_SPACE // 4) // BUCKET_SPAN
    return np.clip(found, 0, BUCKETS - 1).tolist()


BUCKET_TERMS = [f"{bucket:03d}" for bucket in range(BUCKETS)]


def bucket_term(bucket: int) -> str:
    return BUCKET_TERMS[bucket]


def errors_class(row: Mapping[str, Any]) -> str:
    errors = int(row.get("errors") or 0)
    return "some" if errors > 0 else ("none" if errors == 0 else "negative")


# --- schemas ---------------------------------------------------------------------------------
def _term(builder: tantivy.SchemaBuilder, name: str, fast: bool = False) -> None:
    builder.add_text_field(name, tokenizer_name="raw", index_option="basic", fast=fast)


def rows_schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    _term(builder, "arn")
    for facet in FACETS:
        _term(builder, facet, fast=True)
    _term(builder, "errors_class")
    _term(builder, "head")
    builder.add_text_field("text", tokenizer_name=TRIGRAMS, index_option="position")
    for column in SORT_COLUMNS:
        builder.add_unsigned_field(f"s_{column}", fast=True)
    builder.add_bytes_field("row", stored=True)
    return builder.build()


def names_schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    _term(builder, "arn")
    _term(builder, "kind")
    _term(builder, "bucket")
    builder.add_text_field("text", tokenizer_name=TRIGRAMS, index_option="position")
    builder.add_unsigned_field("by_name", fast=True)
    builder.add_bytes_field("key", stored=True)
    return builder.build()


def with_trigrams(index: tantivy.Index) -> tantivy.Index:
    """Register the trigram tokenizer (needed to write, not to read)."""
    analyzer = tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.regex(r"(?s)...")).build()
    index.register_tokenizer(TRIGRAMS, analyzer)
    return index


def bucket_trigram_codes(trigrams: Sequence[str], buckets: Sequence[int]) -> np.ndarray:
    """Distinct trigram * BUCKETS + bucket over each name's trigram string and bucket."""
    counts = np.fromiter((len(t) // 3 for t in trigrams), np.int64, len(trigrams))
    data = np.frombuffer("".join(trigrams).encode(BYTE_CHARS), np.uint8).reshape(-1, 3)
    codes = (data[:, 0].astype(np.int64) << 16) | (data[:, 1].astype(np.int64) << 8) | data[:, 2]
    return np.unique(codes * BUCKETS + np.repeat(np.asarray(buckets, np.int64), counts))


def bucket_trigram_pairs(codes: np.ndarray) -> list[tuple[bytes, int]]:
    """(trigram, bucket) rows, in order, from ``bucket_trigram_codes``."""
    trigrams, buckets = divmod(np.unique(codes), BUCKETS)
    return [(int(t).to_bytes(3, "big"), int(b)) for t, b in zip(trigrams, buckets, strict=True)]


# --- queries ---------------------------------------------------------------------------------
def contains(schema: tantivy.Schema, needle: bytes) -> Query:
    """Documents whose text holds ``needle`` (3 bytes or more): a phrase of its trigrams."""
    chars = needle.decode(BYTE_CHARS)
    last = len(chars) - 3
    offsets = sorted({*range(0, last, 3), last})
    if len(offsets) == 1:
        return Query.term_query(schema, "text", chars)
    return Query.phrase_query(schema, "text", [(o, chars[o : o + 3]) for o in offsets])


def check_rows_schema(schema: tantivy.Schema) -> None:
    """ValueError when a generation lacks a field this release queries (an older release wrote
    it): the indexer then builds a new one, as for a corrupt generation."""
    for facet in FACETS:
        Query.term_query(schema, facet, "")
    for column in SORT_COLUMNS:
        Query.term_query(schema, f"s_{column}", 0)


def all_of(queries: list[Query]) -> Query:
    if not queries:
        return Query.all_query()
    if len(queries) == 1:
        return queries[0]
    return Query.boolean_query([(Occur.Must, q) for q in queries])


class Generation:
    """A generation opened for reading (any number of processes at once)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = tantivy.Index.open(str(path / "rows"))
        self.names = tantivy.Index.open(str(path / "names"))
        for index in (self.rows, self.names):
            index.config_reader(reload_policy="manual")
        self.rows_schema = self.rows.schema
        check_rows_schema(self.rows_schema)
        self.names_schema = self.names.schema
        uri = f"file:{path / 'names.sqlite'}?mode=ro"
        self.db = sqlite3.connect(uri, uri=True, check_same_thread=False)
        self._facets: dict[str, list[str]] | None = None
        self.reload()

    def reload(self) -> None:
        """See the latest commit (cheap when nothing changed)."""
        self.rows.reload()
        self.names.reload()
        self.row_searcher = self.rows.searcher()
        self.name_searcher = self.names.searcher()
        self._facets = None

    def close(self) -> None:
        self.db.close()

    def counts(self) -> tuple[int, int]:
        """(rows, ARNs) in the index."""
        return self.row_searcher.num_docs, self.name_searcher.num_docs

    def _text(self, text: str) -> Query:
        needle = text.lower().encode()
        if len(needle) < 3:
            # Too short for trigrams: names that start with it.
            return Query.term_query(self.rows_schema, "head", needle.decode())
        return contains(self.rows_schema, needle)

    def select(
        self,
        text: str | None,
        filters: Mapping[str, str | None],
        has_errors: bool | None,
        sort: str,
        descending: bool,
        offset: int,
        limit: int,
    ) -> tuple[int, list[dict[str, Any]]]:
        """(total matches, the requested page of rows)."""
        schema, searcher = self.rows_schema, self.row_searcher
        clauses = [Query.term_query(schema, c, v) for c, v in filters.items() if v is not None]
        if has_errors is not None:
            wanted = "some" if has_errors else "none"
            clauses.append(Query.term_query(schema, "errors_class", wanted))
        if text:
            clauses.append(self._text(text))
        query = all_of(clauses)
        size = searcher.num_docs
        if offset >= size:
            # Past the end: count only (a top-N of ``offset`` documents would be wasted work).
            return int(searcher.search(query, 1, count=True).count), []  # type: ignore[attr-defined]
        result = searcher.search(
            query,
            min(limit, size - offset),
            count=True,
            order_by_field=f"s_{sort}",
            offset=offset,
            order=Order.Desc if descending else Order.Asc,
        )
        rows = [json.loads(searcher.doc(address)["row"][0]) for _, address in result.hits]
        # (The type stubs leave out SearchResult.count.)
        return int(result.count), rows  # type: ignore[attr-defined]

    def facets(self) -> dict[str, list[str]]:
        """Distinct non-empty values of each facet among the rows."""
        if self._facets is None:
            spec = {f: {"terms": {"field": f, "size": 1_000_000}} for f in FACETS}
            found = self.row_searcher.aggregate(Query.all_query(), spec)
            self._facets = {
                f: sorted(b["key"] for b in found[f]["buckets"] if b["key"]) for f in FACETS
            }
        return self._facets

    def _scan(self, table: str, prefix: bytes, kind: str | None, limit: int) -> list[bytes]:
        """Keys starting with ``prefix`` in key order: at most SCAN_LIMIT looked at."""
        found: list[bytes] = []
        cursor = self.db.execute(
            f"SELECT key FROM {table} WHERE key >= ? ORDER BY key LIMIT ?", (prefix, SCAN_LIMIT)
        )
        for (key,) in cursor:
            if not key.startswith(prefix) or len(found) >= limit:
                break
            if kind is None or key.split(b"\0")[-2].decode() == kind:
                found.append(key)
        cursor.close()
        return found

    def arn_prefix(self, prefix: str, kind: str | None, limit: int) -> list[Entry]:
        """Entries whose ARN starts with ``prefix`` (case-sensitive, as ARNs are), in ARN order."""
        keys = self._scan("arn_order", prefix.encode(), kind, limit)
        return [entry_of(key, name_first=False) for key in keys]

    def typeahead(self, text: str, kind: str | None, limit: int) -> list[Entry]:
        """Names starting with ``text`` first (in name order), then names containing it."""
        needle = text.lower()
        keys = self._scan("name_order", needle.encode(), kind, limit)
        entries = [entry_of(key, name_first=True) for key in keys]
        if len(entries) < limit and len(needle) >= 3:
            seen = {e[0] for e in entries}
            for key in self._containing(needle.encode(), kind, limit + len(entries)):
                if len(entries) >= limit:
                    break
                entry = entry_of(key, name_first=True)
                if entry[0] not in seen:
                    entries.append(entry)
        return entries

    def _containing(self, needle: bytes, kind: str | None, count: int) -> list[bytes]:
        """The first ``count`` name keys, in name order, whose name holds ``needle``."""
        searcher, schema = self.name_searcher, self.names_schema
        chars = needle.decode(BYTE_CHARS)
        rarest = min(searcher.doc_freq("text", chars[i : i + 3]) for i in range(len(chars) - 2))
        if not rarest:
            return []
        clauses = [contains(schema, needle)]
        if kind is not None:
            clauses.append(Query.term_query(schema, "kind", kind))
        if rarest < DIRECT:
            return self._ranked(all_of(clauses), count)
        # Common text: a ranked search would first check every match, so look in the first
        # buckets of the name order that hold all its trigrams, then in twice as many, until
        # enough are found (buckets are consecutive ranges of the name order).
        buckets = self._buckets_with({chars[i : i + 3] for i in range(len(chars) - 2)})
        found: list[bytes] = []
        width = 1
        while len(found) < count:
            step = [b for _, b in zip(range(width), buckets, strict=False)]
            if not step:
                break
            within = Query.boolean_query(
                [(Occur.Should, Query.term_query(schema, "bucket", bucket_term(b))) for b in step]
            )
            found += self._ranked(all_of([*clauses, within]), count - len(found))
            width *= 2
        return found

    def _buckets_with(self, trigrams: set[str]) -> Iterator[int]:
        """Buckets, in order, where names have each of ``trigrams`` (or had: a superset)."""
        buckets: set[int] | None = None
        for trigram in trigrams:
            code = trigram.encode(BYTE_CHARS)
            found = self.db.execute("SELECT bucket FROM bucket_trigrams WHERE trigram = ?", (code,))
            have = {b for (b,) in found}
            buckets = have if buckets is None else buckets & have
        yield from sorted(buckets or ())

    def _ranked(self, query: Query, count: int) -> list[bytes]:
        searcher = self.name_searcher
        result = searcher.search(
            query, count, count=False, order_by_field="by_name", order=Order.Asc
        )
        return [searcher.doc(address)["key"][0] for _, address in result.hits]

    def managed_policies(self, account: str, text: str, limit: int) -> list[dict[str, Any]]:
        """Managed policies an account can attach (its own and AWS's catalogue) whose name
        starts with, then contains, text."""
        like = text.lower().replace("!", "!!").replace("%", "!%").replace("_", "!_")
        rows = self.db.execute(
            "SELECT arn, name, aws_managed FROM policies WHERE account_id IN (?, ?) AND "
            "name LIKE ? ESCAPE '!' ORDER BY (name LIKE ? ESCAPE '!') DESC, "
            "name COLLATE NOCASE LIMIT ?",
            (account, AWS_MANAGED_ACCOUNT, f"%{like}%", f"{like}%", limit),
        ).fetchall()
        return [{"arn": a, "name": n, "aws_managed": bool(m)} for a, n, m in rows]
