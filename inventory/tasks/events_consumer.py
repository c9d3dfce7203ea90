"""``inventory events``: long-poll the change-event queue and dispatch as messages arrive.

The beat drain (:func:`inventory.tasks.events.drain`) receives once a minute; this consumer
waits on ReceiveMessage (WaitTimeSeconds=20, SQS's longest) and so receives each message as it
arrives. What it receives goes through the drain's own :class:`Batch` and :func:`dispatch`
(de-duplication, accounts not synced, merging per resource, refresh tasks on the ``aws`` queue,
then delete), so both keep one behaviour. Every poll that works records a heartbeat in Redis: while
one is fresh the beat drain skips (:func:`~inventory.tasks.events.consumer_running`).

Several consumers may run at once: SQS hides a received message from the others for
``events.visibility_seconds``, and the event ids already handled are dropped. A consumer
killed before deleting what it received loses nothing: SQS delivers it again once hidden time
is over.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from inventory.aws.event_queue import EventQueue
from inventory.liveness import touch
from inventory.runtime import Runtime
from inventory.tasks.events import TOTALS, Batch, SendTask, dispatch

log = logging.getLogger(__name__)

#: ReceiveMessage waits this long for a message (SQS's maximum) and returns as one arrives.
POLL_SECONDS = 20
#: SQS returns at most this many messages per receive.
RECEIVE_MAX = 10
#: What a consumer holds is sent after this long even while the queue still has more (a burst).
FLUSH_SECONDS = 1.0
#: The heartbeat in Redis is written at most this often.
HEARTBEAT_SECONDS = 5.0
#: A consumer silent this long is forgotten by the others (it was killed and not restarted
#: under its name; its alert had time to fire).
FORGET_SECONDS = 3600.0
#: After a failed receive or dispatch (SQS or Redis unreachable), wait before the next poll.
ERROR_PAUSE_SECONDS = 5.0


class Interrupted(BaseException):
    """SIGTERM or SIGINT during a long poll: stop waiting; anything that poll got comes back."""


@dataclass
class Consumer:
    """One consumer process: poll, dispatch, repeat until stopped."""

    runtime: Runtime
    send: SendTask
    name: str
    heartbeat_file: str | None = None
    totals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TOTALS, 0))
    stopping: bool = False
    waiting: bool = False
    last_beat: float = 0.0

    @property
    def hidden(self) -> int:
        return self.runtime.settings.events.visibility_seconds

    def stop(self, *_: Any) -> None:
        """The signal handler: finish the batch in hand, abandon a long poll in progress."""
        self.stopping = True
        if self.waiting:
            self.waiting = False
            raise Interrupted

    def run(self, queue: EventQueue) -> dict[str, int]:
        """Poll and dispatch until :meth:`stop`; the heartbeat is removed on the way out."""
        batch = Batch(self.hidden)
        self._beat()
        try:
            while not self.stopping:
                batch = self._next(queue, batch)
        except Interrupted:
            pass
        finally:
            dispatch(self.runtime, self.send, queue, batch, self.totals)
            self.runtime.event_ledger.consumer_stopped(self.name)
        return self.totals

    def _next(self, queue: EventQueue, batch: Batch) -> Batch:
        """One poll; the batch still held after it (a new one once dispatched)."""
        try:
            return self._poll(queue, batch)
        except Exception:  # SQS or Redis unreachable: retry; the messages come back by themselves
            log.exception(
                "events: consumer failed; what it held is delivered again after %ss",
                self.hidden,
            )
            self._pause(ERROR_PAUSE_SECONDS)
            return Batch(self.hidden)

    def _poll(self, queue: EventQueue, batch: Batch) -> Batch:
        # Holding messages: only pick up what is already there, then send them.
        wait = 0 if batch.receipts else POLL_SECONDS
        self.waiting = True
        try:
            messages = queue.receive(RECEIVE_MAX, wait, self.hidden)
        finally:
            self.waiting = False
        self._beat()  # after a receive that worked: a consumer SQS refuses goes stale
        batch.add(messages)
        # An unfilled receive means the queue is empty for now: send at once.
        if batch.receipts and (len(messages) < RECEIVE_MAX or batch.due(FLUSH_SECONDS)):
            dispatch(self.runtime, self.send, queue, batch, self.totals)
            return Batch(self.hidden)
        return batch

    def _beat(self) -> None:
        now = time.time()
        if now - self.last_beat < HEARTBEAT_SECONDS:
            return
        self.runtime.event_ledger.consumer_polled(self.name, now, now - FORGET_SECONDS)
        if self.heartbeat_file:
            touch(self.heartbeat_file)
        self.last_beat = now

    def _pause(self, seconds: float) -> None:
        self.waiting = True
        try:
            time.sleep(seconds)
        finally:
            self.waiting = False
