"""The web tier's copy of the access index: built from Redis, rebuilt when partitions change.

A daemon thread checks every ``refresh_seconds`` whether any IAM, resource, AWS managed policy
or account partition changed (one pipelined read of their ``changed_at``), reloads only the
partitions that did, and swaps in a new immutable :class:`AccessIndex`. Requests read whichever
snapshot is current and run in an executor, never on the event loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

import redis

from inventory.analysis.access import AccessIndex, build_index
from inventory.cache.keys import (
    ACCOUNT,
    ALL_ACCOUNTS,
    AWS_MANAGED_POLICY,
    GLOBAL,
    IAM_KINDS,
    Partition,
)
from inventory.cache.redis_cache import RedisCache
from inventory.registry import RESOURCE_POLICY_KINDS

log = logging.getLogger(__name__)

KINDS = frozenset({*IAM_KINDS, *RESOURCE_POLICY_KINDS, AWS_MANAGED_POLICY, ACCOUNT})


class AccessReader:
    """Holds the current :class:`AccessIndex` and keeps it in step with the cache."""

    def __init__(
        self, cache: RedisCache, refresh_seconds: float = 15.0, recheck_seconds: float = 2.0
    ) -> None:
        self.cache = cache
        self.refresh_seconds = refresh_seconds
        self.recheck_seconds = recheck_seconds
        self.index: AccessIndex | None = None
        self.built_at: float | None = None
        self.checked_at = 0.0
        self._loaded: dict[Partition, tuple[float, dict[str, dict[str, Any]]]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _changed_at(self) -> dict[Partition, float]:
        partitions = [p for p in self.cache.partitions() if p.kind in KINDS]
        pipe = self.cache.client.pipeline(transaction=False)
        for p in partitions:
            pipe.hget(self.cache.keys.meta(p), "changed_at")
        values = pipe.execute()
        return {p: float(v) for p, v in zip(partitions, values, strict=True) if v is not None}

    def refresh(self, wait: bool = True) -> bool:
        """Rebuild the index if any partition it reads changed; True when it did.

        ``wait=False``: when another refresh is under way, return False at once instead.
        """
        if not self._lock.acquire(blocking=wait):
            return False
        try:
            return self._refresh()
        finally:
            self._lock.release()

    def _refresh(self) -> bool:
        current = self._changed_at()
        self.checked_at = time.monotonic()
        if self.index is not None and {p: at for p, (at, _) in self._loaded.items()} == current:
            return False
        loaded = {}
        for p, at in current.items():
            previous = self._loaded.get(p)
            items = previous[1] if previous and previous[0] == at else self.cache.items(p)
            loaded[p] = (at, items)
        self._loaded = loaded
        self.index = self._build(loaded)
        self.built_at = time.time()
        return True

    def _build(self, loaded: Mapping[Partition, tuple[float, dict[str, Any]]]) -> AccessIndex:
        accounts: dict[str, dict[str, dict[str, Any]]] = {}
        aws: dict[str, Any] = {}
        org: set[str] = set()
        for p, (_, items) in loaded.items():
            if p.kind == AWS_MANAGED_POLICY:
                aws.update({a: r["document"] for a, r in items.items() if r.get("document")})
            elif p == Partition(ACCOUNT, ALL_ACCOUNTS, GLOBAL):
                org.update(str(r["id"]) for r in items.values() if r.get("id"))
            elif p.kind != ACCOUNT:
                accounts.setdefault(p.account_id, {}).setdefault(p.kind, {}).update(items)
        generation = str(max((at for at, _ in loaded.values()), default=0.0))
        return build_index(accounts, aws, org | set(accounts), generation)

    def current(self) -> AccessIndex | None:
        return self.index

    def checked(self) -> AccessIndex | None:
        """The index, first brought up to date unless checked under ``recheck_seconds`` ago.

        For a lookup that missed: the principal may be newer than the last periodic rebuild (a
        demo opened the moment its first sweep ends). ``recheck_seconds`` bounds the Redis reads
        and rebuilds any number of such lookups cause; a failed read keeps the current index.
        """
        if time.monotonic() - self.checked_at >= self.recheck_seconds:
            try:
                self.refresh(wait=False)  # a rebuild under way: no request queues behind it
            except redis.RedisError as exc:
                log.warning("access index: cannot read Redis: %s", exc)
        return self.index

    def start(self) -> AccessReader:
        """Load now (errors logged, retried by the thread), then keep refreshing in a thread."""
        try:
            self.refresh()
        except redis.RedisError as exc:
            log.warning("access index: cannot read Redis yet: %s", exc)
        self._thread = threading.Thread(target=self._run, name="access-index", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.refresh_seconds):
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 - keep serving the last index; try again later
                log.exception("access index: refresh failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
