"""CloudTrail write events (EventBridge -> SQS) turned into the resources they changed.

The EventBridge rule (docs/events.md) forwards "AWS API Call via CloudTrail" events of IAM, S3,
SQS and SNS write calls. Each becomes a :class:`ResourceEvent`: which cached resource changed
(kind, account, region, name) and which part of it (``aspect``), so the refresh can make the
one call that reads that part back.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from inventory.cache.keys import GLOBAL, IAM_GROUP, IAM_POLICY, IAM_ROLE, IAM_USER

S3_BUCKET, SQS_QUEUE, SNS_TOPIC = "s3_bucket", "sqs_queue", "sns_topic"

# Aspects: what part of a resource an event changed, i.e. which call reads it back.
CREATE, DELETE, RESOURCE, ATTACHED, GROUPS = "create", "delete", "resource", "attached", "groups"
POLICY, TAGS = "policy", "tags"
INLINE = "inline:"  # + the inline policy's name

_ROLE = {
    "CreateRole": CREATE,
    "DeleteRole": DELETE,
    "UpdateRole": RESOURCE,
    "UpdateRoleDescription": RESOURCE,
    "UpdateAssumeRolePolicy": RESOURCE,
    "PutRolePermissionsBoundary": RESOURCE,
    "DeleteRolePermissionsBoundary": RESOURCE,
    "TagRole": RESOURCE,
    "UntagRole": RESOURCE,
    "PutRolePolicy": INLINE,
    "DeleteRolePolicy": INLINE,
    "AttachRolePolicy": ATTACHED,
    "DetachRolePolicy": ATTACHED,
}
_USER = {
    "CreateUser": CREATE,
    "DeleteUser": DELETE,
    "UpdateUser": RESOURCE,
    "PutUserPermissionsBoundary": RESOURCE,
    "DeleteUserPermissionsBoundary": RESOURCE,
    "TagUser": RESOURCE,
    "UntagUser": RESOURCE,
    "PutUserPolicy": INLINE,
    "DeleteUserPolicy": INLINE,
    "AttachUserPolicy": ATTACHED,
    "DetachUserPolicy": ATTACHED,
    "AddUserToGroup": GROUPS,
    "RemoveUserFromGroup": GROUPS,
}
_GROUP = {
    "CreateGroup": CREATE,
    "DeleteGroup": DELETE,
    "UpdateGroup": RESOURCE,
    "PutGroupPolicy": INLINE,
    "DeleteGroupPolicy": INLINE,
    "AttachGroupPolicy": ATTACHED,
    "DetachGroupPolicy": ATTACHED,
}
_POLICY = {
    "CreatePolicy": CREATE,
    "DeletePolicy": DELETE,
    "CreatePolicyVersion": RESOURCE,
    "DeletePolicyVersion": RESOURCE,
    "SetDefaultPolicyVersion": RESOURCE,
}
_BUCKET = {
    "CreateBucket": CREATE,
    "DeleteBucket": DELETE,
    "PutBucketPolicy": POLICY,
    "DeleteBucketPolicy": POLICY,
    "PutBucketTagging": TAGS,
    "DeleteBucketTagging": TAGS,
}
_QUEUE = {
    "CreateQueue": CREATE,
    "DeleteQueue": DELETE,
    "SetQueueAttributes": RESOURCE,
    "TagQueue": TAGS,
    "UntagQueue": TAGS,
    "AddPermission": RESOURCE,
    "RemovePermission": RESOURCE,
}
_TOPIC = {
    "CreateTopic": CREATE,
    "DeleteTopic": DELETE,
    "SetTopicAttributes": RESOURCE,
    "TagResource": TAGS,
    "UntagResource": TAGS,
    "AddPermission": RESOURCE,
    "RemovePermission": RESOURCE,
}
#: Every event name the EventBridge rule should forward, by event source.
EVENT_NAMES: dict[str, tuple[str, ...]] = {
    "iam.amazonaws.com": tuple(sorted({*_ROLE, *_USER, *_GROUP, *_POLICY})),
    "s3.amazonaws.com": tuple(sorted(_BUCKET)),
    "sqs.amazonaws.com": tuple(sorted(_QUEUE)),
    "sns.amazonaws.com": tuple(sorted(_TOPIC)),
}


class NotAChange(ValueError):
    """A message that names no cached resource change (malformed, failed call, other event)."""


@dataclass(frozen=True)
class ResourceEvent:
    """One changed resource, as one CloudTrail event says."""

    kind: str
    account_id: str
    region: str  # the partition's region: GLOBAL for IAM and S3
    name: str  # role/user/group name, policy ARN, bucket name, queue URL or topic ARN
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


def parse_event(body: str) -> list[ResourceEvent]:
    """The resources one SQS message body (an EventBridge envelope) changed.

    Raises NotAChange for anything else: not JSON, not a CloudTrail API call, a call that
    failed (``errorCode``), an event we do not follow, one missing what names the resource, or
    one naming a resource of another account. Never raises anything else: one odd message
    (``[[[[...`` nested past the recursion limit) must not stall every drain.
    """
    try:
        return _parse(body)
    except NotAChange:
        raise
    except Exception as exc:  # any message we cannot read is not a change
        raise NotAChange(f"unreadable message: {type(exc).__name__}: {exc}") from exc


def _parse(body: str) -> list[ResourceEvent]:
    try:
        envelope = json.loads(body)
        detail = envelope["detail"]
        name = detail["eventName"]
        source = detail["eventSource"]
        when = parse_time(detail["eventTime"])
        event_id = str(detail.get("eventID") or envelope.get("id") or "")
        account = str(detail.get("recipientAccountId") or envelope["account"])
        region = detail.get("awsRegion") or envelope.get("region") or "us-east-1"
        params = detail.get("requestParameters") or {}
        response = detail.get("responseElements") or {}
        actor = _actor(detail.get("userIdentity") or {})
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise NotAChange(f"not a CloudTrail event: {exc}") from exc
    if detail.get("errorCode"):
        raise NotAChange(f"{name} failed ({detail['errorCode']}): nothing changed")
    if not event_id:
        raise NotAChange(f"{name} has no event id")

    def event(kind: str, where: str, resource: str, aspect: str) -> ResourceEvent:
        if not isinstance(resource, str) or not resource:
            raise NotAChange(f"{name} does not name its resource")
        return ResourceEvent(kind, account, where, resource, aspect, name, when, event_id, actor)

    try:
        if source == "iam.amazonaws.com":
            return _iam(name, account, params, response, event)
        if source == "s3.amazonaws.com" and name in _BUCKET:
            return [event(S3_BUCKET, GLOBAL, params["bucketName"], _BUCKET[name])]
        if source == "sqs.amazonaws.com" and name in _QUEUE:
            url = params.get("queueUrl") or response.get("queueUrl")
            owner, where = _queue_owner(url, region)
            _same_account(name, owner, account)
            return [event(SQS_QUEUE, where, url, _QUEUE[name])]
        if source == "sns.amazonaws.com" and name in _TOPIC:
            arn = params.get("topicArn") or params.get("resourceArn") or response.get("topicArn")
            owner, where = _topic_owner(arn)
            _same_account(name, owner, account)
            return [event(SNS_TOPIC, where, arn, _TOPIC[name])]
    except (KeyError, TypeError, AttributeError) as exc:
        raise NotAChange(f"{name} does not name its resource: {exc}") from exc
    raise NotAChange(f"{source} {name} is not an event we follow")


def _same_account(name: str, owner: str, recipient: str) -> None:
    # A call on another account's queue or topic (their policy allowed it) is recorded here
    # too; its owner's own CloudTrail has it when the owner is one of ours. Refreshing it
    # under this account would cache a resource this account does not own.
    if owner != recipient:
        raise NotAChange(f"{name} names a resource of account {owner}, not {recipient}")


def _queue_owner(url: Any, region: str) -> tuple[str, str]:
    """(account, region) of a queue URL: https://sqs.<region>.amazonaws.com/<account>/<name>,
    the legacy https://<region>.queue.amazonaws.com/... and https://queue.amazonaws.com/...
    (us-east-1); a host that names no region (an endpoint override) keeps the event's."""
    if not isinstance(url, str):
        raise NotAChange("the event does not name its queue")
    parts = urlsplit(url)
    path = parts.path.strip("/").split("/")
    if len(path) != 2 or not path[0].isdigit() or not path[1]:
        raise NotAChange(f"not a queue URL: {url!r}")
    host = (parts.hostname or "").split(".")
    if host[:1] == ["sqs"] and len(host) > 2 and "amazonaws" in host[2:]:
        region = host[1]
    elif host[1:3] == ["queue", "amazonaws"]:
        region = host[0]
    elif host[:2] == ["queue", "amazonaws"]:
        region = "us-east-1"
    return path[0], region


def _topic_owner(arn: Any) -> tuple[str, str]:
    """(account, region) of a topic ARN arn:aws:sns:<region>:<account>:<name>."""
    parts = arn.split(":") if isinstance(arn, str) else []
    if len(parts) != 6 or parts[2] != "sns" or not parts[3] or not parts[4] or not parts[5]:
        raise NotAChange(f"not a topic ARN: {arn!r}")
    return parts[4], parts[3]


def _iam(
    name: str,
    account: str,
    params: dict[str, Any],
    response: dict[str, Any],
    event: Callable[[str, str, str, str], ResourceEvent],
) -> list[ResourceEvent]:
    def aspect(table: dict[str, str]) -> str:
        value = table[name]
        return INLINE + params["policyName"] if value == INLINE else value

    found: list[ResourceEvent] = []
    if name in _ROLE:
        found.append(event(IAM_ROLE, GLOBAL, params["roleName"], aspect(_ROLE)))
    elif name in _USER:
        # Group membership is on the user's record (groups hold no member list).
        found.append(event(IAM_USER, GLOBAL, params["userName"], aspect(_USER)))
    elif name in _GROUP:
        found.append(event(IAM_GROUP, GLOBAL, params["groupName"], aspect(_GROUP)))
    elif name in _POLICY:
        arn = params.get("policyArn") or (response.get("policy") or {}).get("arn")
        if not isinstance(arn, str) or arn.split(":")[4:5] != [account]:
            raise NotAChange(f"{name} names no customer managed policy of {account}: {arn!r}")
        found.append(event(IAM_POLICY, GLOBAL, arn, _POLICY[name]))
    else:
        raise NotAChange(f"iam {name} is not an event we follow")
    # Attaching changes the customer managed policy's attachment count too.
    policy_arn = params.get("policyArn")
    if found[0].aspect == ATTACHED and isinstance(policy_arn, str):
        if policy_arn.split(":")[4:5] == [account]:  # not AWS managed, nor another account's
            found.append(event(IAM_POLICY, GLOBAL, policy_arn, RESOURCE))
    return found
