"""CloudTrail write events (EventBridge -> SQS) turned into the resources they changed.

The EventBridge rule (docs/events.md) forwards "AWS API Call via CloudTrail" events of the write
calls every followed kind declares (:class:`~inventory.aws.kind.EventRules`, in its fetcher
module). Each becomes a :class:`ResourceEvent`: which cached resource changed (kind, account,
region, name) and which part of it (``aspect``), so the refresh can make the one call that reads
that part back.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from inventory.aws.kind import CREATE, DELETE, INLINE, EventRules, NotAChange


@dataclass(frozen=True)
class ResourceEvent:
    """One changed resource, as one CloudTrail event says."""

    kind: str
    account_id: str
    region: str  # the partition's region: GLOBAL for global kinds
    name: str  # as events name it: role name, policy ARN, bucket name, queue URL, topic ARN...
    aspect: str
    event_name: str
    event_time: float
    event_id: str
    actor: str | None

    @property
    def resource(self) -> str:
        """The key events of the same resource share (de-duplication, ordering)."""
        return f"{self.kind}|{self.account_id}|{self.region}|{self.name}"


def parse_time(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _actor(identity: dict[str, Any]) -> str | None:
    arn = identity.get("arn")
    if identity.get("type") == "AssumedRole":
        issuer = (identity.get("sessionContext") or {}).get("sessionIssuer") or {}
        if issuer.get("arn") and arn:
            return f"{arn} (role {issuer['arn']})"
    return arn or identity.get("principalId") or identity.get("invokedBy")


@dataclass(frozen=True)
class _Call:
    """The fields of one CloudTrail event the kinds' rules read."""

    name: str
    source: str
    time: float
    event_id: str
    account: str
    region: str
    params: dict[str, Any]
    response: dict[str, Any]
    actor: str | None


def _call(body: str) -> _Call:
    try:
        envelope = json.loads(body)
        detail = envelope["detail"]
        call = _fields(envelope, detail)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise NotAChange(f"not a CloudTrail event: {exc}") from exc
    if detail.get("errorCode"):
        raise NotAChange(f"{call.name} failed ({detail['errorCode']}): nothing changed")
    if not call.event_id:
        raise NotAChange(f"{call.name} has no event id")
    return call


def _fields(envelope: dict[str, Any], detail: dict[str, Any]) -> _Call:
    """The fields the rules read, from the CloudTrail record or else its EventBridge envelope."""
    return _Call(
        name=detail["eventName"],
        source=detail["eventSource"],
        time=parse_time(detail["eventTime"]),
        event_id=str(detail.get("eventID") or envelope.get("id") or ""),
        account=str(detail.get("recipientAccountId") or envelope["account"]),
        region=detail.get("awsRegion") or envelope.get("region") or "us-east-1",
        params=detail.get("requestParameters") or {},
        response=detail.get("responseElements") or {},
        actor=_actor(detail.get("userIdentity") or {}),
    )


class EventParser:
    """Turns a message into the resources it changed, by the rules of every followed kind."""

    def __init__(self, rules: Sequence[tuple[str, EventRules]]) -> None:
        self.rules = list(rules)

    def names(self) -> dict[str, tuple[str, ...]]:
        """Every event name the EventBridge rule should forward, by event source."""
        by_source: dict[str, set[str]] = {}
        for _, rules in self.rules:
            by_source.setdefault(rules.source, set()).update(rules.aspects)
        return {source: tuple(sorted(names)) for source, names in sorted(by_source.items())}

    def parse(self, body: str) -> list[ResourceEvent]:
        """The resources one SQS message body (an EventBridge envelope) changed.

        Raises NotAChange for anything else: not JSON, not a CloudTrail API call, a call that
        failed (``errorCode``), an event we do not follow, one missing what names the resource,
        or one naming a resource of another account. Never raises anything else: one odd
        message (``[[[[...`` nested past the recursion limit) must not stall every drain.
        """
        try:
            return self._parse(body)
        except NotAChange:
            raise
        except Exception as exc:  # any message we cannot read is not a change
            raise NotAChange(f"unreadable message: {type(exc).__name__}: {exc}") from exc

    def _parse(self, body: str) -> list[ResourceEvent]:
        call = _call(body)
        found: list[ResourceEvent] = []
        reasons: list[str] = []
        for kind, rules in self.rules:
            if rules.source != call.source or call.name not in rules.aspects:
                continue
            try:
                found.extend(self._events(kind, rules, call))
            except NotAChange as exc:
                reasons.append(str(exc))
            except (KeyError, TypeError, AttributeError) as exc:
                reasons.append(f"{call.name} does not name its resource: {exc}")
        if found:
            return found
        if reasons:
            raise NotAChange("; ".join(reasons))
        raise NotAChange(f"{call.source} {call.name} is not an event we follow")

    @staticmethod
    def _events(kind: str, rules: EventRules, call: _Call) -> list[ResourceEvent]:
        target = rules.locate(call.name, call.params, call.response, call.region, call.account)
        if not isinstance(target.name, str) or not target.name:
            raise NotAChange(f"{call.name} does not name its resource")
        # A call on another account's queue or topic (their policy allowed it) is recorded
        # here too; its owner's own CloudTrail has it when the owner is one of ours.
        # Refreshing it under this account would cache a resource this account does not own.
        if target.owner is not None and target.owner != call.account:
            raise NotAChange(
                f"{call.name} names a resource of account {target.owner}, not {call.account}"
            )
        aspect = rules.aspects[call.name]
        if aspect == INLINE:
            aspect = INLINE + call.params["policyName"]

        def event(name: str, aspect: str) -> ResourceEvent:
            return ResourceEvent(
                kind, call.account, target.region, name, aspect,
                call.name, call.time, call.event_id, call.actor,
            )  # fmt: skip

        if target.renamed_to and target.renamed_to != target.name:
            # The old name is gone (removed once a read confirms it), the new one read in full.
            return [event(target.name, DELETE), event(target.renamed_to, CREATE)]
        return [event(target.name, aspect)]
