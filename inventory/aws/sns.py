"""SNS topics of one region: ListTopics, then attributes and tags of each topic."""

from __future__ import annotations

from typing import Any

from inventory.aws.listing import Listing, add_detailed
from inventory.aws.records import policy_document, tags

KIND = "sns_topic"
GONE = {"NotFound", "NotFoundException"}


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


def collect_topics(client: Any, account_id: str, region: str) -> Listing:
    """Every topic of the region; a topic deleted meanwhile is left out, not an error."""
    listing = Listing()
    for arn in get_topic_arns(client):
        add_detailed(
            listing,
            f"topic {arn}",
            arn,
            lambda arn=arn: transform_topic(get_topic(client, arn), account_id, region),
            GONE,
        )
    return listing
