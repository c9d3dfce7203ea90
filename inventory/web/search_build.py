"""A full build of a search index generation from Redis: its two halves side by side.

The host's indexer builds the policies-table half and the typeahead half in two child processes
at once (two cores, and the indexer's own memory stays small); tests and benchmarks without an
indexer process build both in the calling process, one after the other.
"""

from __future__ import annotations

import ctypes
import json
import multiprocessing
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import redis

from inventory.cache.keys import TYPEAHEAD_POLICY_KINDS, Keys
from inventory.cache.redis_cache import RedisCache
from inventory.web.search_index import Entry, name_of
from inventory.web.search_names import NamesPart
from inventory.web.search_part import Progress
from inventory.web.search_rows import RowsPart

#: Kinds offered by the resource typeahead (every cached ARN but derived views).
TYPEAHEAD_SKIP = frozenset(
    {
        "account",
        "cloudtrail_errors",
        "role_access",
        "principal_access",
        "policy_request",
        "iam_role_limit",
        "managed_policy",
        "finding",  # keyed by the ARN of the subject it judges, which is offered as itself
    }
)
PARTS = ("rows", "names")
Connect = Callable[[], redis.Redis]
PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask Linux to SIGTERM this process when its parent dies (elsewhere: no-op)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def rows_key(keys: Keys) -> str:
    return f"{keys.prefix}pt:rows"


def read_rows(client: redis.Redis, keys: Keys) -> list[dict[str, Any]]:
    """Every policies-table row (HSCAN: no one huge reply)."""
    rows: list[dict[str, Any]] = []
    cursor = 0
    while True:
        reply = client.hscan(rows_key(keys), cursor, count=5_000)
        cursor, found = cast(tuple[int, dict[str, str]], reply)
        rows += [json.loads(value) for value in found.values()]
        if not cursor:
            return rows


def read_entries(
    client: redis.Redis, keys: Keys
) -> tuple[list[Entry], list[tuple[str, str, str, int]]]:
    """Every cached ARN the typeahead offers, and the managed policies by account."""
    cache = RedisCache(client, keys)
    entries: dict[str, Entry] = {}
    policies: list[tuple[str, str, str, int]] = []
    for p in cache.partitions():
        if p.kind in TYPEAHEAD_POLICY_KINDS:
            for record in cache.items(p).values():
                managed = int(bool(record["aws_managed"]))
                policies.append((p.account_id, record["arn"], record["name"], managed))
        if p.kind not in TYPEAHEAD_SKIP:
            for arn in cast(list[str], client.hkeys(keys.items(p))):
                entries[arn] = (arn, name_of(arn), p.kind, p.account_id)
    return list(entries.values()), policies


def size(client: redis.Redis, keys: Keys) -> int:
    """Rows and ARNs to index (for progress): one HLEN per hash."""
    pipe = client.pipeline(transaction=False)
    for p in RedisCache(client, keys).partitions():
        pipe.hlen(keys.items(p))
    return int(client.hlen(rows_key(keys))) + sum(pipe.execute())


def build_part(name: str, path: Path, client: redis.Redis, keys: Keys, progress: Progress) -> None:
    """Read one half's data from Redis and write it into a new generation at ``path``."""
    if name == "rows":
        rows_part = RowsPart(path, create=True)
        rows_part.fill(read_rows(client, keys), progress)
        rows_part.finish_fill()
        rows_part.close()
        return
    names_part = NamesPart(path, create=True)
    entries, policies = read_entries(client, keys)
    names_part.fill(entries, progress)
    names_part.bulk("INSERT OR REPLACE INTO policies VALUES (?,?,?,?)", policies)
    names_part.finish_fill()
    names_part.close()


def _build_part_process(name: str, path: str, connect: Connect, prefix: str, done: Any) -> None:
    die_with_parent()

    def progress(count: int) -> None:
        with done.get_lock():
            done.value += count

    build_part(name, Path(path), connect(), Keys(prefix), progress)


def build_parts(
    path: Path, client: redis.Redis, keys: Keys, progress: Any, connect: Connect | None
) -> None:
    """Both halves: in two processes when ``connect`` says how to reach Redis, else here."""
    if connect is None:
        for name in PARTS:
            progress.phase = f"indexing {name}"
            build_part(name, path, client, keys, progress)
        return
    context = multiprocessing.get_context("spawn")
    done = context.Value("q", 0)
    children = [
        context.Process(
            target=_build_part_process,
            args=(name, str(path), connect, keys.prefix, done),
            name=f"search-build-{name}",
            daemon=True,
        )
        for name in PARTS
    ]
    for child in children:
        child.start()
    progress.phase = "indexing rows and ARNs"
    while any(child.is_alive() for child in children):
        time.sleep(0.5)
        progress.done = int(done.value)
        progress.report()
    failed = [c.name for c in children if c.exitcode != 0]
    if failed:
        raise RuntimeError(f"search index build failed in {', '.join(failed)}")
