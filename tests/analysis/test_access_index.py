"""The access index on a hand-built organisation: each evaluation rule, and the vectorised
answer equal to the reference evaluation for every principal."""

from __future__ import annotations

from typing import Any

import pytest

from inventory.analysis.access import AccessIndex, build_index
from inventory.analysis.policy import LEVEL_NAMES, evaluate

A, B, OUTSIDE = "111111111111", "222222222222", "999999999999"
BUCKET = "arn:aws:s3:::data"


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def principal(account: str, name: str, kind: str = "iam_role", **fields: Any) -> dict[str, Any]:
    path = "role" if kind == "iam_role" else "user"
    record = {
        "arn": f"arn:aws:iam::{account}:{path}/{name}",
        "name": name,
        "inline_policies": {},
        "attached_policies": [],
        "permissions_boundary": None,
    }
    if kind == "iam_role":
        record["trust_policy"] = doc(
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{A}:root"},
             "Action": "sts:AssumeRole"}
        )  # fmt: skip
    return record | fields


def arn(account: str, name: str, kind: str = "role") -> str:
    return f"arn:aws:iam::{account}:{kind}/{name}"


@pytest.fixture(scope="module")
def index() -> AccessIndex:
    boundary = f"arn:aws:iam::{A}:policy/sqs-only"
    shared = f"arn:aws:iam::{A}:policy/shared-read"
    roles_a = [
        principal(A, "reader", inline_policies={"p": doc(allow("s3:Get*"))}),
        principal(
            A,
            "denied",
            inline_policies={"p": doc(allow("s3:*"), deny("s3:GetObject", f"{BUCKET}/*"))},
        ),
        principal(
            A,
            "not-action",
            inline_policies={"p": doc({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})},
        ),  # fmt: skip
        principal(
            A,
            "bounded",
            inline_policies={"p": doc(allow("*"))},
            permissions_boundary={"arn": boundary},
        ),
        principal(
            A,
            "conditional",
            inline_policies={
                "p": doc(allow("s3:GetObject", Condition={"Bool": {"aws:SecureTransport": "true"}}))
            },
        ),
        principal(
            A,
            "prefix-only",
            inline_policies={"p": doc(allow("s3:GetObject", f"{BUCKET}/reports/*"))},
        ),
        principal(A, "attached", attached_policies=[{"arn": shared, "name": "shared-read"}]),
        principal(A, "named-by-bucket"),
        principal(A, "nothing"),
    ]
    users_a = [principal(A, "alice", "iam_user", groups=["readers"])]
    groups_a = [{"arn": arn(A, "readers", "group"), "name": "readers",
                 "inline_policies": {"g": doc(allow("s3:GetObject", f"{BUCKET}/*"))},
                 "attached_policies": []}]  # fmt: skip
    roles_b = [
        principal(B, "cross-reader", inline_policies={"p": doc(allow("s3:GetObject"))}),
        principal(B, "cross-nothing"),
    ]
    bucket_policy = doc(
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{B}:root"},
         "Action": "s3:GetObject", "Resource": f"{BUCKET}/*"},
        {"Effect": "Allow", "Principal": {"AWS": arn(A, "named-by-bucket")},
         "Action": "s3:GetObject", "Resource": f"{BUCKET}/*"},
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OUTSIDE}:root"},
         "Action": "s3:GetObject", "Resource": f"{BUCKET}/*"},
    )  # fmt: skip
    accounts = {
        A: {
            "iam_role": {r["arn"]: r for r in roles_a},
            "iam_user": {u["arn"]: u for u in users_a},
            "iam_group": {g["arn"]: g for g in groups_a},
            "iam_policy": {
                boundary: {"arn": boundary, "document": doc(allow("sqs:*"))},
                shared: {"arn": shared, "document": doc(allow(["s3:GetObject", "s3:ListBucket"]))},
            },
            "s3_bucket": {BUCKET: {"arn": BUCKET, "policy": bucket_policy}},
        },
        B: {"iam_role": {r["arn"]: r for r in roles_b}},
    }
    return build_index(accounts, {}, [A, B])


def decisions(index: AccessIndex, action: str, resource: str) -> dict[str, str]:
    answer = index.who_can(action, resource, limit=1000)
    return {p["arn"].rsplit("/", 1)[-1]: p["decision"] for p in answer.principals}


def test_who_can_get_an_object_follows_each_rule(index):
    assert decisions(index, "s3:GetObject", f"{BUCKET}/report.csv") == {
        "reader": "allowed",  # s3:Get* expands to s3:GetObject
        "not-action": "allowed",  # NotAction iam:* allows everything else
        "attached": "allowed",
        "alice": "allowed",  # through her group
        "named-by-bucket": "allowed",  # same account: the bucket policy names the role
        "cross-reader": "allowed",  # other account: identity policy and bucket policy agree
        "conditional": "conditional",  # a Condition is reported, not guessed
        # "denied": explicit Deny wins; "bounded": the boundary allows sqs only;
        # "prefix-only": allowed on reports/* only; "cross-nothing": no identity policy.
    }


def test_an_object_pattern_is_conditional_where_only_part_of_it_is_allowed(index):
    found = decisions(index, "s3:GetObject", f"{BUCKET}/*")
    assert found["prefix-only"] == "conditional"
    assert found["reader"] == "allowed"


def test_the_boundary_caps_but_allows_what_both_allow(index):
    assert decisions(index, "sqs:SendMessage", "arn:aws:sqs:us-east-1:111111111111:q") == {
        "bounded": "allowed",
        "not-action": "allowed",
    }


def test_assume_role_uses_the_trust_policy_as_the_resource_policy(index):
    # The trust policy trusts account A's root: that delegates to A's identity policies, so
    # only a principal whose own policies allow sts:AssumeRole (within its boundary) may.
    assert decisions(index, "sts:AssumeRole", arn(A, "nothing")) == {"not-action": "allowed"}


def test_other_grants_name_accounts_outside_the_organisation(index):
    answer = index.who_can("s3:GetObject", f"{BUCKET}/x")
    assert answer.other_grants == [
        {
            "principal": f"arn:aws:iam::{OUTSIDE}:root",
            "type": "outside the organisation",
            "level": "yes",
        }
    ]


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("s3:GetObject", f"{BUCKET}/a"),
        ("s3:GetObject", f"{BUCKET}/*"),
        ("s3:ListBucket", BUCKET),
        ("s3:PutObject", f"{BUCKET}/a"),
        ("sqs:SendMessage", "arn:aws:sqs:us-east-1:222222222222:q"),
        ("iam:CreateUser", "arn:aws:iam::111111111111:user/x"),
        ("sts:AssumeRole", "arn:aws:iam::111111111111:role/reader"),
    ],
)
def test_vectorised_levels_equal_the_reference_evaluation(index, action, resource):
    levels, _, _ = index.levels(action, resource)
    _, account, policy = index.resource_context(action, resource)
    for i in range(index.size):
        reference = evaluate(index.identity(i), action, resource, account, policy)
        assert (index.principals[i].arn, LEVEL_NAMES[int(levels[i])]) == (
            index.principals[i].arn,
            reference.name,
        )


def test_what_can_lists_the_resources_per_action_within_the_boundary(index):
    bounded = index.what_can(arn(A, "bounded"), "s3")
    assert bounded == []  # "*" is allowed, but the boundary allows sqs only
    prefix = index.what_can(arn(A, "prefix-only"), "s3")
    assert prefix == [
        {
            "action": "s3:GetObject",
            "access_level": "Read",
            "resources": [f"{BUCKET}/reports/*"],
            "denied": [],
            "conditional": False,
        }
    ]
    assert index.what_can(arn(A, "unknown"), "s3") is None
