"""IAM targeted reads call by call (Stubber; documents URL-encoded as IAM sends them), events."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
from botocore.exceptions import ClientError

from inventory.aws import iam_refresh
from inventory.aws.events import ResourceEvent
from inventory.aws.iam_refresh import GROUP, ROLE, USER, Principal
from inventory.aws.kind import ATTACHED, CREATE, DELETE, GROUPS, RESOURCE, NotAChange
from inventory.cache.keys import GLOBAL
from inventory.registry import parse_event
from tests.aws.stubbed import (
    ACCOUNT,
    ALICE,
    Call,
    api_call,
    client,
    error,
    event_id,
    event_time,
    run,
)
from tests.aws.test_iam import (
    EXPECTED_GROUP_DEVELOPERS,
    EXPECTED_POLICY_BOUNDARY,
    EXPECTED_USER_ALICE,
    GROUP_DEVELOPERS,
    POLICY_BOUNDARY,
    ROLE_APP,
    USER_ALICE,
)
from tests.aws.test_iam import (
    # The sweep's record of app-role, ListRoles' description and session duration included:
    # GetRole returns the same two, so a refresh and the sweep agree.
    SWEPT_ROLE_APP as EXPECTED_ROLE_APP,
)


def encoded(document: dict[str, Any]) -> str:
    """A policy document as IAM sends it: URL-encoded JSON (botocore decodes it)."""
    return quote(json.dumps(document))


def without(raw: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in copy.deepcopy(raw).items() if k not in keys}


# --- raw IAM answers for the principals test_iam.py has as GetAccountAuthorizationDetails ------

APP = {"RoleName": "app-role"}
# GetRole has what GetAccountAuthorizationDetails has minus the lists, plus two fields it lacks
# (the sweep reads those two with ListRoles).
GET_ROLE_APP = {
    "Role": {
        **without(ROLE_APP, "InstanceProfileList", "RolePolicyList", "AttachedManagedPolicies"),
        "AssumeRolePolicyDocument": encoded(ROLE_APP["AssumeRolePolicyDocument"]),
        "Description": "Runs the app on EC2",
        "MaxSessionDuration": 7200,
    }
}
READ_APP_BUCKET = ROLE_APP["RolePolicyList"][0]["PolicyDocument"]
SEND_JOBS = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": f"arn:aws:sqs:*:{ACCOUNT}:*"}
    ],
}
LIST_APP_POLICIES = {"PolicyNames": ["read-app-bucket"], "IsTruncated": False}
GET_READ_APP_BUCKET = {
    "RoleName": "app-role",
    "PolicyName": "read-app-bucket",
    "PolicyDocument": encoded(READ_APP_BUCKET),
}
GET_SEND_JOBS = {
    "RoleName": "app-role",
    "PolicyName": "send-jobs",
    "PolicyDocument": encoded(SEND_JOBS),
}
LIST_APP_ATTACHED = {
    "AttachedPolicies": copy.deepcopy(ROLE_APP["AttachedManagedPolicies"]),
    "IsTruncated": False,
}
LIST_APP_PROFILES = {
    "InstanceProfiles": copy.deepcopy(ROLE_APP["InstanceProfileList"]),
    "IsTruncated": False,
}

ALICE_USER = {"UserName": "alice"}
GET_USER_ALICE = {
    "User": {
        **without(USER_ALICE, "UserPolicyList", "GroupList", "AttachedManagedPolicies"),
        "PasswordLastUsed": datetime(2024, 5, 13, 17, 2, 11, tzinfo=UTC),
    }
}
SELF_SERVICE = USER_ALICE["UserPolicyList"][0]["PolicyDocument"]


def group(name: str) -> dict[str, Any]:
    return {
        "Path": "/",
        "GroupName": name,
        "GroupId": f"AGPAEXAMPLE{name.upper():0<9}"[:21],
        "Arn": f"arn:aws:iam::{ACCOUNT}:group/{name}",
        "CreateDate": datetime(2020, 6, 1, 12, 0, 0, tzinfo=UTC),
    }


LIST_ALICE_GROUPS = {"Groups": [group("developers"), group("admins")], "IsTruncated": False}

DEVELOPERS = {"GroupName": "developers"}
GET_GROUP_DEVELOPERS = {
    "Group": without(GROUP_DEVELOPERS, "GroupPolicyList", "AttachedManagedPolicies"),
    "Users": [without(USER_ALICE, "UserPolicyList", "GroupList", "AttachedManagedPolicies")],
    "IsTruncated": False,
}
DENY_IAM_WRITES = GROUP_DEVELOPERS["GroupPolicyList"][0]["PolicyDocument"]

BOUNDARY_ARN = POLICY_BOUNDARY["Arn"]
GET_POLICY_BOUNDARY = {
    "Policy": {
        **without(POLICY_BOUNDARY, "PolicyVersionList"),
        "Tags": [{"Key": "owner", "Value": "security"}],
    }
}
BOUNDARY_V2 = POLICY_BOUNDARY["PolicyVersionList"][1]
GET_BOUNDARY_V2 = {"PolicyVersion": {**BOUNDARY_V2, "Document": encoded(BOUNDARY_V2["Document"])}}


def refresh(
    spec: Principal, name: str, aspects: set[str], cached: dict[str, Any] | None, calls: list[Call]
) -> Any:
    iam = client("iam")
    return run(
        iam,
        calls,
        lambda: iam_refresh.refresh_principal(spec, iam, ACCOUNT, GLOBAL, name, aspects, cached),
    )


def cached(record: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(record)


# --- roles ----------------------------------------------------------------------------------------

FULL_ROLE_READ = [
    Call("get_role", APP, GET_ROLE_APP),
    Call("list_role_policies", APP, LIST_APP_POLICIES),
    Call("get_role_policy", {**APP, "PolicyName": "read-app-bucket"}, GET_READ_APP_BUCKET),
    Call("list_attached_role_policies", APP, LIST_APP_ATTACHED),
    Call("list_instance_profiles_for_role", APP, LIST_APP_PROFILES),
]


def test_role_not_cached_is_read_in_full_into_the_record_the_sweep_makes() -> None:
    assert refresh(ROLE, "app-role", {"inline:read-app-bucket"}, None, FULL_ROLE_READ) == (
        EXPECTED_ROLE_APP
    )


def test_created_role_is_read_in_full_even_when_cached() -> None:
    stale = {**cached(EXPECTED_ROLE_APP), "inline_policies": {}, "instance_profiles": []}

    assert refresh(ROLE, "app-role", {CREATE}, stale, FULL_ROLE_READ) == EXPECTED_ROLE_APP


def test_full_read_of_a_role_with_two_inline_policies_gets_each_in_listed_order() -> None:
    calls = [
        Call("get_role", APP, GET_ROLE_APP),
        Call("list_role_policies", APP, {"PolicyNames": ["send-jobs", "read-app-bucket"]}),
        Call("get_role_policy", {**APP, "PolicyName": "send-jobs"}, GET_SEND_JOBS),
        Call("get_role_policy", {**APP, "PolicyName": "read-app-bucket"}, GET_READ_APP_BUCKET),
        Call("list_attached_role_policies", APP, LIST_APP_ATTACHED),
        Call("list_instance_profiles_for_role", APP, LIST_APP_PROFILES),
    ]

    record = refresh(ROLE, "app-role", {CREATE}, None, calls)

    assert record["inline_policies"] == {"send-jobs": SEND_JOBS, "read-app-bucket": READ_APP_BUCKET}


def test_inline_policy_deleted_during_a_full_read_is_left_out_not_the_role() -> None:
    calls = [
        Call("get_role", APP, GET_ROLE_APP),
        Call("list_role_policies", APP, {"PolicyNames": ["read-app-bucket", "send-jobs"]}),
        Call("get_role_policy", {**APP, "PolicyName": "read-app-bucket"}, GET_READ_APP_BUCKET),
        error("get_role_policy", {**APP, "PolicyName": "send-jobs"}, "NoSuchEntity", 404),
        Call("list_attached_role_policies", APP, LIST_APP_ATTACHED),
        Call("list_instance_profiles_for_role", APP, LIST_APP_PROFILES),
    ]

    assert refresh(ROLE, "app-role", {CREATE}, None, calls) == EXPECTED_ROLE_APP


def test_role_deleted_during_a_full_read_is_gone() -> None:
    calls = [
        Call("get_role", APP, GET_ROLE_APP),
        Call("list_role_policies", APP, LIST_APP_POLICIES),
        error("get_role_policy", {**APP, "PolicyName": "read-app-bucket"}, "NoSuchEntity", 404),
        error("list_attached_role_policies", APP, "NoSuchEntity", 404),
    ]

    assert refresh(ROLE, "app-role", {CREATE}, None, calls) is None


def test_changed_inline_policy_of_a_cached_role_is_one_get_role_policy() -> None:
    new = {**GET_READ_APP_BUCKET, "PolicyDocument": encoded(SEND_JOBS)}
    calls = [Call("get_role_policy", {**APP, "PolicyName": "read-app-bucket"}, new)]

    record = refresh(ROLE, "app-role", {"inline:read-app-bucket"}, cached(EXPECTED_ROLE_APP), calls)

    assert record == {**EXPECTED_ROLE_APP, "inline_policies": {"read-app-bucket": SEND_JOBS}}


def test_new_inline_policy_of_a_cached_role_joins_the_others_in_name_order() -> None:
    # "archive-logs" sorts before the cached "read-app-bucket": stored in name order, the record
    # is the same JSON whichever order the policies were added in.
    response = {**GET_SEND_JOBS, "PolicyName": "archive-logs"}
    calls = [Call("get_role_policy", {**APP, "PolicyName": "archive-logs"}, response)]

    record = refresh(ROLE, "app-role", {"inline:archive-logs"}, cached(EXPECTED_ROLE_APP), calls)

    assert record == {
        **EXPECTED_ROLE_APP,
        "inline_policies": {"archive-logs": SEND_JOBS, "read-app-bucket": READ_APP_BUCKET},
    }
    assert list(record["inline_policies"]) == ["archive-logs", "read-app-bucket"]


def test_deleted_inline_policy_is_removed_from_the_cached_role() -> None:
    calls = [
        error("get_role_policy", {**APP, "PolicyName": "read-app-bucket"}, "NoSuchEntity", 404)
    ]

    record = refresh(ROLE, "app-role", {"inline:read-app-bucket"}, cached(EXPECTED_ROLE_APP), calls)

    assert record == {**EXPECTED_ROLE_APP, "inline_policies": {}}


def test_attach_or_detach_on_a_cached_role_is_one_list_attached_role_policies() -> None:
    admin = {
        "PolicyName": "AdministratorAccess",
        "PolicyArn": "arn:aws:iam::aws:policy/AdministratorAccess",
    }
    calls = [
        Call(
            "list_attached_role_policies", APP, {"AttachedPolicies": [admin], "IsTruncated": False}
        )
    ]

    record = refresh(ROLE, "app-role", {ATTACHED}, cached(EXPECTED_ROLE_APP), calls)

    assert record == {
        **EXPECTED_ROLE_APP,
        "attached_policies": [
            {"name": "AdministratorAccess", "arn": "arn:aws:iam::aws:policy/AdministratorAccess"}
        ],
    }


def test_trust_or_tag_change_of_a_cached_role_is_one_get_role_keeping_its_lists() -> None:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    changed = copy.deepcopy(GET_ROLE_APP)
    changed["Role"].update(
        AssumeRolePolicyDocument=encoded(trust), Tags=[{"Key": "team", "Value": "apps"}]
    )
    del changed["Role"]["PermissionsBoundary"]

    record = refresh(
        ROLE, "app-role", {RESOURCE}, cached(EXPECTED_ROLE_APP), [Call("get_role", APP, changed)]
    )

    # Description and MaxSessionDuration as GetRole has them: the sweep reads them too.
    assert record == {
        **EXPECTED_ROLE_APP,
        "trust_policy": trust,
        "tags": {"team": "apps"},
        "permissions_boundary": None,
    }


def test_several_aspects_of_a_cached_role_are_read_get_role_first_then_in_aspect_order() -> None:
    calls = [
        Call("get_role", APP, GET_ROLE_APP),
        Call("list_attached_role_policies", APP, {"AttachedPolicies": [], "IsTruncated": False}),
        Call("get_role_policy", {**APP, "PolicyName": "send-jobs"}, GET_SEND_JOBS),
    ]
    aspects = {"inline:send-jobs", RESOURCE, ATTACHED}

    record = refresh(ROLE, "app-role", aspects, cached(EXPECTED_ROLE_APP), calls)

    assert record == {
        **EXPECTED_ROLE_APP,
        "attached_policies": [],
        "inline_policies": {"read-app-bucket": READ_APP_BUCKET, "send-jobs": SEND_JOBS},
    }


@pytest.mark.parametrize("record", [EXPECTED_ROLE_APP, None])
def test_deleted_role_is_gone_after_one_get_role(record: dict[str, Any] | None) -> None:
    calls = [error("get_role", APP, "NoSuchEntity", 404)]

    assert refresh(ROLE, "app-role", {DELETE}, copy.deepcopy(record), calls) is None


def test_role_still_visible_after_its_delete_event_is_returned_as_read() -> None:
    # IAM is eventually consistent: the caller rechecks; the read must not invent a deletion.
    record = refresh(
        ROLE, "app-role", {DELETE}, cached(EXPECTED_ROLE_APP), [Call("get_role", APP, GET_ROLE_APP)]
    )

    assert record == EXPECTED_ROLE_APP


def test_access_denied_on_a_targeted_read_raises_instead_of_dropping_the_role() -> None:
    calls = [error("list_attached_role_policies", APP, "AccessDenied", 403)]

    with pytest.raises(ClientError, match="AccessDenied"):
        refresh(ROLE, "app-role", {ATTACHED}, cached(EXPECTED_ROLE_APP), calls)


# --- users ----------------------------------------------------------------------------------------

FULL_USER_READ = [
    Call("get_user", ALICE_USER, GET_USER_ALICE),
    Call("list_user_policies", ALICE_USER, {"PolicyNames": ["self-service"], "IsTruncated": False}),
    Call(
        "get_user_policy",
        {**ALICE_USER, "PolicyName": "self-service"},
        {
            "UserName": "alice",
            "PolicyName": "self-service",
            "PolicyDocument": encoded(SELF_SERVICE),
        },
    ),
    Call(
        "list_attached_user_policies",
        ALICE_USER,
        {"AttachedPolicies": USER_ALICE["AttachedManagedPolicies"], "IsTruncated": False},
    ),
    Call("list_groups_for_user", ALICE_USER, LIST_ALICE_GROUPS),
]


def test_user_not_cached_is_read_in_full_into_the_record_the_sweep_makes() -> None:
    assert refresh(USER, "alice", {GROUPS}, None, FULL_USER_READ) == EXPECTED_USER_ALICE


def test_group_membership_change_of_a_cached_user_is_one_list_groups_for_user() -> None:
    calls = [
        Call(
            "list_groups_for_user", ALICE_USER, {"Groups": [group("oncall")], "IsTruncated": False}
        )
    ]

    record = refresh(USER, "alice", {GROUPS}, cached(EXPECTED_USER_ALICE), calls)

    assert record == {**EXPECTED_USER_ALICE, "groups": ["oncall"]}


def test_user_groups_over_two_pages_are_all_read_and_sorted() -> None:
    calls = [
        Call(
            "list_groups_for_user",
            ALICE_USER,
            {"Groups": [group("oncall")], "IsTruncated": True, "Marker": "m1"},
        ),
        Call(
            "list_groups_for_user",
            {**ALICE_USER, "Marker": "m1"},
            {"Groups": [group("admins")], "IsTruncated": False},
        ),
    ]

    record = refresh(USER, "alice", {GROUPS}, cached(EXPECTED_USER_ALICE), calls)

    assert record["groups"] == ["admins", "oncall"]


def test_tag_change_of_a_cached_user_is_one_get_user_keeping_its_lists() -> None:
    changed = copy.deepcopy(GET_USER_ALICE)
    changed["User"]["Tags"] = [{"Key": "email", "Value": "alice@example.org"}]

    record = refresh(
        USER,
        "alice",
        {RESOURCE},
        cached(EXPECTED_USER_ALICE),
        [Call("get_user", ALICE_USER, changed)],
    )

    assert record == {**EXPECTED_USER_ALICE, "tags": {"email": "alice@example.org"}}


def test_changed_inline_policy_of_a_cached_user_is_one_get_user_policy() -> None:
    deny_all = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}],
    }
    calls = [
        Call(
            "get_user_policy",
            {**ALICE_USER, "PolicyName": "self-service"},
            {
                "UserName": "alice",
                "PolicyName": "self-service",
                "PolicyDocument": encoded(deny_all),
            },
        )
    ]

    record = refresh(USER, "alice", {"inline:self-service"}, cached(EXPECTED_USER_ALICE), calls)

    assert record == {**EXPECTED_USER_ALICE, "inline_policies": {"self-service": deny_all}}


def test_attach_on_a_cached_user_is_one_list_attached_user_policies() -> None:
    calls = [
        Call(
            "list_attached_user_policies",
            ALICE_USER,
            {"AttachedPolicies": [], "IsTruncated": False},
        )
    ]

    record = refresh(USER, "alice", {ATTACHED}, cached(EXPECTED_USER_ALICE), calls)

    assert record == {**EXPECTED_USER_ALICE, "attached_policies": []}


def test_deleted_user_is_gone_after_one_get_user() -> None:
    calls = [error("get_user", ALICE_USER, "NoSuchEntity", 404)]

    assert refresh(USER, "alice", {DELETE}, cached(EXPECTED_USER_ALICE), calls) is None


# --- groups ---------------------------------------------------------------------------------------

FULL_GROUP_READ = [
    Call("get_group", DEVELOPERS, GET_GROUP_DEVELOPERS),
    Call(
        "list_group_policies",
        DEVELOPERS,
        {"PolicyNames": ["deny-iam-writes"], "IsTruncated": False},
    ),
    Call(
        "get_group_policy",
        {**DEVELOPERS, "PolicyName": "deny-iam-writes"},
        {
            "GroupName": "developers",
            "PolicyName": "deny-iam-writes",
            "PolicyDocument": encoded(DENY_IAM_WRITES),
        },
    ),
    Call(
        "list_attached_group_policies",
        DEVELOPERS,
        {"AttachedPolicies": GROUP_DEVELOPERS["AttachedManagedPolicies"], "IsTruncated": False},
    ),
]


def test_group_not_cached_is_read_in_full_into_the_record_the_sweep_makes() -> None:
    assert (
        refresh(GROUP, "developers", {CREATE}, None, FULL_GROUP_READ) == EXPECTED_GROUP_DEVELOPERS
    )


def test_attach_on_a_cached_group_is_one_list_attached_group_policies() -> None:
    ro = {"PolicyName": "ReadOnlyAccess", "PolicyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}
    calls = [
        Call(
            "list_attached_group_policies",
            DEVELOPERS,
            {"AttachedPolicies": [ro], "IsTruncated": False},
        )
    ]

    record = refresh(GROUP, "developers", {ATTACHED}, cached(EXPECTED_GROUP_DEVELOPERS), calls)

    assert record == {
        **EXPECTED_GROUP_DEVELOPERS,
        "attached_policies": [
            {"name": "ReadOnlyAccess", "arn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}
        ],
    }


def test_deleted_inline_policy_is_removed_from_the_cached_group() -> None:
    calls = [
        error(
            "get_group_policy", {**DEVELOPERS, "PolicyName": "deny-iam-writes"}, "NoSuchEntity", 404
        )
    ]

    record = refresh(
        GROUP, "developers", {"inline:deny-iam-writes"}, cached(EXPECTED_GROUP_DEVELOPERS), calls
    )

    assert record == {**EXPECTED_GROUP_DEVELOPERS, "inline_policies": {}}


def test_renamed_path_of_a_cached_group_is_one_get_group() -> None:
    moved = copy.deepcopy(GET_GROUP_DEVELOPERS)
    moved["Group"].update(Path="/teams/", Arn=f"arn:aws:iam::{ACCOUNT}:group/teams/developers")

    record = refresh(
        GROUP,
        "developers",
        {RESOURCE},
        cached(EXPECTED_GROUP_DEVELOPERS),
        [Call("get_group", DEVELOPERS, moved)],
    )

    assert record == {
        **EXPECTED_GROUP_DEVELOPERS,
        "path": "/teams/",
        "arn": f"arn:aws:iam::{ACCOUNT}:group/teams/developers",
    }


def test_deleted_group_is_gone_after_one_get_group() -> None:
    calls = [error("get_group", DEVELOPERS, "NoSuchEntity", 404)]

    assert refresh(GROUP, "developers", {DELETE}, None, calls) is None


# --- customer managed policies --------------------------------------------------------------------

OF_BOUNDARY = {"PolicyArn": BOUNDARY_ARN}


def refresh_policy(aspects: set[str], cached: dict[str, Any] | None, calls: list[Call]) -> Any:
    iam = client("iam")
    return run(
        iam,
        calls,
        lambda: iam_refresh.refresh_policy(iam, ACCOUNT, GLOBAL, BOUNDARY_ARN, aspects, cached),
    )


def test_policy_not_cached_is_get_policy_then_its_default_version() -> None:
    calls = [
        Call("get_policy", OF_BOUNDARY, GET_POLICY_BOUNDARY),
        Call("get_policy_version", {**OF_BOUNDARY, "VersionId": "v2"}, GET_BOUNDARY_V2),
    ]

    assert refresh_policy({CREATE}, None, calls) == EXPECTED_POLICY_BOUNDARY


def test_policy_whose_default_version_is_unchanged_is_get_policy_only() -> None:
    attached = copy.deepcopy(GET_POLICY_BOUNDARY)
    attached["Policy"].update(
        AttachmentCount=3, UpdateDate=datetime(2024, 5, 14, 10, 21, 9, tzinfo=UTC)
    )

    record = refresh_policy(
        {RESOURCE}, cached(EXPECTED_POLICY_BOUNDARY), [Call("get_policy", OF_BOUNDARY, attached)]
    )

    assert record == {
        **EXPECTED_POLICY_BOUNDARY,
        "attachment_count": 3,
        "updated": "2024-05-14T10:21:09Z",
    }


def test_policy_whose_default_version_moved_reads_the_new_default_document() -> None:
    moved = copy.deepcopy(GET_POLICY_BOUNDARY)
    moved["Policy"]["DefaultVersionId"] = "v3"
    v3 = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
    }
    version = {
        "PolicyVersion": {
            "Document": encoded(v3),
            "VersionId": "v3",
            "IsDefaultVersion": True,
            "CreateDate": datetime(2024, 5, 14, 10, 21, 9, tzinfo=UTC),
        }
    }
    calls = [
        Call("get_policy", OF_BOUNDARY, moved),
        Call("get_policy_version", {**OF_BOUNDARY, "VersionId": "v3"}, version),
    ]

    record = refresh_policy({RESOURCE}, cached(EXPECTED_POLICY_BOUNDARY), calls)

    assert record == {**EXPECTED_POLICY_BOUNDARY, "default_version_id": "v3", "document": v3}


def test_cached_policy_without_its_document_reads_the_default_version() -> None:
    calls = [
        Call("get_policy", OF_BOUNDARY, GET_POLICY_BOUNDARY),
        Call("get_policy_version", {**OF_BOUNDARY, "VersionId": "v2"}, GET_BOUNDARY_V2),
    ]

    record = refresh_policy(
        {RESOURCE}, {**cached(EXPECTED_POLICY_BOUNDARY), "document": None}, calls
    )

    assert record == EXPECTED_POLICY_BOUNDARY


def test_deleted_policy_is_gone_after_one_get_policy() -> None:
    calls = [error("get_policy", OF_BOUNDARY, "NoSuchEntity", 404)]

    assert refresh_policy({DELETE}, cached(EXPECTED_POLICY_BOUNDARY), calls) is None


# --- CloudTrail events ----------------------------------------------------------------------------

ROLE_ARN = ROLE_APP["Arn"]
DEPLOY_ARN = f"arn:aws:iam::{ACCOUNT}:policy/deploy"
READ_ONLY_ARN = "arn:aws:iam::aws:policy/ReadOnlyAccess"
DOCUMENT = json.dumps(SEND_JOBS)
TRUST = json.dumps(ROLE_APP["AssumeRolePolicyDocument"])
CREATE_DATE = "May 14, 2024, 10:21:09 AM"  # how IAM's responseElements write dates
TAGS = [{"key": "team", "value": "platform"}]

# event name -> (requestParameters, responseElements, [(kind, name, aspect) it changes]).
Case = tuple[dict[str, Any], dict[str, Any] | None, list[tuple[str, str, str]]]


def role_case(params: dict[str, Any], aspect: str) -> Case:
    return {"roleName": "app-role", **params}, None, [("iam_role", "app-role", aspect)]


def user_case(params: dict[str, Any], aspect: str) -> Case:
    return {"userName": "alice", **params}, None, [("iam_user", "alice", aspect)]


def group_case(params: dict[str, Any], aspect: str) -> Case:
    return {"groupName": "developers", **params}, None, [("iam_group", "developers", aspect)]


ROLE_EVENTS: dict[str, Case] = {
    "CreateRole": (
        {
            "roleName": "app-role",
            "path": "/service-role/",
            "assumeRolePolicyDocument": TRUST,
            "description": "Runs the app on EC2",
        },
        {
            "role": {
                "path": "/service-role/",
                "roleName": "app-role",
                "roleId": "AROAEXAMPLEAPPROLE01",
                "arn": ROLE_ARN,
                "createDate": CREATE_DATE,
                "assumeRolePolicyDocument": quote(TRUST),
            }
        },
        [("iam_role", "app-role", CREATE)],
    ),
    "DeleteRole": role_case({}, DELETE),
    "UpdateRole": role_case({"description": "Runs the app", "maxSessionDuration": 3600}, RESOURCE),
    "UpdateRoleDescription": role_case({"description": "Runs the app"}, RESOURCE),
    "UpdateAssumeRolePolicy": role_case({"policyDocument": TRUST}, RESOURCE),
    "PutRolePermissionsBoundary": role_case({"permissionsBoundary": BOUNDARY_ARN}, RESOURCE),
    "DeleteRolePermissionsBoundary": role_case({}, RESOURCE),
    "TagRole": role_case({"tags": TAGS}, RESOURCE),
    "UntagRole": role_case({"tagKeys": ["team"]}, RESOURCE),
    "PutRolePolicy": role_case(
        {"policyName": "send-jobs", "policyDocument": DOCUMENT}, "inline:send-jobs"
    ),
    "DeleteRolePolicy": role_case({"policyName": "send-jobs"}, "inline:send-jobs"),
    "AttachRolePolicy": role_case({"policyArn": READ_ONLY_ARN}, ATTACHED),
    "DetachRolePolicy": role_case({"policyArn": READ_ONLY_ARN}, ATTACHED),
}
USER_EVENTS: dict[str, Case] = {
    "CreateUser": (
        {"userName": "alice", "path": "/people/", "tags": [{"key": "email", "value": "a@x.org"}]},
        {
            "user": {
                "path": "/people/",
                "userName": "alice",
                "userId": "AIDAEXAMPLEALICE0001",
                "arn": USER_ALICE["Arn"],
                "createDate": CREATE_DATE,
            }
        },
        [("iam_user", "alice", CREATE)],
    ),
    "DeleteUser": user_case({}, DELETE),
    "UpdateUser": user_case({"newPath": "/staff/"}, RESOURCE),
    "PutUserPermissionsBoundary": user_case({"permissionsBoundary": BOUNDARY_ARN}, RESOURCE),
    "DeleteUserPermissionsBoundary": user_case({}, RESOURCE),
    "TagUser": user_case({"tags": TAGS}, RESOURCE),
    "UntagUser": user_case({"tagKeys": ["team"]}, RESOURCE),
    "PutUserPolicy": user_case(
        {"policyName": "self-service", "policyDocument": DOCUMENT}, "inline:self-service"
    ),
    "DeleteUserPolicy": user_case({"policyName": "self-service"}, "inline:self-service"),
    "AttachUserPolicy": user_case({"policyArn": READ_ONLY_ARN}, ATTACHED),
    "DetachUserPolicy": user_case({"policyArn": READ_ONLY_ARN}, ATTACHED),
    # Membership is on the user's record: the group's is unchanged.
    "AddUserToGroup": user_case({"groupName": "developers"}, GROUPS),
    "RemoveUserFromGroup": user_case({"groupName": "developers"}, GROUPS),
}
GROUP_EVENTS: dict[str, Case] = {
    "CreateGroup": (
        {"groupName": "developers", "path": "/"},
        {
            "group": {
                "path": "/",
                "groupName": "developers",
                "groupId": "AGPAEXAMPLEDEVS00001",
                "arn": GROUP_DEVELOPERS["Arn"],
                "createDate": CREATE_DATE,
            }
        },
        [("iam_group", "developers", CREATE)],
    ),
    "DeleteGroup": group_case({}, DELETE),
    "UpdateGroup": group_case({"newPath": "/teams/"}, RESOURCE),
    "PutGroupPolicy": group_case(
        {"policyName": "deny-iam-writes", "policyDocument": DOCUMENT}, "inline:deny-iam-writes"
    ),
    "DeleteGroupPolicy": group_case({"policyName": "deny-iam-writes"}, "inline:deny-iam-writes"),
    "AttachGroupPolicy": group_case({"policyArn": READ_ONLY_ARN}, ATTACHED),
    "DetachGroupPolicy": group_case({"policyArn": READ_ONLY_ARN}, ATTACHED),
}
POLICY_EVENTS: dict[str, Case] = {
    "CreatePolicy": (
        {"policyName": "deploy", "policyDocument": DOCUMENT, "path": "/", "description": "Deploys"},
        {
            "policy": {
                "policyName": "deploy",
                "policyId": "ANPAEXAMPLEDEPLOY001",
                "arn": DEPLOY_ARN,
                "path": "/",
                "defaultVersionId": "v1",
                "attachmentCount": 0,
                "permissionsBoundaryUsageCount": 0,
                "isAttachable": True,
                "createDate": CREATE_DATE,
                "updateDate": CREATE_DATE,
            }
        },
        [("iam_policy", DEPLOY_ARN, CREATE)],
    ),
    "DeletePolicy": ({"policyArn": DEPLOY_ARN}, None, [("iam_policy", DEPLOY_ARN, DELETE)]),
    "CreatePolicyVersion": (
        {"policyArn": DEPLOY_ARN, "policyDocument": DOCUMENT, "setAsDefault": True},
        {
            "policyVersion": {
                "versionId": "v2",
                "isDefaultVersion": True,
                "createDate": CREATE_DATE,
            }
        },
        [("iam_policy", DEPLOY_ARN, RESOURCE)],
    ),
    "DeletePolicyVersion": (
        {"policyArn": DEPLOY_ARN, "versionId": "v1"},
        None,
        [("iam_policy", DEPLOY_ARN, RESOURCE)],
    ),
    "SetDefaultPolicyVersion": (
        {"policyArn": DEPLOY_ARN, "versionId": "v1"},
        None,
        [("iam_policy", DEPLOY_ARN, RESOURCE)],
    ),
}
# Attaching a customer managed policy of ours changes the principal and the policy's count.
ATTACH_OURS: dict[str, Case] = {
    f"{verb}{noun}Policy": (
        {key: name, "policyArn": DEPLOY_ARN},
        None,
        [(kind, name, ATTACHED), ("iam_policy", DEPLOY_ARN, RESOURCE)],
    )
    for verb in ("Attach", "Detach")
    for noun, key, kind, name in (
        ("Role", "roleName", "iam_role", "app-role"),
        ("User", "userName", "iam_user", "alice"),
        ("Group", "groupName", "iam_group", "developers"),
    )
}
EVENTS = {**ROLE_EVENTS, **USER_EVENTS, **GROUP_EVENTS, **POLICY_EVENTS}


def expected_events(name: str, changes: list[tuple[str, str, str]]) -> list[ResourceEvent]:
    return [
        ResourceEvent(
            kind=kind,
            account_id=ACCOUNT,
            region=GLOBAL,
            name=resource,
            aspect=aspect,
            event_name=name,
            event_time=event_time(),
            event_id=event_id(name),
            actor=ALICE,
        )
        for kind, resource, aspect in changes
    ]


def test_every_followed_iam_event_has_a_case_here() -> None:
    rules = (
        iam_refresh.ROLE_EVENTS,
        iam_refresh.USER_EVENTS,
        iam_refresh.GROUP_EVENTS,
        iam_refresh.POLICY_EVENTS,
    )
    assert set(EVENTS) == {name for r in rules for name in r.aspects}


@pytest.mark.parametrize("name", sorted(EVENTS))
def test_iam_event_names_the_principal_or_policy_and_the_part_it_changed(name: str) -> None:
    params, response, changes = EVENTS[name]

    events = parse_event(api_call("iam.amazonaws.com", name, params, response))

    assert events == expected_events(name, changes)


@pytest.mark.parametrize("name", sorted(ATTACH_OURS))
def test_attaching_our_customer_managed_policy_changes_the_principal_and_the_policy(
    name: str,
) -> None:
    params, response, changes = ATTACH_OURS[name]

    events = parse_event(api_call("iam.amazonaws.com", name, params, response))

    assert events == expected_events(name, changes)


@pytest.mark.parametrize("name", ["CreatePolicyVersion", "SetDefaultPolicyVersion", "DeletePolicy"])
def test_change_to_another_accounts_or_an_aws_managed_policy_is_not_a_change(name: str) -> None:
    for arn in ("arn:aws:iam::210987654321:policy/deploy", READ_ONLY_ARN):
        body = api_call("iam.amazonaws.com", name, {"policyArn": arn, "versionId": "v2"})

        with pytest.raises(NotAChange, match=f"names no customer managed policy of {ACCOUNT}"):
            parse_event(body)


def test_failed_iam_call_is_not_a_change() -> None:
    params, _, _ = ROLE_EVENTS["PutRolePolicy"]
    body = api_call(
        "iam.amazonaws.com",
        "PutRolePolicy",
        params,
        failure=("MalformedPolicyDocument", "Syntax errors in policy."),
    )

    with pytest.raises(NotAChange, match=r"PutRolePolicy failed \(MalformedPolicyDocument\)"):
        parse_event(body)


def test_inline_policy_event_without_the_policy_name_is_not_a_change() -> None:
    body = api_call("iam.amazonaws.com", "DeleteRolePolicy", {"roleName": "app-role"})

    with pytest.raises(NotAChange, match="DeleteRolePolicy does not name its resource"):
        parse_event(body)


@pytest.mark.parametrize(
    ("identity", "actor"),
    [
        (
            {
                "type": "IAMUser",
                "principalId": "AIDAEXAMPLEALICE0001",
                "arn": USER_ALICE["Arn"],
                "accountId": ACCOUNT,
                "accessKeyId": "AKIAEXAMPLEEXAMPLE02",
                "userName": "alice",
            },
            USER_ALICE["Arn"],
        ),
        (
            {"type": "AWSService", "invokedBy": "cloudformation.amazonaws.com"},
            "cloudformation.amazonaws.com",
        ),
        (
            {"type": "Root", "principalId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:root"},
            f"arn:aws:iam::{ACCOUNT}:root",
        ),
    ],
)
def test_iam_event_names_who_made_the_change(identity: dict[str, Any], actor: str) -> None:
    params, _, _ = ROLE_EVENTS["TagRole"]

    (event,) = parse_event(api_call("iam.amazonaws.com", "TagRole", params, identity=identity))

    assert event.actor == actor
