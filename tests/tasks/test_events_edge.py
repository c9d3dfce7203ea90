"""Edge cases of the event-driven refresh: parsing hostile or cross-account events, and
``refresh`` called in-process against moto and a real Redis (the drain is only needed where
it must dispatch: tests/tasks/test_events.py runs it through a real worker)."""

from __future__ import annotations

import json
import time

import pytest

from inventory.aws.events import SNS_TOPIC, SQS_QUEUE, NotAChange, parse_event
from inventory.demo.seed import change_event_envelope

ALICE = "arn:aws:iam::111111111111:user/alice"
OURS, THEIRS = "111111111111", "222222222222"


def body(account: str, name: str, params: dict, source: str, region: str = "us-east-1") -> str:
    return json.dumps(
        change_event_envelope(
            account, name, params, time.time(), ALICE, source=source, region=region
        )
    )


@pytest.mark.parametrize(
    "text",
    [
        "[" * 200_000,  # RecursionError in json.loads
        '{"detail": ' * 5_000 + "1" + "}" * 5_000,
        json.dumps({"detail": {"eventName": "PutRolePolicy", "eventSource": 7, "eventTime": 3}}),
        json.dumps({"detail": []}),
        json.dumps([1, 2]),
        "\udcff",
    ],
)
def test_unreadable_message_is_not_a_change_whatever_it_holds(text):
    with pytest.raises(NotAChange):
        parse_event(text)


@pytest.mark.parametrize(
    ("url", "region"),
    [
        (f"https://sqs.us-west-2.amazonaws.com/{OURS}/q", "us-west-2"),
        (f"https://us-west-2.queue.amazonaws.com/{OURS}/q", "us-west-2"),
        (f"https://queue.amazonaws.com/{OURS}/q", "us-east-1"),
        (f"http://localhost:5000/{OURS}/q", "eu-west-1"),  # no region in the host: the event's
    ],
)
def test_queue_event_takes_account_and_region_from_the_queue_url(url, region):
    (event,) = parse_event(
        body(OURS, "SetQueueAttributes", {"queueUrl": url}, "sqs.amazonaws.com", "eu-west-1")
    )
    assert (event.kind, event.account_id, event.region, event.name) == (
        SQS_QUEUE,
        OURS,
        region,
        url,
    )


def test_call_on_another_accounts_queue_or_topic_is_not_a_change_of_ours():
    queue = f"https://sqs.us-east-1.amazonaws.com/{THEIRS}/shared"
    topic = f"arn:aws:sns:us-east-1:{THEIRS}:shared"
    for name, params, source in [
        ("SetQueueAttributes", {"queueUrl": queue}, "sqs.amazonaws.com"),
        ("TagQueue", {"queueUrl": queue, "tags": {"a": "b"}}, "sqs.amazonaws.com"),
        ("SetTopicAttributes", {"topicArn": topic}, "sns.amazonaws.com"),
        ("TagResource", {"resourceArn": topic}, "sns.amazonaws.com"),
    ]:
        with pytest.raises(NotAChange, match=THEIRS):
            parse_event(body(OURS, name, params, source))
    # The topic's own region, not the region the call was recorded in.
    (event,) = parse_event(
        body(OURS, "SetTopicAttributes", {"topicArn": f"arn:aws:sns:eu-west-1:{OURS}:t"},
             "sns.amazonaws.com", "us-east-1")
    )  # fmt: skip
    assert (event.kind, event.account_id, event.region) == (SNS_TOPIC, OURS, "eu-west-1")


def test_attaching_another_accounts_policy_refreshes_only_our_role():
    theirs = f"arn:aws:iam::{THEIRS}:policy/shared"
    events = parse_event(
        body(OURS, "AttachRolePolicy", {"roleName": "r", "policyArn": theirs}, "iam.amazonaws.com")
    )
    assert [(e.kind, e.account_id, e.name, e.aspect) for e in events] == [
        ("iam_role", OURS, "r", "attached")
    ]
    for name in ("CreatePolicyVersion", "SetDefaultPolicyVersion", "DeletePolicy"):
        with pytest.raises(NotAChange):
            parse_event(body(OURS, name, {"policyArn": theirs}, "iam.amazonaws.com"))
