"""The beat scheduler: RedBeat (schedule + leader lock in Redis) that also reports its ticks."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from typing import Any

import redis
from redbeat import RedBeatScheduler

log = logging.getLogger(__name__)
REDIS_RETRY_SECONDS = 1.0


class InventoryScheduler(RedBeatScheduler):
    """Only the lock holder ticks; each tick records its time and who leads, for alerting.

    Missed runs: an entry whose slot passed while no beat was running is sent once when a
    leader next ticks (not once per missed slot), then follows its schedule again. Every entry
    carries ``expires``, so a message nobody consumed in time is dropped instead of piling up.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        runtime = getattr(self.app, "runtime", None)
        health = runtime.settings.health if runtime is not None else None
        self.heartbeat_file = health.heartbeat_path if health is not None else None
        if self.heartbeat_file and health is not None:
            # A standby waits on the leader lock (RedBeat's beat_init) by design: alive, idle.
            threading.Thread(
                target=self._standby_heartbeat,
                args=(health.interval_seconds,),
                name="beat-standby-heartbeat",
                daemon=True,
            ).start()

    def update_from_dict(self, dict_: dict[str, Any]) -> None:
        """Store the entries; an ``at_start`` one Redis has never held is due at the first tick
        (RedBeat would first send a new entry one interval after now)."""
        from redbeat.schedulers import get_redis

        from inventory.schedule import at_start_entries

        client = get_redis(self.app)
        keys = {name: self.Entry.generate_key(self.app, name) for name in dict_}
        fresh = [n for n in at_start_entries() & set(dict_) if not client.exists(keys[n])]
        super().update_from_dict(dict_)
        for name in fresh:
            with client.pipeline() as pipe:
                pipe.hset(keys[name], "meta", json.dumps({"last_run_at": None}))
                pipe.zadd(self.app.redbeat_conf.schedule_key, {keys[name]: time.time()})
                pipe.execute()
            log.info("beat: %s has never run: sent at the first tick", name)

    def _standby_heartbeat(self, interval: float) -> None:
        """Touch the heartbeat file until this beat leads; then each tick does."""
        from inventory.liveness import touch

        while getattr(self, "lock", None) is None:
            touch(self.heartbeat_file)  # type: ignore[arg-type]
            time.sleep(interval)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        try:
            interval = float(super().tick(*args, **kwargs))
        except redis.exceptions.LockError:
            # The lock lapsed (an outage outlasted lock_timeout, or Redis came back empty):
            # take it again if nobody else did, else wait as a standby. Never send unlocked.
            return self._reacquire()
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError) as exc:
            # Celery's beat loop dies on any exception from tick(): wait for Redis instead.
            log.warning("beat: Redis unavailable, retrying in %ss: %s", REDIS_RETRY_SECONDS, exc)
            return REDIS_RETRY_SECONDS
        runtime = getattr(self.app, "runtime", None)
        if runtime is not None:
            try:
                keys = runtime.keys
                pipe = runtime.redis.pipeline(transaction=False)
                pipe.set(keys.beat_last_tick(), time.time())
                pipe.set(keys.beat_leader(), f"{socket.gethostname()}:{os.getpid()}")
                pipe.execute()
            except Exception:  # noqa: BLE001 - bookkeeping must never stop the scheduler
                log.exception("could not record the beat tick")
        if self.heartbeat_file:
            from inventory.liveness import touch

            touch(self.heartbeat_file)
        return interval

    def _reacquire(self) -> float:
        """Try to hold the beat lock again; the next tick sends only if this succeeded."""
        lock = self.lock
        try:
            if lock is not None and lock.acquire(blocking=False):
                log.warning("beat: lock lost and acquired again")
                return 0.0
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError) as exc:
            log.warning("beat: Redis unavailable while taking the lock: %s", exc)
            return REDIS_RETRY_SECONDS
        log.info("beat: lock held by another scheduler; standing by")
        return float(self.max_interval)
