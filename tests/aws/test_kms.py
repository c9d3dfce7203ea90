"""KMS keys: transform, refresh_key per aspect (Stubber), CloudTrail events."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from inventory.aws import kms
from inventory.aws.events import ResourceEvent
from inventory.aws.kind import CREATE, POLICY, RESOURCE, TAGS, NotAChange
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
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{KEY_ID}"
AWS_KEY_ID = "0987dcba-09fe-87dc-65ba-ab0987654321"
KEY_POLICY = {
    "Version": "2012-10-17",
    "Id": "key-default-1",
    "Statement": [
        {
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
    ],
}
METADATA = {
    "AWSAccountId": ACCOUNT,
    "KeyId": KEY_ID,
    "Arn": ARN,
    "CreationDate": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
    "Enabled": True,
    "Description": "orders data",
    "KeyUsage": "ENCRYPT_DECRYPT",
    "KeyState": "Enabled",
    "Origin": "AWS_KMS",
    "KeyManager": "CUSTOMER",
    "KeySpec": "SYMMETRIC_DEFAULT",
    "MultiRegion": False,
}
ALIASES = [
    {
        "AliasName": "alias/orders",
        "AliasArn": f"arn:aws:kms:us-east-1:{ACCOUNT}:alias/orders",
        "TargetKeyId": KEY_ID,
    },
    {
        "AliasName": "alias/aws/s3",
        "AliasArn": f"arn:aws:kms:us-east-1:{ACCOUNT}:alias/aws/s3",
        "TargetKeyId": AWS_KEY_ID,
    },
    {"AliasName": "alias/unused", "AliasArn": f"arn:aws:kms:us-east-1:{ACCOUNT}:alias/unused"},
]
EXPECTED = {
    "arn": ARN,
    "kind": "kms_key",
    "account_id": ACCOUNT,
    "region": REGION,
    "name": KEY_ID,
    "aliases": ["alias/orders"],
    "description": "orders data",
    "manager": "CUSTOMER",
    "state": "Enabled",
    "spec": "SYMMETRIC_DEFAULT",
    "usage": "ENCRYPT_DECRYPT",
    "origin": "AWS_KMS",
    "multi_region": False,
    "deletion_date": None,
    "rotation_enabled": True,
    "policy": KEY_POLICY,
    "created": "2024-01-02T03:04:05Z",
    "tags": {"team": "orders"},
}
AWS_METADATA = {
    **METADATA,
    "KeyId": AWS_KEY_ID,
    "Arn": ARN.replace(KEY_ID, AWS_KEY_ID),
    "KeyManager": "AWS",
    "Description": "Default key that protects my S3 objects when no other key is defined",
}
AT = {"KeyId": KEY_ID}
POLICY_OF = {"KeyId": KEY_ID, "PolicyName": "default"}


def key_calls(key_id: str, metadata: dict[str, Any], tags: bool = True) -> list[Call]:
    at = {"KeyId": key_id}
    return [
        Call("describe_key", at, {"KeyMetadata": metadata}),
        Call("get_key_policy", {**at, "PolicyName": "default"}, {"Policy": json.dumps(KEY_POLICY)}),
        Call("get_key_rotation_status", at, {"KeyRotationEnabled": True}),
        *([Call("list_resource_tags", at, {"Tags": [{"TagKey": "team", "TagValue": "orders"}]})]
          if tags else []),
    ]  # fmt: skip


def test_listing_reads_customer_and_aws_managed_keys_without_tags_for_aws_ones():
    kms_client = client("kms")
    gone = "ffffffff-0000-0000-0000-000000000000"
    keys = [{"KeyId": KEY_ID}, {"KeyId": AWS_KEY_ID}, {"KeyId": gone}]
    calls = [
        Call("list_aliases", {"Limit": 100}, {"Aliases": ALIASES}),
        Call("list_keys", {"Limit": 1000}, {"Keys": keys}),
        *key_calls(KEY_ID, METADATA),
        *key_calls(AWS_KEY_ID, AWS_METADATA, tags=False),
        error("describe_key", {"KeyId": gone}, "NotFoundException"),
    ]

    listing = run(kms_client, calls, lambda: kms.collect_keys(kms_client, ACCOUNT, REGION))

    aws_key = {
        **EXPECTED,
        "arn": AWS_METADATA["Arn"],
        "name": AWS_KEY_ID,
        "aliases": ["alias/aws/s3"],
        "description": AWS_METADATA["Description"],
        "manager": "AWS",
        "tags": {},
    }
    assert listing == Listing(records=[EXPECTED, aws_key])


@pytest.mark.parametrize("code", ["UnsupportedOperationException", "KMSInvalidStateException"])
def test_rotation_of_a_key_it_does_not_apply_to_is_none(code):
    kms_client = client("kms")
    calls = [error("get_key_rotation_status", AT, code)]

    assert run(kms_client, calls, lambda: kms.get_rotation(kms_client, KEY_ID)) is None


# --- the targeted read ----------------------------------------------------------------------------


def refresh(aspects: set[str], cached: dict[str, Any] | None, calls: list[Call]) -> Any:
    kms_client = client("kms")
    return run(
        kms_client,
        calls,
        lambda: kms.refresh_key(kms_client, ACCOUNT, REGION, KEY_ID, aspects, cached),
    )


def cached() -> dict[str, Any]:
    return copy.deepcopy(EXPECTED)


OPEN = {**KEY_POLICY, "Statement": [{**KEY_POLICY["Statement"][0], "Principal": "*"}]}


@pytest.mark.parametrize(
    ("aspects", "calls", "changed"),
    [
        (
            {POLICY},
            [Call("get_key_policy", POLICY_OF, {"Policy": json.dumps(OPEN)})],
            {"policy": OPEN},
        ),
        (
            {kms.ROTATION},
            [Call("get_key_rotation_status", AT, {"KeyRotationEnabled": False})],
            {"rotation_enabled": False},
        ),
        (
            {kms.ALIASES},
            [Call("list_aliases", {**AT, "Limit": 100}, {"Aliases": [ALIASES[0], ALIASES[0]]})],
            {"aliases": ["alias/orders", "alias/orders"]},
        ),
        ({TAGS}, [Call("list_resource_tags", AT, {"Tags": []})], {"tags": {}}),
        (
            {RESOURCE},
            [Call("describe_key", AT, {"KeyMetadata": {**METADATA, "KeyState": "Disabled"}})],
            {"state": "Disabled"},
        ),
    ],
)
def test_each_aspect_is_one_call_keeping_the_rest(aspects, calls, changed):
    assert refresh(aspects, cached(), calls) == {**EXPECTED, **changed}


def test_created_key_is_read_in_full_with_its_aliases():
    calls = [
        Call("list_aliases", {**AT, "Limit": 100}, {"Aliases": ALIASES[:1]}),
        *key_calls(KEY_ID, METADATA),
    ]

    assert refresh({CREATE}, None, calls) == EXPECTED


def test_key_kms_cannot_find_is_gone():
    calls = [error("list_aliases", {**AT, "Limit": 100}, "NotFoundException")]

    assert refresh({CREATE}, None, calls) is None


def test_access_denied_by_the_key_policy_raises():
    with pytest.raises(ClientError, match="AccessDenied"):
        refresh({POLICY}, cached(), [error("get_key_policy", POLICY_OF, "AccessDeniedException")])


# --- CloudTrail events --------------------------------------------------------------------------

EVENTS: dict[str, tuple[dict[str, Any], dict[str, Any] | None, str]] = {
    "CreateKey": (
        {"description": "orders data", "keyUsage": "ENCRYPT_DECRYPT"},
        {"keyMetadata": {"keyId": KEY_ID, "arn": ARN}},
        CREATE,
    ),
    "ScheduleKeyDeletion": ({"keyId": KEY_ID, "pendingWindowInDays": 7}, None, RESOURCE),
    "CancelKeyDeletion": ({"keyId": ARN}, None, RESOURCE),
    "EnableKey": ({"keyId": KEY_ID}, None, RESOURCE),
    "DisableKey": ({"keyId": KEY_ID}, None, RESOURCE),
    "UpdateKeyDescription": ({"keyId": KEY_ID, "description": "x"}, None, RESOURCE),
    "PutKeyPolicy": ({"keyId": KEY_ID, "policyName": "default"}, None, POLICY),
    "EnableKeyRotation": ({"keyId": KEY_ID}, None, kms.ROTATION),
    "DisableKeyRotation": ({"keyId": ARN}, None, kms.ROTATION),
    "CreateAlias": ({"aliasName": "alias/orders", "targetKeyId": KEY_ID}, None, kms.ALIASES),
    "UpdateAlias": ({"aliasName": "alias/orders", "targetKeyId": ARN}, None, kms.ALIASES),
    "TagResource": ({"keyId": KEY_ID, "tags": []}, None, TAGS),
    "UntagResource": ({"keyId": KEY_ID, "tagKeys": ["team"]}, None, TAGS),
}


def test_every_followed_kms_event_has_a_case_here():
    assert set(EVENTS) == set(kms.EVENTS.aspects)


@pytest.mark.parametrize("name", sorted(EVENTS))
def test_kms_event_names_the_key_by_its_id(name):
    params, response, aspect = EVENTS[name]

    events = parse_event(api_call("kms.amazonaws.com", name, params, response))

    assert events == [
        ResourceEvent(
            "kms_key", ACCOUNT, REGION, KEY_ID, aspect, name, event_time(), event_id(name), ALICE
        )
    ]


def test_key_named_by_an_arn_of_another_region_is_refreshed_there():
    params = {"keyId": ARN.replace("us-east-1", "eu-west-1")}

    (event,) = parse_event(api_call("kms.amazonaws.com", "EnableKeyRotation", params))

    assert (event.region, event.name) == ("eu-west-1", KEY_ID)


def test_call_on_another_accounts_key_is_not_ours():
    params = {"keyId": ARN.replace(ACCOUNT, OTHER_ACCOUNT), "policyName": "default"}

    with pytest.raises(NotAChange, match=f"account {OTHER_ACCOUNT}"):
        parse_event(api_call("kms.amazonaws.com", "PutKeyPolicy", params))


@pytest.mark.parametrize("key", [None, "", "alias/orders", "arn:aws:s3:::bucket"])
def test_kms_event_without_a_key_is_not_a_change(key):
    with pytest.raises(NotAChange):
        parse_event(api_call("kms.amazonaws.com", "PutKeyPolicy", {"keyId": key}))
