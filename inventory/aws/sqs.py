"""SQS queues of one region: ListQueues, then attributes and tags of each queue."""

from __future__ import annotations

import json
from typing import Any

from inventory.aws.listing import Listing, add_detailed
from inventory.aws.records import BadRecord, policy_document

KIND = "sqs_queue"
GONE = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "NonExistentQueue"}


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
        "created": attributes.get("CreatedTimestamp"),
        "tags": dict(raw.get("Tags") or {}),
    }


def collect_queues(client: Any, account_id: str, region: str) -> Listing:
    """Every queue of the region; a queue deleted meanwhile is left out, not an error."""
    listing = Listing()
    for url in get_queue_urls(client):
        name = url.rstrip("/").rsplit("/", 1)[-1]
        add_detailed(
            listing,
            f"queue {name}",
            f"arn:aws:sqs:{region}:{account_id}:{name}",
            lambda url=url: transform_queue(get_queue(client, url), account_id, region),
            GONE,
        )
    return listing
