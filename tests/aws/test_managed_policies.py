"""Managed policies: transforms on raw ListPolicies entries; the listing's exact calls."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest

from inventory.aws import managed_policies
from inventory.aws.kind import CollectContext
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
}
UNATTACHED_ARN = f"arn:aws:iam::{ACCOUNT}:policy/unused"
LISTED_UNATTACHED = {
    **LISTED_DEPLOY,
    "PolicyName": "unused",
    "Arn": UNATTACHED_ARN,
    "Path": "/",
    "DefaultVersionId": "v1",
    "AttachmentCount": 0,
}
EXPECTED_UNATTACHED = {
    **EXPECTED_DEPLOY,
    "arn": UNATTACHED_ARN,
    "name": "unused",
    "path": "/",
    "default_version_id": "v1",
    "attachment_count": 0,
}
# The catalogue's records: one for every account, so no (per-account) attachment count.
EXPECTED_READ_ONLY_DOCUMENT = {
    "arn": READ_ONLY_ARN,
    "kind": "aws_managed_policy",
    "account_id": "aws",
    "name": "ReadOnlyAccess",
    "path": "/",
    "aws_managed": True,
    "version_id": "v112",
    "updated": "2024-05-01T17:12:03Z",
    "document": READ_ONLY,
}


def test_transform_customer_managed_policy_leaves_its_document_to_the_iam_sync() -> None:
    assert managed_policies.transform_policy(LISTED_DEPLOY, ACCOUNT) == EXPECTED_DEPLOY


def test_aws_managed_catalogue_record_carries_the_document_and_no_attachment_count() -> None:
    record = managed_policies.aws_document_record(LISTED_READ_ONLY, READ_ONLY)

    assert record == EXPECTED_READ_ONLY_DOCUMENT


def test_policy_without_name_path_count_or_date_takes_its_name_from_the_arn() -> None:
    raw = {"Arn": DEPLOY_ARN, "DefaultVersionId": "v3"}

    assert managed_policies.transform_policy(raw, ACCOUNT) == {
        **EXPECTED_DEPLOY,
        "path": None,
        "attachment_count": None,
        "updated": None,
    }


@pytest.mark.parametrize("missing", ["Arn", "DefaultVersionId"])
def test_policy_without_arn_or_default_version_raises(missing: str) -> None:
    raw = {k: v for k, v in LISTED_DEPLOY.items() if k != missing}

    with pytest.raises(KeyError, match=missing):
        managed_policies.transform_policy(raw, ACCOUNT)


# --- the listings ---------------------------------------------------------------------------------

LIST_LOCAL = {"Scope": "Local", "MaxItems": 1000}
LIST_AWS = {"Scope": "AWS", "MaxItems": 1000}


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


class Shared:
    """What the task's claims answer: this sync leads, and which versions are not cached."""

    def __init__(self, needed: set[str], lead: bool = True) -> None:
        self.needed = needed
        self.leads = lead
        self.asked: list[tuple[str, str, str | None]] = []

    def lead(self) -> bool:
        return self.leads

    def need(self, arn: str, version_id: str, updated: str | None) -> bool:
        self.asked.append((arn, version_id, updated))
        return arn in self.needed


def collect(calls: list[Call], shared: Shared) -> dict[str, Listing]:
    iam = client("iam")
    ctx = CollectContext(iam, ACCOUNT, "global", shared)
    return run(iam, calls, lambda: managed_policies.collect(ctx))


def test_every_customer_policy_is_listed_attached_or_not_without_reading_documents() -> None:
    calls = [
        Call(
            "list_policies",
            LIST_LOCAL,
            {"Policies": [LISTED_DEPLOY], "IsTruncated": True, "Marker": "m1"},
        ),
        Call(
            "list_policies",
            {**LIST_LOCAL, "Marker": "m1"},
            {"Policies": [LISTED_UNATTACHED], "IsTruncated": False},
        ),
    ]

    listings = collect(calls, Shared(needed=set(), lead=False))

    assert listings == {"managed_policy": Listing(records=[EXPECTED_DEPLOY, EXPECTED_UNATTACHED])}


def test_the_lead_lists_the_catalogue_and_reads_only_documents_not_yet_known() -> None:
    calls = [
        Call("list_policies", LIST_LOCAL, {"Policies": [LISTED_DEPLOY]}),
        Call(
            "list_policies",
            LIST_AWS,
            {"Policies": [LISTED_READ_ONLY], "IsTruncated": True, "Marker": "m1"},
        ),
        Call("list_policies", {**LIST_AWS, "Marker": "m1"}, {"Policies": [LISTED_SSM]}),
        version(READ_ONLY_ARN, "v112", READ_ONLY),
        # AmazonSSMManagedInstanceCore v2 of that date is cached already: no GetPolicyVersion.
    ]
    shared = Shared(needed={READ_ONLY_ARN})

    listings = collect(calls, shared)

    assert listings == {
        "managed_policy": Listing(records=[EXPECTED_DEPLOY]),
        # complete: a policy AWS withdrew goes; the unchanged one keeps its cached record
        "aws_managed_policy": Listing(records=[EXPECTED_READ_ONLY_DOCUMENT], keep={SSM_ARN}),
    }
    assert shared.asked == [
        (READ_ONLY_ARN, "v112", "2024-05-01T17:12:03Z"),
        (SSM_ARN, "v2", "2019-03-15T17:22:12Z"),
    ]


def test_aws_policy_deleted_between_the_listing_and_its_document_is_left_out() -> None:
    calls = [
        Call("list_policies", LIST_LOCAL, {"Policies": []}),
        Call("list_policies", LIST_AWS, {"Policies": [LISTED_READ_ONLY, LISTED_SSM]}),
        error(
            "get_policy_version",
            {"PolicyArn": READ_ONLY_ARN, "VersionId": "v112"},
            "NoSuchEntity",
            404,
        ),
    ]

    listings = collect(calls, Shared(needed={READ_ONLY_ARN}))

    assert listings["aws_managed_policy"] == Listing(records=[], keep={SSM_ARN})


def test_aws_policy_whose_document_is_not_json_is_skipped_keeping_its_cached_copy() -> None:
    calls = [
        Call("list_policies", LIST_LOCAL, {"Policies": []}),
        Call("list_policies", LIST_AWS, {"Policies": [LISTED_READ_ONLY]}),
        version(READ_ONLY_ARN, "v112", "Allow s3:Get*"),
    ]

    listings = collect(calls, Shared(needed={READ_ONLY_ARN}))

    assert listings["aws_managed_policy"] == Listing(
        records=[],
        skipped=[
            SkippedRecord(
                f"policy {READ_ONLY_ARN}",
                f"policy {READ_ONLY_ARN} v112 is not a JSON policy document",
                READ_ONLY_ARN,
            )
        ],
        keep={READ_ONLY_ARN},
    )


def test_customer_policy_without_a_default_version_is_skipped_keeping_its_copy() -> None:
    raw = {k: v for k, v in LISTED_UNATTACHED.items() if k != "DefaultVersionId"}
    calls = [Call("list_policies", LIST_LOCAL, {"Policies": [LISTED_DEPLOY, raw]})]

    listings = collect(calls, Shared(needed=set(), lead=False))

    assert listings["managed_policy"] == Listing(
        records=[EXPECTED_DEPLOY],
        skipped=[SkippedRecord(f"policy {UNATTACHED_ARN}", "'DefaultVersionId'", UNATTACHED_ARN)],
        keep={UNATTACHED_ARN},
    )
