"""CloudTrail errors: record parsing, the pure aggregate, SQS (moto) and LookupEvents (Stubber)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from inventory.aws.cloudtrail import (
    AckFailed,
    ErrorEvent,
    LookupEventsSource,
    SqsEventSource,
    aggregate,
    parse_cloudtrail_record,
)
from tests.servers import MotoServer

REGION = "us-east-1"
NOW = 1_714_600_000.0  # 2024-05-01T21:46:40Z
DAY = 86_400.0
ALICE = "arn:aws:iam::111122223333:user/people/alice"
APP_ROLE = "arn:aws:iam::111122223333:role/service-role/app-role"
DEPLOY_ROLE = "arn:aws:iam::444455556666:role/deploy"

# --- raw CloudTrail records (the ``detail`` of an EventBridge event) -------------------------

USER_DENIED = {
    "eventVersion": "1.08",
    "userIdentity": {
        "type": "IAMUser",
        "principalId": "AIDAEXAMPLEALICE0001",
        "arn": ALICE,
        "accountId": "111122223333",
        "accessKeyId": "AKIAEXAMPLE",
        "userName": "alice",
    },
    "eventTime": "2024-05-01T21:00:00Z",
    "eventSource": "s3.amazonaws.com",
    "eventName": "GetObject",
    "awsRegion": "eu-west-1",
    "sourceIPAddress": "198.51.100.7",
    "errorCode": "AccessDenied",
    "errorMessage": "Access Denied",
    "requestParameters": {"bucketName": "secret", "key": "report.csv"},
    "resources": [
        {"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::secret/report.csv"},
        {"accountId": "999988887777", "type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::secret"},
    ],
    "eventID": "e-user-1",
    "eventType": "AwsApiCall",
    "recipientAccountId": "111122223333",
}
ROLE_DENIED = {
    "eventVersion": "1.08",
    "userIdentity": {
        "type": "AssumedRole",
        "principalId": "AROAEXAMPLEAPPROLE01:i-0abc",
        "arn": "arn:aws:sts::111122223333:assumed-role/app-role/i-0abc",
        "accountId": "111122223333",
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": "AROAEXAMPLEAPPROLE01",
                "arn": APP_ROLE,
                "accountId": "111122223333",
                "userName": "app-role",
            },
            "attributes": {"creationDate": "2024-05-01T20:00:00Z", "mfaAuthenticated": "false"},
        },
    },
    "eventTime": "2024-05-01T21:30:00Z",
    "eventSource": "sqs.amazonaws.com",
    "eventName": "SendMessage",
    "awsRegion": "us-east-1",
    "errorCode": "AccessDenied",
    "errorMessage": "User is not authorized to perform: sqs:sendmessage",
    "eventID": "e-role-1",
    "recipientAccountId": "111122223333",
}
# No sessionContext: the role ARN is rebuilt from the session ARN (without the role's path).
ROLE_WITHOUT_ISSUER = {
    "userIdentity": {
        "type": "AssumedRole",
        "arn": "arn:aws:sts::444455556666:assumed-role/deploy/ci-run-17",
        "accountId": "444455556666",
    },
    "eventTime": "2024-05-01T21:40:00.123Z",
    "eventSource": "iam.amazonaws.com",
    "eventName": "CreateRole",
    "awsRegion": "us-east-1",
    "errorCode": "LimitExceeded",
    "eventID": "e-deploy-1",
    "recipientAccountId": "444455556666",
}
USER_SUCCEEDED = {
    **{k: v for k, v in USER_DENIED.items() if k not in ("errorCode", "errorMessage")}
}
SERVICE_FAILED = {
    "userIdentity": {"type": "AWSService", "invokedBy": "lambda.amazonaws.com"},
    "eventTime": "2024-05-01T21:00:00Z",
    "eventSource": "kms.amazonaws.com",
    "eventName": "Decrypt",
    "awsRegion": "us-east-1",
    "errorCode": "AccessDenied",
    "eventID": "e-service-1",
    "recipientAccountId": "111122223333",
}

EXPECTED_USER_DENIED = ErrorEvent(
    event_id="e-user-1",
    time=1_714_597_200.0,
    principal_arn=ALICE,
    account_id="111122223333",
    error_code="AccessDenied",
    error_message="Access Denied",
    action="s3:GetObject",
    resources=["arn:aws:s3:::secret/report.csv", "arn:aws:s3:::secret"],
    region="eu-west-1",
)
EXPECTED_ROLE_DENIED = ErrorEvent(
    event_id="e-role-1",
    time=1_714_599_000.0,
    principal_arn=APP_ROLE,
    account_id="111122223333",
    error_code="AccessDenied",
    error_message="User is not authorized to perform: sqs:sendmessage",
    action="sqs:SendMessage",
    resources=[],
    region="us-east-1",
)
EXPECTED_DEPLOY = ErrorEvent(
    event_id="e-deploy-1",
    time=1_714_599_600.123,
    principal_arn=DEPLOY_ROLE,
    account_id="444455556666",
    error_code="LimitExceeded",
    error_message=None,
    action="iam:CreateRole",
    resources=[],
    region="us-east-1",
)


# --- parse ----------------------------------------------------------------------------------


def test_iam_user_error_is_attributed_to_the_user_with_its_resources() -> None:
    assert parse_cloudtrail_record(copy.deepcopy(USER_DENIED)) == EXPECTED_USER_DENIED


def test_assumed_role_error_uses_the_session_issuer_role_arn_with_its_path() -> None:
    assert parse_cloudtrail_record(copy.deepcopy(ROLE_DENIED)) == EXPECTED_ROLE_DENIED


def test_assumed_role_without_issuer_is_converted_from_the_session_arn() -> None:
    assert parse_cloudtrail_record(copy.deepcopy(ROLE_WITHOUT_ISSUER)) == EXPECTED_DEPLOY


def test_successful_call_is_not_an_error_event() -> None:
    assert parse_cloudtrail_record(copy.deepcopy(USER_SUCCEEDED)) is None


def test_aws_service_principal_without_arn_is_not_an_error_event() -> None:
    assert parse_cloudtrail_record(copy.deepcopy(SERVICE_FAILED)) is None


def test_error_record_missing_event_id_raises() -> None:
    raw = {k: v for k, v in USER_DENIED.items() if k != "eventID"}

    with pytest.raises(KeyError, match="eventID"):
        parse_cloudtrail_record(raw)


# --- aggregate ------------------------------------------------------------------------------


def event(
    event_id: str,
    at: float,
    principal: str = ALICE,
    code: str = "AccessDenied",
    action: str = "s3:GetObject",
    resources: list[str] | None = None,
) -> ErrorEvent:
    return ErrorEvent(
        event_id=event_id,
        time=at,
        principal_arn=principal,
        account_id=principal.split(":")[4],
        error_code=code,
        error_message=None,
        action=action,
        resources=resources or [],
        region=REGION,
    )


EVENTS = [
    event("a1", NOW - 300, resources=["arn:aws:s3:::secret"]),
    event("a2", NOW - 100, code="NoSuchKey", resources=["arn:aws:s3:::secret"]),
    event("a3", NOW - 200, action="s3:PutObject", resources=["arn:aws:s3:::public"]),
    event("r1", NOW - 50, principal=APP_ROLE, action="sqs:SendMessage"),
]
EXPECTED_ALICE = {
    "arn": ALICE,
    "kind": "cloudtrail_errors",
    "account_id": "111122223333",
    "count": 3,
    "error_codes": {"AccessDenied": 2, "NoSuchKey": 1},
    "actions": {"s3:GetObject": 2, "s3:PutObject": 1},
    "resources": {"arn:aws:s3:::secret": 2, "arn:aws:s3:::public": 1},
    "first_seen": NOW - 300,
    "last_seen": NOW - 100,
    "event_ids": ["a2", "a3", "a1"],
}
EXPECTED_APP_ROLE = {
    "arn": APP_ROLE,
    "kind": "cloudtrail_errors",
    "account_id": "111122223333",
    "count": 1,
    "error_codes": {"AccessDenied": 1},
    "actions": {"sqs:SendMessage": 1},
    "resources": {},
    "first_seen": NOW - 50,
    "last_seen": NOW - 50,
    "event_ids": ["r1"],
}


def test_aggregate_counts_errors_per_principal() -> None:
    assert aggregate({}, EVENTS, NOW, DAY) == {ALICE: EXPECTED_ALICE, APP_ROLE: EXPECTED_APP_ROLE}


def test_aggregate_keeps_the_top_n_with_ties_broken_by_name() -> None:
    events = [
        event("1", NOW - 5, code="Zeta"),
        event("2", NOW - 4, code="Zeta"),
        event("3", NOW - 3, code="Beta"),
        event("4", NOW - 2, code="Alpha"),
        event("5", NOW - 1, code="Gamma"),
    ]

    record = aggregate({}, events, NOW, DAY, top=2)[ALICE]

    assert record["error_codes"] == {"Zeta": 2, "Alpha": 1}
    assert record["actions"] == {"s3:GetObject": 5}
    assert record["count"] == 5


def test_redelivered_events_are_not_counted_twice() -> None:
    first = aggregate({}, EVENTS, NOW, DAY)
    snapshot = copy.deepcopy(first)

    again = aggregate(first, [*EVENTS, EVENTS[0]], NOW + 60, DAY)

    assert again == first
    assert first == snapshot  # the existing records were not modified


def test_duplicate_event_within_one_batch_is_counted_once() -> None:
    assert aggregate({}, [EVENTS[3], EVENTS[3]], NOW, DAY) == {APP_ROLE: EXPECTED_APP_ROLE}


def test_new_events_merge_into_existing_records() -> None:
    existing = {ALICE: copy.deepcopy(EXPECTED_ALICE), APP_ROLE: copy.deepcopy(EXPECTED_APP_ROLE)}
    later = NOW + 600
    new = [
        event("a4", later - 10, code="NoSuchKey", resources=["arn:aws:s3:::public"]),
        event("a5", later - 20, code="NoSuchKey", action="s3:PutObject"),
        event(
            "d1", later - 5, principal=DEPLOY_ROLE, code="LimitExceeded", action="iam:CreateRole"
        ),
    ]

    result = aggregate(existing, new, later, DAY)

    assert result == {
        ALICE: {
            **EXPECTED_ALICE,
            "count": 5,
            "error_codes": {"NoSuchKey": 3, "AccessDenied": 2},
            "actions": {"s3:GetObject": 3, "s3:PutObject": 2},
            "resources": {"arn:aws:s3:::public": 2, "arn:aws:s3:::secret": 2},
            "last_seen": later - 10,
            "event_ids": ["a4", "a5", "a2", "a3", "a1"],
        },
        APP_ROLE: EXPECTED_APP_ROLE,
        DEPLOY_ROLE: {
            "arn": DEPLOY_ROLE,
            "kind": "cloudtrail_errors",
            "account_id": "444455556666",
            "count": 1,
            "error_codes": {"LimitExceeded": 1},
            "actions": {"iam:CreateRole": 1},
            "resources": {},
            "first_seen": later - 5,
            "last_seen": later - 5,
            "event_ids": ["d1"],
        },
    }
    assert existing == {ALICE: EXPECTED_ALICE, APP_ROLE: EXPECTED_APP_ROLE}


def test_principals_not_seen_within_retention_are_dropped_and_old_events_ignored() -> None:
    existing = {ALICE: copy.deepcopy(EXPECTED_ALICE), APP_ROLE: copy.deepcopy(EXPECTED_APP_ROLE)}
    # An hour later with a one-hour retention: alice's last error is older than the cutoff.
    later = NOW - 100 + 3600 + 1
    stale = event("old", NOW - 7200, principal=DEPLOY_ROLE)

    result = aggregate(existing, [stale], later, 3600)

    assert result == {APP_ROLE: EXPECTED_APP_ROLE}


def test_event_ids_keep_only_the_most_recent_fifty() -> None:
    events = [event(f"id-{i:03d}", NOW - 1000 + i) for i in range(60)]

    record = aggregate({}, events, NOW, DAY)[ALICE]

    assert record["event_ids"] == [f"id-{i:03d}" for i in range(59, 9, -1)]
    assert record["count"] == 60


# --- SqsEventSource against moto ------------------------------------------------------------


def envelope(detail: dict[str, Any]) -> str:
    return json.dumps(
        {
            "version": "0",
            "id": f"eb-{detail['eventID']}",
            "detail-type": "AWS API Call via CloudTrail",
            "source": "aws." + detail["eventSource"].split(".")[0],
            "account": detail["recipientAccountId"],
            "time": detail["eventTime"],
            "region": detail["awsRegion"],
            "resources": [],
            "detail": detail,
        }
    )


def numbered(detail: dict[str, Any], n: int) -> dict[str, Any]:
    return {**copy.deepcopy(detail), "eventID": f"{detail['eventID']}-{n:02d}"}


def sqs_client(moto_server: MotoServer) -> Any:
    return boto3.client("sqs", region_name=REGION, endpoint_url=moto_server.url)


def fill_queue(client: Any, bodies: list[str]) -> str:
    url = client.create_queue(QueueName="cloudtrail-errors")["QueueUrl"]
    for start in range(0, len(bodies), 10):
        entries = [
            {"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies[start : start + 10])
        ]
        assert not client.send_message_batch(QueueUrl=url, Entries=entries).get("Failed")
    return url


def queue_counts(client: Any, url: str) -> tuple[str, str]:
    attributes = client.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        attributes["ApproximateNumberOfMessages"],
        attributes["ApproximateNumberOfMessagesNotVisible"],
    )


def test_sqs_source_returns_error_events_and_every_handle_then_ack_empties_the_queue(
    moto_server: MotoServer, clean: None
) -> None:
    client = sqs_client(moto_server)
    errors = [numbered(USER_DENIED, n) for n in range(11)] + [
        numbered(ROLE_DENIED, n) for n in range(11)
    ]
    bodies = [envelope(d) for d in errors]
    bodies[5:5] = [envelope(numbered(USER_SUCCEEDED, 0)), "this is not json"]
    bodies.append(envelope(numbered(USER_SUCCEEDED, 1)))
    url = fill_queue(client, bodies)
    source = SqsEventSource(client, url)

    events, handles = source.fetch()

    expected = [parse_cloudtrail_record(d) for d in errors]
    assert sorted(events, key=lambda e: e.event_id) == sorted(
        expected,
        key=lambda e: e.event_id,  # type: ignore[union-attr]
    )
    assert len(handles) == len(set(handles)) == 25
    assert source.bad_messages == 1
    assert queue_counts(client, url) == ("0", "25")

    source.ack(handles)

    assert queue_counts(client, url) == ("0", "0")
    assert source.fetch() == ([], [])
    assert source.bad_messages == 0


def test_sqs_source_stops_at_max_messages(moto_server: MotoServer, clean: None) -> None:
    client = sqs_client(moto_server)
    url = fill_queue(client, [envelope(numbered(ROLE_DENIED, n)) for n in range(15)])

    events, handles = SqsEventSource(client, url, max_messages=12).fetch()

    assert len(events) == len(handles) == 12
    assert queue_counts(client, url) == ("3", "12")


def test_sqs_ack_raises_when_a_message_cannot_be_deleted(
    moto_server: MotoServer, clean: None
) -> None:
    client = sqs_client(moto_server)
    url = fill_queue(client, [envelope(numbered(ROLE_DENIED, 0))])
    source = SqsEventSource(client, url)
    _, handles = source.fetch()

    with pytest.raises(AckFailed, match="1 messages not deleted: ReceiptHandleIsInvalid"):
        source.ack([*handles, "not-a-receipt-handle"])

    assert queue_counts(client, url) == ("0", "0")  # the valid one was still deleted


# --- LookupEventsSource with a stubbed client -----------------------------------------------


def lookup_event(detail: dict[str, Any] | str) -> dict[str, Any]:
    body = detail if isinstance(detail, str) else json.dumps(detail)
    return {"EventId": "lookup", "EventName": "Call", "CloudTrailEvent": body}


def test_lookup_events_source_reads_every_page_of_the_lookback_window() -> None:
    client = boto3.client(
        "cloudtrail", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    params = {
        "StartTime": datetime(2024, 5, 1, 20, 46, 40, tzinfo=UTC),
        "EndTime": datetime(2024, 5, 1, 21, 46, 40, tzinfo=UTC),
        "MaxResults": 50,
    }
    source = LookupEventsSource(client, lookback_seconds=3600, now=lambda: NOW)
    with Stubber(client) as stubber:
        stubber.add_response(
            "lookup_events",
            {
                "Events": [lookup_event(USER_DENIED), lookup_event(USER_SUCCEEDED)],
                "NextToken": "p2",
            },
            params,
        )
        stubber.add_response(
            "lookup_events",
            {"Events": [lookup_event("{truncated"), lookup_event(ROLE_WITHOUT_ISSUER)]},
            {**params, "NextToken": "p2"},
        )

        result = source.fetch()

        stubber.assert_no_pending_responses()

    assert result == ([EXPECTED_USER_DENIED, EXPECTED_DEPLOY], [])
    assert source.bad_messages == 1
    source.ack([])  # nothing to acknowledge, and no call is made
