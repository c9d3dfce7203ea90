"""Heartbeat files: each long-running process proves it still works by touching one.

A container health check (`inventory health`) then reads a file's age instead of asking the
broker: ``celery inspect ping`` needs a broadcast the SQS transport does not have. What touches
the file is the loop that does the work, so a stuck loop goes stale:

* worker: a timer in the consumer's event loop (:class:`ConsumerHeartbeat`);
* beat: every tick of the leader; a standby, blocked on the leader lock by design, from a
  thread that stops once it leads (:class:`InventoryScheduler`);
* web: a Tornado periodic callback; exporter: the loop that watches its HTTP server thread.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from celery import bootsteps

log = logging.getLogger(__name__)


def touch(path: str | os.PathLike[str]) -> None:
    """Set the file's modification time to now (creating it); a failure is logged, not raised."""
    try:
        Path(path).touch()
    except OSError as exc:
        log.warning("cannot touch the heartbeat file %s: %s", path, exc)


def age(path: str | os.PathLike[str], now: float | None = None) -> float | None:
    """Seconds since the file was last touched, or None when it does not exist."""
    try:
        modified = Path(path).stat().st_mtime
    except FileNotFoundError:
        return None
    return (time.time() if now is None else now) - modified


class ConsumerHeartbeat(bootsteps.StartStopStep):
    """A worker consumer step touching ``health.heartbeat_path`` from the consumer's own timer."""

    requires = ("celery.worker.consumer.connection:Connection",)

    def __init__(self, c: Any, **kwargs: Any) -> None:
        health = c.app.runtime.settings.health
        self.path = health.heartbeat_path
        self.interval = health.interval_seconds
        self.tref: Any = None
        super().__init__(c, **kwargs)

    def start(self, c: Any) -> None:
        if self.path is None:
            return
        touch(self.path)
        self.tref = c.timer.call_repeatedly(self.interval, touch, (self.path,), priority=10)

    def stop(self, c: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None
