"""ECR repositories: transform, refresh_repository per aspect (Stubber), CloudTrail events."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from inventory.aws import ecr
from inventory.aws.events import ResourceEvent
from inventory.aws.kind import CREATE, DELETE, POLICY, RESOURCE, TAGS, NotAChange
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

REGION = "eu-west-1"
ARN = f"arn:aws:ecr:eu-west-1:{ACCOUNT}:repository/team/app"
PULL = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "PartnerPulls",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"},
            "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
        }
    ],
}
REPOSITORY = {
    "repositoryArn": ARN,
    "registryId": ACCOUNT,
    "repositoryName": "team/app",
    "repositoryUri": f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/team/app",
    "createdAt": datetime(2024, 5, 1, 8, 0, tzinfo=UTC),
    "imageTagMutability": "IMMUTABLE",
    "imageScanningConfiguration": {"scanOnPush": True},
    "encryptionConfiguration": {"encryptionType": "KMS", "kmsKey": "arn:aws:kms:eu-west-1:k"},
}
TAG_LIST = [{"Key": "team", "Value": "platform"}]
EXPECTED = {
    "arn": ARN,
    "kind": "ecr_repository",
    "account_id": ACCOUNT,
    "region": REGION,
    "name": "team/app",
    "uri": f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/team/app",
    "policy": PULL,
    "scan_on_push": True,
    "tag_mutability": "IMMUTABLE",
    "encryption": "KMS",
    "kms_key": "arn:aws:kms:eu-west-1:k",
    "created": "2024-05-01T08:00:00Z",
    "tags": {"team": "platform"},
}
NAMED = {"repositoryName": "team/app"}
NO_POLICY = "RepositoryPolicyNotFoundException"
GONE = "RepositoryNotFoundException"


def policy_answer(document: dict[str, Any]) -> dict[str, Any]:
    return {"registryId": ACCOUNT, "repositoryName": "team/app", "policyText": json.dumps(document)}


def repository_calls(policy: dict[str, Any] | None, tag_list: list[dict[str, str]]) -> list[Call]:
    return [
        Call("get_repository_policy", NAMED, policy_answer(policy))
        if policy
        else error("get_repository_policy", NAMED, NO_POLICY),
        Call("list_tags_for_resource", {"resourceArn": ARN}, {"tags": tag_list}),
    ]


def test_transform_maps_every_field():
    raw = {"repository": REPOSITORY, "policy": json.dumps(PULL), "tags": TAG_LIST}

    assert ecr.transform_repository(raw, ACCOUNT, REGION) == EXPECTED


def test_repository_without_policy_encryption_settings_or_tags_has_nones():
    bare = {"repositoryArn": ARN, "repositoryName": "team/app"}

    assert ecr.transform_repository({"repository": bare}, ACCOUNT, REGION) == {
        **EXPECTED,
        "uri": None,
        "policy": None,
        "scan_on_push": None,
        "tag_mutability": None,
        "encryption": None,
        "kms_key": None,
        "created": None,
        "tags": {},
    }


def test_policy_that_is_not_json_is_a_bad_record():
    with pytest.raises(BadRecord, match="repository policy of team/app"):
        ecr.transform_repository({"repository": REPOSITORY, "policy": "{no"}, ACCOUNT, REGION)


def test_listing_reads_each_repository_and_leaves_out_one_deleted_meanwhile():
    ecr_client = client("ecr", REGION)
    gone = {**REPOSITORY, "repositoryName": "gone", "repositoryArn": ARN + "-gone"}
    denied = {**REPOSITORY, "repositoryName": "denied", "repositoryArn": ARN + "-denied"}
    calls = [
        Call(
            "describe_repositories",
            {"maxResults": 1000},
            {"repositories": [REPOSITORY, gone, denied]},
        ),
        *repository_calls(PULL, TAG_LIST),
        error("get_repository_policy", {"repositoryName": "gone"}, GONE),
        error("get_repository_policy", {"repositoryName": "denied"}, "AccessDenied"),
    ]

    listing = run(ecr_client, calls, lambda: ecr.collect_repositories(ecr_client, ACCOUNT, REGION))

    assert listing == Listing(
        records=[EXPECTED],
        skipped=[SkippedRecord("repository denied", "AccessDenied", ARN + "-denied")],
        keep={ARN + "-denied"},
    )


# --- the targeted read --------------------------------------------------------------------------

NEW_POLICY = {"Version": "2012-10-17", "Statement": []}
DESCRIBE = Call("describe_repositories", {"repositoryNames": ["team/app"]})


def refresh(aspects: set[str], cached: dict[str, Any] | None, calls: list[Call]) -> Any:
    ecr_client = client("ecr", REGION)
    return run(
        ecr_client,
        calls,
        lambda: ecr.refresh_repository(ecr_client, ACCOUNT, REGION, "team/app", aspects, cached),
    )


def cached() -> dict[str, Any]:
    return copy.deepcopy(EXPECTED)


def test_policy_event_is_one_get_repository_policy():
    calls = [Call("get_repository_policy", NAMED, policy_answer(NEW_POLICY))]

    assert refresh({POLICY}, cached(), calls) == {**EXPECTED, "policy": NEW_POLICY}


def test_deleted_policy_is_none():
    assert refresh({POLICY}, cached(), [error("get_repository_policy", NAMED, NO_POLICY)]) == {
        **EXPECTED,
        "policy": None,
    }


def test_tag_event_is_one_list_tags_for_resource():
    calls = [Call("list_tags_for_resource", {"resourceArn": ARN}, {"tags": []})]

    assert refresh({TAGS}, cached(), calls) == {**EXPECTED, "tags": {}}


def test_scanning_change_is_one_describe_keeping_policy_and_tags():
    changed = {**REPOSITORY, "imageScanningConfiguration": {"scanOnPush": False}}
    calls = [Call(DESCRIBE.operation, DESCRIBE.params, {"repositories": [changed]})]

    assert refresh({RESOURCE}, cached(), calls) == {**EXPECTED, "scan_on_push": False}


@pytest.mark.parametrize("aspects", [{CREATE}, {DELETE, CREATE}])
def test_create_reads_everything(aspects):
    calls = [
        Call(DESCRIBE.operation, DESCRIBE.params, {"repositories": [REPOSITORY]}),
        *repository_calls(None, []),
    ]

    assert refresh(aspects, None, calls) == {**EXPECTED, "policy": None, "tags": {}}


@pytest.mark.parametrize("aspects", [{DELETE}, {POLICY}, {RESOURCE}])
def test_repository_gone_is_none(aspects):
    call = error("get_repository_policy", NAMED, GONE) if aspects == {POLICY} else None
    calls = [call or error(DESCRIBE.operation, DESCRIBE.params, GONE)]

    assert refresh(aspects, cached(), calls) is None


def test_access_denied_raises_instead_of_dropping_the_repository():
    with pytest.raises(ClientError, match="AccessDenied"):
        refresh({RESOURCE}, cached(), [error(DESCRIBE.operation, DESCRIBE.params, "AccessDenied")])


# --- CloudTrail events --------------------------------------------------------------------------

EVENTS: dict[str, tuple[dict[str, Any], dict[str, Any] | None, str]] = {
    "CreateRepository": (
        {"repositoryName": "team/app", "imageScanningConfiguration": {"scanOnPush": True}},
        {"repository": {"repositoryArn": ARN}},
        CREATE,
    ),
    "DeleteRepository": ({"repositoryName": "team/app", "force": True}, None, DELETE),
    "SetRepositoryPolicy": ({"repositoryName": "team/app", "policyText": "{}"}, None, POLICY),
    "DeleteRepositoryPolicy": ({"repositoryName": "team/app"}, None, POLICY),
    "PutImageScanningConfiguration": (
        {"repositoryName": "team/app", "imageScanningConfiguration": {"scanOnPush": False}},
        None,
        RESOURCE,
    ),
    "PutImageTagMutability": (
        {"repositoryName": "team/app", "imageTagMutability": "MUTABLE"},
        None,
        RESOURCE,
    ),
    "TagResource": ({"resourceArn": ARN, "tags": TAG_LIST}, None, TAGS),
    "UntagResource": ({"resourceArn": ARN, "tagKeys": ["team"]}, None, TAGS),
}


def test_every_followed_ecr_event_has_a_case_here():
    assert set(EVENTS) == set(ecr.EVENTS.aspects)


@pytest.mark.parametrize("name", sorted(EVENTS))
def test_ecr_event_names_the_repository_by_name_in_its_region(name):
    params, response, aspect = EVENTS[name]

    events = parse_event(api_call("ecr.amazonaws.com", name, params, response, region=REGION))

    assert events == [
        ResourceEvent(
            "ecr_repository",
            ACCOUNT,
            REGION,
            "team/app",
            aspect,
            name,
            event_time(),
            event_id(name),
            ALICE,
        )
    ]


@pytest.mark.parametrize(
    "params",
    [
        {"repositoryName": "team/app", "registryId": OTHER_ACCOUNT, "policyText": "{}"},
        {"resourceArn": ARN.replace(ACCOUNT, OTHER_ACCOUNT), "tags": []},
    ],
)
def test_call_on_another_accounts_repository_is_not_ours(params):
    name = "TagResource" if "resourceArn" in params else "SetRepositoryPolicy"

    with pytest.raises(NotAChange, match=f"account {OTHER_ACCOUNT}"):
        parse_event(api_call("ecr.amazonaws.com", name, params))


@pytest.mark.parametrize("params", [{}, {"resourceArn": "arn:aws:s3:::bucket"}])
def test_ecr_event_without_a_repository_is_not_a_change(params):
    with pytest.raises(NotAChange):
        parse_event(api_call("ecr.amazonaws.com", "TagResource", params))
