"""Pure tests of the IAM and account transforms, and Stubber tests of their paginated listings."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from inventory.aws.accounts import (
    list_organization_accounts,
    merge_sources,
    static_account_record,
    transform_organization_account,
)
from inventory.aws.iam import (
    AuthorizationDetails,
    collect_iam,
    get_authorization_details,
    get_role_settings,
    transform_authorization_details,
    transform_group,
    transform_policy,
    transform_role,
    transform_user,
)
from inventory.aws.kind import CollectContext
from inventory.aws.listing import Listing
from inventory.aws.records import SkippedRecord

ACCOUNT = "123456789012"
FILTERS = ["Role", "User", "Group", "LocalManagedPolicy"]
PLUS_TEN = timezone(timedelta(hours=10))
MINUS_FIVE = timezone(timedelta(hours=-5))
PLUS_TWO = timezone(timedelta(hours=2))

# --- raw GetAccountAuthorizationDetails data (as boto3 returns it) ---------------------------

EC2_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}
S3_READ = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:ListBucket"],
            "Resource": ["arn:aws:s3:::app-bucket", "arn:aws:s3:::app-bucket/*"],
        }
    ],
}
# URL-encoded JSON, as IAM sends documents on the wire (botocore decodes it unless bypassed).
CROSS_ACCOUNT_TRUST_ENCODED = (
    "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow"
    "%22%2C%22Principal%22%3A%7B%22AWS%22%3A%22arn%3Aaws%3Aiam%3A%3A210987654321%3Aroot%22"
    "%7D%2C%22Action%22%3A%22sts%3AAssumeRole%22%2C%22Condition%22%3A%7B%22StringEquals%22"
    "%3A%7B%22sts%3AExternalId%22%3A%22audit%22%7D%7D%7D%5D%7D"
)
SEND_JOBS_ENCODED = (
    "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Sid%22%3A%22Send%22"
    "%2C%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22sqs%3ASendMessage%22%2C%22Resource"
    "%22%3A%22arn%3Aaws%3Asqs%3Aus-east-1%3A123456789012%3Ajobs%22%7D%5D%7D"
)
DEPLOY_ENCODED = (
    "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow"
    "%22%2C%22Action%22%3A%5B%22cloudformation%3A%2A%22%2C%22s3%3APutObject%22%5D%2C"
    "%22Resource%22%3A%22%2A%22%7D%5D%7D"
)
UNICODE_TAG_VALUE = "Zoë Åström 🚀 東京"
LONG_TAG_VALUE = "Ωmega/" + "ü" * 200 + "=" + "x" * 49  # 256 characters, the IAM maximum

ROLE_APP = {
    "Path": "/service-role/",
    "RoleName": "app-role",
    "RoleId": "AROAEXAMPLEAPPROLE01",
    "Arn": "arn:aws:iam::123456789012:role/service-role/app-role",
    "CreateDate": datetime(2023, 5, 17, 9, 30, 0, tzinfo=UTC),
    "AssumeRolePolicyDocument": EC2_TRUST,
    "InstanceProfileList": [
        {
            "Path": "/",
            "InstanceProfileName": "web",
            "InstanceProfileId": "AIPAEXAMPLEWEB000001",
            "Arn": "arn:aws:iam::123456789012:instance-profile/web",
            "CreateDate": datetime(2023, 5, 17, 9, 31, 0, tzinfo=UTC),
            "Roles": [],
        },
        {
            "Path": "/",
            "InstanceProfileName": "batch",
            "InstanceProfileId": "AIPAEXAMPLEBATCH0001",
            "Arn": "arn:aws:iam::123456789012:instance-profile/batch",
            "CreateDate": datetime(2023, 5, 17, 9, 32, 0, tzinfo=UTC),
            "Roles": [],
        },
    ],
    "RolePolicyList": [{"PolicyName": "read-app-bucket", "PolicyDocument": S3_READ}],
    "AttachedManagedPolicies": [
        {
            "PolicyName": "CloudWatchAgentServerPolicy",
            "PolicyArn": "arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy",
        },
        {
            "PolicyName": "AmazonSSMManagedInstanceCore",
            "PolicyArn": "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
        },
    ],
    "PermissionsBoundary": {
        "PermissionsBoundaryType": "PermissionsBoundaryPolicy",
        "PermissionsBoundaryArn": "arn:aws:iam::123456789012:policy/boundary",
    },
    "Tags": [
        {"Key": "team", "Value": "platform"},
        {"Key": "owner", "Value": UNICODE_TAG_VALUE},
        {"Key": "notes", "Value": LONG_TAG_VALUE},
        {"Key": "empty", "Value": ""},
    ],
    # 05:00 on 2 March in UTC+10 is still 1 March in UTC.
    "RoleLastUsed": {
        "LastUsedDate": datetime(2024, 3, 2, 5, 0, 0, tzinfo=PLUS_TEN),
        "Region": "eu-west-1",
    },
}
ROLE_CROSS_ACCOUNT = {
    "Path": "/",
    "RoleName": "cross-account-auditor",
    "RoleId": "AROAEXAMPLECROSS0002",
    "Arn": "arn:aws:iam::123456789012:role/cross-account-auditor",
    "CreateDate": datetime(2021, 11, 30, 23, 15, 0, tzinfo=MINUS_FIVE),
    "AssumeRolePolicyDocument": CROSS_ACCOUNT_TRUST_ENCODED,
    "InstanceProfileList": [],
    "RolePolicyList": [{"PolicyName": "send-jobs", "PolicyDocument": SEND_JOBS_ENCODED}],
    "AttachedManagedPolicies": [],
    "Tags": [],
    "RoleLastUsed": {},
}
ROLE_WITHOUT_ARN = {
    "Path": "/",
    "RoleName": "orphan-role",
    "RoleId": "AROAEXAMPLEORPHAN003",
    "CreateDate": datetime(2020, 1, 1, 0, 0, 0, tzinfo=UTC),
    "AssumeRolePolicyDocument": EC2_TRUST,
    "InstanceProfileList": [],
    "RolePolicyList": [],
    "AttachedManagedPolicies": [],
    "Tags": [],
    "RoleLastUsed": {},
}
ROLE_BAD_INLINE = {
    "Path": "/",
    "RoleName": "broken-inline",
    "RoleId": "AROAEXAMPLEBROKEN004",
    "Arn": "arn:aws:iam::123456789012:role/broken-inline",
    "CreateDate": datetime(2020, 1, 1, 0, 0, 0, tzinfo=UTC),
    "AssumeRolePolicyDocument": EC2_TRUST,
    "InstanceProfileList": [],
    "RolePolicyList": [{"PolicyName": "not-json", "PolicyDocument": "Allow=s3:*;Resource=*"}],
    "AttachedManagedPolicies": [],
    "Tags": [],
    "RoleLastUsed": {},
}
USER_ALICE = {
    "Path": "/people/",
    "UserName": "alice",
    "UserId": "AIDAEXAMPLEALICE0001",
    "Arn": "arn:aws:iam::123456789012:user/people/alice",
    "CreateDate": datetime(2022, 1, 1, 1, 0, 0, tzinfo=PLUS_TWO),
    "UserPolicyList": [
        {
            "PolicyName": "self-service",
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "iam:ChangePassword",
                        "Resource": "arn:aws:iam::123456789012:user/${aws:username}",
                    }
                ],
            },
        }
    ],
    "GroupList": ["developers", "admins"],
    "AttachedManagedPolicies": [
        {"PolicyName": "ReadOnlyAccess", "PolicyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}
    ],
    "PermissionsBoundary": {"PermissionsBoundaryArn": "arn:aws:iam::123456789012:policy/boundary"},
    "Tags": [{"Key": "email", "Value": "alice@example.com"}],
}
GROUP_DEVELOPERS = {
    "Path": "/",
    "GroupName": "developers",
    "GroupId": "AGPAEXAMPLEDEVS00001",
    "Arn": "arn:aws:iam::123456789012:group/developers",
    "CreateDate": datetime(2020, 6, 1, 12, 0, 0, tzinfo=UTC),
    "GroupPolicyList": [
        {
            "PolicyName": "deny-iam-writes",
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Deny", "NotAction": "iam:Get*", "Resource": "*"}],
            },
        }
    ],
    "AttachedManagedPolicies": [
        {"PolicyName": "ci-deploy", "PolicyArn": "arn:aws:iam::123456789012:policy/team/ci-deploy"}
    ],
}
POLICY_BOUNDARY = {
    "PolicyName": "boundary",
    "PolicyId": "ANPAEXAMPLEBOUNDARY1",
    "Arn": "arn:aws:iam::123456789012:policy/boundary",
    "Path": "/",
    "DefaultVersionId": "v2",
    "AttachmentCount": 0,
    "PermissionsBoundaryUsageCount": 2,
    "IsAttachable": True,
    "Description": "Permissions boundary for people",
    "CreateDate": datetime(2020, 2, 1, 8, 0, 0, tzinfo=UTC),
    "UpdateDate": datetime(2023, 8, 9, 10, 11, 12, tzinfo=UTC),
    "PolicyVersionList": [
        {
            "Document": {"Version": "2012-10-17", "Statement": []},
            "VersionId": "v1",
            "IsDefaultVersion": False,
            "CreateDate": datetime(2020, 2, 1, 8, 0, 0, tzinfo=UTC),
        },
        {
            "Document": {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
            },
            "VersionId": "v2",
            "IsDefaultVersion": True,
            "CreateDate": datetime(2023, 8, 9, 10, 11, 12, tzinfo=UTC),
        },
    ],
}
# moto leaves PolicyName out of GetAccountAuthorizationDetails' Policies list.
POLICY_WITHOUT_NAME = {
    "PolicyId": "ANPAEXAMPLECIDEPLOY1",
    "Arn": "arn:aws:iam::123456789012:policy/team/ci-deploy",
    "Path": "/team/",
    "DefaultVersionId": "v1",
    "AttachmentCount": 1,
    "PermissionsBoundaryUsageCount": 0,
    "IsAttachable": True,
    "Description": "",
    "CreateDate": datetime(2022, 7, 4, 0, 0, 0, tzinfo=UTC),
    "UpdateDate": datetime(2022, 7, 4, 0, 0, 0, tzinfo=UTC),
    "PolicyVersionList": [
        {
            "Document": DEPLOY_ENCODED,
            "VersionId": "v1",
            "IsDefaultVersion": True,
            "CreateDate": datetime(2022, 7, 4, 0, 0, 0, tzinfo=UTC),
        }
    ],
}

# --- our records ----------------------------------------------------------------------------

EXPECTED_ROLE_APP = {
    "arn": "arn:aws:iam::123456789012:role/service-role/app-role",
    "kind": "iam_role",
    "account_id": "123456789012",
    "name": "app-role",
    "id": "AROAEXAMPLEAPPROLE01",
    "path": "/service-role/",
    "created": "2023-05-17T09:30:00Z",
    "description": None,
    "max_session_duration": None,
    "trust_policy": {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    },
    "inline_policies": {
        "read-app-bucket": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:ListBucket"],
                    "Resource": ["arn:aws:s3:::app-bucket", "arn:aws:s3:::app-bucket/*"],
                }
            ],
        }
    },
    "attached_policies": [
        {
            "name": "AmazonSSMManagedInstanceCore",
            "arn": "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
        },
        {
            "name": "CloudWatchAgentServerPolicy",
            "arn": "arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy",
        },
    ],
    "permissions_boundary": {
        "type": "PermissionsBoundaryPolicy",
        "arn": "arn:aws:iam::123456789012:policy/boundary",
    },
    "tags": {
        "team": "platform",
        "owner": "Zoë Åström 🚀 東京",
        "notes": LONG_TAG_VALUE,
        "empty": "",
    },
    "last_used": {"date": "2024-03-01", "region": "eu-west-1"},
    "instance_profiles": [
        "arn:aws:iam::123456789012:instance-profile/batch",
        "arn:aws:iam::123456789012:instance-profile/web",
    ],
}
EXPECTED_ROLE_CROSS_ACCOUNT = {
    "arn": "arn:aws:iam::123456789012:role/cross-account-auditor",
    "kind": "iam_role",
    "account_id": "123456789012",
    "name": "cross-account-auditor",
    "id": "AROAEXAMPLECROSS0002",
    "path": "/",
    "created": "2021-12-01T04:15:00Z",
    "description": None,
    "max_session_duration": None,
    "trust_policy": {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::210987654321:root"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": "audit"}},
            }
        ],
    },
    "inline_policies": {
        "send-jobs": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "Send",
                    "Effect": "Allow",
                    "Action": "sqs:SendMessage",
                    "Resource": "arn:aws:sqs:us-east-1:123456789012:jobs",
                }
            ],
        }
    },
    "attached_policies": [],
    "permissions_boundary": None,
    "tags": {},
    "last_used": None,
    "instance_profiles": [],
}
EXPECTED_USER_ALICE = {
    "arn": "arn:aws:iam::123456789012:user/people/alice",
    "kind": "iam_user",
    "account_id": "123456789012",
    "name": "alice",
    "id": "AIDAEXAMPLEALICE0001",
    "path": "/people/",
    "created": "2021-12-31T23:00:00Z",
    "inline_policies": {
        "self-service": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "iam:ChangePassword",
                    "Resource": "arn:aws:iam::123456789012:user/${aws:username}",
                }
            ],
        }
    },
    "attached_policies": [
        {"name": "ReadOnlyAccess", "arn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}
    ],
    "groups": ["admins", "developers"],
    "permissions_boundary": {"type": "Policy", "arn": "arn:aws:iam::123456789012:policy/boundary"},
    "tags": {"email": "alice@example.com"},
}
EXPECTED_GROUP_DEVELOPERS = {
    "arn": "arn:aws:iam::123456789012:group/developers",
    "kind": "iam_group",
    "account_id": "123456789012",
    "name": "developers",
    "id": "AGPAEXAMPLEDEVS00001",
    "path": "/",
    "created": "2020-06-01T12:00:00Z",
    "inline_policies": {
        "deny-iam-writes": {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Deny", "NotAction": "iam:Get*", "Resource": "*"}],
        }
    },
    "attached_policies": [
        {"name": "ci-deploy", "arn": "arn:aws:iam::123456789012:policy/team/ci-deploy"}
    ],
}
EXPECTED_POLICY_BOUNDARY = {
    "arn": "arn:aws:iam::123456789012:policy/boundary",
    "kind": "iam_policy",
    "account_id": "123456789012",
    "name": "boundary",
    "id": "ANPAEXAMPLEBOUNDARY1",
    "path": "/",
    "description": "Permissions boundary for people",
    "default_version_id": "v2",
    "document": {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    },
    "attachment_count": 0,
    "permissions_boundary_usage_count": 2,
    "is_attachable": True,
    "created": "2020-02-01T08:00:00Z",
    "updated": "2023-08-09T10:11:12Z",
}
EXPECTED_POLICY_WITHOUT_NAME = {
    "arn": "arn:aws:iam::123456789012:policy/team/ci-deploy",
    "kind": "iam_policy",
    "account_id": "123456789012",
    "name": "ci-deploy",
    "id": "ANPAEXAMPLECIDEPLOY1",
    "path": "/team/",
    "description": None,
    "default_version_id": "v1",
    "document": {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["cloudformation:*", "s3:PutObject"],
                "Resource": "*",
            }
        ],
    },
    "attachment_count": 1,
    "permissions_boundary_usage_count": 0,
    "is_attachable": True,
    "created": "2022-07-04T00:00:00Z",
    "updated": "2022-07-04T00:00:00Z",
}


def details(**lists: list[dict[str, Any]]) -> AuthorizationDetails:
    """An AuthorizationDetails over deep copies, so no test can alter the shared constants."""
    return AuthorizationDetails(**{k: copy.deepcopy(v) for k, v in lists.items()}, pages=1)


# --- transforms -----------------------------------------------------------------------------


def test_transform_role_maps_every_field() -> None:
    assert transform_role(copy.deepcopy(ROLE_APP), ACCOUNT) == EXPECTED_ROLE_APP


def test_transform_role_decodes_url_encoded_json_policy_documents() -> None:
    assert transform_role(copy.deepcopy(ROLE_CROSS_ACCOUNT), ACCOUNT) == (
        EXPECTED_ROLE_CROSS_ACCOUNT
    )


def test_role_last_used_is_reduced_to_the_utc_date() -> None:
    record = transform_role(copy.deepcopy(ROLE_APP), ACCOUNT)

    assert record["last_used"] == {"date": "2024-03-01", "region": "eu-west-1"}


def test_role_never_used_has_no_last_used() -> None:
    raw = {**copy.deepcopy(ROLE_APP), "RoleLastUsed": {}}

    assert transform_role(raw, ACCOUNT)["last_used"] is None


def test_unicode_and_256_character_tag_values_survive_unchanged() -> None:
    assert len(LONG_TAG_VALUE) == 256

    record = transform_role(copy.deepcopy(ROLE_APP), ACCOUNT)

    assert record["tags"] == {
        "team": "platform",
        "owner": "Zoë Åström 🚀 東京",
        "notes": "Ωmega/" + "ü" * 200 + "=" + "x" * 49,
        "empty": "",
    }


def test_transform_user_sorts_groups_and_defaults_boundary_type() -> None:
    assert transform_user(copy.deepcopy(USER_ALICE), ACCOUNT) == EXPECTED_USER_ALICE


def test_transform_group_maps_inline_and_attached_policies() -> None:
    assert transform_group(copy.deepcopy(GROUP_DEVELOPERS), ACCOUNT) == EXPECTED_GROUP_DEVELOPERS


def test_transform_policy_uses_the_default_version_document() -> None:
    assert transform_policy(copy.deepcopy(POLICY_BOUNDARY), ACCOUNT) == EXPECTED_POLICY_BOUNDARY


def test_policy_name_is_derived_from_arn_when_policy_name_missing() -> None:
    assert transform_policy(copy.deepcopy(POLICY_WITHOUT_NAME), ACCOUNT) == (
        EXPECTED_POLICY_WITHOUT_NAME
    )


def test_policy_without_default_version_has_no_document() -> None:
    raw = copy.deepcopy(POLICY_BOUNDARY)
    for version in raw["PolicyVersionList"]:
        version["IsDefaultVersion"] = False

    assert transform_policy(raw, ACCOUNT) == {**EXPECTED_POLICY_BOUNDARY, "document": None}


def test_transform_authorization_details_returns_every_kind() -> None:
    records = transform_authorization_details(
        details(
            roles=[ROLE_APP, ROLE_CROSS_ACCOUNT],
            users=[USER_ALICE],
            groups=[GROUP_DEVELOPERS],
            policies=[POLICY_BOUNDARY, POLICY_WITHOUT_NAME],
        ),
        ACCOUNT,
    )

    assert records.by_kind == {
        "iam_role": [EXPECTED_ROLE_APP, EXPECTED_ROLE_CROSS_ACCOUNT],
        "iam_user": [EXPECTED_USER_ALICE],
        "iam_group": [EXPECTED_GROUP_DEVELOPERS],
        "iam_policy": [EXPECTED_POLICY_BOUNDARY, EXPECTED_POLICY_WITHOUT_NAME],
    }
    assert records.skipped == []


def test_record_missing_arn_is_skipped_and_reported_while_others_are_kept() -> None:
    records = transform_authorization_details(
        details(roles=[ROLE_APP, ROLE_WITHOUT_ARN, ROLE_CROSS_ACCOUNT], users=[USER_ALICE]),
        ACCOUNT,
    )

    assert records.by_kind == {
        "iam_role": [EXPECTED_ROLE_APP, EXPECTED_ROLE_CROSS_ACCOUNT],
        "iam_user": [EXPECTED_USER_ALICE],
        "iam_group": [],
        "iam_policy": [],
    }
    assert records.skipped == [
        SkippedRecord(identifier="iam_role orphan-role", reason="missing field 'Arn'", arn=None)
    ]


def test_role_with_non_json_inline_policy_is_skipped_keeping_its_arn() -> None:
    records = transform_authorization_details(
        details(roles=[ROLE_BAD_INLINE, ROLE_APP], groups=[GROUP_DEVELOPERS]), ACCOUNT
    )

    assert records.by_kind == {
        "iam_role": [EXPECTED_ROLE_APP],
        "iam_user": [],
        "iam_group": [EXPECTED_GROUP_DEVELOPERS],
        "iam_policy": [],
    }
    assert records.skipped == [
        SkippedRecord(
            identifier="iam_role arn:aws:iam::123456789012:role/broken-inline",
            reason="inline policy not-json is not a JSON policy document",
            arn="arn:aws:iam::123456789012:role/broken-inline",
        )
    ]


def test_policy_whose_default_document_is_a_json_list_is_skipped_keeping_its_arn() -> None:
    raw = copy.deepcopy(POLICY_BOUNDARY)
    raw["PolicyVersionList"][1]["Document"] = "%5B%5D"  # "[]": JSON, but not a document

    records = transform_authorization_details(details(policies=[raw]), ACCOUNT)

    assert records.by_kind["iam_policy"] == []
    assert records.skipped == [
        SkippedRecord(
            identifier="iam_policy arn:aws:iam::123456789012:policy/boundary",
            reason="default policy version is not a JSON policy document",
            arn="arn:aws:iam::123456789012:policy/boundary",
        )
    ]


def test_policy_missing_arn_is_reported_by_its_name() -> None:
    raw = copy.deepcopy(POLICY_BOUNDARY)
    del raw["Arn"]

    records = transform_authorization_details(details(policies=[raw]), ACCOUNT)

    assert records.skipped == [
        SkippedRecord(identifier="iam_policy boundary", reason="missing field 'Arn'", arn=None)
    ]


# --- GetAccountAuthorizationDetails pagination (Stubber) -------------------------------------


def iam_client(config: Config | None = None) -> Any:
    return boto3.client(
        "iam",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=config,
    )


def stub_role(name: str) -> dict[str, Any]:
    return {
        "Path": "/",
        "RoleName": name,
        "RoleId": f"AROA{name.upper():0<16}",
        "Arn": f"arn:aws:iam::123456789012:role/{name}",
        "CreateDate": datetime(2024, 1, 1, tzinfo=UTC),
    }


def stub_user(name: str) -> dict[str, Any]:
    return {
        "Path": "/",
        "UserName": name,
        "UserId": f"AIDA{name.upper():0<16}",
        "Arn": f"arn:aws:iam::123456789012:user/{name}",
        "CreateDate": datetime(2024, 1, 1, tzinfo=UTC),
    }


def stub_group(name: str) -> dict[str, Any]:
    return {
        "Path": "/",
        "GroupName": name,
        "GroupId": f"AGPA{name.upper():0<16}",
        "Arn": f"arn:aws:iam::123456789012:group/{name}",
        "CreateDate": datetime(2024, 1, 1, tzinfo=UTC),
    }


def stub_policy(name: str) -> dict[str, Any]:
    return {
        "PolicyName": name,
        "PolicyId": f"ANPA{name.upper():0<16}",
        "Arn": f"arn:aws:iam::123456789012:policy/{name}",
        "DefaultVersionId": "v1",
        "PolicyVersionList": [],
    }


PAGE_1 = {
    "RoleDetailList": [stub_role("role-a"), stub_role("role-b")],
    "UserDetailList": [stub_user("user-a")],
    "GroupDetailList": [],
    "Policies": [stub_policy("policy-a")],
    "IsTruncated": True,
    "Marker": "m1",
}
PAGE_2 = {
    "RoleDetailList": [stub_role("role-c")],
    "UserDetailList": [],
    "GroupDetailList": [stub_group("group-a")],
    "Policies": [],
    "IsTruncated": True,
    "Marker": "m2",
}
PAGE_3 = {
    "RoleDetailList": [stub_role("role-d")],
    "UserDetailList": [stub_user("user-b")],
    "GroupDetailList": [stub_group("group-b")],
    "Policies": [stub_policy("policy-b")],
    "IsTruncated": False,
}
# What the paginator sends with PaginationConfig={"PageSize": 1000}.
FIRST_PAGE_PARAMS = {"Filter": FILTERS, "MaxItems": 1000}


def test_get_authorization_details_collects_every_page() -> None:
    client = iam_client()
    with Stubber(client) as stubber:
        op = "get_account_authorization_details"
        stubber.add_response(op, copy.deepcopy(PAGE_1), FIRST_PAGE_PARAMS)
        stubber.add_response(op, copy.deepcopy(PAGE_2), {**FIRST_PAGE_PARAMS, "Marker": "m1"})
        stubber.add_response(op, copy.deepcopy(PAGE_3), {**FIRST_PAGE_PARAMS, "Marker": "m2"})

        result = get_authorization_details(client)

        stubber.assert_no_pending_responses()

    assert result == AuthorizationDetails(
        roles=[stub_role("role-a"), stub_role("role-b"), stub_role("role-c"), stub_role("role-d")],
        users=[stub_user("user-a"), stub_user("user-b")],
        groups=[stub_group("group-a"), stub_group("group-b")],
        policies=[stub_policy("policy-a"), stub_policy("policy-b")],
        pages=3,
    )


def test_get_authorization_details_raises_when_a_later_page_is_throttled() -> None:
    client = iam_client(Config(retries={"max_attempts": 1, "mode": "standard"}))
    with Stubber(client) as stubber:
        op = "get_account_authorization_details"
        stubber.add_response(op, copy.deepcopy(PAGE_1), FIRST_PAGE_PARAMS)
        stubber.add_client_error(
            op,
            service_error_code="Throttling",
            service_message="Rate exceeded",
            http_status_code=400,
            expected_params={**FIRST_PAGE_PARAMS, "Marker": "m1"},
        )

        with pytest.raises(ClientError) as exc:
            get_authorization_details(client)

        stubber.assert_no_pending_responses()

    assert exc.value.response["Error"] == {"Code": "Throttling", "Message": "Rate exceeded"}


# --- ListRoles: what GetAccountAuthorizationDetails lacks (Stubber) ---------------------------

# ListRoles' entry for app-role: no lists, no tags or last use, but the two settings.
LISTED_ROLE_APP = {
    **{k: ROLE_APP[k] for k in ("Path", "RoleName", "RoleId", "Arn", "CreateDate")},
    "AssumeRolePolicyDocument": quote(json.dumps(EC2_TRUST)),
    "Description": "Runs the app on EC2",
    "MaxSessionDuration": 7200,
}
#: The sweep's record of app-role: GetAccountAuthorizationDetails with ListRoles' settings.
SWEPT_ROLE_APP = {
    **EXPECTED_ROLE_APP,
    "description": "Runs the app on EC2",
    "max_session_duration": 7200,
}
LIST_ROLES_PARAMS = {"MaxItems": 1000}


def test_role_settings_come_from_every_listroles_page() -> None:
    client = iam_client()
    other = {**stub_role("role-b"), "AssumeRolePolicyDocument": "{}", "MaxSessionDuration": 3600}
    with Stubber(client) as stubber:
        stubber.add_response(
            "list_roles",
            copy.deepcopy({"Roles": [LISTED_ROLE_APP], "IsTruncated": True, "Marker": "m1"}),
            LIST_ROLES_PARAMS,
        )
        stubber.add_response(
            "list_roles", {"Roles": [other]}, {**LIST_ROLES_PARAMS, "Marker": "m1"}
        )

        settings = get_role_settings(client)

        stubber.assert_no_pending_responses()

    assert settings == (
        {
            ROLE_APP["Arn"]: {"Description": "Runs the app on EC2", "MaxSessionDuration": 7200},
            other["Arn"]: {"MaxSessionDuration": 3600},  # no description: absent, not ""
        },
        2,
    )


def test_iam_sync_adds_listroles_settings_to_the_roles_it_lists() -> None:
    client = iam_client()
    # IAM sends documents URL-encoded; botocore decodes them
    app = {
        **ROLE_APP,
        "AssumeRolePolicyDocument": quote(json.dumps(EC2_TRUST)),
        "RolePolicyList": [
            {**p, "PolicyDocument": quote(json.dumps(p["PolicyDocument"]))}
            for p in ROLE_APP["RolePolicyList"]
        ],
    }
    new = {**stub_role("role-new"), "AssumeRolePolicyDocument": quote(json.dumps(EC2_TRUST))}
    page = {"RoleDetailList": [app, new], "IsTruncated": False}
    with Stubber(client) as stubber:
        stubber.add_response(
            "get_account_authorization_details", copy.deepcopy(page), FIRST_PAGE_PARAMS
        )
        # role-new was created after ListRoles answered: it has no settings until the next sweep
        stubber.add_response(
            "list_roles", copy.deepcopy({"Roles": [LISTED_ROLE_APP]}), LIST_ROLES_PARAMS
        )

        listings = collect_iam(CollectContext(client, ACCOUNT, "global"))

        stubber.assert_no_pending_responses()

    roles = listings["iam_role"]
    assert roles.records[0] == SWEPT_ROLE_APP
    assert (roles.records[1]["description"], roles.records[1]["max_session_duration"]) == (
        None,
        None,
    )
    assert roles.calls == 2
    assert listings["iam_user"] == Listing(records=[], calls=2)


# --- accounts -------------------------------------------------------------------------------

ORG_ACCOUNT_PROD = {
    "Id": "111111111111",
    "Arn": "arn:aws:organizations::999999999999:account/o-exampleorgid/111111111111",
    "Email": "prod@example.com",
    "Name": "prod",
    "Status": "ACTIVE",
    "JoinedMethod": "CREATED",
    "JoinedTimestamp": datetime(2019, 4, 1, 2, 0, 0, tzinfo=PLUS_TWO),
}
ORG_ACCOUNT_SANDBOX = {
    "Id": "222222222222",
    "Arn": "arn:aws:organizations::999999999999:account/o-exampleorgid/222222222222",
    "Email": "sandbox@example.com",
    "Name": "sandbox",
    "State": "SUSPENDED",
    "JoinedMethod": "INVITED",
    "JoinedTimestamp": datetime(2020, 5, 6, 7, 8, 9, tzinfo=UTC),
}
ORG_ACCOUNT_BARE = {
    "Id": "333333333333",
    "Arn": "arn:aws:organizations::999999999999:account/o-exampleorgid/333333333333",
    "Email": "bare@example.com",
    "JoinedMethod": "CREATED",
}
EXPECTED_ORG_PROD = {
    "arn": "arn:aws:iam::111111111111:root",
    "kind": "account",
    "id": "111111111111",
    "name": "prod",
    "status": "ACTIVE",
    "email": "prod@example.com",
    "joined": "2019-04-01T00:00:00Z",
    "organizations_arn": "arn:aws:organizations::999999999999:account/o-exampleorgid/111111111111",
    "source": "organizations",
    "role_name": None,
}


def organizations_client() -> Any:
    return boto3.client(
        "organizations",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )


def test_list_organization_accounts_follows_next_token_across_pages() -> None:
    client = organizations_client()
    with Stubber(client) as stubber:
        stubber.add_response(
            "list_accounts",
            {"Accounts": copy.deepcopy([ORG_ACCOUNT_PROD, ORG_ACCOUNT_SANDBOX]), "NextToken": "t1"},
            {},
        )
        stubber.add_response(
            "list_accounts", {"Accounts": copy.deepcopy([ORG_ACCOUNT_BARE])}, {"NextToken": "t1"}
        )

        accounts = list_organization_accounts(client)

        stubber.assert_no_pending_responses()

    assert accounts == [ORG_ACCOUNT_PROD, ORG_ACCOUNT_SANDBOX, ORG_ACCOUNT_BARE]


def test_transform_organization_account_maps_every_field() -> None:
    assert transform_organization_account(ORG_ACCOUNT_PROD) == EXPECTED_ORG_PROD


def test_transform_organization_account_reads_state_when_status_absent() -> None:
    assert transform_organization_account(ORG_ACCOUNT_SANDBOX) == {
        "arn": "arn:aws:iam::222222222222:root",
        "kind": "account",
        "id": "222222222222",
        "name": "sandbox",
        "status": "SUSPENDED",
        "email": "sandbox@example.com",
        "joined": "2020-05-06T07:08:09Z",
        "organizations_arn": (
            "arn:aws:organizations::999999999999:account/o-exampleorgid/222222222222"
        ),
        "source": "organizations",
        "role_name": None,
    }


def test_transform_organization_account_without_name_or_status_uses_id_and_unknown() -> None:
    assert transform_organization_account(ORG_ACCOUNT_BARE) == {
        "arn": "arn:aws:iam::333333333333:root",
        "kind": "account",
        "id": "333333333333",
        "name": "333333333333",
        "status": "UNKNOWN",
        "email": "bare@example.com",
        "joined": None,
        "organizations_arn": (
            "arn:aws:organizations::999999999999:account/o-exampleorgid/333333333333"
        ),
        "source": "organizations",
        "role_name": None,
    }


def test_merge_sources_static_name_and_role_win_and_organizations_status_is_kept() -> None:
    organizations = [
        transform_organization_account(ORG_ACCOUNT_SANDBOX),
        transform_organization_account(ORG_ACCOUNT_PROD),
    ]
    static = [
        static_account_record("111111111111", "Production", None, None, "ProdAuditor"),  # type: ignore[arg-type]
        static_account_record("444444444444", "legacy", "ACTIVE", "legacy@example.com", None),
    ]

    merged = merge_sources(organizations, static)

    assert merged == [
        {
            "arn": "arn:aws:iam::111111111111:root",
            "kind": "account",
            "id": "111111111111",
            "name": "Production",
            "status": "ACTIVE",
            "email": "prod@example.com",
            "joined": "2019-04-01T00:00:00Z",
            "organizations_arn": (
                "arn:aws:organizations::999999999999:account/o-exampleorgid/111111111111"
            ),
            "source": "organizations+static",
            "role_name": "ProdAuditor",
        },
        {
            "arn": "arn:aws:iam::222222222222:root",
            "kind": "account",
            "id": "222222222222",
            "name": "sandbox",
            "status": "SUSPENDED",
            "email": "sandbox@example.com",
            "joined": "2020-05-06T07:08:09Z",
            "organizations_arn": (
                "arn:aws:organizations::999999999999:account/o-exampleorgid/222222222222"
            ),
            "source": "organizations",
            "role_name": None,
        },
        {
            "arn": "arn:aws:iam::444444444444:root",
            "kind": "account",
            "id": "444444444444",
            "name": "legacy",
            "status": "ACTIVE",
            "email": "legacy@example.com",
            "joined": None,
            "organizations_arn": None,
            "source": "static",
            "role_name": None,
        },
    ]
    # The inputs are not modified.
    assert organizations[1] == EXPECTED_ORG_PROD
