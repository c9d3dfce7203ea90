"""SQS queues of one region: ListQueues, then attributes and tags of each; one queue's read-back."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from inventory.aws.errors import error_code
from inventory.aws.kind import CREATE, DELETE, RESOURCE, TAGS, EventRules, NotAChange, Target
from inventory.aws.listing import SERIAL, Detail, DetailReads, Listing, add_details, storable
from inventory.aws.records import BadRecord, iso, policy_document

KIND = "sqs_queue"
GONE = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "NonExistentQueue"}
ACTIONS = ("sqs:ListQueues", "sqs:GetQueueAttributes", "sqs:ListQueueTags", "sqs:GetQueueUrl")


def queue_name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def queue_arn(url: str, account_id: str, region: str) -> str:
    """The ARN of a queue named by its URL (any of the URL forms events use)."""
    return f"arn:aws:sqs:{region}:{account_id}:{queue_name(url)}"


def get_queue_urls(client: Any) -> list[str]:
    """ListQueues (all pages): every queue URL in the region."""
    urls: list[str] = []
    for page in client.get_paginator("list_queues").paginate(PaginationConfig={"PageSize": 1000}):
        urls.extend(page.get("QueueUrls", ()))
    return urls


def get_queue(client: Any, url: str) -> dict[str, Any]:
    """GetQueueAttributes(All) and ListQueueTags of one queue."""
    attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    queue_tags = client.list_queue_tags(QueueUrl=url).get("Tags", {})
    return {"QueueUrl": url, "Attributes": attributes, "Tags": queue_tags}


def _json_attribute(attributes: dict[str, str], name: str, what: str) -> dict[str, Any] | None:
    raw = attributes.get(name)
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise BadRecord(f"{what} is not JSON") from exc
    return value if isinstance(value, dict) else None


def transform_queue(raw: dict[str, Any], account_id: str, region: str) -> dict[str, Any]:
    """One queue record: policy, encryption, redrive and the settings that matter."""
    attributes = raw["Attributes"]
    arn = attributes["QueueArn"]
    policy = attributes.get("Policy")

    def number(name: str) -> int | None:
        return int(attributes[name]) if attributes.get(name) is not None else None

    return {
        "arn": arn,
        "kind": KIND,
        "account_id": account_id,
        "region": region,
        "name": arn.rsplit(":", 1)[-1],
        "url": raw["QueueUrl"],
        "policy": policy_document(policy, "queue policy") if policy else None,
        "kms_key": attributes.get("KmsMasterKeyId"),
        "sqs_managed_sse": attributes.get("SqsManagedSseEnabled") == "true",
        "redrive_policy": _json_attribute(attributes, "RedrivePolicy", "redrive policy"),
        "fifo": attributes.get("FifoQueue") == "true",
        "visibility_timeout": number("VisibilityTimeout"),
        "retention_seconds": number("MessageRetentionPeriod"),
        "created": iso(attributes.get("CreatedTimestamp")),
        "tags": dict(raw.get("Tags") or {}),
    }


def collect_queues(
    client: Any, account_id: str, region: str, reads: DetailReads = SERIAL
) -> Listing:
    """Every queue of the region; a queue deleted meanwhile is left out, not an error."""
    listing = Listing()
    details = (
        Detail(
            f"queue {queue_name(url)}",
            queue_arn(url, account_id, region),
            lambda url=url: transform_queue(get_queue(client, url), account_id, region),
        )
        for url in get_queue_urls(client)
    )
    add_details(listing, details, GONE, reads)
    return listing


def refresh_queue(
    client: Any,
    account_id: str,
    region: str,
    url: str,
    aspects: Collection[str],
    cached: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """A queue after its events: ListQueueTags alone for tag changes, attributes otherwise.

    Read at the URL the sweep stores (ListQueues' form): an event's URL may be another form of
    the same queue (https://queue.amazonaws.com/..., https://<region>.queue.amazonaws.com/...),
    and storing that would flip the record's ``url`` at every event and sweep.
    """
    try:
        url = _stored_url(client, account_id, url, cached)
        if cached is not None and set(aspects) == {TAGS}:
            record = {**cached, "url": url}
            record["tags"] = dict(client.list_queue_tags(QueueUrl=url).get("Tags") or {})
            return storable(record)
        raw = _read_queue(client, url, aspects, cached)
    except ClientError as exc:
        if error_code(exc) in GONE:
            return None
        raise
    return storable(transform_queue(raw, account_id, region))


def _stored_url(client: Any, account_id: str, url: str, cached: dict[str, Any] | None) -> str:
    """The cached record's URL, else GetQueueUrl's (the form ListQueues answers)."""
    if cached is not None and cached.get("url"):
        return str(cached["url"])
    found = client.get_queue_url(QueueName=queue_name(url), QueueOwnerAWSAccountId=account_id)
    return str(found["QueueUrl"])


def _read_queue(
    client: Any, url: str, aspects: Collection[str], cached: dict[str, Any] | None
) -> dict[str, Any]:
    """GetQueueAttributes alone when the cached tags still hold, else with ListQueueTags."""
    if cached is not None and TAGS not in aspects and CREATE not in aspects:
        attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
        return {"QueueUrl": url, "Attributes": attributes["Attributes"], "Tags": cached["tags"]}
    return get_queue(client, url)


def queue_owner(url: Any, region: str) -> tuple[str, str]:
    """(account, region) of a queue URL: https://sqs.<region>.amazonaws.com/<account>/<name>,
    the legacy https://<region>.queue.amazonaws.com/... and https://queue.amazonaws.com/...
    (us-east-1); a host that names no region (an endpoint override) keeps the event's."""
    if not isinstance(url, str):
        raise NotAChange("the event does not name its queue")
    parts = urlsplit(url)
    path = parts.path.strip("/").split("/")
    if len(path) != 2 or not path[0].isdigit() or not path[1]:
        raise NotAChange(f"not a queue URL: {url!r}")
    return path[0], _host_region(parts.hostname or "", region)


def _host_region(hostname: str, region: str) -> str:
    """The region a queue URL's host names (sqs.<region>.amazonaws.com, <region>.queue...,
    queue.amazonaws.com = us-east-1), else ``region``."""
    host = hostname.split(".")
    if host[:1] == ["sqs"] and len(host) > 2 and "amazonaws" in host[2:]:
        return host[1]
    if host[1:3] == ["queue", "amazonaws"]:
        return host[0]
    if host[:2] == ["queue", "amazonaws"]:
        return "us-east-1"
    return region


def _locate(
    name: str, params: Mapping[str, Any], response: Mapping[str, Any], region: str, account: str
) -> Target:
    url = params.get("queueUrl") or response.get("queueUrl")
    owner, where = queue_owner(url, region)
    return Target(url, where, owner)


EVENTS = EventRules(
    "sqs.amazonaws.com",
    {
        "CreateQueue": CREATE,
        "DeleteQueue": DELETE,
        "SetQueueAttributes": RESOURCE,
        "TagQueue": TAGS,
        "UntagQueue": TAGS,
        "AddPermission": RESOURCE,
        "RemovePermission": RESOURCE,
    },
    _locate,
)
