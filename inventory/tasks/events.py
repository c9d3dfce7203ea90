"""Event-driven refresh: drain CloudTrail change events, refresh only the resources they name.

``drain_change_events`` (beat, every minute) receives the queue the EventBridge rule fills
(docs/events.md), turns each message into the resources it changed, drops duplicate event ids,
merges the events of each resource and sends ``refresh_changed_resources`` per account (at most
MAX_REFS_PER_TASK resources each); the messages are deleted only once those are sent. The
refresh (one per account at a time) reads back each resource with one call per changed part
(inventory/aws/targeted.py) and stores it through ``replace_partition`` as a partial write,
so an unchanged result writes nothing and every real change lands in the history with its
CloudTrail actor. An event older than our last read of the part it changed is
stale and costs no call; a delete is only applied when AWS confirms the resource is gone.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError
from celery import shared_task

from inventory.aws.events import (
    CREATE,
    DELETE,
    S3_BUCKET,
    SNS_TOPIC,
    SQS_QUEUE,
    NotAChange,
    ResourceEvent,
    parse_event,
)
from inventory.aws.records import BadRecord
from inventory.aws.targeted import (
    refresh_bucket,
    refresh_policy,
    refresh_principal,
    refresh_queue,
    refresh_topic,
)
from inventory.cache.history import Cause
from inventory.cache.keys import IAM_GROUP, IAM_POLICY, IAM_ROLE, IAM_USER, Partition
from inventory.metrics import EVENT_LAG_BUCKETS
from inventory.runtime import Runtime
from inventory.tasks.accounts import account_to_sync, active_accounts
from inventory.tasks.base import InventoryTask, should_retry

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
_PATH_SEGMENT = {IAM_ROLE: "role", IAM_USER: "user", IAM_GROUP: "group"}
REFRESH_TASK = "inventory.refresh_changed_resources"
#: Sends a task message by name, as ``Celery.send_task`` does (the calling task's own app).
SendTask = Callable[..., Any]


def drain(runtime: Runtime, send: SendTask) -> dict[str, Any]:
    """Receive, parse, de-duplicate and dispatch; delete the messages once dispatched."""
    settings = runtime.settings
    cfg = settings.events
    if not cfg.enabled or not cfg.queue_url:
        return {"skipped": "events.enabled is false"}
    client = runtime.aws.hub_client("sqs", cfg.queue_region or settings.active_region)
    started = time.monotonic()
    totals = {
        "received": 0,
        "ignored": 0,
        "duplicates": 0,
        "not_synced": 0,
        "events": 0,
        "resources": 0,
    }
    task_ids: list[str] = []
    handles: list[str] = []
    events: list[tuple[ResourceEvent, float]] = []
    flushed = time.monotonic()
    # Hidden from other consumers until this drain has dispatched and deleted them.
    hidden = int(cfg.max_seconds) + 120
    while totals["received"] < cfg.max_messages and time.monotonic() - started < cfg.max_seconds:
        batch = client.receive_message(
            QueueUrl=cfg.queue_url,
            MaxNumberOfMessages=min(10, cfg.max_messages - totals["received"]),
            WaitTimeSeconds=1 if not totals["received"] else 0,
            VisibilityTimeout=hidden,
        ).get("Messages", [])
        if not batch:
            break
        now = time.time()
        for message in batch:
            totals["received"] += 1
            handles.append(message["ReceiptHandle"])
            try:
                events.extend((e, now) for e in parse_event(message["Body"]))
            except NotAChange as exc:
                totals["ignored"] += 1
                log.info("events: ignored a message: %s", exc)
            except Exception:  # a bug of ours on one message must not stall every drain
                totals["ignored"] += 1
                log.exception("events: cannot parse a message; deleted")
        # A long drain sends what it has every few seconds: early events do not wait for it.
        if len(handles) >= FLUSH_MESSAGES or time.monotonic() - flushed >= FLUSH_SECONDS:
            task_ids += _dispatch(runtime, send, client, cfg.queue_url, handles, events, totals)
            handles, events, flushed = [], [], time.monotonic()
    task_ids += _dispatch(runtime, send, client, cfg.queue_url, handles, events, totals)
    return totals | {"task_ids": task_ids}


def _dispatch(
    runtime: Runtime,
    send: SendTask,
    client: Any,
    queue_url: str,
    handles: list[str],
    events: list[tuple[ResourceEvent, float]],
    totals: dict[str, int],
) -> list[str]:
    """Send the refreshes of these events (per account, in chunks), then delete their messages."""
    fresh, duplicates = _unseen(runtime, events)
    fresh, not_synced = _of_synced_accounts(runtime, fresh)
    by_account = refs_by_account(fresh)
    task_ids = [
        send(REFRESH_TASK, (account, chunk)).id
        for account, refs in by_account.items()
        for chunk in _chunks(refs, MAX_REFS_PER_TASK)
    ]
    _mark_seen(runtime, fresh)
    for start in range(0, len(handles), 10):
        entries = [
            {"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(handles[start : start + 10])
        ]
        client.delete_message_batch(QueueUrl=queue_url, Entries=entries)
    totals["duplicates"] += duplicates
    totals["not_synced"] += not_synced
    totals["events"] += len(fresh)
    totals["resources"] += sum(len(r) for r in by_account.values())
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


def _unseen(
    runtime: Runtime, events: list[tuple[ResourceEvent, float]]
) -> tuple[list[tuple[ResourceEvent, float]], int]:
    """Events whose id was not handled before (nor earlier in this batch)."""
    ids = list(dict.fromkeys(e.event_id for e, _ in events))
    pipe = runtime.redis.pipeline(transaction=False)
    for event_id in ids:
        pipe.exists(runtime.keys.event_seen(event_id))
    seen = {i for i, found in zip(ids, pipe.execute(), strict=True) if found}
    taken: set[tuple[str, str]] = set()
    unique = []
    for e, received_at in events:
        if e.event_id not in seen and (e.event_id, e.resource) not in taken:
            taken.add((e.event_id, e.resource))
            unique.append((e, received_at))
    return unique, len(events) - len(unique)


def _mark_seen(runtime: Runtime, events: list[tuple[ResourceEvent, float]]) -> None:
    ttl = runtime.settings.events.seen_ttl_seconds
    pipe = runtime.redis.pipeline(transaction=False)
    for event_id in {e.event_id for e, _ in events}:
        pipe.set(runtime.keys.event_seen(event_id), 1, ex=ttl)
    pipe.execute()


def find_cached(
    runtime: Runtime, p: Partition, ref: dict[str, Any]
) -> tuple[str, dict[str, Any] | None]:
    """The cached record an event names (roles, users and groups by name: paths vary)."""
    kind, name, account = ref["kind"], ref["name"], p.account_id
    if kind in _PATH_SEGMENT:
        segment = _PATH_SEGMENT[kind]
        arn = f"arn:aws:iam::{account}:{segment}/{name}"
        record = runtime.redis_cache.item(p, arn)
        if record is None:
            suffix = f":{segment}/"
            arn = next(
                (
                    a
                    for a in runtime.redis.hkeys(runtime.keys.hashes(p))
                    if suffix in a and a.rsplit("/", 1)[-1] == name
                ),
                arn,
            )
            record = runtime.redis_cache.item(p, arn)
        return arn, record
    if kind == S3_BUCKET:
        arn = f"arn:aws:s3:::{name}"
    elif kind == SQS_QUEUE:
        arn = f"arn:aws:sqs:{p.region}:{account}:{name.rstrip('/').rsplit('/', 1)[-1]}"
    else:  # policies and topics are named by their ARN
        arn = name
    return arn, runtime.redis_cache.item(p, arn)


def read_back(
    runtime: Runtime, account: dict[str, Any], ref: dict[str, Any], cached: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The resource as AWS has it now (None: confirmed gone)."""
    kind, name, aspects = ref["kind"], ref["name"], set(ref["aspects"])
    account_id = account["id"]
    if kind in (IAM_ROLE, IAM_USER, IAM_GROUP, IAM_POLICY):
        client = runtime.account_client("iam", account, runtime.settings.deployment_region)
        if kind == IAM_POLICY:
            return refresh_policy(client, account_id, name, cached)
        return refresh_principal(client, kind, account_id, name, aspects, cached)
    if kind == S3_BUCKET:
        client = runtime.account_client("s3", account, runtime.settings.deployment_region)
        return refresh_bucket(client, account_id, name, aspects, cached)
    if kind == SQS_QUEUE:
        client = runtime.account_client("sqs", account, ref["region"])
        return refresh_queue(client, account_id, ref["region"], name, aspects, cached)
    if kind == SNS_TOPIC:
        client = runtime.account_client("sns", account, ref["region"])
        return refresh_topic(client, account_id, ref["region"], name, aspects, cached)
    raise ValueError(f"no targeted refresh for {kind}")


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
    lock = runtime.redis.lock(
        runtime.keys.event_lock(account_id),
        timeout=LOCK_SECONDS,
        blocking_timeout=LOCK_WAIT_SECONDS,
    )
    if not lock.acquire():
        raise AccountBusy(f"another event refresh of {account_id} holds its lock")
    try:
        return _refresh(runtime, account_id, refs, send)
    finally:
        lock.release()


def _refresh(
    runtime: Runtime, account_id: str, refs: list[dict[str, Any]], send: SendTask
) -> dict[str, Any]:
    account = account_to_sync(runtime, account_id)
    located = []
    for ref in refs:
        p = Partition(ref["kind"], account_id, ref["region"])
        located.append((ref, p, *find_cached(runtime, p, ref)))
    reads = _last_reads(runtime, [(arn, ref["aspects"]) for ref, _, arn, _ in located])
    upserts: dict[Partition, list[dict[str, Any]]] = defaultdict(list)
    removals: dict[Partition, list[str]] = defaultdict(list)
    causes: dict[Partition, dict[str, Cause]] = defaultdict(dict)
    read_at: dict[str, float] = {}
    stale, rechecked, failed = 0, 0, {}
    done: list[dict[str, Any]] = []
    for ref, p, arn, cached in located:
        ref = _unread(ref, arn, reads)
        if not ref["aspects"]:
            stale += 1  # we read every part it changed after it: it is already cached
            continue
        started = time.time()
        try:
            record = read_back(runtime, account, ref, cached)
        except ClientError as exc:
            if should_retry(exc):
                raise  # throttled: the task retries, nothing was lost
            failed[ref["name"]] = str(exc)
            log.warning("events: cannot read %s %s: %s", ref["kind"], ref["name"], exc)
            continue
        except _BAD_DATA as exc:  # one malformed resource must not lose the others
            failed[ref["name"]] = f"{type(exc).__name__}: {exc}"
            log.warning("events: cannot read %s %s: %s", ref["kind"], ref["name"], exc)
            continue
        if _unsettled(ref, record, started) and ref.get("rechecks", 0) < RECHECK_LIMIT:
            # Not stored and its read time not kept: the recheck reads it again.
            again = ref | {"rechecks": ref.get("rechecks", 0) + 1}
            send(REFRESH_TASK, (account_id, [again]), countdown=RECHECK_COUNTDOWN)
            rechecked += 1
            continue
        key = record["arn"] if record is not None else arn
        read_at[key] = started  # the Store's guard against an older sweep: any aspect
        whole = cached is None or record is None or CREATE in ref["aspects"]
        for aspect in [WHOLE] if whole else ref["aspects"]:
            read_at[f"{key}|{aspect}"] = started
        done.extend(ref["events"])
        newest = max(ref["events"], key=lambda e: e["time"])
        cause = Cause(newest["actor"], newest["name"], newest["time"], newest["id"])
        if record is not None:
            upserts[p].append(record)
            causes[p][record["arn"]] = cause
        elif cached is not None:
            removals[p].append(arn)
            causes[p][arn] = cause
    results = {}
    for p in upserts.keys() | removals.keys():
        result = runtime.store.replace_partition(
            p.kind,
            account_id,
            p.region,
            upserts.get(p, []),
            complete=False,
            remove=removals.get(p, []),
            partial=True,
            causes=causes[p],
        )
        results[p.id] = {
            "created": result.created,
            "updated": result.updated,
            "removed": result.removed,
            "dynamo_writes": result.dynamo_writes,
        }
    cached_at = time.time()
    lags = [cached_at - e["time"] for e in done]
    # From the drain receiving the event to the cache: our part of the lag.
    processing = [cached_at - e["received"] for e in done if "received" in e]
    _record(runtime, read_at, lags)
    return {
        "account_id": account_id,
        "resources": len(refs),
        "read": sum(1 for key in read_at if "|" not in key),
        "stale": stale,
        "rechecked": rechecked,
        "failed": failed,
        "partitions": results,
        "lags": [round(lag, 3) for lag in lags],
        "processing": [round(p, 3) for p in processing],
    }


def _last_reads(runtime: Runtime, wanted: list[tuple[str, list[str]]]) -> dict[str, float]:
    """Our last read of each resource's aspects (and of the whole resource), by hash field."""
    fields = list(dict.fromkeys(f"{arn}|{a}" for arn, aspects in wanted for a in [WHOLE, *aspects]))
    if not fields:
        return {}
    values = runtime.redis.hmget(runtime.keys.event_applied(), fields)
    return {f: float(v) for f, v in zip(fields, values, strict=True) if v is not None}


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
    """True when an IAM read contradicts a create or delete younger than SETTLE_SECONDS."""
    if ref["kind"] not in (IAM_ROLE, IAM_USER, IAM_GROUP, IAM_POLICY):
        return False
    lifecycle = [e for e in ref["events"] if e.get("aspect") in (CREATE, DELETE)]
    if not lifecycle:
        return False
    last = max(lifecycle, key=lambda e: e["time"])
    if read_at - last["time"] >= SETTLE_SECONDS:
        return False
    return (last["aspect"] == CREATE) == (record is None)


def _record(runtime: Runtime, read_at: dict[str, float], lags: list[float]) -> None:
    """When each resource was last read, and each event's lag into the histogram."""
    pipe = runtime.redis.pipeline(transaction=False)
    if read_at:
        pipe.hset(runtime.keys.event_applied(), mapping=read_at)
    for lag in lags:
        for bound in EVENT_LAG_BUCKETS:
            if lag <= bound:
                pipe.hincrby(runtime.keys.event_lag(), f"{bound:g}", 1)
        pipe.hincrby(runtime.keys.event_lag(), "+Inf", 1)
        pipe.hincrbyfloat(runtime.keys.event_lag(), "sum", lag)
    pipe.execute()


@shared_task(
    bind=True,
    base=InventoryTask,
    name="inventory.drain_change_events",
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
