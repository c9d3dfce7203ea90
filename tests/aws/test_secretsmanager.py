"""Secrets Manager secrets: transform, refresh_secret per aspect (Stubber), CloudTrail events."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from inventory.aws import secretsmanager
from inventory.aws.events import ResourceEvent
from inventory.aws.kind import CREATE, DELETE, POLICY, RESOURCE, TAGS, NotAChange
from inventory.aws.listing import Listing
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
ARN = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:prod/db-AbCdEf"
VERSION = "EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE"
ROTATOR = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:rotate-db"
READ_BY_APP = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/app"},
            "Action": "secretsmanager:GetSecretValue",
            "Resource": "*",
        }
    ],
}
LISTED = {
    "ARN": ARN,
    "Name": "prod/db",
    "Description": "orders database",
    "KmsKeyId": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/k",
    "RotationEnabled": True,
    "RotationLambdaARN": ROTATOR,
    "RotationRules": {"AutomaticallyAfterDays": 30, "ScheduleExpression": "rate(30 days)"},
    "LastRotatedDate": datetime(2024, 5, 1, tzinfo=UTC),
    "LastChangedDate": datetime(2024, 5, 1, tzinfo=UTC),
    "LastAccessedDate": datetime(2024, 5, 14, tzinfo=UTC),
    "Tags": [{"Key": "team", "Value": "orders"}],
    "SecretVersionsToStages": {VERSION: ["AWSCURRENT"]},
    "CreatedDate": datetime(2023, 1, 1, tzinfo=UTC),
    "PrimaryRegion": "us-east-1",
}
EXPECTED = {
    "arn": ARN,
    "kind": "secretsmanager_secret",
    "account_id": ACCOUNT,
    "region": REGION,
    "name": "prod/db",
    "description": "orders database",
    "policy": READ_BY_APP,
    "kms_key": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/k",
    "rotation_enabled": True,
    "rotation_lambda": ROTATOR,
    "rotation_days": 30,
    "rotation_schedule": "rate(30 days)",
    "last_rotated": "2024-05-01T00:00:00Z",
    "primary_region": "us-east-1",
    "owning_service": None,
    "created": "2023-01-01T00:00:00Z",
    "tags": {"team": "orders"},
}
AT = {"SecretId": ARN}


def policy_answer(policy: dict[str, Any] | None) -> dict[str, Any]:
    answer = {"ARN": ARN, "Name": "prod/db"}
    return answer | ({"ResourcePolicy": json.dumps(policy)} if policy else {})


def test_listing_reads_each_secrets_policy_and_leaves_out_one_deleted_meanwhile():
    sm = client("secretsmanager")
    gone = {**LISTED, "ARN": ARN + "-gone", "Name": "gone"}
    calls = [
        Call("list_secrets", {"MaxResults": 100}, {"SecretList": [LISTED, gone]}),
        Call("get_resource_policy", AT, policy_answer(READ_BY_APP)),
        error("get_resource_policy", {"SecretId": ARN + "-gone"}, "ResourceNotFoundException"),
    ]

    listing = run(sm, calls, lambda: secretsmanager.collect_secrets(sm, ACCOUNT, REGION))

    assert listing == Listing(records=[EXPECTED])


def test_record_holds_no_version_access_time_or_anything_of_the_value():
    record = secretsmanager.transform_secret({"secret": LISTED}, ACCOUNT, REGION)

    assert record == {**EXPECTED, "policy": None}
    assert VERSION not in json.dumps(record) and "2024-05-14" not in json.dumps(record)


def test_secret_without_rotation_or_optional_fields_has_nones():
    bare = {"ARN": ARN, "Name": "prod/db"}

    assert secretsmanager.transform_secret({"secret": bare}, ACCOUNT, REGION) == {
        **EXPECTED,
        "description": None,
        "policy": None,
        "kms_key": None,
        "rotation_enabled": False,
        "rotation_lambda": None,
        "rotation_days": None,
        "rotation_schedule": None,
        "last_rotated": None,
        "primary_region": None,
        "created": None,
        "tags": {},
    }


def refresh(aspects: set[str], cached: dict[str, Any] | None, calls: list[Call]) -> Any:
    sm = client("secretsmanager")
    return run(
        sm,
        calls,
        lambda: secretsmanager.refresh_secret(sm, ACCOUNT, REGION, ARN, aspects, cached),
    )


def cached() -> dict[str, Any]:
    return copy.deepcopy(EXPECTED)


def described(**changed: Any) -> dict[str, Any]:
    """DescribeSecret's answer: ListSecrets' fields, versions under another name."""
    answer = {k: v for k, v in {**LISTED, **changed}.items() if v is not None}
    answer["VersionIdsToStages"] = answer.pop("SecretVersionsToStages")
    return answer


def test_policy_deleted_is_one_get_resource_policy():
    calls = [Call("get_resource_policy", AT, policy_answer(None))]

    assert refresh({POLICY}, cached(), calls) == {**EXPECTED, "policy": None}


@pytest.mark.parametrize("aspects", [{RESOURCE}, {TAGS}, {RESOURCE, TAGS}])
def test_rotation_or_tag_change_is_one_describe_secret_keeping_the_policy(aspects):
    calls = [Call("describe_secret", AT, described(RotationEnabled=False, Tags=[]))]

    assert refresh(aspects, cached(), calls) == {**EXPECTED, "rotation_enabled": False, "tags": {}}


def test_created_secret_is_read_in_full():
    calls = [
        Call("describe_secret", AT, described()),
        Call("get_resource_policy", AT, policy_answer(READ_BY_APP)),
    ]

    assert refresh({CREATE}, None, calls) == EXPECTED


def test_secret_scheduled_for_deletion_is_gone_as_listsecrets_leaves_it_out():
    deleted = described(DeletedDate=datetime(2024, 5, 14, tzinfo=UTC))

    assert refresh({DELETE}, cached(), [Call("describe_secret", AT, deleted)]) is None


def test_secret_deleted_for_good_is_gone():
    calls = [error("describe_secret", AT, "ResourceNotFoundException")]

    assert refresh({DELETE}, cached(), calls) is None


# --- CloudTrail events --------------------------------------------------------------------------

EVENTS: dict[str, tuple[dict[str, Any], dict[str, Any] | None, str]] = {
    "CreateSecret": (
        {"name": "prod/db", "kmsKeyId": "alias/orders"},
        {"arn": ARN, "name": "prod/db"},
        CREATE,
    ),
    "DeleteSecret": (
        {"secretId": "prod/db", "recoveryWindowInDays": 7},
        {"arn": ARN, "name": "prod/db", "deletionDate": "May 21, 2024 10:21:09 AM"},
        DELETE,
    ),
    "RestoreSecret": ({"secretId": ARN}, {"arn": ARN, "name": "prod/db"}, CREATE),
    "UpdateSecret": ({"secretId": ARN, "description": "x"}, {"arn": ARN}, RESOURCE),
    "RotateSecret": ({"secretId": "prod/db"}, {"arn": ARN, "versionId": "v2"}, RESOURCE),
    "CancelRotateSecret": ({"secretId": ARN}, {"arn": ARN}, RESOURCE),
    "PutResourcePolicy": ({"secretId": "prod/db"}, {"arn": ARN, "name": "prod/db"}, POLICY),
    "DeleteResourcePolicy": ({"secretId": ARN}, {"arn": ARN, "name": "prod/db"}, POLICY),
    "TagResource": ({"secretId": ARN, "tags": []}, None, TAGS),
    "UntagResource": ({"secretId": ARN, "tagKeys": ["team"]}, None, TAGS),
}


def test_every_followed_secrets_manager_event_has_a_case_here():
    assert set(EVENTS) == set(secretsmanager.EVENTS.aspects)


@pytest.mark.parametrize("name", sorted(EVENTS))
def test_secrets_manager_event_names_the_secret_by_its_arn(name):
    params, response, aspect = EVENTS[name]

    events = parse_event(api_call("secretsmanager.amazonaws.com", name, params, response))

    assert events == [
        ResourceEvent(
            "secretsmanager_secret",
            ACCOUNT,
            REGION,
            ARN,
            aspect,
            name,
            event_time(),
            event_id(name),
            ALICE,
        )
    ]


def test_tag_call_naming_the_secret_by_name_alone_is_left_to_the_sweep():
    body = api_call("secretsmanager.amazonaws.com", "TagResource", {"secretId": "prod/db"})

    with pytest.raises(NotAChange, match="by name"):
        parse_event(body)


def test_call_on_another_accounts_secret_is_not_ours():
    theirs = ARN.replace(ACCOUNT, OTHER_ACCOUNT)
    body = api_call("secretsmanager.amazonaws.com", "TagResource", {"secretId": theirs})

    with pytest.raises(NotAChange, match=f"account {OTHER_ACCOUNT}"):
        parse_event(body)
