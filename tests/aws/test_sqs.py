"""SQS queues: transform on raw SQS answers, refresh_queue's calls (Stubber), CloudTrail events."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from inventory.aws import sqs
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
JOBS_URL = f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/jobs"
JOBS_ARN = f"arn:aws:sqs:us-east-1:{ACCOUNT}:jobs"
ORDERS_URL = f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/orders.fifo"
ORDERS_ARN = f"arn:aws:sqs:us-east-1:{ACCOUNT}:orders.fifo"

# --- raw SQS answers (as boto3 returns them: every attribute is a string) -----------------------

SEND_FROM_SNS = {
    "Version": "2012-10-17",
    "Id": f"{JOBS_ARN}/SQSDefaultPolicy",
    "Statement": [
        {
            "Sid": "AllowAlertsTopic",
            "Effect": "Allow",
            "Principal": {"Service": "sns.amazonaws.com"},
            "Action": "SQS:SendMessage",
            "Resource": JOBS_ARN,
            "Condition": {
                "ArnEquals": {"aws:SourceArn": f"arn:aws:sns:us-east-1:{ACCOUNT}:alerts"}
            },
        }
    ],
}
SEND_FROM_PARTNER = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "allow-sender",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"},
            "Action": "SQS:SendMessage",
            "Resource": JOBS_ARN,
        }
    ],
}
DLQ_ARN = f"arn:aws:sqs:us-east-1:{ACCOUNT}:jobs-dlq"
JOBS_ATTRIBUTES = {
    "QueueArn": JOBS_ARN,
    "ApproximateNumberOfMessages": "3",
    "ApproximateNumberOfMessagesNotVisible": "1",
    "ApproximateNumberOfMessagesDelayed": "0",
    "CreatedTimestamp": "1700000000",
    "LastModifiedTimestamp": "1700003600",
    "VisibilityTimeout": "60",
    "MaximumMessageSize": "262144",
    "MessageRetentionPeriod": "345600",
    "DelaySeconds": "0",
    "ReceiveMessageWaitTimeSeconds": "20",
    "Policy": json.dumps(SEND_FROM_SNS, separators=(",", ":")),
    "RedrivePolicy": json.dumps({"deadLetterTargetArn": DLQ_ARN, "maxReceiveCount": 5}),
    "KmsMasterKeyId": "alias/aws/sqs",
    "KmsDataKeyReusePeriodSeconds": "300",
    "SqsManagedSseEnabled": "false",
}
GET_JOBS_ATTRIBUTES = {"Attributes": JOBS_ATTRIBUTES}
# A FIFO queue encrypted by SQS itself, with no policy, redrive nor tags.
GET_ORDERS_ATTRIBUTES = {
    "Attributes": {
        "QueueArn": ORDERS_ARN,
        "ApproximateNumberOfMessages": "0",
        "ApproximateNumberOfMessagesNotVisible": "0",
        "ApproximateNumberOfMessagesDelayed": "0",
        "CreatedTimestamp": "1714000000",
        "LastModifiedTimestamp": "1714000000",
        "VisibilityTimeout": "30",
        "MaximumMessageSize": "262144",
        "MessageRetentionPeriod": "1209600",
        "DelaySeconds": "0",
        "ReceiveMessageWaitTimeSeconds": "0",
        "SqsManagedSseEnabled": "true",
        "FifoQueue": "true",
        "ContentBasedDeduplication": "false",
        "DeduplicationScope": "queue",
        "FifoThroughputLimit": "perQueue",
    }
}
LIST_JOBS_TAGS = {"Tags": {"team": "data", "cost-center": ""}}
LIST_NEW_JOBS_TAGS = {"Tags": {"team": "platform"}}
# ListQueueTags leaves Tags out when a queue has none.
LIST_NO_TAGS: dict[str, Any] = {}

RAW_JOBS = {"QueueUrl": JOBS_URL, "Attributes": JOBS_ATTRIBUTES, "Tags": LIST_JOBS_TAGS["Tags"]}
RAW_ORDERS = {"QueueUrl": ORDERS_URL, "Attributes": GET_ORDERS_ATTRIBUTES["Attributes"]}

EXPECTED_JOBS = {
    "arn": JOBS_ARN,
    "kind": "sqs_queue",
    "account_id": ACCOUNT,
    "region": REGION,
    "name": "jobs",
    "url": JOBS_URL,
    "policy": SEND_FROM_SNS,
    "kms_key": "alias/aws/sqs",
    "sqs_managed_sse": False,
    "redrive_policy": {"deadLetterTargetArn": DLQ_ARN, "maxReceiveCount": 5},
    "fifo": False,
    "visibility_timeout": 60,
    "retention_seconds": 345600,
    "created": "2023-11-14T22:13:20Z",  # CreatedTimestamp 1700000000 (epoch seconds)
    "tags": {"team": "data", "cost-center": ""},
}
EXPECTED_ORDERS = {
    "arn": ORDERS_ARN,
    "kind": "sqs_queue",
    "account_id": ACCOUNT,
    "region": REGION,
    "name": "orders.fifo",
    "url": ORDERS_URL,
    "policy": None,
    "kms_key": None,
    "sqs_managed_sse": True,
    "redrive_policy": None,
    "fifo": True,
    "visibility_timeout": 30,
    "retention_seconds": 1209600,
    "created": "2024-04-24T23:06:40Z",  # CreatedTimestamp 1714000000
    "tags": {},
}


def cached_jobs() -> dict[str, Any]:
    return copy.deepcopy(EXPECTED_JOBS)


def with_attributes(**changed: Any) -> dict[str, Any]:
    """RAW_JOBS with some attributes changed (None: the attribute is absent)."""
    attributes = {k: v for k, v in {**JOBS_ATTRIBUTES, **changed}.items() if v is not None}
    return {**RAW_JOBS, "Attributes": attributes}


# --- transform -----------------------------------------------------------------------------------


def test_transform_queue_maps_every_field_of_an_encrypted_queue_with_redrive() -> None:
    assert sqs.transform_queue(RAW_JOBS, ACCOUNT, REGION) == EXPECTED_JOBS


def test_fifo_queue_with_sqs_managed_encryption_and_nothing_optional_has_nones() -> None:
    assert sqs.transform_queue(RAW_ORDERS, ACCOUNT, REGION) == EXPECTED_ORDERS


def test_queue_policy_that_is_not_json_is_a_bad_record() -> None:
    raw = with_attributes(Policy="Allow SendMessage from sns")

    with pytest.raises(BadRecord, match="queue policy is not a JSON policy document"):
        sqs.transform_queue(raw, ACCOUNT, REGION)


def test_redrive_policy_that_is_not_json_is_a_bad_record() -> None:
    raw = with_attributes(RedrivePolicy=f"deadLetterTargetArn={DLQ_ARN}")

    with pytest.raises(BadRecord, match="redrive policy is not JSON"):
        sqs.transform_queue(raw, ACCOUNT, REGION)


def test_redrive_policy_that_is_json_but_not_an_object_is_none() -> None:
    raw = with_attributes(RedrivePolicy=json.dumps([DLQ_ARN, 5]))

    assert sqs.transform_queue(raw, ACCOUNT, REGION)["redrive_policy"] is None


def test_empty_policy_and_redrive_attributes_are_none_not_empty_strings() -> None:
    record = sqs.transform_queue(with_attributes(Policy="", RedrivePolicy=""), ACCOUNT, REGION)

    assert (record["policy"], record["redrive_policy"]) == (None, None)


def test_queue_without_optional_attributes_has_none_for_each() -> None:
    raw = {"QueueUrl": JOBS_URL, "Attributes": {"QueueArn": JOBS_ARN}}

    assert sqs.transform_queue(raw, ACCOUNT, REGION) == {
        **EXPECTED_JOBS,
        "policy": None,
        "kms_key": None,
        "redrive_policy": None,
        "visibility_timeout": None,
        "retention_seconds": None,
        "created": None,
        "tags": {},
    }


@pytest.mark.parametrize("missing", ["QueueUrl", "Attributes"])
def test_queue_without_its_url_or_attributes_raises(missing: str) -> None:
    raw = {k: v for k, v in RAW_JOBS.items() if k != missing}

    with pytest.raises(KeyError, match=missing):
        sqs.transform_queue(raw, ACCOUNT, REGION)


def test_queue_without_its_arn_raises() -> None:
    with pytest.raises(KeyError, match="QueueArn"):
        sqs.transform_queue(with_attributes(QueueArn=None), ACCOUNT, REGION)


def test_null_queue_attributes_raise_a_type_error() -> None:
    with pytest.raises(TypeError):
        sqs.transform_queue({**RAW_JOBS, "Attributes": None}, ACCOUNT, REGION)


def test_non_numeric_visibility_timeout_raises() -> None:
    with pytest.raises(ValueError, match="sixty"):
        sqs.transform_queue(with_attributes(VisibilityTimeout="sixty"), ACCOUNT, REGION)


# --- the listing ----------------------------------------------------------------------------------


def queue_calls(url: str, attributes: dict[str, Any], tags: dict[str, Any]) -> list[Call]:
    return [
        Call("get_queue_attributes", {"QueueUrl": url, "AttributeNames": ["All"]}, attributes),
        Call("list_queue_tags", {"QueueUrl": url}, tags),
    ]


def test_collect_queues_reads_each_listed_queue_and_leaves_out_one_deleted_meanwhile() -> None:
    sqs_client = client("sqs")
    gone_url = f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/tmp"
    denied_url = f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/secret"
    all_attributes = {"AttributeNames": ["All"]}
    calls = [
        Call(
            "list_queues",
            {"MaxResults": 1000},
            {"QueueUrls": [JOBS_URL, gone_url, denied_url], "NextToken": "page-2"},
        ),
        Call(
            "list_queues", {"MaxResults": 1000, "NextToken": "page-2"}, {"QueueUrls": [ORDERS_URL]}
        ),
        *queue_calls(JOBS_URL, GET_JOBS_ATTRIBUTES, LIST_JOBS_TAGS),
        error(
            "get_queue_attributes",
            {"QueueUrl": gone_url, **all_attributes},
            "AWS.SimpleQueueService.NonExistentQueue",
        ),
        error(
            "get_queue_attributes", {"QueueUrl": denied_url, **all_attributes}, "AccessDenied", 403
        ),
        *queue_calls(ORDERS_URL, GET_ORDERS_ATTRIBUTES, LIST_NO_TAGS),
    ]

    listing = run(sqs_client, calls, lambda: sqs.collect_queues(sqs_client, ACCOUNT, REGION))

    secret_arn = f"arn:aws:sqs:us-east-1:{ACCOUNT}:secret"
    assert listing == Listing(
        records=[EXPECTED_JOBS, EXPECTED_ORDERS],
        skipped=[SkippedRecord("queue secret", "AccessDenied", secret_arn)],
        keep={secret_arn},
    )


# --- the targeted read after events ---------------------------------------------------------------

GET_JOBS_URL = {"QueueName": "jobs", "QueueOwnerAWSAccountId": ACCOUNT}
AT_JOBS = {"QueueUrl": JOBS_URL}
ALL_OF_JOBS = {"QueueUrl": JOBS_URL, "AttributeNames": ["All"]}
# SetQueueAttributes gave a longer visibility timeout and a policy for the partner account.
GET_CHANGED_ATTRIBUTES = {
    "Attributes": {
        **JOBS_ATTRIBUTES,
        "VisibilityTimeout": "120",
        "Policy": json.dumps(SEND_FROM_PARTNER),
        "LastModifiedTimestamp": "1715682069",
    }
}
CHANGED_JOBS = {**EXPECTED_JOBS, "visibility_timeout": 120, "policy": SEND_FROM_PARTNER}
NON_EXISTENT = "AWS.SimpleQueueService.NonExistentQueue"


def refresh(
    aspects: set[str], cached: dict[str, Any] | None, calls: list[Call], url: str = JOBS_URL
) -> Any:
    sqs_client = client("sqs")
    return run(
        sqs_client,
        calls,
        lambda: sqs.refresh_queue(sqs_client, ACCOUNT, REGION, url, aspects, cached),
    )


def test_tag_change_of_a_cached_queue_is_one_list_queue_tags_at_its_cached_url() -> None:
    record = refresh({TAGS}, cached_jobs(), [Call("list_queue_tags", AT_JOBS, LIST_NEW_JOBS_TAGS)])

    assert record == {**EXPECTED_JOBS, "tags": {"team": "platform"}}


def test_all_tags_removed_from_a_cached_queue_leaves_it_without_tags() -> None:
    record = refresh({TAGS}, cached_jobs(), [Call("list_queue_tags", AT_JOBS, LIST_NO_TAGS)])

    assert record == {**EXPECTED_JOBS, "tags": {}}


@pytest.mark.parametrize(
    "event_url",
    [
        f"https://queue.amazonaws.com/{ACCOUNT}/jobs",
        f"https://us-east-1.queue.amazonaws.com/{ACCOUNT}/jobs",
    ],
)
def test_event_naming_the_queue_by_a_legacy_url_reads_it_at_the_cached_url(event_url: str) -> None:
    calls = [Call("get_queue_attributes", ALL_OF_JOBS, GET_CHANGED_ATTRIBUTES)]

    record = refresh({RESOURCE}, cached_jobs(), calls, url=event_url)

    assert record == CHANGED_JOBS


def test_attribute_change_of_a_cached_queue_is_one_get_queue_attributes_keeping_its_tags() -> None:
    calls = [Call("get_queue_attributes", ALL_OF_JOBS, GET_CHANGED_ATTRIBUTES)]

    assert refresh({RESOURCE}, cached_jobs(), calls) == CHANGED_JOBS


@pytest.mark.parametrize("aspects", [{RESOURCE, TAGS}, {CREATE}, {DELETE, CREATE}])
def test_attributes_and_tags_together_or_a_create_read_both_at_the_cached_url(
    aspects: set[str],
) -> None:
    calls = queue_calls(JOBS_URL, GET_CHANGED_ATTRIBUTES, LIST_NEW_JOBS_TAGS)

    record = refresh(aspects, cached_jobs(), calls)

    assert record == {**CHANGED_JOBS, "tags": {"team": "platform"}}


@pytest.mark.parametrize("aspects", [{TAGS}, {RESOURCE}, {CREATE}])
def test_queue_not_cached_is_found_by_get_queue_url_then_read_in_full(aspects: set[str]) -> None:
    calls = [
        Call("get_queue_url", GET_JOBS_URL, {"QueueUrl": JOBS_URL}),
        *queue_calls(JOBS_URL, GET_JOBS_ATTRIBUTES, LIST_JOBS_TAGS),
    ]

    # The event named the queue by its legacy URL: the record keeps the one SQS answers.
    record = refresh(aspects, None, calls, url=f"https://queue.amazonaws.com/{ACCOUNT}/jobs")

    assert record == EXPECTED_JOBS


def test_cached_queue_without_a_url_is_found_by_get_queue_url() -> None:
    cached = {k: v for k, v in cached_jobs().items() if k != "url"}
    calls = [
        Call("get_queue_url", GET_JOBS_URL, {"QueueUrl": JOBS_URL}),
        Call("list_queue_tags", AT_JOBS, LIST_NEW_JOBS_TAGS),
    ]

    assert refresh({TAGS}, cached, calls) == {**EXPECTED_JOBS, "tags": {"team": "platform"}}


@pytest.mark.parametrize("code", [NON_EXISTENT, "QueueDoesNotExist"])
def test_queue_sqs_cannot_find_by_name_is_gone(code: str) -> None:
    assert refresh({DELETE}, None, [error("get_queue_url", GET_JOBS_URL, code)]) is None


def test_deleted_cached_queue_is_gone_after_one_get_queue_attributes() -> None:
    calls = [error("get_queue_attributes", ALL_OF_JOBS, NON_EXISTENT)]

    assert refresh({DELETE}, cached_jobs(), calls) is None


def test_queue_deleted_before_its_tags_are_read_is_gone() -> None:
    assert refresh({TAGS}, cached_jobs(), [error("list_queue_tags", AT_JOBS, NON_EXISTENT)]) is None


def test_access_denied_on_a_targeted_read_raises_instead_of_dropping_the_queue() -> None:
    calls = [error("get_queue_attributes", ALL_OF_JOBS, "AccessDenied", 403)]

    with pytest.raises(ClientError, match="AccessDenied"):
        refresh({RESOURCE}, cached_jobs(), calls)


def test_targeted_read_of_a_queue_with_a_bad_policy_raises_a_bad_record() -> None:
    bad = {"Attributes": {**JOBS_ATTRIBUTES, "Policy": "{not json"}}

    with pytest.raises(BadRecord, match="queue policy"):
        refresh({RESOURCE}, cached_jobs(), [Call("get_queue_attributes", ALL_OF_JOBS, bad)])


# --- CloudTrail events ----------------------------------------------------------------------------

# requestParameters and responseElements of each followed event, and the aspect it changes.
EVENTS: dict[str, tuple[dict[str, Any], dict[str, Any] | None, str]] = {
    "CreateQueue": (
        {
            "queueName": "jobs",
            "attributes": {"VisibilityTimeout": "60", "KmsMasterKeyId": "alias/aws/sqs"},
            "tags": {"team": "data"},
        },
        {"queueUrl": JOBS_URL},
        CREATE,
    ),
    "DeleteQueue": ({"queueUrl": JOBS_URL}, None, DELETE),
    "SetQueueAttributes": (
        {"queueUrl": JOBS_URL, "attributes": {"VisibilityTimeout": "120"}},
        None,
        RESOURCE,
    ),
    "TagQueue": ({"queueUrl": JOBS_URL, "tags": {"team": "platform"}}, None, TAGS),
    "UntagQueue": ({"queueUrl": JOBS_URL, "tagKeys": ["cost-center"]}, None, TAGS),
    "AddPermission": (
        {
            "queueUrl": JOBS_URL,
            "label": "allow-sender",
            "aWSAccountIds": [OTHER_ACCOUNT],
            "actions": ["SendMessage"],
        },
        None,
        RESOURCE,
    ),
    "RemovePermission": ({"queueUrl": JOBS_URL, "label": "allow-sender"}, None, RESOURCE),
}


def queue_event(name: str, url: str, aspect: str, region: str = REGION) -> ResourceEvent:
    return ResourceEvent(
        kind="sqs_queue",
        account_id=ACCOUNT,
        region=region,
        name=url,
        aspect=aspect,
        event_name=name,
        event_time=event_time(),
        event_id=event_id(name),
        actor=ALICE,
    )


def test_every_followed_sqs_event_has_a_case_here() -> None:
    assert set(EVENTS) == set(sqs.EVENTS.aspects)


@pytest.mark.parametrize("name", sorted(EVENTS))
def test_sqs_event_names_the_queue_by_its_url(name: str) -> None:
    params, response, aspect = EVENTS[name]

    events = parse_event(api_call("sqs.amazonaws.com", name, params, response))

    assert events == [queue_event(name, JOBS_URL, aspect)]


@pytest.mark.parametrize(
    ("url", "region"),
    [
        (f"https://sqs.eu-west-1.amazonaws.com/{ACCOUNT}/jobs", "eu-west-1"),
        (f"https://eu-west-1.queue.amazonaws.com/{ACCOUNT}/jobs", "eu-west-1"),
        (f"https://queue.amazonaws.com/{ACCOUNT}/jobs", "us-east-1"),
        (f"https://sqs.cn-north-1.amazonaws.com.cn/{ACCOUNT}/jobs", "cn-north-1"),
        (f"http://localhost:4566/{ACCOUNT}/jobs", "ap-south-1"),  # no region: the event's
    ],
)
def test_sqs_event_takes_the_queue_region_from_its_url(url: str, region: str) -> None:
    params = {"queueUrl": url, "tags": {"team": "platform"}}

    events = parse_event(api_call("sqs.amazonaws.com", "TagQueue", params, region="ap-south-1"))

    assert events == [queue_event("TagQueue", url, TAGS, region)]


@pytest.mark.parametrize("name", ["SetQueueAttributes", "AddPermission", "TagQueue", "DeleteQueue"])
def test_call_on_another_accounts_queue_is_not_a_change_of_ours(name: str) -> None:
    params, response, _ = EVENTS[name]
    theirs = {**params, "queueUrl": f"https://sqs.us-east-1.amazonaws.com/{OTHER_ACCOUNT}/jobs"}

    body = api_call("sqs.amazonaws.com", name, theirs, response)

    with pytest.raises(NotAChange, match=f"resource of account {OTHER_ACCOUNT}, not {ACCOUNT}"):
        parse_event(body)


def test_failed_create_queue_is_not_a_change() -> None:
    params, _, _ = EVENTS["CreateQueue"]
    body = api_call(
        "sqs.amazonaws.com",
        "CreateQueue",
        params,
        failure=("QueueAlreadyExists", "A queue already exists with the same name"),
    )

    with pytest.raises(NotAChange, match=r"CreateQueue failed \(QueueAlreadyExists\)"):
        parse_event(body)


@pytest.mark.parametrize(
    "url", [None, "jobs", f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}", "https://x/abc/jobs"]
)
def test_sqs_event_without_a_queue_url_is_not_a_change(url: str | None) -> None:
    body = api_call("sqs.amazonaws.com", "SetQueueAttributes", {"queueUrl": url, "attributes": {}})

    with pytest.raises(NotAChange):
        parse_event(body)
