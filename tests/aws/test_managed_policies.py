"""Attached managed policies: transform on raw ListPolicies entries, the listing's calls."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest

from inventory.aws import managed_policies
from inventory.aws.listing import Listing
from inventory.aws.records import SkippedRecord
from tests.aws.stubbed import ACCOUNT, Call, client, error, run

DEPLOY_ARN = f"arn:aws:iam::{ACCOUNT}:policy/team/deploy"
READ_ONLY_ARN = "arn:aws:iam::aws:policy/ReadOnlyAccess"
SSM_ARN = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
DEPLOY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["cloudformation:*", "s3:PutObject"], "Resource": "*"}
    ],
}
READ_ONLY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["s3:Get*", "s3:List*"], "Resource": "*"}],
}

# --- raw ListPolicies entries (as boto3 returns them) -------------------------------------------

LISTED_DEPLOY = {
    "PolicyName": "deploy",
    "PolicyId": "ANPAEXAMPLEDEPLOY001",
    "Arn": DEPLOY_ARN,
    "Path": "/team/",
    "DefaultVersionId": "v3",
    "AttachmentCount": 2,
    "PermissionsBoundaryUsageCount": 0,
    "IsAttachable": True,
    "CreateDate": datetime(2022, 7, 4, 0, 0, 0, tzinfo=UTC),
    "UpdateDate": datetime(2024, 1, 9, 16, 45, 0, tzinfo=UTC),
}
LISTED_READ_ONLY = {
    "PolicyName": "ReadOnlyAccess",
    "PolicyId": "ANPAILL3HVNFSB6DCOWYQ",
    "Arn": READ_ONLY_ARN,
    "Path": "/",
    "DefaultVersionId": "v112",
    "AttachmentCount": 1,
    "PermissionsBoundaryUsageCount": 0,
    "IsAttachable": True,
    "CreateDate": datetime(2015, 2, 6, 18, 39, 48, tzinfo=UTC),
    "UpdateDate": datetime(2024, 5, 1, 17, 12, 3, tzinfo=UTC),
}
LISTED_SSM = {
    **LISTED_READ_ONLY,
    "PolicyName": "AmazonSSMManagedInstanceCore",
    "PolicyId": "ANPAIXSHM2BNB2D3AXXRU",
    "Arn": SSM_ARN,
    "DefaultVersionId": "v2",
    "UpdateDate": datetime(2019, 3, 15, 17, 22, 12, tzinfo=UTC),
}

EXPECTED_DEPLOY = {
    "arn": DEPLOY_ARN,
    "kind": "managed_policy",
    "account_id": ACCOUNT,
    "name": "deploy",
    "path": "/team/",
    "aws_managed": False,
    "default_version_id": "v3",
    "attachment_count": 2,
    "updated": "2024-01-09T16:45:00Z",
    "document": DEPLOY,
}
# AWS managed documents are kept once for every account, not in each account's record.
EXPECTED_READ_ONLY = {
    "arn": READ_ONLY_ARN,
    "kind": "managed_policy",
    "account_id": ACCOUNT,
    "name": "ReadOnlyAccess",
    "path": "/",
    "aws_managed": True,
    "default_version_id": "v112",
    "attachment_count": 1,
    "updated": "2024-05-01T17:12:03Z",
    "document": None,
}
EXPECTED_SSM = {
    **EXPECTED_READ_ONLY,
    "arn": SSM_ARN,
    "name": "AmazonSSMManagedInstanceCore",
    "default_version_id": "v2",
    "updated": "2019-03-15T17:22:12Z",
}
EXPECTED_READ_ONLY_DOCUMENT = {
    "arn": READ_ONLY_ARN,
    "kind": "aws_managed_policy",
    "account_id": "aws",
    "name": "ReadOnlyAccess",
    "version_id": "v112",
    "document": READ_ONLY,
}


def test_transform_customer_managed_policy_keeps_its_document() -> None:
    assert managed_policies.transform_policy(LISTED_DEPLOY, ACCOUNT, DEPLOY) == EXPECTED_DEPLOY


def test_transform_aws_managed_policy_points_at_the_shared_document() -> None:
    record = managed_policies.transform_policy(LISTED_READ_ONLY, ACCOUNT, READ_ONLY)

    assert record == EXPECTED_READ_ONLY


def test_policy_without_name_path_count_or_date_takes_its_name_from_the_arn() -> None:
    raw = {"Arn": DEPLOY_ARN, "DefaultVersionId": "v3"}

    assert managed_policies.transform_policy(raw, ACCOUNT, DEPLOY) == {
        **EXPECTED_DEPLOY,
        "path": None,
        "attachment_count": None,
        "updated": None,
    }


@pytest.mark.parametrize("missing", ["Arn", "DefaultVersionId"])
def test_policy_without_arn_or_default_version_raises(missing: str) -> None:
    raw = {k: v for k, v in LISTED_DEPLOY.items() if k != missing}

    with pytest.raises(KeyError, match=missing):
        managed_policies.transform_policy(raw, ACCOUNT, DEPLOY)


# --- the listing ----------------------------------------------------------------------------------

LIST_ATTACHED = {"Scope": "All", "OnlyAttached": True}


def version(arn: str, version_id: str, document: Any) -> Call:
    """GetPolicyVersion answered with the document URL-encoded, as IAM sends it."""
    text = document if isinstance(document, str) else json.dumps(document)
    return Call(
        "get_policy_version",
        {"PolicyArn": arn, "VersionId": version_id},
        {
            "PolicyVersion": {
                "Document": quote(text),
                "VersionId": version_id,
                "IsDefaultVersion": True,
                "CreateDate": datetime(2024, 1, 9, 16, 45, 0, tzinfo=UTC),
            }
        },
    )


def collect(calls: list[Call], needed: set[str]) -> tuple[Listing, list[Any], list[Any]]:
    """The listing, the AWS managed documents read, and which (ARN, version) were asked about."""
    iam = client("iam")
    asked: list[tuple[str, str]] = []

    def need(arn: str, version_id: str) -> bool:
        asked.append((arn, version_id))
        return arn in needed

    listing, documents = run(
        iam, calls, lambda: managed_policies.collect_managed_policies(iam, ACCOUNT, need)
    )
    return listing, documents, asked


def test_listing_reads_our_documents_and_only_the_aws_managed_documents_not_yet_known() -> None:
    calls = [
        Call(
            "list_policies",
            LIST_ATTACHED,
            {"Policies": [LISTED_DEPLOY, LISTED_READ_ONLY], "IsTruncated": True, "Marker": "m1"},
        ),
        Call(
            "list_policies",
            {**LIST_ATTACHED, "Marker": "m1"},
            {"Policies": [LISTED_SSM], "IsTruncated": False},
        ),
        version(DEPLOY_ARN, "v3", DEPLOY),
        version(READ_ONLY_ARN, "v112", READ_ONLY),
        # AmazonSSMManagedInstanceCore v2 is cached already: no GetPolicyVersion.
    ]

    listing, documents, asked = collect(calls, needed={READ_ONLY_ARN})

    assert listing == Listing(records=[EXPECTED_DEPLOY, EXPECTED_READ_ONLY, EXPECTED_SSM])
    assert documents == [EXPECTED_READ_ONLY_DOCUMENT]
    assert asked == [(READ_ONLY_ARN, "v112"), (SSM_ARN, "v2")]


def test_policy_deleted_between_the_listing_and_its_document_is_left_out() -> None:
    calls = [
        Call("list_policies", LIST_ATTACHED, {"Policies": [LISTED_DEPLOY, LISTED_SSM]}),
        error(
            "get_policy_version", {"PolicyArn": DEPLOY_ARN, "VersionId": "v3"}, "NoSuchEntity", 404
        ),
    ]

    listing, documents, asked = collect(calls, needed=set())

    assert (listing, documents, asked) == (Listing(records=[EXPECTED_SSM]), [], [(SSM_ARN, "v2")])


def test_policy_whose_document_is_not_json_is_skipped_keeping_its_cached_copy() -> None:
    calls = [
        Call("list_policies", LIST_ATTACHED, {"Policies": [LISTED_DEPLOY, LISTED_SSM]}),
        version(DEPLOY_ARN, "v3", "Allow cloudformation:*"),
    ]

    listing, _, _ = collect(calls, needed=set())

    assert listing == Listing(
        records=[EXPECTED_SSM],
        skipped=[
            SkippedRecord(
                f"policy {DEPLOY_ARN}",
                f"policy {DEPLOY_ARN} v3 is not a JSON policy document",
                DEPLOY_ARN,
            )
        ],
        keep={DEPLOY_ARN},
    )
