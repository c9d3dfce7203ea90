"""Every partition's durable items are its own: the same ARN in two regions or accounts never
shares a DynamoDB item, and tables written under the old keys are migrated without loss."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from inventory.aws.managed_policies import AWS_DOCUMENT_KIND
from inventory.cache import dynamo as dynamo_module
from inventory.cache.dynamo import item_key
from inventory.cache.key_migration import SCHEMA_VERSION, schema_version
from inventory.cache.keys import (
    ACCOUNT,
    CLOUDTRAIL_ERRORS,
    GLOBAL,
    IAM_KINDS,
    IAM_ROLE,
    IAM_ROLE_LIMIT,
    TABLE_RESOURCES,
    Partition,
    table_for_kind,
)
from inventory.cache.store import Store, encode
from inventory.cli import durable_kinds
from inventory.registry import KINDS
from inventory.runtime import Runtime

ARN = "arn:aws:iam::111111111111:role/shared"
A, B = "111111111111", "222222222222"


def test_durable_kinds_cover_every_kind_written_to_dynamodb():
    expected = {*IAM_KINDS, ACCOUNT, AWS_DOCUMENT_KIND, CLOUDTRAIL_ERRORS, IAM_ROLE_LIMIT}
    synced = {k.kind for k in KINDS if k.sync}
    assert durable_kinds() == expected | synced
    assert synced >= {"s3_bucket", "sqs_queue", "sns_topic", "config_resource", "managed_policy"}


def partitions_of(kind: str) -> list[Partition]:
    """Three partitions listing the same ARN: two regions of one account, and another account.

    The roles and accounts tables hold global kinds only, so there the second is an account.
    """
    if table_for_kind(kind) != TABLE_RESOURCES:
        return [Partition(kind, A, GLOBAL), Partition(kind, B, GLOBAL)]
    return [Partition(kind, A, r) for r in ("us-east-1", "eu-west-1")] + [
        Partition(kind, B, "us-east-1")
    ]


def record(p: Partition, **extra: Any) -> dict[str, Any]:
    """A record whose content says which partition wrote it (an overwrite would show)."""
    # "count": CloudTrail error records carry one, which the policies table reads.
    return {"arn": ARN, "kind": p.kind, "name": "shared", "count": 1, "written_by": p.id, **extra}


def copies(rt: Runtime, p: Partition) -> dict[str, dict[str, Any]]:
    """The partition as Redis, DynamoDB and the S3 snapshot hold it."""
    snapshot = rt.s3.get(p) if rt.s3 is not None else None
    return {
        "redis": rt.redis_cache.items(p),
        "dynamodb": rt.dynamo.items(p),
        "s3": (snapshot or {}).get("data", {}),
    }


@pytest.mark.parametrize("kind", sorted(durable_kinds()))
def test_same_arn_in_several_partitions_keeps_one_item_each_in_every_copy(runtime, kind):
    parts = partitions_of(kind)
    for p in parts:
        runtime.store.replace_partition(kind, p.account_id, p.region, [record(p)], complete=True)

    for p in parts:
        assert copies(runtime, p) == dict.fromkeys(("redis", "dynamodb", "s3"), {ARN: record(p)})
    assert all(c.equal for c in runtime.verifier.check_all([kind]))

    # The first partition's complete listing no longer has the ARN: only its copies go.
    first, *others = parts
    runtime.store.replace_partition(kind, first.account_id, first.region, [], complete=True)
    assert copies(runtime, first) == dict.fromkeys(("redis", "dynamodb", "s3"), {})
    for p in others:
        assert copies(runtime, p) == dict.fromkeys(("redis", "dynamodb", "s3"), {ARN: record(p)})


def test_roles_keep_consoleme_key_and_no_other_region():
    p = Partition(IAM_ROLE, A)
    assert item_key(p, ARN) == ARN  # ConsoleMe's roles table: hash key arn, range key accountId
    assert item_key(Partition("config_resource", A, "eu-west-1"), ARN) == (
        f"config_resource|eu-west-1|{ARN}"
    )
    with pytest.raises(ValueError, match="global"):
        item_key(Partition(IAM_ROLE, A, "eu-west-1"), ARN)


#: The kinds keyed ``<kind>|<arn>`` up to schema 1 (keys.UNINDEXED_KINDS of that release).
LEGACY_PREFIXED = frozenset(
    {
        "account",
        "managed_policy",
        "config_resource",
        "cloudtrail_errors",
        "role_access",
        "principal_access",
        "policy_request",
        "iam_role_limit",
    }
)


def legacy_item_key(p: Partition, arn: str) -> str:
    """How items were keyed up to schema 1 (the code before this change, verbatim in effect)."""
    return f"{p.kind}|{arn}" if p.kind in LEGACY_PREFIXED else arn


def raw_keys(rt: Runtime) -> set[tuple[str, str]]:
    table = rt.dynamo.models[TABLE_RESOURCES]._get_connection()
    pages = table.connection.client.get_paginator("scan").paginate(TableName=table.table_name)
    return {(i["arn"]["S"], i["accountId"]["S"]) for page in pages for i in page["Items"]}


def test_table_written_under_old_keys_is_migrated_once_and_loses_nothing(runtime, monkeypatch):
    # The previous release's writes: AWS Config reports the same global role in both regions,
    # and the second region's item overwrites the first's (10 items in Redis, 2 in DynamoDB).
    old = Store(runtime.redis_cache, runtime.dynamo, runtime.s3, log=runtime.replication)
    config = [Partition("config_resource", A, r) for r in ("us-east-1", "eu-west-1")]
    bucket = Partition("s3_bucket", A)
    user = Partition("iam_user", B)
    role = Partition(IAM_ROLE, A)
    with monkeypatch.context() as m:
        m.setattr(dynamo_module, "item_key", legacy_item_key)
        for p in [*config, bucket, user, role]:
            old.replace_partition(p.kind, p.account_id, p.region, [record(p)], complete=True)
        assert len(runtime.dynamo.items(config[1])) == 1
        assert runtime.dynamo.items(config[0]) == {}  # overwritten by eu-west-1's write
    assert schema_version(runtime.dynamo) == 1
    legacy = raw_keys(runtime)
    assert legacy == {(f"config_resource|{ARN}", A), (ARN, A), (ARN, B)}

    done = runtime.ensure_schema()

    assert done is not None
    assert (done.scanned, done.moved, done.superseded) == (3, 3, 0)
    assert done.partitions == {config[1], bucket, user}
    assert done.repaired == 1  # us-east-1's Config partition, which held nothing in DynamoDB
    assert schema_version(runtime.dynamo) == SCHEMA_VERSION
    assert raw_keys(runtime) == {
        ("__schema__", "__schema__"),
        (f"config_resource|us-east-1|{ARN}", A),
        (f"config_resource|eu-west-1|{ARN}", A),
        (f"s3_bucket|global|{ARN}", A),
        (f"iam_user|global|{ARN}", B),
    }
    # Every partition is whole in every copy, the item the collision lost included (written
    # back from Redis, the copy that kept it); the roles table kept ConsoleMe's key.
    for p in [*config, bucket, user, role]:
        assert copies(runtime, p) == dict.fromkeys(("redis", "dynamodb", "s3"), {ARN: record(p)})
    assert all(c.equal for c in runtime.verifier.check_all(durable_kinds()))
    # Nothing left to migrate: another process reads the marker and does nothing.
    assert Runtime(runtime.settings).ensure_schema() is None


def test_verify_reports_every_difference_and_repair_writes_it_back(env, runtime):
    from click.testing import CliRunner

    from inventory.cli import main

    parts = partitions_of("sqs_queue")
    for p in parts:
        runtime.store.replace_partition(p.kind, p.account_id, p.region, [record(p)], complete=True)
    lost, changed = parts[0], parts[1]
    runtime.dynamo.write(lost, {}, [ARN], time.time())  # DynamoDB loses one item
    doc, _ = encode("sqs_queue", record(changed, written_by="someone else"))
    runtime.dynamo.write(changed, {ARN: (doc, "stale-hash")}, [], time.time())

    def verify(*args: str):
        return CliRunner().invoke(main, ["verify", "--kind", "sqs_queue", *args], env=env)

    found = verify("--json")

    assert found.exit_code == 1, found.output
    report = json.loads(found.stdout)
    assert report["checked"] == 3
    assert {d["partition"]: d["copies"] for d in report["differences"]} == {
        lost.id: [{"copy": "dynamodb", "missing": [ARN], "extra": [], "changed": []}],
        changed.id: [{"copy": "dynamodb", "missing": [], "extra": [], "changed": [ARN]}],
    }
    text = verify()
    assert text.exit_code == 1
    assert f"{lost.id}\tdynamodb\tmissing\t{ARN}" in text.stdout.splitlines()

    repaired = verify("--repair", "--json")

    assert repaired.exit_code == 0, repaired.output
    assert {d["partition"]: d["resolved"] for d in json.loads(repaired.stdout)["differences"]} == {
        lost.id: True,
        changed.id: True,
    }
    for p in parts:
        assert copies(runtime, p) == dict.fromkeys(("redis", "dynamodb", "s3"), {ARN: record(p)})
    assert verify().exit_code == 0


def test_tables_migrate_moves_old_keys_and_then_has_nothing_to_do(env, runtime, monkeypatch):
    from click.testing import CliRunner

    from inventory.cli import main

    old = Store(runtime.redis_cache, runtime.dynamo, runtime.s3, log=runtime.replication)
    p = Partition("sns_topic", A, "us-east-1")
    with monkeypatch.context() as m:
        m.setattr(dynamo_module, "item_key", legacy_item_key)
        old.replace_partition(p.kind, p.account_id, p.region, [record(p)], complete=True)

    first = CliRunner().invoke(main, ["tables", "migrate"], env=env)
    second = CliRunner().invoke(main, ["tables", "migrate"], env=env)

    assert first.exit_code == 0, first.output
    assert first.stdout.startswith(f"schema {SCHEMA_VERSION}: 1 items scanned, 1 moved, 0 ")
    assert raw_keys(runtime) == {("__schema__", "__schema__"), (f"sns_topic|us-east-1|{ARN}", A)}
    assert second.stdout == f"the tables are at schema {SCHEMA_VERSION}: nothing to move\n"
