"""SNS topics: transform on raw SNS answers, refresh_topic's calls (Stubber), CloudTrail events."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from inventory.aws import sns
from inventory.aws.events import ResourceEvent
from inventory.aws.kind import CREATE, DELETE, RESOURCE, TAGS, NotAChange
from inventory.aws.listing import Listing
from inventory.aws.records import BadRecord, SkippedRecord
from inventory.registry import parse_event
from tests.aws.stubbed import (
    ACCOUNT,
    ALICE,
    OTHER_ACCOUNT,
    Call,
    api_call,
    client,
    error,
    event_id,
    event_time,
    run,
)

REGION = "us-east-1"
ALERTS_ARN = f"arn:aws:sns:us-east-1:{ACCOUNT}:alerts"
ORDERS_ARN = f"arn:aws:sns:us-east-1:{ACCOUNT}:orders.fifo"
KMS_KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"

# --- raw SNS answers (as boto3 returns them: every attribute is a string) -----------------------


def default_policy(arn: str) -> dict[str, Any]:
    """The policy SNS gives every new topic."""
    return {
        "Version": "2008-10-17",
        "Id": "__default_policy_ID",
        "Statement": [
            {
                "Sid": "__default_statement_ID",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": [
                    "SNS:GetTopicAttributes",
                    "SNS:SetTopicAttributes",
                    "SNS:AddPermission",
                    "SNS:RemovePermission",
                    "SNS:DeleteTopic",
                    "SNS:Subscribe",
                    "SNS:ListSubscriptionsByTopic",
                    "SNS:Publish",
                ],
                "Resource": arn,
                "Condition": {"StringEquals": {"AWS:SourceOwner": ACCOUNT}},
            }
        ],
    }


PUBLISH_FROM_PARTNER = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "partner-publish",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"},
            "Action": "SNS:Publish",
            "Resource": ALERTS_ARN,
        }
    ],
}
DELIVERY_POLICY = {
    "http": {
        "defaultHealthyRetryPolicy": {
            "minDelayTarget": 20,
            "maxDelayTarget": 20,
            "numRetries": 3,
            "numMaxDelayRetries": 0,
            "numNoDelayRetries": 0,
            "numMinDelayRetries": 0,
            "backoffFunction": "linear",
        },
        "disableSubscriptionOverrides": False,
        "defaultRequestPolicy": {"headerContentType": "text/plain; charset=UTF-8"},
    }
}
ALERTS_ATTRIBUTES = {
    "Policy": json.dumps(default_policy(ALERTS_ARN), separators=(",", ":")),
    "Owner": ACCOUNT,
    "SubscriptionsPending": "0",
    "KmsMasterKeyId": KMS_KEY,
    "TopicArn": ALERTS_ARN,
    "EffectiveDeliveryPolicy": json.dumps(DELIVERY_POLICY, separators=(",", ":")),
    "SubscriptionsConfirmed": "2",
    "DisplayName": "Alerts",
    "SubscriptionsDeleted": "0",
}
GET_ALERTS_ATTRIBUTES = {"Attributes": ALERTS_ATTRIBUTES}
# A FIFO topic without a display name (SNS answers ""), encryption or tags.
GET_ORDERS_ATTRIBUTES = {
    "Attributes": {
        "Policy": json.dumps(default_policy(ORDERS_ARN), separators=(",", ":")),
        "Owner": ACCOUNT,
        "SubscriptionsPending": "0",
        "TopicArn": ORDERS_ARN,
        "EffectiveDeliveryPolicy": json.dumps(DELIVERY_POLICY, separators=(",", ":")),
        "SubscriptionsConfirmed": "0",
        "FifoTopic": "true",
        "ContentBasedDeduplication": "false",
        "DisplayName": "",
        "SubscriptionsDeleted": "0",
    }
}
LIST_ALERTS_TAGS = {"Tags": [{"Key": "team", "Value": "ops"}, {"Key": "cost-center", "Value": ""}]}
LIST_NEW_ALERTS_TAGS = {"Tags": [{"Key": "team", "Value": "platform"}]}
LIST_NO_TAGS: dict[str, Any] = {"Tags": []}

RAW_ALERTS = {
    "TopicArn": ALERTS_ARN,
    "Attributes": ALERTS_ATTRIBUTES,
    "Tags": LIST_ALERTS_TAGS["Tags"],
}
RAW_ORDERS = {"TopicArn": ORDERS_ARN, "Attributes": GET_ORDERS_ATTRIBUTES["Attributes"], "Tags": []}

EXPECTED_ALERTS = {
    "arn": ALERTS_ARN,
    "kind": "sns_topic",
    "account_id": ACCOUNT,
    "region": REGION,
    "name": "alerts",
    "display_name": "Alerts",
    "policy": default_policy(ALERTS_ARN),
    "kms_key": KMS_KEY,
    "fifo": False,
    "tags": {"team": "ops", "cost-center": ""},
}
EXPECTED_ORDERS = {
    "arn": ORDERS_ARN,
    "kind": "sns_topic",
    "account_id": ACCOUNT,
    "region": REGION,
    "name": "orders.fifo",
    "display_name": None,
    "policy": default_policy(ORDERS_ARN),
    "kms_key": None,
    "fifo": True,
    "tags": {},
}


def cached_alerts() -> dict[str, Any]:
    return copy.deepcopy(EXPECTED_ALERTS)


def with_attributes(**changed: Any) -> dict[str, Any]:
    """RAW_ALERTS with some attributes changed (None: the attribute is absent)."""
    attributes = {k: v for k, v in {**ALERTS_ATTRIBUTES, **changed}.items() if v is not None}
    return {**RAW_ALERTS, "Attributes": attributes}


# --- transform -----------------------------------------------------------------------------------


def test_transform_topic_maps_every_field_leaving_subscription_counts_out() -> None:
    assert sns.transform_topic(RAW_ALERTS, ACCOUNT, REGION) == EXPECTED_ALERTS


def test_fifo_topic_without_display_name_or_key_has_nones_not_empty_strings() -> None:
    assert sns.transform_topic(RAW_ORDERS, ACCOUNT, REGION) == EXPECTED_ORDERS


def test_topic_policy_that_is_not_json_is_a_bad_record() -> None:
    with pytest.raises(BadRecord, match="topic policy is not a JSON policy document"):
        sns.transform_topic(with_attributes(Policy="Allow SNS:Publish"), ACCOUNT, REGION)


def test_topic_without_policy_display_name_key_or_tags_has_none_for_each() -> None:
    raw = {"TopicArn": ALERTS_ARN, "Attributes": {"TopicArn": ALERTS_ARN}}

    assert sns.transform_topic(raw, ACCOUNT, REGION) == {
        **EXPECTED_ALERTS,
        "display_name": None,
        "policy": None,
        "kms_key": None,
        "tags": {},
    }


@pytest.mark.parametrize("missing", ["TopicArn", "Attributes"])
def test_topic_without_its_arn_or_attributes_raises(missing: str) -> None:
    raw = {k: v for k, v in RAW_ALERTS.items() if k != missing}

    with pytest.raises(KeyError, match=missing):
        sns.transform_topic(raw, ACCOUNT, REGION)


def test_null_topic_attributes_raise_an_attribute_error() -> None:
    with pytest.raises(AttributeError):
        sns.transform_topic({**RAW_ALERTS, "Attributes": None}, ACCOUNT, REGION)


# --- the listing ----------------------------------------------------------------------------------


def topic_calls(arn: str, attributes: dict[str, Any], tags: dict[str, Any]) -> list[Call]:
    return [
        Call("get_topic_attributes", {"TopicArn": arn}, attributes),
        Call("list_tags_for_resource", {"ResourceArn": arn}, tags),
    ]


def collect(calls: list[Call]) -> Listing:
    sns_client = client("sns")
    return run(sns_client, calls, lambda: sns.collect_topics(sns_client, ACCOUNT, REGION))


def test_collect_topics_reads_every_page_and_leaves_out_a_topic_deleted_meanwhile() -> None:
    gone = f"arn:aws:sns:us-east-1:{ACCOUNT}:tmp"
    calls = [
        Call(
            "list_topics",
            {},
            {"Topics": [{"TopicArn": ALERTS_ARN}, {"TopicArn": gone}], "NextToken": "page-2"},
        ),
        Call("list_topics", {"NextToken": "page-2"}, {"Topics": [{"TopicArn": ORDERS_ARN}]}),
        *topic_calls(ALERTS_ARN, GET_ALERTS_ATTRIBUTES, LIST_ALERTS_TAGS),
        error("get_topic_attributes", {"TopicArn": gone}, "NotFound", 404),
        *topic_calls(ORDERS_ARN, GET_ORDERS_ATTRIBUTES, LIST_NO_TAGS),
    ]

    assert collect(calls) == Listing(records=[EXPECTED_ALERTS, EXPECTED_ORDERS])


def test_topic_deleted_between_its_attributes_and_tags_is_left_out_of_the_listing() -> None:
    gone = f"arn:aws:sns:us-east-1:{ACCOUNT}:tmp"
    calls = [
        Call("list_topics", {}, {"Topics": [{"TopicArn": gone}, {"TopicArn": ALERTS_ARN}]}),
        # ListTagsForResource names a missing topic otherwise than GetTopicAttributes does.
        Call("get_topic_attributes", {"TopicArn": gone}, GET_ORDERS_ATTRIBUTES),
        error("list_tags_for_resource", {"ResourceArn": gone}, "ResourceNotFound", 404),
        *topic_calls(ALERTS_ARN, GET_ALERTS_ATTRIBUTES, LIST_ALERTS_TAGS),
    ]

    assert collect(calls) == Listing(records=[EXPECTED_ALERTS])


def test_topic_sns_denies_us_is_skipped_keeping_its_cached_copy() -> None:
    denied = f"arn:aws:sns:us-east-1:{ACCOUNT}:secret"
    calls = [
        Call("list_topics", {}, {"Topics": [{"TopicArn": denied}, {"TopicArn": ALERTS_ARN}]}),
        # SNS's access denied (a topic policy denying us, an SCP...).
        error("get_topic_attributes", {"TopicArn": denied}, "AuthorizationError", 403),
        *topic_calls(ALERTS_ARN, GET_ALERTS_ATTRIBUTES, LIST_ALERTS_TAGS),
    ]

    assert collect(calls) == Listing(
        records=[EXPECTED_ALERTS],
        skipped=[SkippedRecord(f"topic {denied}", "AuthorizationError", denied)],
        keep={denied},
    )


# --- the targeted read after events ---------------------------------------------------------------

OF_ALERTS = {"TopicArn": ALERTS_ARN}
TAGS_OF_ALERTS = {"ResourceArn": ALERTS_ARN}
GET_CHANGED_ATTRIBUTES = {
    "Attributes": {
        **ALERTS_ATTRIBUTES,
        "DisplayName": "Paging alerts",
        "Policy": json.dumps(PUBLISH_FROM_PARTNER),
    }
}
CHANGED_ALERTS = {
    **EXPECTED_ALERTS,
    "display_name": "Paging alerts",
    "policy": PUBLISH_FROM_PARTNER,
}


def refresh(aspects: set[str], cached: dict[str, Any] | None, calls: list[Call]) -> Any:
    sns_client = client("sns")
    return run(
        sns_client,
        calls,
        lambda: sns.refresh_topic(sns_client, ACCOUNT, REGION, ALERTS_ARN, aspects, cached),
    )


def test_tag_change_of_a_cached_topic_is_one_list_tags_for_resource() -> None:
    calls = [Call("list_tags_for_resource", TAGS_OF_ALERTS, LIST_NEW_ALERTS_TAGS)]

    assert refresh({TAGS}, cached_alerts(), calls) == {
        **EXPECTED_ALERTS,
        "tags": {"team": "platform"},
    }


def test_attribute_change_of_a_cached_topic_is_one_get_topic_attributes_keeping_its_tags() -> None:
    calls = [Call("get_topic_attributes", OF_ALERTS, GET_CHANGED_ATTRIBUTES)]

    assert refresh({RESOURCE}, cached_alerts(), calls) == CHANGED_ALERTS


@pytest.mark.parametrize("aspects", [{RESOURCE, TAGS}, {CREATE}, {DELETE, CREATE}])
def test_attributes_and_tags_together_or_a_create_read_both(aspects: set[str]) -> None:
    calls = topic_calls(ALERTS_ARN, GET_CHANGED_ATTRIBUTES, LIST_NEW_ALERTS_TAGS)

    record = refresh(aspects, cached_alerts(), calls)

    assert record == {**CHANGED_ALERTS, "tags": {"team": "platform"}}


@pytest.mark.parametrize("aspects", [{TAGS}, {RESOURCE}, {CREATE}])
def test_topic_not_cached_is_read_in_full(aspects: set[str]) -> None:
    calls = topic_calls(ALERTS_ARN, GET_ALERTS_ATTRIBUTES, LIST_ALERTS_TAGS)

    assert refresh(aspects, None, calls) == EXPECTED_ALERTS


@pytest.mark.parametrize("cached", [None, EXPECTED_ALERTS])
def test_deleted_topic_is_gone_after_one_get_topic_attributes(
    cached: dict[str, Any] | None,
) -> None:
    calls = [error("get_topic_attributes", OF_ALERTS, "NotFound", 404)]

    assert refresh({DELETE}, copy.deepcopy(cached), calls) is None


def test_topic_deleted_before_its_tags_are_read_is_gone() -> None:
    calls = [error("list_tags_for_resource", TAGS_OF_ALERTS, "ResourceNotFound", 404)]

    assert refresh({TAGS}, cached_alerts(), calls) is None


def test_authorization_error_on_a_targeted_read_raises_instead_of_dropping_the_topic() -> None:
    calls = [error("get_topic_attributes", OF_ALERTS, "AuthorizationError", 403)]

    with pytest.raises(ClientError, match="AuthorizationError"):
        refresh({RESOURCE}, cached_alerts(), calls)


# --- CloudTrail events ----------------------------------------------------------------------------

# requestParameters and responseElements of each followed event, and the aspect it changes.
EVENTS: dict[str, tuple[dict[str, Any], dict[str, Any] | None, str]] = {
    "CreateTopic": (
        {"name": "alerts", "attributes": {"DisplayName": "Alerts", "KmsMasterKeyId": KMS_KEY}},
        {"topicArn": ALERTS_ARN},
        CREATE,
    ),
    "DeleteTopic": ({"topicArn": ALERTS_ARN}, None, DELETE),
    "SetTopicAttributes": (
        {"topicArn": ALERTS_ARN, "attributeName": "DisplayName", "attributeValue": "Paging"},
        None,
        RESOURCE,
    ),
    "TagResource": (
        {"resourceArn": ALERTS_ARN, "tags": [{"key": "team", "value": "platform"}]},
        None,
        TAGS,
    ),
    "UntagResource": ({"resourceArn": ALERTS_ARN, "tagKeys": ["cost-center"]}, None, TAGS),
    "AddPermission": (
        {
            "topicArn": ALERTS_ARN,
            "label": "partner-publish",
            "aWSAccountId": [OTHER_ACCOUNT],
            "actionName": ["Publish"],
        },
        None,
        RESOURCE,
    ),
    "RemovePermission": ({"topicArn": ALERTS_ARN, "label": "partner-publish"}, None, RESOURCE),
}


def topic_event(name: str, arn: str, aspect: str, region: str = REGION) -> ResourceEvent:
    return ResourceEvent(
        kind="sns_topic",
        account_id=ACCOUNT,
        region=region,
        name=arn,
        aspect=aspect,
        event_name=name,
        event_time=event_time(),
        event_id=event_id(name),
        actor=ALICE,
    )


def test_every_followed_sns_event_has_a_case_here() -> None:
    assert set(EVENTS) == set(sns.EVENTS.aspects)


@pytest.mark.parametrize("name", sorted(EVENTS))
def test_sns_event_names_the_topic_by_its_arn(name: str) -> None:
    params, response, aspect = EVENTS[name]

    events = parse_event(api_call("sns.amazonaws.com", name, params, response))

    assert events == [topic_event(name, ALERTS_ARN, aspect)]


def test_sns_event_takes_the_topic_region_from_its_arn() -> None:
    arn = f"arn:aws:sns:eu-west-1:{ACCOUNT}:alerts"

    events = parse_event(api_call("sns.amazonaws.com", "DeleteTopic", {"topicArn": arn}))

    assert events == [topic_event("DeleteTopic", arn, DELETE, "eu-west-1")]


@pytest.mark.parametrize("name", ["SetTopicAttributes", "TagResource", "AddPermission"])
def test_call_on_another_accounts_topic_is_not_a_change_of_ours(name: str) -> None:
    params, response, _ = EVENTS[name]
    theirs = f"arn:aws:sns:us-east-1:{OTHER_ACCOUNT}:alerts"
    key = "resourceArn" if "resourceArn" in params else "topicArn"

    body = api_call("sns.amazonaws.com", name, {**params, key: theirs}, response)

    with pytest.raises(NotAChange, match=f"resource of account {OTHER_ACCOUNT}, not {ACCOUNT}"):
        parse_event(body)


def test_failed_sns_call_is_not_a_change() -> None:
    params, _, _ = EVENTS["SetTopicAttributes"]
    body = api_call(
        "sns.amazonaws.com",
        "SetTopicAttributes",
        params,
        failure=("AuthorizationError", "User is not authorized to perform SNS:SetTopicAttributes"),
    )

    with pytest.raises(NotAChange, match=r"SetTopicAttributes failed \(AuthorizationError\)"):
        parse_event(body)


@pytest.mark.parametrize(
    "arn",
    [
        None,
        "alerts",
        f"arn:aws:sqs:us-east-1:{ACCOUNT}:alerts",  # TagResource of SNS names SNS resources only
        f"arn:aws:sns:us-east-1:{ACCOUNT}",
        f"arn:aws:sns::{ACCOUNT}:alerts",
    ],
)
def test_sns_event_without_a_topic_arn_is_not_a_change(arn: str | None) -> None:
    body = api_call("sns.amazonaws.com", "TagResource", {"resourceArn": arn, "tags": []})

    with pytest.raises(NotAChange):
        parse_event(body)
