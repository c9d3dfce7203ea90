"""The beat scheduler: RedBeat (schedule + leader lock in Redis) that also reports its ticks."""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any

from redbeat import RedBeatScheduler

log = logging.getLogger(__name__)


class InventoryScheduler(RedBeatScheduler):
    """Only the lock holder ticks; each tick records its time and who leads, for alerting.

    Missed runs: an entry whose slot passed while no beat was running is sent once when a
    leader next ticks (not once per missed slot), then follows its schedule again. Every entry
    carries ``expires``, so a message nobody consumed in time is dropped instead of piling up.
    """

    def tick(self, *args: Any, **kwargs: Any) -> float:
        interval = float(super().tick(*args, **kwargs))
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
        return interval
