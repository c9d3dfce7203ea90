"""The web tier's search: the policies table, the resource typeahead and managed policies.

Queries read an index on disk (``search_index``: tantivy and SQLite, mmap'd and shared by every
web process of a host), which one indexer per host builds from Redis and keeps current from the
change stream every partition write appends to (``search_indexer``). A web process opens the
current generation, reloads it when the indexer commits, and starts an indexer itself when none
holds the lock. Without an index directory (tests, benchmarks), the index lives in a private
temporary directory and ``load``/``sync`` build and update it in the calling process.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import time
import urllib.parse
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import redis

from inventory.cache.keys import Keys
from inventory.settings import Settings
from inventory.web.search_index import SORT_COLUMNS, Generation, matched
from inventory.web.search_indexer import (
    INDEX_ERRORS,
    PROGRESS,
    STATE,
    Indexer,
    IndexLock,
    read_json,
)

__all__ = ["MAX_LIMIT", "SORT_COLUMNS", "PolicySearch", "Query", "SearchUnavailable"]

log = logging.getLogger("inventory.web.search")

MAX_LIMIT = 500
StartIndexer = Callable[[Path], BaseProcess]


@dataclass(frozen=True)
class Query:
    """A policies-table query, validated by the handler."""

    text: str | None = None
    account: str | None = None
    kind: str | None = None
    region: str | None = None
    has_errors: bool | None = None
    #: The worst finding's severity (critical, high, medium, low).
    severity: str | None = None
    sort: str = "name"
    descending: bool = False
    offset: int = 0
    limit: int = 50


def index_directory(settings: Settings) -> Path:
    """``web.search_index_dir``/<the cache it indexes>: web tiers over other caches never share."""
    url = urllib.parse.urlsplit(settings.redis.url)
    # Host, port, database and key prefix; never the password (nor anything else in a path).
    source = f"{url.hostname}:{url.port}{url.path}|{settings.redis.key_prefix}"
    return Path(settings.web.search_index_dir) / hashlib.sha256(source.encode()).hexdigest()[:16]


#: How often a web process looks for the host's indexer's commits (``state.json``) at most.
LOOK_SECONDS = 0.25


class SearchUnavailable(Exception):
    """No index generation is open yet (the first build is under way)."""


class PolicySearch:
    """Queries over the current index generation, and keeping that generation current."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        rebuild_seconds: float = 0.0,
        index_dir: str | Path | None = None,
        start_indexer: StartIndexer | None = None,
    ) -> None:
        """With ``start_indexer``, a host's indexer process writes; else this process does."""
        if index_dir is None:
            index_dir = tempfile.mkdtemp(prefix="inventory-search-")
            weakref.finalize(self, shutil.rmtree, index_dir, True)
        self.root = Path(index_dir)
        self.root.mkdir(parents=True, exist_ok=True)
        self.client, self.keys = client, keys
        self.start_indexer = start_indexer
        self.indexer = None if start_indexer else Indexer(self.root, client, keys, rebuild_seconds)
        self.lock = IndexLock(self.root)
        self.child: BaseProcess | None = None
        self.generation: Generation | None = None
        self.state: dict[str, Any] = {}

    # --- keeping current -------------------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self.generation is not None

    @property
    def cursor(self) -> str | None:
        """The change-stream position this process's indexer has applied (None: not writing)."""
        return None if self.indexer is None else self.indexer.cursor

    @cursor.setter
    def cursor(self, value: str) -> None:
        assert self.indexer is not None
        self.indexer.cursor = value

    def load(self) -> None:
        """Build the index from Redis in this process (no indexer process) and open it."""
        assert self.indexer is not None, "a shared index is built by the host's indexer"
        self.indexer.build()
        self.refresh()

    def sync(self, block_ms: int | None = None) -> int:
        """Apply changes appended since the last sync (or see the indexer's); how many."""
        applied = 0
        if self.indexer is not None:
            if self.indexer.writer is None:
                self.load()
                return 0
            applied = self.indexer.follow(block_ms)
        else:
            self._ensure_indexer()
        self.refresh()
        return applied

    def sync_safely(self) -> None:
        """sync(), logging instead of raising: queries keep the generation they have."""
        try:
            self.sync()
        except redis.RedisError as exc:
            log.warning("search index not updated: %s", exc)
        except INDEX_ERRORS as exc:
            log.warning("search index not updated: %s", exc)

    def _ensure_indexer(self) -> None:
        """Start an indexer child when ours is gone and no other process holds the lock."""
        assert self.start_indexer is not None
        if self.child is not None and self.child.is_alive():
            return
        if not self.lock.held_elsewhere():
            self.child = self.start_indexer(self.root)

    def refresh(self) -> None:
        """Open the generation ``state.json`` names, or reload ours when it has new commits."""
        state = read_json(self.root / STATE)
        if state is None:
            return
        name = state.get("generation")
        if self.generation is None or self.generation.path.name != name:
            started = time.monotonic()
            try:
                opened = Generation(self.root / str(name))
            except INDEX_ERRORS as exc:
                log.warning("search index %s cannot be opened yet: %s", name, exc)
                return
            if self.generation is not None:
                self.generation.close()
            self.generation = opened
            rows, arns = opened.counts()
            log.info(
                "search index %s opened in %.2f s: %d rows, %d ARNs",
                opened.path,
                time.monotonic() - started,
                rows,
                arns,
            )
        elif state.get("commit") != self.state.get("commit"):
            self.generation.reload()
        self.state = state

    def status(self) -> dict[str, Any]:
        """For /readyz: ready (an index open and current), else indexing with progress."""
        self.refresh()
        progress = read_json(self.root / PROGRESS)
        status: dict[str, Any] = {
            "status": "ready" if self.loaded and self._current(progress) else "indexing",
            "rows": self.state.get("rows"),
            "arns": self.state.get("arns"),
        }
        if progress is not None:
            status["progress"] = {k: progress.get(k) for k in ("phase", "done", "total", "percent")}
        return status

    def _current(self, progress: dict[str, Any] | None) -> bool:
        """Whether the open index holds every change: a live indexer says so, or none came since."""
        writing = self.indexer is not None or self.lock.held_elsewhere()
        if self.state.get("current") and writing:
            return True
        if progress is not None:
            return False
        # No live indexer has said so yet: current if nothing was appended since its commit.
        head = self.client.xrevrange(self.keys.changes(), count=1)
        return bool((head[0][0] if head else "0-0") == self.state.get("cursor"))

    def _open(self) -> Generation:
        if self.generation is None:
            progress = read_json(self.root / PROGRESS) or {}
            raise SearchUnavailable(
                f"search index is being built ({progress.get('percent', 0)}% done)"
            )
        return self.generation

    # --- queries -----------------------------------------------------------------------------
    def query(self, q: Query) -> dict[str, Any]:
        """A page of rows matching the filters, sorted, with the total count."""
        total, rows = self._open().select(
            q.text,
            {"kind": q.kind, "account_id": q.account, "region": q.region, "severity": q.severity},
            q.has_errors,
            q.sort,
            q.descending,
            q.offset,
            q.limit,
        )
        if q.text:
            rows = [row | {"matched": matched(row, q.text)} for row in rows]
        return {"total": total, "rows": rows}

    def facets(self) -> dict[str, list[str]]:
        """Distinct accounts, kinds, regions and worst severities, for the filter menus."""
        return self._open().facets()

    def typeahead_resources(self, text: str, kind: str | None, limit: int) -> list[dict[str, Any]]:
        """ARNs whose name starts with, then contains, ``text``; a typed ARN is a prefix."""
        generation = self._open()
        if text.startswith("arn:"):
            found = generation.arn_prefix(text, kind, limit)
        else:
            found = generation.typeahead(text, kind, limit)
        return [{"arn": a, "name": n, "kind": k, "account_id": acc} for a, n, k, acc in found]

    def typeahead_managed_policies(
        self, account: str, text: str, limit: int
    ) -> list[dict[str, Any]]:
        """Managed policies the account can attach (its own, AWS's): name prefix, then substring."""
        return self._open().managed_policies(account, text, limit)
