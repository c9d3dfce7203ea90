"""Derived data: credential mapping, IAM role limits, CloudTrail errors and policy requests.

In process against the session's real redis-server and moto server.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pynamodb.exceptions import PynamoDBException

from inventory.cache.keys import (
    ALL_ACCOUNTS,
    CLOUDTRAIL_ERRORS,
    GLOBAL,
    IAM_ROLE,
    IAM_ROLE_LIMIT,
    POLICY_REQUEST,
    PRINCIPAL_ACCESS,
    ROLE_ACCESS,
    Partition,
)
from inventory.cache.requests import RequestConflict
from inventory.demo.seed import MANAGEMENT_ACCOUNT, AccountSeed, Seeder, demo_account
from inventory.runtime import Runtime
from inventory.settings import ConfigError, load_settings
from inventory.tasks.access import (
    build_mapping,
    eligible_roles,
    principals_from_tags,
    store_credential_mapping,
)
from inventory.tasks.accounts import store_account_mapping
from inventory.tasks.cloudtrail import load_source, sync_cloudtrail_errors
from inventory.tasks.iam import sync_iam_account
from inventory.tasks.limits import role_limits
from inventory.tasks.requests import refresh_request_cache
from tests.conftest import inventory_env
from tests.faultproxy import FaultProxy
from tests.plugins import cloudtrail_source as plugin

DAY = 86_400.0
ROLE_ACCESS_ALL = Partition(ROLE_ACCESS, ALL_ACCOUNTS, GLOBAL)
PRINCIPAL_ACCESS_ALL = Partition(PRINCIPAL_ACCESS, ALL_ACCOUNTS, GLOBAL)
ROLE_LIMITS = Partition(IAM_ROLE_LIMIT, ALL_ACCOUNTS, GLOBAL)
REQUESTS = Partition(POLICY_REQUEST, ALL_ACCOUNTS, GLOBAL)


@pytest.fixture
def org(runtime: Runtime, moto_server) -> tuple[Seeder, AccountSeed, AccountSeed]:
    """dev (roles dev-app, dev-worker-0) and prod (prod-app, prod-worker-0, prod-worker-1)."""
    seeder = Seeder(moto_server.url)
    seeder.organisation()
    dev = seeder.create_account(demo_account("dev", 0))
    prod = seeder.create_account(demo_account("prod", 1))
    return seeder, dev, prod


def runtime_with(env: dict[str, str], **extra: str) -> Runtime:
    return Runtime(load_settings(paths=[], environ=env | extra))


# --- 1. credential mapping -------------------------------------------------------------------


@pytest.fixture
def mapped(org, env) -> tuple[Runtime, Seeder, AccountSeed, AccountSeed]:
    """Accounts and IAM synced, with a static mapping for dev-worker-0."""
    seeder, dev, prod = org
    static = f'{{"{dev.role_arn("dev-worker-0")}": [ops@example.com, dev-devs@example.com]}}'
    rt = runtime_with(env, INVENTORY_CREDENTIAL_MAPPING__STATIC=static)
    store_account_mapping(rt)
    for seed in (dev, prod):
        sync_iam_account(rt, seed.id)
    return rt, seeder, dev, prod


def test_static_mapping_env_value_parses_as_role_arn_to_principals(env):
    static = '{"arn:aws:iam::111111111111:role/x": [ops@example.com, "a b"], ' + (
        '"arn:aws:iam::222222222222:role/path/y": []}'
    )
    settings = load_settings(
        paths=[], environ=env | {"INVENTORY_CREDENTIAL_MAPPING__STATIC": static}
    )
    assert settings.credential_mapping.static == {
        "arn:aws:iam::111111111111:role/x": ["ops@example.com", "a b"],
        "arn:aws:iam::222222222222:role/path/y": [],
    }
    assert settings.credential_mapping.role_tag_keys == ["inventory-groups", "consoleme-authorized"]
    with pytest.raises(ConfigError, match="credential_mapping.static"):
        load_settings(
            paths=[],
            environ=env | {"INVENTORY_CREDENTIAL_MAPPING__STATIC": '{"not-an-arn": [a]}'},
        )


def test_principals_from_tags_splits_on_colon_comma_and_whitespace():
    tags = {
        "inventory-groups": "a@example.com:b@example.com, c@example.com  d\te\n,,:f",
        "consoleme-authorized": "g@example.com",
        "owner": "not-a-principal",
    }
    keys = ["inventory-groups", "consoleme-authorized"]
    assert principals_from_tags(tags, keys) == {
        "a@example.com",
        "b@example.com",
        "c@example.com",
        "d",
        "e",
        "f",
        "g@example.com",
    }
    assert principals_from_tags(tags, ["missing"]) == set()
    assert principals_from_tags({"inventory-groups": " , : "}, keys) == set()


def test_build_mapping_merges_tags_and_static_in_both_directions():
    roles = [
        {"arn": "arn:aws:iam::111111111111:role/a", "tags": {"inventory-groups": "x y"}},
        {"arn": "arn:aws:iam::111111111111:role/b", "tags": {"owner": "x"}},
        {"arn": "arn:aws:iam::111111111111:role/c", "tags": None},
    ]
    static = {
        "arn:aws:iam::111111111111:role/a": ["z"],
        "arn:aws:iam::222222222222:role/d": ["x"],
    }
    by_role, by_principal = build_mapping(roles, ["inventory-groups"], static)
    assert by_role == {
        "arn:aws:iam::111111111111:role/a": {"x", "y", "z"},
        "arn:aws:iam::222222222222:role/d": {"x"},
    }
    assert by_principal == {
        "x": {"arn:aws:iam::111111111111:role/a", "arn:aws:iam::222222222222:role/d"},
        "y": {"arn:aws:iam::111111111111:role/a"},
        "z": {"arn:aws:iam::111111111111:role/a"},
    }


def test_credential_mapping_stores_both_directions_from_tags_and_static(mapped):
    rt, _, dev, prod = mapped
    dev_app, dev_worker, prod_app = (
        dev.role_arn("dev-app"),
        dev.role_arn("dev-worker-0"),
        prod.role_arn("prod-app"),
    )

    assert store_credential_mapping(rt) == {"roles": 3, "principals": 3}

    assert rt.redis_cache.items(ROLE_ACCESS_ALL) == {
        dev_app: {"arn": dev_app, "kind": ROLE_ACCESS, "principals": ["dev-devs@example.com"]},
        dev_worker: {
            "arn": dev_worker,
            "kind": ROLE_ACCESS,
            "principals": ["dev-devs@example.com", "ops@example.com"],
        },
        prod_app: {"arn": prod_app, "kind": ROLE_ACCESS, "principals": ["prod-devs@example.com"]},
    }
    assert rt.redis_cache.items(PRINCIPAL_ACCESS_ALL) == {
        "principal:dev-devs@example.com": {
            "arn": "principal:dev-devs@example.com",
            "kind": PRINCIPAL_ACCESS,
            "principal": "dev-devs@example.com",
            "roles": sorted([dev_app, dev_worker]),
        },
        "principal:ops@example.com": {
            "arn": "principal:ops@example.com",
            "kind": PRINCIPAL_ACCESS,
            "principal": "ops@example.com",
            "roles": [dev_worker],
        },
        "principal:prod-devs@example.com": {
            "arn": "principal:prod-devs@example.com",
            "kind": PRINCIPAL_ACCESS,
            "principal": "prod-devs@example.com",
            "roles": [prod_app],
        },
    }
    assert eligible_roles(rt, "dev-devs@example.com") == sorted([dev_app, dev_worker])
    assert eligible_roles(rt, "DEV-DEVS@Example.com") == sorted([dev_app, dev_worker])
    assert eligible_roles(rt, "ops@example.com") == [dev_worker]
    assert eligible_roles(rt, "nobody@example.com") == []


def test_credential_mapping_is_redis_only_and_outside_the_arn_index(mapped):
    rt, _, dev, _ = mapped
    dev_app = dev.role_arn("dev-app")
    store_credential_mapping(rt)

    role = rt.redis_cache.get(dev_app)
    assert role is not None
    assert (role["arn"], role["kind"], role["tags"]["inventory-groups"]) == (
        dev_app,
        IAM_ROLE,
        "dev-devs@example.com",
    )
    assert rt.redis.hget(rt.keys.arn_index(), dev_app) == Partition(IAM_ROLE, dev.id).id
    assert rt.redis_cache.get("principal:dev-devs@example.com") is None
    indexed = set(rt.redis.hvals(rt.keys.arn_index()))
    assert {ROLE_ACCESS_ALL.id, PRINCIPAL_ACCESS_ALL.id} & indexed == set()
    assert rt.dynamo.items(ROLE_ACCESS_ALL) == {}
    assert rt.dynamo.items(PRINCIPAL_ACCESS_ALL) == {}


def test_role_whose_tag_is_removed_drops_out_after_resync_and_remapping(mapped):
    rt, seeder, dev, prod = mapped
    dev_app, dev_worker, prod_app = (
        dev.role_arn("dev-app"),
        dev.role_arn("dev-worker-0"),
        prod.role_arn("prod-app"),
    )
    store_credential_mapping(rt)

    seeder.client("iam", dev.id).untag_role(RoleName="dev-app", TagKeys=["inventory-groups"])
    sync_iam_account(rt, dev.id)
    assert store_credential_mapping(rt) == {"roles": 2, "principals": 3}

    assert set(rt.redis_cache.items(ROLE_ACCESS_ALL)) == {dev_worker, prod_app}
    assert {p: r["roles"] for p, r in rt.redis_cache.items(PRINCIPAL_ACCESS_ALL).items()} == {
        "principal:dev-devs@example.com": [dev_worker],
        "principal:ops@example.com": [dev_worker],
        "principal:prod-devs@example.com": [prod_app],
    }
    assert eligible_roles(rt, "dev-devs@example.com") == [dev_worker]
    # The role itself is still cached, without the tag.
    assert rt.redis_cache.get(dev_app)["tags"] == {"owner": "team-dev"}


def test_principals_differing_only_in_case_keep_all_their_roles(org, env):
    _, dev, prod = org
    # The tag on dev-app says dev-devs@example.com; the static mapping spells it differently.
    static = f'{{"{prod.role_arn("prod-worker-0")}": [Dev-Devs@Example.com]}}'
    rt = runtime_with(env, INVENTORY_CREDENTIAL_MAPPING__STATIC=static)
    store_account_mapping(rt)
    for seed in (dev, prod):
        sync_iam_account(rt, seed.id)
    store_credential_mapping(rt)

    assert eligible_roles(rt, "dev-devs@example.com") == sorted(
        [dev.role_arn("dev-app"), prod.role_arn("prod-worker-0")]
    )


# --- 2. IAM role limits ----------------------------------------------------------------------


def role_count(seeder: Seeder, account_id: str) -> int:
    pages = seeder.client("iam", account_id).get_paginator("list_roles").paginate()
    return sum(len(page["Roles"]) for page in pages)


def role_quota(seeder: Seeder, account_id: str) -> int:
    summary = seeder.client("iam", account_id).get_account_summary()["SummaryMap"]
    return int(summary["RolesQuota"])


def limit_record(account_id: str, roles: int, quota: int) -> dict[str, Any]:
    return {
        "arn": f"arn:aws:iam::{account_id}:root",
        "kind": IAM_ROLE_LIMIT,
        "account_id": account_id,
        "roles": roles,
        "quota": quota,
        "ratio": round(roles / quota, 6),
    }


@pytest.fixture
def proxy(moto_server) -> Iterator[FaultProxy]:
    p = FaultProxy(moto_server.url).start()
    yield p
    p.stop()


def test_role_limits_per_account_with_outcomes_and_a_failed_account_keeps_its_record(
    runtime, org, redis_server, moto_server, proxy
):
    seeder, dev, prod = org
    store_account_mapping(runtime)
    ids = [MANAGEMENT_ACCOUNT, dev.id, prod.id]
    counts = {a: role_count(seeder, a) for a in ids}
    quotas = {a: role_quota(seeder, a) for a in ids}
    # dev: 2 seeded + OrganizationAccountAccessRole; prod: 3 + 1; no roles in management
    assert counts == {MANAGEMENT_ACCOUNT: 0, dev.id: 3, prod.id: 4}

    before = time.time()
    first = role_limits(runtime)

    assert first == {
        "accounts": {a: {"roles": counts[a], "quota": quotas[a]} for a in ids},
        "failed": {},
    }
    expected = {f"arn:aws:iam::{a}:root": limit_record(a, counts[a], quotas[a]) for a in ids}
    assert runtime.redis_cache.items(ROLE_LIMITS) == expected
    assert runtime.dynamo.items(ROLE_LIMITS) == expected
    assert runtime.redis_cache.get(f"arn:aws:iam::{dev.id}:root") is None  # not ARN-indexed
    first_status = {
        s.account_id: s for s in runtime.outcomes.status() if s.task == "get_iam_role_limit"
    }
    assert set(first_status) == set(ids)
    for s in first_status.values():
        assert s.last_success is not None and s.last_success >= before
        assert (s.last_failure, s.last_error) == (None, None)

    # One more role everywhere, then a run where one GetAccountSummary is denied.
    for a in ids:
        seeder.client("iam", a).create_role(RoleName="extra", AssumeRolePolicyDocument="{}")
    env = inventory_env(
        redis_server,
        moto_server,
        INVENTORY_AWS__ENDPOINT_URL=proxy.url,
        INVENTORY_AWS__MAX_ATTEMPTS="1",
    )
    rt = Runtime(load_settings(paths=[], environ=env))
    proxy.fail("GetAccountSummary", "AccessDenied", 403, times=1)

    second = role_limits(rt)

    assert proxy.count("GetAccountSummary") == 3
    assert len(second["failed"]) == 1
    (failed,) = second["failed"]
    assert "AccessDenied" in second["failed"][failed]
    ok = [a for a in ids if a != failed]
    assert second["accounts"] == {a: {"roles": counts[a] + 1, "quota": quotas[a]} for a in ok}
    assert runtime.redis_cache.items(ROLE_LIMITS) == {
        f"arn:aws:iam::{a}:root": (
            limit_record(a, counts[a], quotas[a])
            if a == failed
            else limit_record(a, counts[a] + 1, quotas[a])
        )
        for a in ids
    }
    meta = runtime.redis_cache.meta(ROLE_LIMITS)
    assert meta is not None and meta.complete is False
    status = {s.account_id: s for s in runtime.outcomes.status() if s.task == "get_iam_role_limit"}
    assert status[failed].last_failure is not None
    assert "AccessDenied" in (status[failed].last_error or "")
    assert status[failed].last_success == first_status[failed].last_success  # not overwritten
    for a in ok:
        assert status[a].last_failure is None
    assert runtime.outcomes.counts() == {
        **{("get_iam_role_limit", a, "ok"): 2 for a in ok},
        ("get_iam_role_limit", failed, "ok"): 1,
        ("get_iam_role_limit", failed, "failed"): 1,
    }


# --- 3. CloudTrail errors --------------------------------------------------------------------

T0 = 1_714_557_600.0  # 2024-05-01T10:00:00Z
ACCOUNT_A, ACCOUNT_B = "111111111111", "222222222222"
APP_ROLE = f"arn:aws:iam::{ACCOUNT_A}:role/service/app"
BOB = f"arn:aws:iam::{ACCOUNT_B}:user/bob"
DEPLOY_ROLE = f"arn:aws:iam::{ACCOUNT_B}:role/deploy"


def stamp(offset: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(T0 + offset))


def role_identity(role_arn: str, with_issuer: bool = True) -> dict[str, Any]:
    account = role_arn.split(":")[4]
    name = role_arn.rsplit("/", 1)[-1]
    identity: dict[str, Any] = {
        "type": "AssumedRole",
        "principalId": f"AROAEXAMPLE:{name}-session",
        "arn": f"arn:aws:sts::{account}:assumed-role/{name}/{name}-session",
        "accountId": account,
    }
    if with_issuer:
        identity["sessionContext"] = {
            "sessionIssuer": {
                "type": "Role",
                "principalId": "AROAEXAMPLE",
                "arn": role_arn,
                "accountId": account,
                "userName": name,
            }
        }
    return identity


def user_identity(user_arn: str) -> dict[str, Any]:
    return {
        "type": "IAMUser",
        "principalId": "AIDAEXAMPLE",
        "arn": user_arn,
        "accountId": user_arn.split(":")[4],
        "userName": user_arn.rsplit("/", 1)[-1],
    }


def envelope(
    event_id: str,
    offset: float,
    identity: dict[str, Any],
    code: str | None,
    action: str,
    resources: tuple[str, ...] = (),
    region: str = "us-east-1",
) -> str:
    """An EventBridge "AWS API Call via CloudTrail" event, as delivered to SQS."""
    service, name = action.split(":")
    detail: dict[str, Any] = {
        "eventVersion": "1.08",
        "userIdentity": identity,
        "eventTime": stamp(offset),
        "eventSource": f"{service}.amazonaws.com",
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": "198.51.100.7",
        "recipientAccountId": identity["accountId"],
        "eventID": event_id,
        "eventType": "AwsApiCall",
        "resources": [{"ARN": r, "accountId": identity["accountId"]} for r in resources],
    }
    if code:
        detail |= {"errorCode": code, "errorMessage": f"{code} for {name}"}
    return json.dumps(
        {
            "version": "0",
            "id": f"eb-{event_id}",
            "detail-type": "AWS API Call via CloudTrail",
            "source": f"aws.{service}",
            "account": identity["accountId"],
            "time": stamp(offset),
            "region": region,
            "resources": [],
            "detail": detail,
        }
    )


OBJECT = "arn:aws:s3:::bucket-a/report.csv"
BUCKET_A = "arn:aws:s3:::bucket-a"
FIRST_BATCH = [
    envelope("e1", 0, role_identity(APP_ROLE), "AccessDenied", "s3:GetObject", (OBJECT, BUCKET_A)),
    envelope("e2", 60, role_identity(APP_ROLE), "AccessDenied", "s3:PutObject", (OBJECT,)),
    envelope("e3", 120, role_identity(APP_ROLE), "NoSuchKey", "s3:GetObject", (OBJECT, OBJECT)),
    envelope("ok-1", 130, role_identity(APP_ROLE), None, "s3:GetObject"),  # succeeded: ignored
    envelope("e4", 180, user_identity(BOB), "UnauthorizedOperation", "ec2:DescribeInstances"),
    envelope(
        "e5",
        240,
        role_identity(DEPLOY_ROLE, with_issuer=False),
        "AccessDenied",
        "iam:PassRole",
        region="us-west-2",
    ),
    "this is not an EventBridge event",
]


def expected_errors() -> dict[str, dict[str, dict[str, Any]]]:
    return {
        ACCOUNT_A: {
            APP_ROLE: {
                "arn": APP_ROLE,
                "kind": CLOUDTRAIL_ERRORS,
                "account_id": ACCOUNT_A,
                "count": 3,
                "error_codes": {"AccessDenied": 2, "NoSuchKey": 1},
                "actions": {"s3:GetObject": 2, "s3:PutObject": 1},
                "resources": {OBJECT: 3, BUCKET_A: 1},
                "first_seen": T0,
                "last_seen": T0 + 120,
                "event_ids": ["e3", "e2", "e1"],
            }
        },
        ACCOUNT_B: {
            BOB: {
                "arn": BOB,
                "kind": CLOUDTRAIL_ERRORS,
                "account_id": ACCOUNT_B,
                "count": 1,
                "error_codes": {"UnauthorizedOperation": 1},
                "actions": {"ec2:DescribeInstances": 1},
                "resources": {},
                "first_seen": T0 + 180,
                "last_seen": T0 + 180,
                "event_ids": ["e4"],
            },
            DEPLOY_ROLE: {
                "arn": DEPLOY_ROLE,
                "kind": CLOUDTRAIL_ERRORS,
                "account_id": ACCOUNT_B,
                "count": 1,
                "error_codes": {"AccessDenied": 1},
                "actions": {"iam:PassRole": 1},
                "resources": {},
                "first_seen": T0 + 240,
                "last_seen": T0 + 240,
                "event_ids": ["e5"],
            },
        },
    }


def make_queue(rt: Runtime, name: str, visibility: int = 30) -> str:
    sqs = rt.aws.hub_client("sqs", "us-east-1")
    attributes = {"VisibilityTimeout": str(visibility)}
    return str(sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])


def send(rt: Runtime, url: str, bodies: list[str]) -> None:
    sqs = rt.aws.hub_client("sqs", "us-east-1")
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=body)


def queue_depth(rt: Runtime, url: str) -> tuple[str, str]:
    attributes = rt.aws.hub_client("sqs", "us-east-1").get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        attributes["ApproximateNumberOfMessages"],
        attributes["ApproximateNumberOfMessagesNotVisible"],
    )


def errors_by_account(rt: Runtime) -> dict[str, dict[str, dict[str, Any]]]:
    return {
        account: rt.redis_cache.items(Partition(CLOUDTRAIL_ERRORS, account, GLOBAL))
        for account in (ACCOUNT_A, ACCOUNT_B)
    }


@pytest.fixture
def sqs_runtime(runtime: Runtime, env) -> tuple[Runtime, str]:
    url = make_queue(runtime, "cloudtrail-errors")
    rt = runtime_with(env, INVENTORY_CLOUDTRAIL__SOURCE="sqs", INVENTORY_CLOUDTRAIL__QUEUE_URL=url)
    return rt, url


def test_sqs_errors_aggregated_per_principal_and_queue_drained(sqs_runtime):
    rt, url = sqs_runtime
    send(rt, url, FIRST_BATCH)

    summary = sync_cloudtrail_errors(rt, now=T0 + 3600)

    assert summary == {"events": 5, "accounts": 2, "principals_written": 3, "bad_messages": 1}
    assert errors_by_account(rt) == expected_errors()
    assert queue_depth(rt, url) == ("0", "0")
    # Durable like the other resources, but outside the ARN index.
    for account, records in expected_errors().items():
        assert rt.dynamo.items(Partition(CLOUDTRAIL_ERRORS, account, GLOBAL)) == records
    assert rt.redis_cache.get(APP_ROLE) is None


def test_redelivered_events_are_not_counted_twice_but_new_ones_are(sqs_runtime):
    rt, url = sqs_runtime
    send(rt, url, FIRST_BATCH)
    sync_cloudtrail_errors(rt, now=T0 + 3600)

    send(rt, url, FIRST_BATCH)
    again = sync_cloudtrail_errors(rt, now=T0 + 3700)

    assert again == {"events": 5, "accounts": 2, "principals_written": 0, "bad_messages": 1}
    assert errors_by_account(rt) == expected_errors()
    assert queue_depth(rt, url) == ("0", "0")

    send(rt, url, [*FIRST_BATCH[:2], envelope("e6", 300, user_identity(BOB), "Denied", "s3:Get")])
    sync_cloudtrail_errors(rt, now=T0 + 3800)

    expected = expected_errors()
    assert errors_by_account(rt)[ACCOUNT_A] == expected[ACCOUNT_A]
    assert errors_by_account(rt)[ACCOUNT_B][BOB] == expected[ACCOUNT_B][BOB] | {
        "count": 2,
        "error_codes": {"Denied": 1, "UnauthorizedOperation": 1},
        "actions": {"ec2:DescribeInstances": 1, "s3:Get": 1},
        "last_seen": T0 + 300,
        "event_ids": ["e6", "e4"],
    }


def test_aggregates_past_retention_are_dropped(sqs_runtime):
    rt, url = sqs_runtime
    send(rt, url, FIRST_BATCH)
    sync_cloudtrail_errors(rt, now=T0 + 3600)
    retention = rt.settings.cloudtrail.retention_days * DAY
    assert retention == 14 * DAY

    # Just inside retention for everything: nothing changes.
    inside = sync_cloudtrail_errors(rt, now=T0 + retention)
    assert inside["principals_written"] == 0
    assert errors_by_account(rt) == expected_errors()

    # Past retention for APP_ROLE (last seen T0 + 120) only.
    sync_cloudtrail_errors(rt, now=T0 + 150 + retention)
    assert errors_by_account(rt) == {ACCOUNT_A: {}, ACCOUNT_B: expected_errors()[ACCOUNT_B]}

    sync_cloudtrail_errors(rt, now=T0 + 300 + retention)
    assert errors_by_account(rt) == {ACCOUNT_A: {}, ACCOUNT_B: {}}
    for account in (ACCOUNT_A, ACCOUNT_B):
        assert rt.dynamo.items(Partition(CLOUDTRAIL_ERRORS, account, GLOBAL)) == {}


def test_events_older_than_retention_are_never_stored(sqs_runtime):
    rt, url = sqs_runtime
    send(rt, url, FIRST_BATCH)

    summary = sync_cloudtrail_errors(rt, now=T0 + 15 * DAY)

    assert summary == {"events": 5, "accounts": 2, "principals_written": 0, "bad_messages": 1}
    assert errors_by_account(rt) == {ACCOUNT_A: {}, ACCOUNT_B: {}}
    assert queue_depth(rt, url) == ("0", "0")


def test_messages_are_not_acked_when_storing_fails(runtime, env):
    url = make_queue(runtime, "cloudtrail-unstored", visibility=1)
    broken = runtime_with(
        env,
        INVENTORY_CLOUDTRAIL__SOURCE="sqs",
        INVENTORY_CLOUDTRAIL__QUEUE_URL=url,
        INVENTORY_DYNAMODB__TABLE_PREFIX="missing_",
        INVENTORY_DYNAMODB__CREATE_TABLES="false",
    )
    batch = FIRST_BATCH[:2]
    send(runtime, url, batch)

    with pytest.raises(PynamoDBException):
        sync_cloudtrail_errors(broken, now=T0 + 3600)

    assert errors_by_account(runtime) == {ACCOUNT_A: {}, ACCOUNT_B: {}}
    time.sleep(2.0)
    assert queue_depth(runtime, url) == ("2", "0")

    # The working deployment receives them again and then deletes them.
    working = runtime_with(
        env, INVENTORY_CLOUDTRAIL__SOURCE="sqs", INVENTORY_CLOUDTRAIL__QUEUE_URL=url
    )
    assert sync_cloudtrail_errors(working, now=T0 + 3600)["events"] == 2
    assert errors_by_account(working)[ACCOUNT_A][APP_ROLE]["event_ids"] == ["e2", "e1"]
    assert queue_depth(runtime, url) == ("0", "0")


@pytest.fixture
def plugin_calls() -> Iterator[list[tuple[Any, ...]]]:
    plugin.CALLS.clear()
    yield plugin.CALLS
    plugin.CALLS.clear()


def test_plugin_source_events_are_stored_and_its_handles_acked(runtime, env, plugin_calls):
    source = "tests.plugins.cloudtrail_source:make"
    rt = runtime_with(env, INVENTORY_CLOUDTRAIL__SOURCE=source)

    summary = sync_cloudtrail_errors(rt, now=T0 + 3600)

    assert summary == {"events": 2, "accounts": 2, "principals_written": 2, "bad_messages": 0}
    assert plugin_calls == [("make", source, rt.aws), ("fetch",), ("ack", plugin.HANDLES)]
    role, user = plugin.EVENTS
    assert rt.redis_cache.items(Partition(CLOUDTRAIL_ERRORS, "333333333333", GLOBAL)) == {
        plugin.ROLE: {
            "arn": plugin.ROLE,
            "kind": CLOUDTRAIL_ERRORS,
            "account_id": "333333333333",
            "count": 1,
            "error_codes": {"AccessDenied": 1},
            "actions": {"kms:Decrypt": 1},
            "resources": {"arn:aws:kms:us-east-1:333333333333:key/k1": 1},
            "first_seen": role.time,
            "last_seen": role.time,
            "event_ids": ["plugin-1"],
        }
    }
    assert rt.redis_cache.items(Partition(CLOUDTRAIL_ERRORS, "444444444444", GLOBAL)) == {
        plugin.USER: {
            "arn": plugin.USER,
            "kind": CLOUDTRAIL_ERRORS,
            "account_id": "444444444444",
            "count": 1,
            "error_codes": {"UnauthorizedOperation": 1},
            "actions": {"ec2:RunInstances": 1},
            "resources": {},
            "first_seen": user.time,
            "last_seen": user.time,
            "event_ids": ["plugin-2"],
        }
    }


def test_source_none_only_applies_retention(runtime, env, plugin_calls):
    plugin_rt = runtime_with(
        env, INVENTORY_CLOUDTRAIL__SOURCE="tests.plugins.cloudtrail_source:make"
    )
    sync_cloudtrail_errors(plugin_rt, now=T0 + 3600)
    rt = runtime_with(env)  # the default source is 'none'
    assert rt.settings.cloudtrail.source == "none"
    assert load_source(rt) is None

    assert sync_cloudtrail_errors(rt, now=T0 + DAY) == {
        "events": 0,
        "accounts": 0,
        "principals_written": 0,
        "source": "none",
    }
    assert set(rt.redis_cache.items(Partition(CLOUDTRAIL_ERRORS, "333333333333"))) == {plugin.ROLE}
    sync_cloudtrail_errors(rt, now=T0 + 15 * DAY)
    assert rt.redis_cache.items(Partition(CLOUDTRAIL_ERRORS, "333333333333")) == {}
    assert rt.redis_cache.items(Partition(CLOUDTRAIL_ERRORS, "444444444444")) == {}


def test_bad_cloudtrail_source_is_a_config_error_naming_cloudtrail(env):
    with pytest.raises(ConfigError, match=r"(?m)^  cloudtrail\b.*source must be"):
        load_settings(paths=[], environ=env | {"INVENTORY_CLOUDTRAIL__SOURCE": "nonsense"})
    with pytest.raises(ConfigError, match=r"(?m)^  cloudtrail\b.*queue_url is required"):
        load_settings(paths=[], environ=env | {"INVENTORY_CLOUDTRAIL__SOURCE": "sqs"})


# --- 4. policy requests ----------------------------------------------------------------------

DOC = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
}


def create_three(rt: Runtime) -> list[dict[str, Any]]:
    return [
        rt.requests.create(
            arn=f"arn:aws:iam::111111111111:role/r{n}",
            account_id="111111111111",
            requester=f"user{n}@example.com",
            justification=f"need {n}",
            policy_document=DOC,
            now=1000.0 * (n + 1),
            policy_diff={"added": [n]} if n == 1 else None,
        )
        for n in range(3)
    ]


def test_policy_request_lifecycle_and_conflicts(runtime):
    first, second, third = create_three(runtime)
    assert second == {
        "arn": second["id"],
        "kind": POLICY_REQUEST,
        "id": second["id"],
        "resource_arn": "arn:aws:iam::111111111111:role/r1",
        "account_id": "111111111111",
        "requester": "user1@example.com",
        "justification": "need 1",
        "status": "pending",
        "policy_document": DOC,
        "policy_diff": {"added": [1]},
        "reviewer": None,
        "review_comment": None,
        "created_at": 2000,
        "updated_at": 2000,
    }
    assert len({first["id"], second["id"], third["id"]}) == 3

    approved = runtime.requests.set_status(second["id"], "approved", "admin@example.com", 2500.0)

    assert approved == second | {
        "status": "approved",
        "reviewer": "admin@example.com",
        "review_comment": None,
        "updated_at": 2500,
    }
    assert runtime.requests.get(second["id"]) == approved
    with pytest.raises(RequestConflict):
        runtime.requests.set_status(second["id"], "approved", "admin@example.com", 2600.0)
    with pytest.raises(RequestConflict):
        runtime.requests.set_status("no-such-request", "approved", "admin@example.com", 2600.0)
    with pytest.raises(ValueError, match="status must be one of"):
        runtime.requests.set_status(first["id"], "bogus", "admin@example.com", 2600.0)
    assert runtime.requests.get(second["id"]) == approved
    assert runtime.requests.get(first["id"]) == first
    assert runtime.requests.get("no-such-request") is None
    assert [r["id"] for r in runtime.requests.all()] == [third["id"], second["id"], first["id"]]


def test_request_cache_equals_the_table_in_redis_only(runtime):
    first, second, third = create_three(runtime)
    runtime.requests.set_status(second["id"], "approved", "admin@example.com", 2500.0)
    table = {r["id"]: r for r in runtime.requests.all()}

    assert refresh_request_cache(runtime) == {"requests": 3, "changed": 3}

    assert runtime.redis_cache.items(REQUESTS) == table
    assert runtime.redis_cache.items(REQUESTS)[second["id"]]["status"] == "approved"
    assert runtime.dynamo.items(REQUESTS) == {}
    assert runtime.redis_cache.get(second["id"]) is None  # not in the ARN index
    assert refresh_request_cache(runtime) == {"requests": 3, "changed": 0}

    runtime.requests.set_status(first["id"], "rejected", "admin@example.com", 2600.0, "no")
    assert refresh_request_cache(runtime) == {"requests": 3, "changed": 1}
    assert runtime.redis_cache.items(REQUESTS)[first["id"]] == first | {
        "status": "rejected",
        "reviewer": "admin@example.com",
        "review_comment": "no",
        "updated_at": 2600,
    }
    assert runtime.dynamo.items(REQUESTS) == {}
