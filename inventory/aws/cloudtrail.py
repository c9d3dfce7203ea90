"""CloudTrail error events (AccessDenied and friends) from SQS or LookupEvents, by principal ARN."""

from __future__ import annotations

import copy
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

KIND = "cloudtrail_errors"
MAX_EVENT_IDS = 50
SQS_BATCH = 10  # ReceiveMessage and DeleteMessageBatch take at most 10


@dataclass
class ErrorEvent:
    """One failed API call."""

    event_id: str
    time: float
    principal_arn: str
    account_id: str
    error_code: str
    error_message: str | None
    action: str
    resources: list[str]
    region: str


class EventSource(Protocol):
    bad_messages: int

    def fetch(self) -> tuple[list[ErrorEvent], list[str]]: ...

    def ack(self, receipt_handles: list[str]) -> None: ...


class AckFailed(RuntimeError):
    """SQS refused to delete some messages; they will be delivered again."""


def _unix(stamp: str) -> float:
    parsed = datetime.fromisoformat(stamp)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def principal_arn(identity: dict[str, Any]) -> str | None:
    """The IAM ARN that made the call; for an assumed role, the role rather than the session."""
    if identity.get("type") == "AssumedRole":
        issuer = (identity.get("sessionContext") or {}).get("sessionIssuer") or {}
        if issuer.get("arn"):
            return str(issuer["arn"])  # keeps the role's path, which the session ARN lacks
        arn = identity.get("arn")
        if not arn or ":assumed-role/" not in arn:
            return str(arn) if arn else None
        # arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION -> arn:aws:iam::ACCOUNT:role/ROLE
        prefix, _, resource = arn.partition(":assumed-role/")
        partition, account = prefix.split(":")[1], prefix.split(":")[4]
        return f"arn:{partition}:iam::{account}:role/{resource.split('/')[0]}"
    arn = identity.get("arn")
    return str(arn) if arn else None


def parse_cloudtrail_record(detail: dict[str, Any]) -> ErrorEvent | None:
    """An ErrorEvent from one CloudTrail record; None if it succeeded or had no IAM principal."""
    code = detail.get("errorCode")
    if not code:
        return None
    arn = principal_arn(detail["userIdentity"])
    if arn is None:
        return None  # AWS service principals: nothing in our inventory to attach the error to
    source = detail["eventSource"].removesuffix(".amazonaws.com")
    return ErrorEvent(
        event_id=detail["eventID"],
        time=_unix(detail["eventTime"]),
        principal_arn=arn,
        account_id=arn.split(":")[4] or detail["recipientAccountId"],
        error_code=code,
        error_message=detail.get("errorMessage"),
        action=f"{source}:{detail['eventName']}",
        resources=[r["ARN"] for r in detail.get("resources") or () if r.get("ARN")],
        region=detail["awsRegion"],
    )


class SqsEventSource:
    """EventBridge "AWS API Call via CloudTrail" events delivered to an SQS queue."""

    def __init__(self, client: Any, queue_url: str, max_messages: int = 1000) -> None:
        self.client = client
        self.queue_url = queue_url
        self.max_messages = max_messages
        self.bad_messages = 0

    def fetch(self) -> tuple[list[ErrorEvent], list[str]]:
        """ReceiveMessage until empty: error events, and every receipt handle (bad ones too)."""
        self.bad_messages = 0
        events: list[ErrorEvent] = []
        handles: list[str] = []
        while len(handles) < self.max_messages:
            # Short polling may answer empty while messages remain; the next run takes them.
            response = self.client.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(SQS_BATCH, self.max_messages - len(handles)),
                WaitTimeSeconds=0,
            )
            messages = response.get("Messages") or []
            if not messages:
                break
            for message in messages:
                handles.append(message["ReceiptHandle"])
                try:
                    event = parse_cloudtrail_record(json.loads(message["Body"])["detail"])
                except (ValueError, KeyError, TypeError, AttributeError, IndexError):
                    # A poison message is deleted with the rest so it cannot block the queue.
                    self.bad_messages += 1
                    continue
                if event is not None:
                    events.append(event)
        return events, handles

    def ack(self, receipt_handles: list[str]) -> None:
        """DeleteMessageBatch in chunks of 10; raises AckFailed if SQS refused any."""
        unique = list(dict.fromkeys(receipt_handles))
        failed: list[dict[str, Any]] = []
        for start in range(0, len(unique), SQS_BATCH):
            chunk = unique[start : start + SQS_BATCH]
            response = self.client.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(chunk)],
            )
            failed.extend(response.get("Failed") or ())
        if failed:
            codes = sorted({str(f.get("Code")) for f in failed})
            raise AckFailed(f"{len(failed)} messages not deleted: {', '.join(codes)}")


class LookupEventsSource:
    """CloudTrail LookupEvents over the last ``lookback_seconds``; nothing to acknowledge."""

    def __init__(
        self,
        client: Any,
        lookback_seconds: float = 3600,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.lookback_seconds = lookback_seconds
        self.now = now
        self.bad_messages = 0

    def fetch(self) -> tuple[list[ErrorEvent], list[str]]:
        """LookupEvents (all pages) between now - lookback and now: the error events."""
        self.bad_messages = 0
        end = self.now()
        # LookupAttributes cannot filter on errorCode, so every event is read and filtered here.
        pages = self.client.get_paginator("lookup_events").paginate(
            StartTime=datetime.fromtimestamp(end - self.lookback_seconds, UTC),
            EndTime=datetime.fromtimestamp(end, UTC),
            PaginationConfig={"PageSize": 50},
        )
        events: list[ErrorEvent] = []
        for page in pages:
            for raw in page.get("Events", ()):
                try:
                    event = parse_cloudtrail_record(json.loads(raw["CloudTrailEvent"]))
                except (ValueError, KeyError, TypeError, AttributeError, IndexError):
                    self.bad_messages += 1
                    continue
                if event is not None:
                    events.append(event)
        return events, []

    def ack(self, receipt_handles: list[str]) -> None:
        """Nothing to do: LookupEvents reads history without consuming it."""


def _top(counts: Counter[str], top: int) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:top])


def _counts(
    record: dict[str, Any], events: list[ErrorEvent]
) -> tuple[Counter[str], Counter[str], Counter[str]]:
    """The record's error codes, actions and resources, with the new events counted in."""
    codes = Counter(record.get("error_codes") or {})
    actions = Counter(record.get("actions") or {})
    resources = Counter(record.get("resources") or {})
    for event in events:
        codes[event.error_code] += 1
        actions[event.action] += 1
        resources.update(set(event.resources))
    return codes, actions, resources


def _merge(
    record: dict[str, Any] | None, principal: str, events: list[ErrorEvent], top: int
) -> dict[str, Any]:
    record = record or {}
    codes, actions, resources = _counts(record, events)
    seen = [e.time for e in events] + [record[k] for k in ("first_seen", "last_seen") if record]
    newest_first = sorted(events, key=lambda e: (-e.time, e.event_id))
    earlier = record.get("event_ids") or []
    return {
        "arn": principal,
        "kind": KIND,
        "account_id": record.get("account_id") or events[0].account_id,
        "count": int(record.get("count") or 0) + len(events),
        "error_codes": _top(codes, top),
        "actions": _top(actions, top),
        "resources": _top(resources, top),
        "first_seen": min(seen),
        "last_seen": max(seen),
        "event_ids": [*(e.event_id for e in newest_first), *earlier][:MAX_EVENT_IDS],
    }


def aggregate(
    existing: dict[str, dict[str, Any]],
    events: Iterable[ErrorEvent],
    now: float,
    retention_seconds: float,
    top: int = 5,
) -> dict[str, dict[str, Any]]:
    """Error records by principal ARN: ``existing`` with ``events`` counted in, old ones dropped.

    An event whose id is among a record's last ``MAX_EVENT_IDS`` ids is not counted again, so a
    redelivered batch changes nothing. Top-N maps of merged records are approximate.
    """
    cutoff = now - retention_seconds
    fresh: dict[str, list[ErrorEvent]] = {}
    seen: set[str] = set()
    for event in events:
        known = (existing.get(event.principal_arn) or {}).get("event_ids") or ()
        if event.time < cutoff or event.event_id in seen or event.event_id in known:
            continue
        seen.add(event.event_id)
        fresh.setdefault(event.principal_arn, []).append(event)
    result: dict[str, dict[str, Any]] = {}
    for principal in sorted({*existing, *fresh}):
        if principal in fresh:
            record = _merge(existing.get(principal), principal, fresh[principal], top)
        else:
            record = copy.deepcopy(existing[principal])
        if record["last_seen"] >= cutoff:
            result[principal] = record
    return result
