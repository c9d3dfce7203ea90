"""Cached records out for shell users: JSON Lines or CSV, a lookup by ARN, a text search.

Everything reads the Redis cache through :class:`RedisCache`, one partition at a time, so an
export of a large organisation streams instead of holding it all in memory.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Collection, Iterable, Iterator
from typing import IO, Any

from inventory.cache.keys import Partition
from inventory.cache.redis_cache import RedisCache

#: The columns every CSV row starts with; the rest are the records' own keys, sorted.
LEAD_COLUMNS = ("kind", "account_id", "region", "arn")
GLOB_SPECIAL = set("*?[]\\")


def selected(
    cache: RedisCache, kinds: Collection[str] = (), accounts: Collection[str] = ()
) -> list[Partition]:
    """Cached partitions of these kinds and accounts (all when empty), in a stable order."""
    return [
        p
        for p in cache.partitions()
        if (not kinds or p.kind in kinds) and (not accounts or p.account_id in accounts)
    ]


def records(cache: RedisCache, partitions: Iterable[Partition]) -> Iterator[dict[str, Any]]:
    """Each record with its partition's kind, account and region, by partition then ARN."""
    for p in partitions:
        items = cache.items(p)
        for arn in sorted(items):
            yield {"kind": p.kind, "account_id": p.account_id, "region": p.region, "arn": arn} | {
                k: v for k, v in items[arn].items() if k not in LEAD_COLUMNS
            }


def write_jsonl(rows: Iterable[dict[str, Any]], out: IO[str]) -> int:
    """One compact JSON object per line; returns the count."""
    count = 0
    for row in rows:
        out.write(json.dumps(row, sort_keys=True, separators=(",", ":")) + "\n")
        count += 1
    return count


def write_csv(rows: Callable[[], Iterable[dict[str, Any]]], out: IO[str]) -> int:
    """A header of every key, then a row per record; nested values as JSON.

    ``rows`` is called twice (keys first, then values), so nothing is kept in memory.
    """
    keys: set[str] = set()
    for row in rows():
        keys.update(row)
    columns = [*LEAD_COLUMNS, *sorted(keys - set(LEAD_COLUMNS))]
    writer = csv.DictWriter(out, columns, extrasaction="raise", lineterminator="\n")
    writer.writeheader()
    count = 0
    for row in rows():
        writer.writerow({k: _cell(v) for k, v in row.items()})
        count += 1
    return count


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return value


def contains_pattern(text: str) -> str:
    """A Redis glob matching any string that contains ``text``, ignoring case."""
    parts = []
    for char in text:
        if char.lower() != char.upper():
            parts.append(f"[{char.lower()}{char.upper()}]")
        elif char in GLOB_SPECIAL:
            parts.append("\\" + char)
        else:
            parts.append(char)
    return "*" + "".join(parts) + "*"


def search(
    cache: RedisCache,
    text: str,
    kinds: Collection[str] = (),
    accounts: Collection[str] = (),
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Indexed resources whose ARN contains ``text`` (any case): kind, account, region, ARN, name.

    Redis matches the pattern while scanning the ARN index; at most ``limit`` are returned,
    sorted by ARN.
    """
    found: list[tuple[str, Partition]] = []
    for arn, p in cache.scan_arns(contains_pattern(text)):
        if (kinds and p.kind not in kinds) or (accounts and p.account_id not in accounts):
            continue
        found.append((arn, p))
    found.sort()
    result = []
    for arn, p in found[:limit]:
        record = cache.item(p, arn) or {}
        result.append(
            {
                "kind": p.kind,
                "account_id": p.account_id,
                "region": p.region,
                "arn": arn,
                "name": record.get("name"),
            }
        )
    return result
