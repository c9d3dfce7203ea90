"""The host's search indexer: builds the index from Redis once, then follows the change stream.

``web.search_index_dir`` is shared by every web process on a host (or a shared volume):

- ``indexer.lock``: an flock held by the one indexer; a web process that finds it free starts one
  (a child process, so the build neither stalls its event loop nor swells its memory), and the
  lock goes with the indexer if it dies, so another web process takes over.
- ``state.json``: the current generation and its commit number; readers reopen or reload when it
  changes. ``progress.json``: what a full build is doing, for ``/readyz`` and the log.
- ``g<N>/``: generations (``search_index``, ``search_writer``). A full build writes a new one and
  switches ``state.json`` to it (readers keep serving the old one meanwhile); changes are applied
  to the current one, at most every ``web.search_rebuild_seconds``.

A generation that cannot be opened (lost, corrupt) or a stream trimmed past the cursor means a
full build from Redis; until it is done readers keep what they have open.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import redis

from inventory.cache.keys import TYPEAHEAD_POLICY_KINDS, Keys, Partition
from inventory.web.search_build import TYPEAHEAD_SKIP, Connect, build_parts, size
from inventory.web.search_index import Generation
from inventory.web.search_writer import GenerationWriter

log = logging.getLogger("inventory.web.search")

STATE = "state.json"
PROGRESS = "progress.json"
LOCK = "indexer.lock"
#: Errors that mean the index on disk is unusable (a rebuild fixes them), not that Redis is away.
INDEX_ERRORS = (ValueError, OSError, sqlite3.Error)
STREAM_BATCH = 10_000
CHECK_SECONDS = 5.0


def read_json(path: Path) -> dict[str, Any] | None:
    """A small JSON file, or None when it is missing or unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Replace a small JSON file atomically (readers see the old or the new one)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(json.dumps(data))
    os.replace(temporary, path)


class IndexLock:
    """The indexer's exclusive flock on ``indexer.lock`` (released when its holder dies)."""

    def __init__(self, root: Path) -> None:
        self.path = root / LOCK
        self.fd: int | None = None

    def acquire(self, wait_seconds: float = 0.0) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                # Another indexer, or a reader probing for one for a moment: try again a while.
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                time.sleep(0.05)
                continue
            self.fd = fd
            return True

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def held_elsewhere(self) -> bool:
        """Whether a live indexer holds the lock (probed without keeping it)."""
        if self.fd is not None:
            return False
        if not self.acquire():
            return True
        self.release()
        return False


def _before(a: str, b: str) -> bool:
    pa, pb = (tuple(int(x) for x in v.split("-")) for v in (a, b))
    return pa < pb


class Progress:
    """Counts a full build's work, and says so in ``progress.json`` and the log now and then."""

    def __init__(self, root: Path, generation: str, total: int) -> None:
        self.root, self.generation, self.total = root, generation, total
        self.done = 0
        self.started = time.monotonic()
        self.reported = 0.0
        self.phase = "reading"
        self.report(force=True)

    def __call__(self, count: int) -> None:
        self.done += count
        self.report()

    def report(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.reported < 2.0:
            return
        self.reported = now
        percent = 100 * self.done // max(self.total, 1)
        log.info(
            "search index %s: %s, %d of %d entries (%d%%) after %.1f s",
            self.generation,
            self.phase,
            self.done,
            self.total,
            percent,
            now - self.started,
        )
        write_json(
            self.root / PROGRESS,
            {
                "generation": self.generation,
                "phase": self.phase,
                "done": self.done,
                "total": self.total,
                "percent": percent,
                "started_at": time.time() - (now - self.started),
            },
        )


class Indexer:
    """Builds and updates the generations under ``root``: the one writer (hold the lock)."""

    def __init__(
        self,
        root: Path,
        client: redis.Redis,
        keys: Keys,
        rebuild_seconds: float = 0.0,
        connect: Connect | None = None,
    ) -> None:
        """With ``connect`` (how to reach Redis), full builds run in two child processes."""
        self.root = root
        self.connect = connect
        self.client = client
        self.keys = keys
        self.rebuild_seconds = rebuild_seconds
        self.writer: GenerationWriter | None = None
        self.generation: str | None = None
        self.cursor = "0-0"
        self.commit_number = 0
        self.uncommitted = 0
        self.applying = 0.0
        self.applying_cpu = 0.0
        self.committed_at = 0.0
        self.checked_at = time.monotonic()
        self.builds = 0
        self.current = False

    # --- opening and full builds ---------------------------------------------------------------
    def start(self) -> None:
        """Open the current generation when it is sound, else build one from Redis."""
        state = read_json(self.root / STATE)
        if state is not None and self._open(str(state.get("generation")), state):
            return
        self.build()

    def _open(self, generation: str, state: Mapping[str, Any]) -> bool:
        path = self.root / generation
        try:
            Generation(path).close()
            writer = GenerationWriter(path)
            cursor = writer.cursor()
        except INDEX_ERRORS as exc:
            log.warning("search index %s cannot be opened (%s); rebuilding it", path, exc)
            return False
        if cursor is None:
            writer.close()
            return False
        self.writer, self.generation, self.cursor = writer, generation, cursor
        self.commit_number = int(state.get("commit", 0)) + 1
        # Documents a crashed writer left pending are rewritten now.
        writer.commit(cursor)
        self._publish()
        rows, names = writer.counts()
        log.info("search index %s opened: %d rows, %d ARNs", path, rows, names)
        return True

    def _next_generation(self) -> str:
        """A name no generation had: readers tell generations apart by name alone."""
        names = [p.name for p in self.root.glob("g*")]
        names.append(str((read_json(self.root / STATE) or {}).get("generation", "")))
        numbers = [int(n[1:]) for n in names if n[1:].isdigit()]
        return f"g{max(numbers, default=0) + 1:06d}"

    def build(self) -> None:
        """Build a new generation from Redis, switch readers to it, remove the older ones."""
        self.close()
        self.root.mkdir(parents=True, exist_ok=True)
        generation = self._next_generation()
        path = self.root / generation
        path.mkdir()
        started = time.monotonic()
        # The stream position first: changes made while reading are applied afterwards.
        last = self.client.xrevrange(self.keys.changes(), count=1)
        cursor = str(last[0][0]) if last else "0-0"
        progress = Progress(self.root, generation, size(self.client, self.keys))
        build_parts(path, self.client, self.keys, progress, self.connect)
        writer = GenerationWriter(path)
        writer.commit(cursor)
        self.writer, self.generation, self.cursor = writer, generation, cursor
        self.builds += 1
        self.commit_number = 0
        self._publish()
        (self.root / PROGRESS).unlink(missing_ok=True)
        for old in self.root.glob("g*"):
            if old.name != generation:
                shutil.rmtree(old, ignore_errors=True)
        log.info(
            "search index %s built from Redis in %.1f s: %d rows, %d ARNs (build %d)",
            path,
            time.monotonic() - started,
            *writer.counts(),
            self.builds,
        )

    # --- following changes ---------------------------------------------------------------------
    def follow(self, block_ms: int | None = None) -> int:
        """Apply changes appended since the cursor; a gap in the stream means a full build."""
        if self.writer is None:
            self.start()
            return 0
        events = self._read(block_ms)
        if events and self._trimmed():
            log.warning("change stream trimmed past the search index's position; rebuilding")
            self.build()
            return len(events)
        if events:
            self._apply_all(events)
        self.current = len(events) < STREAM_BATCH
        self._commit_or_publish(bool(events))
        return len(events)

    def _read(self, block_ms: int | None) -> list[tuple[str, dict[str, str]]]:
        """Up to a batch of changes past the cursor (XREAD)."""
        # Wait for changes only once caught up: until then, read what is there at once. With
        # changes waiting for their commit, wait no longer than until it is due.
        if block_ms is not None and self.uncommitted:
            due = self.committed_at + self.rebuild_seconds - time.monotonic()
            block_ms = max(1, min(block_ms, int(due * 1000)))
        found = self.client.xread(
            {self.keys.changes(): self.cursor},
            count=STREAM_BATCH,
            block=block_ms if self.current else None,
        )
        return cast(list[tuple[str, dict[str, str]]], found[0][1] if found else [])

    def _trimmed(self) -> bool:
        """Whether the stream's oldest entry is past the cursor: changes were trimmed unread."""
        first = cast(list[tuple[str, Any]], self.client.xrange(self.keys.changes(), count=1))
        return bool(first) and _before(self.cursor, first[0][0]) and self.cursor != "0-0"

    def _apply_all(self, events: list[tuple[str, dict[str, str]]]) -> None:
        """Apply a batch of changes, timing it, and move the cursor past them."""
        started, cpu = time.monotonic(), time.process_time()
        for _id, fields in events:
            self._apply(fields)
        self.applying += time.monotonic() - started
        self.applying_cpu += time.process_time() - cpu
        self.cursor = events[-1][0]
        self.uncommitted += len(events)

    def _commit_or_publish(self, had_events: bool) -> None:
        """Commit once ``rebuild_seconds`` have passed since the last; when idle and caught up,
        publish the state if it changed."""
        if self.uncommitted and time.monotonic() - self.committed_at >= self.rebuild_seconds:
            self.commit()
        elif not had_events and self.current:
            self._publish_if_changed()

    def _apply(self, fields: Mapping[str, str]) -> None:
        """One change event (see PoliciesTable.partition_changed for its fields)."""
        assert self.writer is not None
        p = Partition.parse(fields["partition"])
        added = json.loads(fields.get("added", "[]"))
        removed = json.loads(fields.get("removed", "[]"))
        if p.kind in TYPEAHEAD_POLICY_KINDS:
            policies = json.loads(fields.get("policies", "{}"))
            self.writer.put_policies((p.account_id, a, n, int(m)) for a, (n, m) in policies.items())
            self.writer.remove_policies((p.account_id, a) for a in removed)
        if p.kind not in TYPEAHEAD_SKIP:
            self.writer.remove_names(removed)
            self.writer.put_names((arn, p.kind, p.account_id) for arn in added)
        self.writer.remove_rows(json.loads(fields.get("rows_removed", "[]")))
        self.writer.put_rows(json.loads(fields.get("rows", "[]")))

    def commit(self) -> None:
        assert self.writer is not None
        started, cpu = time.monotonic(), time.process_time()
        rewritten = self.writer.commit(self.cursor)
        log.info(
            "search index %s: %d changes applied in %.2f s, committed (%d documents) in %.2f s "
            "(CPU %.2f s in all)",
            self.generation,
            self.uncommitted,
            self.applying,
            rewritten,
            time.monotonic() - started,
            self.applying_cpu + time.process_time() - cpu,
        )
        self.uncommitted = 0
        self.applying = self.applying_cpu = 0.0
        self.committed_at = time.monotonic()
        self.commit_number += 1
        self._publish()

    def _state(self) -> dict[str, Any]:
        assert self.writer is not None
        rows, names = self.writer.counts()
        return {
            "generation": self.generation,
            "commit": self.commit_number,
            "cursor": self.cursor,
            "current": self.current,
            "rows": rows,
            "arns": names,
            "builds": self.builds,
        }

    def _publish(self) -> None:
        write_json(self.root / STATE, self._state())

    def _publish_if_changed(self) -> None:
        state = read_json(self.root / STATE)
        if state is None or state.get("current") != self.current:
            self._publish()

    # --- health --------------------------------------------------------------------------------
    def sound(self) -> bool:
        """Whether the current generation still opens and ``state.json`` still names it."""
        if self.generation is None:
            return False
        state = read_json(self.root / STATE)
        if state is None or state.get("generation") != self.generation:
            return False
        try:
            generation = Generation(self.root / self.generation)
            generation.counts()
            generation.close()
        except INDEX_ERRORS:
            return False
        return True

    def tick(self, block_ms: int | None = None) -> int:
        """Follow the stream; every few seconds check the index on disk, rebuilding it if lost."""
        now = time.monotonic()
        if self.writer is not None and now - self.checked_at >= CHECK_SECONDS:
            self.checked_at = now
            if not self.sound():
                log.warning("search index %s is lost or corrupt; rebuilding it", self.root)
                self.build()
        try:
            return self.follow(block_ms)
        except INDEX_ERRORS as exc:
            log.warning("search index %s failed (%s); rebuilding it from Redis", self.root, exc)
            self.build()
            return 0

    def close(self) -> None:
        if self.writer is not None:
            with contextlib.suppress(*INDEX_ERRORS):
                self.writer.close()
            self.writer = None
