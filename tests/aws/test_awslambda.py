"""Lambda functions: transform, refresh_function per aspect (Stubber), CloudTrail events."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from inventory.aws import awslambda
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

REGION = "us-west-2"
ARN = f"arn:aws:lambda:us-west-2:{ACCOUNT}:function:resize"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/resize-exec"
INVOKE_FROM_S3 = {
    "Version": "2012-10-17",
    "Id": "default",
    "Statement": [
        {
            "Sid": "s3-invoke",
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "lambda:InvokeFunction",
            "Resource": ARN,
            "Condition": {"StringEquals": {"AWS:SourceAccount": ACCOUNT}},
        }
    ],
}
CONFIGURATION = {
    "FunctionName": "resize",
    "FunctionArn": ARN,
    "Runtime": "python3.12",
    "Role": ROLE,
    "Handler": "app.handler",
    "CodeSize": 1024,
    "Description": "thumbnails",
    "Timeout": 30,
    "MemorySize": 256,
    "LastModified": "2024-05-14T10:00:00.000+0000",
    "CodeSha256": "abc=",
    "Version": "$LATEST",
    "VpcConfig": {"SubnetIds": ["subnet-1"], "SecurityGroupIds": ["sg-1"], "VpcId": "vpc-1"},
    "Environment": {"Variables": {"DB_PASSWORD": "hunter2"}},
    "KMSKeyArn": f"arn:aws:kms:us-west-2:{ACCOUNT}:key/k",
    "Layers": [{"Arn": f"arn:aws:lambda:us-west-2:{ACCOUNT}:layer:pillow:3", "CodeSize": 9}],
    "PackageType": "Zip",
    "Architectures": ["arm64"],
}
EXPECTED = {
    "arn": ARN,
    "kind": "lambda_function",
    "account_id": ACCOUNT,
    "region": REGION,
    "name": "resize",
    "policy": INVOKE_FROM_S3,
    "role": ROLE,
    "runtime": "python3.12",
    "handler": "app.handler",
    "package_type": "Zip",
    "architectures": ["arm64"],
    "description": "thumbnails",
    "timeout": 30,
    "memory": 256,
    "kms_key": f"arn:aws:kms:us-west-2:{ACCOUNT}:key/k",
    "layers": [f"arn:aws:lambda:us-west-2:{ACCOUNT}:layer:pillow:3"],
    "vpc_id": "vpc-1",
    "code_sha256": "abc=",
    "last_modified": "2024-05-14T10:00:00.000+0000",
    "tags": {"team": "media"},
}
NAMED = {"FunctionName": "resize"}
NOT_FOUND = "ResourceNotFoundException"


def function_calls(policy: dict[str, Any] | None) -> list[Call]:
    return [
        Call("get_policy", NAMED, {"Policy": json.dumps(policy), "RevisionId": "r"})
        if policy
        else error("get_policy", NAMED, NOT_FOUND, 404),
        Call("list_tags", {"Resource": ARN}, {"Tags": {"team": "media"}}),
    ]


def test_transform_keeps_no_environment_variable():
    raw = {"Configuration": CONFIGURATION, "Policy": json.dumps(INVOKE_FROM_S3), "Tags": {}}

    record = awslambda.transform_function(raw, ACCOUNT, REGION)

    assert record == {**EXPECTED, "tags": {}}
    assert "hunter2" not in json.dumps(record) and "DB_PASSWORD" not in json.dumps(record)


def test_listing_reads_each_function_and_leaves_out_one_deleted_meanwhile():
    lambda_client = client("lambda", REGION)
    gone = {**CONFIGURATION, "FunctionName": "gone", "FunctionArn": ARN + "-gone"}
    calls = [
        Call("list_functions", {"MaxItems": 50}, {"Functions": [CONFIGURATION, gone]}),
        *function_calls(INVOKE_FROM_S3),
        error("get_policy", {"FunctionName": "gone"}, NOT_FOUND, 404),
        error("list_tags", {"Resource": ARN + "-gone"}, NOT_FOUND, 404),
    ]

    listing = run(
        lambda_client,
        calls,
        lambda: awslambda.collect_functions(lambda_client, ACCOUNT, REGION),
    )

    assert listing == Listing(records=[EXPECTED])


def refresh(aspects: set[str], cached: dict[str, Any] | None, calls: list[Call]) -> Any:
    lambda_client = client("lambda", REGION)
    return run(
        lambda_client,
        calls,
        lambda: awslambda.refresh_function(
            lambda_client, ACCOUNT, REGION, "resize", aspects, cached
        ),
    )


def cached() -> dict[str, Any]:
    return copy.deepcopy(EXPECTED)


def test_permission_removed_is_one_get_policy_and_no_policy_is_none():
    calls = [error("get_policy", NAMED, NOT_FOUND, 404)]

    assert refresh({POLICY}, cached(), calls) == {**EXPECTED, "policy": None}


def test_tag_change_is_one_list_tags():
    calls = [Call("list_tags", {"Resource": ARN}, {"Tags": {}})]

    assert refresh({TAGS}, cached(), calls) == {**EXPECTED, "tags": {}}


def test_configuration_change_is_one_get_function_configuration_keeping_policy_and_tags():
    changed = {**CONFIGURATION, "Role": ROLE + "-2", "Runtime": "python3.13"}
    calls = [Call("get_function_configuration", NAMED, changed)]

    assert refresh({RESOURCE}, cached(), calls) == {
        **EXPECTED,
        "role": ROLE + "-2",
        "runtime": "python3.13",
    }


def test_created_function_is_read_in_full():
    calls = [Call("get_function_configuration", NAMED, CONFIGURATION), *function_calls(None)]

    assert refresh({CREATE}, None, calls) == {**EXPECTED, "policy": None}


@pytest.mark.parametrize("aspects", [{DELETE}, {RESOURCE}])
def test_function_gone_is_none(aspects):
    calls = [error("get_function_configuration", NAMED, NOT_FOUND, 404)]

    assert refresh(aspects, cached(), calls) is None


# --- CloudTrail events --------------------------------------------------------------------------

EVENTS: dict[str, tuple[dict[str, Any], dict[str, Any] | None, str]] = {
    "CreateFunction20150331": (
        {"functionName": "resize", "runtime": "python3.12", "role": ROLE},
        {"functionName": "resize", "functionArn": ARN},
        CREATE,
    ),
    "DeleteFunction20150331": ({"functionName": "resize"}, None, DELETE),
    "UpdateFunctionConfiguration20150331v2": (
        {"functionName": ARN, "role": ROLE},
        {"functionArn": ARN},
        RESOURCE,
    ),
    "UpdateFunctionCode20150331v2": ({"functionName": "resize"}, None, RESOURCE),
    "AddPermission20150331v2": (
        {"functionName": "resize", "statementId": "s3-invoke", "principal": "s3.amazonaws.com"},
        None,
        POLICY,
    ),
    "RemovePermission20150331v2": (
        {"functionName": f"{ACCOUNT}:function:resize", "statementId": "s3-invoke"},
        None,
        POLICY,
    ),
    "TagResource20170331v2": ({"resource": ARN, "tags": {"team": "media"}}, None, TAGS),
    "UntagResource20170331v2": ({"resource": ARN, "tagKeys": ["team"]}, None, TAGS),
}


def test_every_followed_lambda_event_has_a_case_here():
    assert set(EVENTS) == set(awslambda.EVENTS.aspects)


@pytest.mark.parametrize("name", sorted(EVENTS))
def test_lambda_event_names_the_function_by_its_name(name):
    params, response, aspect = EVENTS[name]

    events = parse_event(api_call("lambda.amazonaws.com", name, params, response, region=REGION))

    assert events == [
        ResourceEvent(
            "lambda_function",
            ACCOUNT,
            REGION,
            "resize",
            aspect,
            name,
            event_time(),
            event_id(name),
            ALICE,
        )
    ]


@pytest.mark.parametrize("named", ["resize:live", f"{ARN}:7", f"{ACCOUNT}:function:resize:$LATEST"])
def test_a_qualified_name_refreshes_the_function(named):
    body = api_call(
        "lambda.amazonaws.com",
        "AddPermission20150331v2",
        {"functionName": named, "qualifier": "live"},
        region=REGION,
    )

    (event,) = parse_event(body)

    assert event.name == "resize"


@pytest.mark.parametrize(
    "named", [ARN.replace(ACCOUNT, OTHER_ACCOUNT), f"{OTHER_ACCOUNT}:function:resize"]
)
def test_call_on_another_accounts_function_is_not_ours(named):
    body = api_call("lambda.amazonaws.com", "AddPermission20150331v2", {"functionName": named})

    with pytest.raises(NotAChange, match=f"account {OTHER_ACCOUNT}"):
        parse_event(body)


@pytest.mark.parametrize("named", [None, "", "arn:aws:s3:::bucket"])
def test_lambda_event_without_a_function_is_not_a_change(named):
    body = api_call("lambda.amazonaws.com", "DeleteFunction20150331", {"functionName": named})

    with pytest.raises(NotAChange):
        parse_event(body)
