"""SNS topics of one region: ListTopics, then attributes and tags of each; one topic's read-back."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from botocore.exceptions import ClientError

from inventory.aws.errors import error_code
from inventory.aws.kind import CREATE, DELETE, RESOURCE, TAGS, EventRules, NotAChange, Target
from inventory.aws.listing import SERIAL, Detail, DetailReads, Listing, add_details, storable
from inventory.aws.records import policy_document, tags

KIND = "sns_topic"
# GetTopicAttributes says NotFound; ListTagsForResource says ResourceNotFound of a deleted topic.
GONE = {"NotFound", "NotFoundException", "ResourceNotFound"}
ACTIONS = ("sns:ListTopics", "sns:GetTopicAttributes", "sns:ListTagsForResource")


def topic_arn(arn: str, account_id: str = "", region: str = "") -> str:
    """Topics are named by their ARN, in listings and events alike."""
    return arn


def get_topic_arns(client: Any) -> list[str]:
    """ListTopics (all pages): every topic ARN in the region."""
    arns: list[str] = []
    for page in client.get_paginator("list_topics").paginate():
        arns.extend(t["TopicArn"] for t in page.get("Topics", ()))
    return arns


def get_topic(client: Any, arn: str) -> dict[str, Any]:
    """GetTopicAttributes and ListTagsForResource of one topic."""
    attributes = client.get_topic_attributes(TopicArn=arn)["Attributes"]
    topic_tags = client.list_tags_for_resource(ResourceArn=arn).get("Tags", [])
    return {"TopicArn": arn, "Attributes": attributes, "Tags": topic_tags}


def transform_topic(raw: dict[str, Any], account_id: str, region: str) -> dict[str, Any]:
    """One topic record. Subscription counts change constantly and are left out on purpose."""
    arn = raw["TopicArn"]
    attributes = raw["Attributes"]
    policy = attributes.get("Policy")
    return {
        "arn": arn,
        "kind": KIND,
        "account_id": account_id,
        "region": region,
        "name": arn.rsplit(":", 1)[-1],
        "display_name": attributes.get("DisplayName") or None,
        "policy": policy_document(policy, "topic policy") if policy else None,
        "kms_key": attributes.get("KmsMasterKeyId"),
        "fifo": attributes.get("FifoTopic") == "true",
        "tags": tags(raw.get("Tags")),
    }


def collect_topics(
    client: Any, account_id: str, region: str, reads: DetailReads = SERIAL
) -> Listing:
    """Every topic of the region; a topic deleted meanwhile is left out, not an error."""
    listing = Listing()
    details = (
        Detail(
            f"topic {arn}",
            arn,
            lambda arn=arn: transform_topic(get_topic(client, arn), account_id, region),
        )
        for arn in get_topic_arns(client)
    )
    add_details(listing, details, GONE, reads)
    return listing


def refresh_topic(
    client: Any,
    account_id: str,
    region: str,
    arn: str,
    aspects: Collection[str],
    cached: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """A topic after its events: ListTagsForResource alone for tag changes, attributes else."""
    try:
        if cached is not None and set(aspects) == {TAGS}:
            record = dict(cached)
            record["tags"] = tags(client.list_tags_for_resource(ResourceArn=arn).get("Tags"))
            return storable(record)
        if cached is not None and TAGS not in aspects and CREATE not in aspects:
            attributes = client.get_topic_attributes(TopicArn=arn)["Attributes"]
            tag_list = [{"Key": k, "Value": v} for k, v in (cached.get("tags") or {}).items()]
            raw = {"TopicArn": arn, "Attributes": attributes, "Tags": tag_list}
        else:
            raw = get_topic(client, arn)
    except ClientError as exc:
        if error_code(exc) in GONE:
            return None
        raise
    return storable(transform_topic(raw, account_id, region))


def topic_owner(arn: Any) -> tuple[str, str]:
    """(account, region) of a topic ARN arn:aws:sns:<region>:<account>:<name>."""
    parts = arn.split(":") if isinstance(arn, str) else []
    if len(parts) != 6 or parts[2] != "sns" or not parts[3] or not parts[4] or not parts[5]:
        raise NotAChange(f"not a topic ARN: {arn!r}")
    return parts[4], parts[3]


def _locate(
    name: str, params: Mapping[str, Any], response: Mapping[str, Any], region: str, account: str
) -> Target:
    arn = params.get("topicArn") or params.get("resourceArn") or response.get("topicArn")
    owner, where = topic_owner(arn)
    return Target(arn, where, owner)


EVENTS = EventRules(
    "sns.amazonaws.com",
    {
        "CreateTopic": CREATE,
        "DeleteTopic": DELETE,
        "SetTopicAttributes": RESOURCE,
        "TagResource": TAGS,
        "UntagResource": TAGS,
        "AddPermission": RESOURCE,
        "RemovePermission": RESOURCE,
    },
    _locate,
)
