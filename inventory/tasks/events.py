"""Event-driven refresh: drain CloudTrail change events, refresh only the resources they name.

``drain_change_events`` (beat, every minute) receives the queue the EventBridge rule fills
(docs/events.md), turns each message into the resources it changed, drops duplicate event ids,
merges the events of each resource and sends ``refresh_changed_resources`` per account (at most
MAX_REFS_PER_TASK resources each); the messages are deleted only once those are sent. The
refresh (one per account at a time) reads back each resource with its kind's targeted read
(one call per changed part, in the kind's fetcher module) and stores it through
``replace_partition`` as a partial write, so an unchanged result writes nothing and every real
change lands in the history with its CloudTrail actor. An event older than our last read of
the part it changed is stale and costs no call; a delete is only applied when AWS confirms the
resource is gone.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from celery import shared_task

from inventory.aws.events import ResourceEvent
from inventory.aws.kind import CREATE, DELETE, NotAChange
from inventory.aws.listing import DetailReads
from inventory.aws.records import BadRecord
from inventory.cache.history import Cause
from inventory.cache.keys import GLOBAL, Partition
from inventory.registry import BY_KIND, parse_event
from inventory.runtime import Runtime
from inventory.tasks.accounts import account_to_sync, active_accounts
from inventory.tasks.base import AWS, InventoryTask, should_retry

log = logging.getLogger(__name__)

#: IAM is eventually consistent: a read this soon after an event may not show it yet.
READ_MARGIN_SECONDS = 5.0
#: A drain dispatches what it has received after this many messages or seconds.
FLUSH_MESSAGES, FLUSH_SECONDS = 200, 5.0
#: One refresh task reads at most this many resources (a burst makes several tasks, each
#: well inside the time limit, and one slow account does not hold all of them).
MAX_REFS_PER_TASK = 100
#: IAM is eventually consistent: a read this soon after a create may not find the resource,
#: and one after a delete may still see it. Such a read is checked again later.
SETTLE_SECONDS, RECHECK_COUNTDOWN, RECHECK_LIMIT = 30.0, 15, 3
#: Refreshes of one account run one at a time. The lock outlives the task's hard time limit
#: (a killed worker's lock expires by itself); a refresh that cannot get it in time retries.
LOCK_SECONDS, LOCK_WAIT_SECONDS = 420, 120
#: Hash field of the last read of a whole resource (create, or not cached): counts for every
#: aspect. Other fields are ``<arn>|<aspect>``, and ``<arn>`` alone is the last read of any.
WHOLE = "*"
#: What one resource's bad data raises (reported in ``failed``, the others are stored).
_BAD_DATA = (BadRecord, KeyError, TypeError, ValueError, AttributeError)
REFRESH_TASK = "inventory.refresh_changed_resources"
#: Sends a task message by name, as ``Celery.send_task`` does (the calling task's own app).
SendTask = Callable[..., Any]


def drain(runtime: Runtime, send: SendTask) -> dict[str, Any]:
    """Receive, parse, de-duplicate and dispatch; delete the messages once dispatched.

    Skipped while an ``inventory events`` consumer polls the queue: the drain is its fallback.
    """
    cfg = runtime.settings.events
    queue = runtime.event_queue()
    if queue is None:
        return {"skipped": "events.enabled is false"}
    if consumer_running(runtime):
        return {"skipped": "an `inventory events` consumer is polling the queue"}
    started = time.monotonic()
    totals = dict.fromkeys(TOTALS, 0)
    task_ids: list[str] = []
    received = 0
    # Hidden from other consumers until this drain has dispatched and deleted them.
    hidden = int(cfg.max_seconds) + 120
    batch = Batch(hidden)
    while received < cfg.max_messages and time.monotonic() - started < cfg.max_seconds:
        messages = queue.receive(cfg.max_messages - received, 0 if received else 1, hidden)
        if not messages:
            break
        received += len(messages)
        batch.add(messages)
        # A long drain sends what it has every few seconds: early events do not wait for it.
        if batch.due(FLUSH_SECONDS):
            task_ids += dispatch(runtime, send, queue, batch, totals)
            batch = Batch(hidden)
    task_ids += dispatch(runtime, send, queue, batch, totals)
    return totals | {"task_ids": task_ids}


def consumer_running(runtime: Runtime) -> bool:
    """Whether an ``inventory events`` consumer polls the queue (a recent heartbeat)."""
    return bool(runtime.event_ledger.consumers_running(time.time()))


TOTALS = ("received", "ignored", "duplicates", "not_synced", "events", "resources")
#: The counters in Redis (exporter: inventory_event_*_total) each total adds to.
COUNTERS = {
    "received": "received",
    "ignored": "dropped|not_a_change",
    "duplicates": "dropped|duplicate",
    "not_synced": "dropped|not_synced",
}


@dataclass
class Batch:
    """Messages received and not yet dispatched, and the events they hold."""

    #: How long its messages are hidden from other consumers after they were received.
    hidden: float
    receipts: list[str] = field(default_factory=list)
    events: list[tuple[ResourceEvent, float]] = field(default_factory=list)
    ignored: int = 0
    started: float = field(default_factory=time.monotonic)
    #: When its first message was received (monotonic): hidden until ``hidden`` after it.
    received_at: float = 0.0

    def add(self, messages: list[Any]) -> None:
        now = time.time()
        if messages and not self.receipts:
            self.received_at = time.monotonic()
        for message in messages:
            self.receipts.append(message.receipt)
            try:
                self.events.extend((e, now) for e in parse_event(message.body))
            except NotAChange as exc:
                self.ignored += 1
                log.info("events: ignored a message: %s", exc)
            except Exception:  # a bug of ours on one message must not stall every drain
                self.ignored += 1
                log.exception("events: cannot parse a message; deleted")

    def due(self, seconds: float) -> bool:
        """Held long enough, or enough of them, to be sent."""
        return len(self.receipts) >= FLUSH_MESSAGES or time.monotonic() - self.started >= seconds


def dispatch(
    runtime: Runtime, send: SendTask, queue: Any, batch: Batch, totals: dict[str, int]
) -> list[str]:
    """Send the refreshes of a batch's events (per account, in chunks), then delete its messages.

    In this order, so a process killed on the way loses nothing: sent, then marked seen, then
    deleted. A message that comes back after a kill is a duplicate (no call) or, killed before
    it was marked, is read back again and writes nothing the second time.
    """
    if not batch.receipts:
        return []
    fresh, duplicates = _unseen(runtime, batch)
    fresh, not_synced = _of_synced_accounts(runtime, fresh)
    by_account = refs_by_account(fresh)
    task_ids = [
        send(REFRESH_TASK, (account, chunk)).id
        for account, refs in by_account.items()
        for chunk in _chunks(refs, MAX_REFS_PER_TASK)
    ]
    runtime.event_ledger.mark_seen(
        (e.event_id for e, _ in fresh), runtime.settings.events.seen_ttl_seconds
    )
    queue.delete(batch.receipts)
    counts = {
        "received": len(batch.receipts),
        "ignored": batch.ignored,
        "duplicates": duplicates,
        "not_synced": not_synced,
        "events": len(fresh),
        "resources": sum(len(r) for r in by_account.values()),
    }
    runtime.event_ledger.count({COUNTERS[k]: v for k, v in counts.items() if k in COUNTERS})
    for name, value in counts.items():
        totals[name] += value
    return task_ids


def _of_synced_accounts(
    runtime: Runtime, events: list[tuple[ResourceEvent, float]]
) -> tuple[list[tuple[ResourceEvent, float]], int]:
    """The events of mapped ACTIVE accounts, and how many others were dropped.

    An organisation-wide rule also forwards accounts we do not sync (suspended, or not
    listed by the configured sources); an event names its account, which is no reason
    to assume a role there.
    """
    if not events:
        return events, 0
    synced = {a["id"] for a in active_accounts(runtime)}
    kept = [(e, at) for e, at in events if e.account_id in synced]
    dropped = sorted({e.account_id for e, _ in events} - synced)
    if dropped:
        log.info("events: ignored events of accounts not synced: %s", ", ".join(dropped))
    return kept, len(events) - len(kept)


def refs_by_account(
    events: list[tuple[ResourceEvent, float]],
) -> dict[str, list[dict[str, Any]]]:
    """The events merged per resource (what a refresh reads), by account."""
    by_account: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for event, received_at in events:
        ref = by_account[event.account_id].setdefault(
            event.resource,
            {
                "kind": event.kind,
                "region": event.region,
                "name": event.name,
                "aspects": [],
                "events": [],
            },
        )
        if event.aspect not in ref["aspects"]:
            ref["aspects"].append(event.aspect)
        ref["events"].append(
            {
                "time": event.event_time,
                "name": event.event_name,
                "id": event.event_id,
                "actor": event.actor,
                "received": received_at,
                "aspect": event.aspect,
            }
        )
    return {account: list(refs.values()) for account, refs in by_account.items()}


def _chunks(refs: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [refs[start : start + size] for start in range(0, len(refs), size)]


def _unseen(runtime: Runtime, batch: Batch) -> tuple[list[tuple[ResourceEvent, float]], int]:
    """Events whose id was not handled before (nor earlier in this batch), now claimed.

    A claim lasts until just before the batch's messages are visible again: a process killed
    before sending them leaves no claim behind to drop their redelivery as a duplicate.
    """
    ids = [e.event_id for e, _ in batch.events]
    ttl = int(batch.hidden - (time.monotonic() - batch.received_at)) - 1
    if ttl > 0:
        ours = runtime.event_ledger.claim(ids, ttl)
    else:  # too late to claim safely: sent again, the refresh reads again and writes nothing
        ours = set(ids) - runtime.event_ledger.seen(ids)
    taken: set[tuple[str, str]] = set()
    unique = []
    for e, received_at in batch.events:
        if e.event_id in ours and (e.event_id, e.resource) not in taken:
            taken.add((e.event_id, e.resource))
            unique.append((e, received_at))
    return unique, len(batch.events) - len(unique)


def find_cached(
    runtime: Runtime, p: Partition, ref: dict[str, Any]
) -> tuple[str, dict[str, Any] | None]:
    """The ARN and cached record an event names (principals by name: their paths vary)."""
    spec = BY_KIND[ref["kind"]]
    assert spec.arn_for is not None
    arn = spec.arn_for(ref["name"], p.account_id, p.region)
    record = runtime.redis_cache.item(p, arn)
    if record is None and spec.by_name is not None:
        found = runtime.event_ledger.find_by_name(p, spec.by_name, ref["name"])
        if found is not None:
            arn, record = found, runtime.redis_cache.item(p, found)
    return arn, record


def read_back(
    runtime: Runtime, account: dict[str, Any], ref: dict[str, Any], cached: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The resource as AWS has it now (None: confirmed gone), by its kind's targeted read."""
    spec = BY_KIND[ref["kind"]]
    if spec.refresh is None or spec.service is None:
        raise ValueError(f"no targeted refresh for {spec.kind}")
    region = ref["region"]
    client_region = runtime.settings.deployment_region if region == GLOBAL else region
    client = runtime.account_client(spec.service, account, client_region)
    return spec.refresh(client, account["id"], region, ref["name"], set(ref["aspects"]), cached)


class AccountBusy(RuntimeError):
    """Another event refresh of this account held the lock too long: retry later."""

    retryable = True


def refresh(
    runtime: Runtime, account_id: str, refs: list[dict[str, Any]], send: SendTask
) -> dict[str, Any]:
    """Read back and store each changed resource of one account, one refresh at a time.

    Each refresh merges the parts it read into the cached record: two at once would each
    start from the same record and the last to write would revert the other's part.
    """
    lock = runtime.event_ledger.account_lock(account_id, LOCK_SECONDS, LOCK_WAIT_SECONDS)
    if not lock.acquire():
        raise AccountBusy(f"another event refresh of {account_id} holds its lock")
    try:
        return Refresh(runtime, account_to_sync(runtime, account_id), send).run(refs)
    finally:
        lock.release()


@dataclass(frozen=True)
class Located:
    """A resource an event changed: what to read back, its partition, ARN and cached record."""

    ref: dict[str, Any]
    p: Partition
    arn: str
    cached: dict[str, Any] | None


@dataclass(frozen=True)
class ReadBack:
    """What one read-back found: the record (None: gone), or what it raised; ``read`` is False
    when there was nothing to read (every changed part was read after the event)."""

    started: float
    record: dict[str, Any] | None
    error: Exception | None = None
    read: bool = True


@dataclass
class Refresh:
    """One account's refresh: which resources were read, removed, stale, rechecked, failed."""

    runtime: Runtime
    account: dict[str, Any]
    send: SendTask
    upserts: dict[Partition, list[dict[str, Any]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    removals: dict[Partition, list[str]] = field(default_factory=lambda: defaultdict(list))
    causes: dict[Partition, dict[str, Cause]] = field(default_factory=lambda: defaultdict(dict))
    read_at: dict[str, float] = field(default_factory=dict)
    done: list[dict[str, Any]] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    stale: int = 0
    stale_events: int = 0
    rechecked: int = 0
    reads: dict[str, float] = field(default_factory=dict)

    def run(self, refs: list[dict[str, Any]]) -> dict[str, Any]:
        located = []
        for ref, p, arn, cached in self._located(refs):
            unread = _unread(ref, arn, self.reads)
            self.stale_events += len(ref["events"]) - len(unread["events"])
            located.append(Located(unread, p, arn, cached))
        # Each read-back names one resource: they run on a pool, as a sweep's detail reads do
        # (aws.detail_reads at once), and what each found is judged here, in order.
        with DetailReads(self.runtime.settings.aws.detail_reads) as pool:
            for item, read in zip(located, pool.map(self._read, located), strict=True):
                self.one(item, read)
        results = self.store()
        cached_at = time.time()
        lags = [cached_at - e["time"] for e in self.done]
        # From the consumer (or drain) receiving the event to the cache: our part of the lag.
        processing = [cached_at - e["received"] for e in self.done if "received" in e]
        counts = {"applied": len(self.done), "dropped|stale": self.stale_events}
        self.runtime.event_ledger.record(self.read_at, lags, counts)
        return {
            "account_id": self.account["id"],
            "resources": len(refs),
            "read": sum(1 for key in self.read_at if "|" not in key),
            "stale": self.stale,
            "rechecked": self.rechecked,
            "failed": self.failed,
            "partitions": results,
            "lags": [round(lag, 3) for lag in lags],
            "processing": [round(p, 3) for p in processing],
        }

    def _located(
        self, refs: list[dict[str, Any]]
    ) -> list[tuple[dict[str, Any], Partition, str, dict[str, Any] | None]]:
        """Each ref with its partition, ARN and cached record; our last reads of them noted."""
        located = []
        for ref in refs:
            p = Partition(ref["kind"], self.account["id"], ref["region"])
            located.append((ref, p, *find_cached(self.runtime, p, ref)))
        fields = (f"{arn}|{a}" for r, _, arn, _ in located for a in [WHOLE, *r["aspects"]])
        self.reads = self.runtime.event_ledger.last_reads(list(dict.fromkeys(fields)))
        return located

    def _read(self, item: Located) -> ReadBack:
        """One resource as AWS has it now, if an event changed it since our last read (run on
        the pool: what it raised is returned, for :meth:`one` to judge)."""
        started = time.time()
        if not item.ref["aspects"]:
            return ReadBack(started, None, read=False)
        try:
            return ReadBack(started, read_back(self.runtime, self.account, item.ref, item.cached))
        except Exception as exc:  # noqa: BLE001 - judged by one(), in the task's own thread
            return ReadBack(started, None, error=exc)

    def one(self, item: Located, read: ReadBack) -> None:
        """Note what one read-back found, or why it found nothing."""
        ref = item.ref
        if not read.read:
            self.stale += 1  # we read every part it changed after it: it is already cached
            return
        if read.error is not None:
            self._read_failed(ref, read.error)
            return
        if _unsettled(ref, read.record, read.started) and ref.get("rechecks", 0) < RECHECK_LIMIT:
            # Not stored and its read time not kept: the recheck reads it again.
            again = ref | {"rechecks": ref.get("rechecks", 0) + 1}
            self.send(REFRESH_TASK, (self.account["id"], [again]), countdown=RECHECK_COUNTDOWN)
            self.rechecked += 1
            return
        self._note(ref, item.p, item.arn, item.cached, read.record, read.started)

    def _read_failed(self, ref: dict[str, Any], exc: Exception) -> None:
        if isinstance(exc, ClientError):
            if should_retry(exc):
                raise exc  # throttled: the task retries, nothing was lost
            self._failed(ref, str(exc))
        elif isinstance(exc, _BAD_DATA):  # one malformed resource must not lose the others
            self._failed(ref, f"{type(exc).__name__}: {exc}")
        else:
            raise exc

    def _failed(self, ref: dict[str, Any], reason: str) -> None:
        self.failed[ref["name"]] = reason
        log.warning("events: cannot read %s %s: %s", ref["kind"], ref["name"], reason)

    def _note(
        self,
        ref: dict[str, Any],
        p: Partition,
        arn: str,
        cached: dict[str, Any] | None,
        record: dict[str, Any] | None,
        started: float,
    ) -> None:
        key = record["arn"] if record is not None else arn
        self.read_at[key] = started  # the Store's guard against an older sweep: any aspect
        whole = cached is None or record is None or CREATE in ref["aspects"]
        for aspect in [WHOLE] if whole else ref["aspects"]:
            self.read_at[f"{key}|{aspect}"] = started
        self.done.extend(ref["events"])
        newest = max(ref["events"], key=lambda e: e["time"])
        cause = Cause(newest["actor"], newest["name"], newest["time"], newest["id"])
        if record is not None:
            self.upserts[p].append(record)
            self.causes[p][record["arn"]] = cause
        if cached is not None and (record is None or record["arn"] != arn):
            # Gone, or moved: a new path (UpdateUser/UpdateGroup newPath) is a new ARN.
            self.removals[p].append(arn)
            self.causes[p][arn] = cause

    def store(self) -> dict[str, dict[str, int]]:
        """Each touched partition, as a partial write (nothing else in it is touched)."""
        results = {}
        for p in self.upserts.keys() | self.removals.keys():
            result = self.runtime.store.replace_partition(
                p.kind,
                p.account_id,
                p.region,
                self.upserts.get(p, []),
                complete=False,
                remove=self.removals.get(p, []),
                partial=True,
                causes=self.causes[p],
            )
            results[p.id] = {
                "created": result.created,
                "updated": result.updated,
                "removed": result.removed,
                "dynamo_writes": result.dynamo_writes,
            }
        return results


def _unread(ref: dict[str, Any], arn: str, reads: dict[str, float]) -> dict[str, Any]:
    """The ref narrowed to the aspects changed after our last read of them.

    An event older than our last read of its aspect (less the margin for IAM's eventual
    consistency) is already reflected. A read of one aspect says nothing of another: an
    attach read at 12:00:30 does not cover an inline policy changed at 12:00:00.
    """
    whole = reads.get(f"{arn}|{WHOLE}", 0.0)
    unread = []
    for aspect in ref["aspects"]:
        # Events queued before events carried their aspect count for every aspect.
        times = [e["time"] for e in ref["events"] if e.get("aspect", aspect) == aspect]
        last_read = max(whole, reads.get(f"{arn}|{aspect}", 0.0))
        if not times or last_read - READ_MARGIN_SECONDS <= max(times):
            unread.append(aspect)
    events = [e for e in ref["events"] if e.get("aspect") in unread or "aspect" not in e]
    return ref | {"aspects": unread, "events": events}


def _unsettled(ref: dict[str, Any], record: dict[str, Any] | None, read_at: float) -> bool:
    """True when an eventually consistent read contradicts a create or delete younger than
    SETTLE_SECONDS (IAM may not show a new role yet, or still show a deleted one)."""
    if not BY_KIND[ref["kind"]].eventually_consistent:
        return False
    lifecycle = [e for e in ref["events"] if e.get("aspect") in (CREATE, DELETE)]
    if not lifecycle:
        return False
    last = max(lifecycle, key=lambda e: e["time"])
    if read_at - last["time"] >= SETTLE_SECONDS:
        return False
    return (last["aspect"] == CREATE) == (record is None)


@shared_task(
    bind=True,
    base=InventoryTask,
    name="inventory.drain_change_events",
    routing_queue=AWS,
    active_only=True,
    soft_time_limit=120,
    time_limit=150,
)
def drain_change_events(self: InventoryTask) -> dict[str, Any]:
    """Drain CloudTrail change events from SQS; send one targeted refresh per account."""
    return drain(self.runtime, self.app.send_task)


@shared_task(
    bind=True,
    base=InventoryTask,
    name=REFRESH_TASK,
    routing_queue=AWS,
    per_account=True,
    active_only=True,
    soft_time_limit=300,
    time_limit=360,
)
def refresh_changed_resources(
    self: InventoryTask, account_id: str, refs: list[dict[str, Any]]
) -> dict[str, Any]:
    """Read back the resources events named in one account; store what changed."""
    return refresh(self.runtime, account_id, refs, self.app.send_task)
