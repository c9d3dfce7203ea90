"""The indexer as a child process of a web process: started when no indexer holds the lock."""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import time
from multiprocessing.process import BaseProcess
from pathlib import Path

import redis

from inventory.settings import Settings
from inventory.web.search_build import die_with_parent
from inventory.web.search_indexer import Indexer, IndexLock

log = logging.getLogger("inventory.web.search")


def run_indexer(settings: Settings, root: str, parent: int) -> None:
    """Hold the lock and keep the index current until the parent web process goes away."""
    from inventory.cache.keys import Keys
    from inventory.cache.redis_cache import connect
    from inventory.observability import setup_logging

    die_with_parent()
    # Started as a daemon (so the web process stops it when it exits) but it starts the two
    # processes of a full build itself, which multiprocessing allows only non-daemons.
    multiprocessing.current_process().daemon = False
    setup_logging(settings)
    lock = IndexLock(Path(root))
    if not lock.acquire(wait_seconds=3.0):
        return  # another web process's indexer has it
    # Only Redis: not the whole Runtime (boto3 and friends would double the start-up time).
    client = connect(settings.redis.url, settings.redis.socket_timeout)
    web = settings.web
    keys = Keys(settings.redis.key_prefix)
    reconnect = functools.partial(connect, settings.redis.url, settings.redis.socket_timeout)
    indexer = Indexer(Path(root), client, keys, web.search_rebuild_seconds, connect=reconnect)
    block_ms = max(1, int(web.search_sync_seconds * 1000))
    log.info("search indexer %d started for %s", os.getpid(), root)
    while os.getppid() == parent:
        try:
            indexer.tick(block_ms)
        except redis.RedisError as exc:
            log.warning("search index not updated: %s", exc)
            time.sleep(web.search_sync_seconds)
    indexer.close()


def start_indexer(settings: Settings, root: Path) -> BaseProcess:
    """Start an indexer child (spawned: nothing of the web process's state is inherited)."""
    context = multiprocessing.get_context("spawn")
    process = context.Process(
        target=run_indexer,
        args=(settings, str(root), os.getpid()),
        name="search-indexer",
        daemon=True,
    )
    process.start()
    return process
