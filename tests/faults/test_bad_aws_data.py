"""Malformed or unexpected AWS records: the bad record is skipped and reported, the rest of the
partition is stored, nothing cached is deleted.

The real ``sync_iam_account`` / ``sync_kind`` run against moto (real Redis, moto DynamoDB and
S3 snapshots). moto refuses to store what real AWS has been seen to return (a policy that is
not JSON, a record without an ARN, null fields, a megabyte tag value), so the junk is put into
moto's real answers on the client the sync uses: a botocore ``after-call`` hook (the event
mechanism botocore's Stubber is built on) edits the parsed response of one operation before
the fetcher reads it. Everything else is moto's answer as it came.
"""

from __future__ import annotations

import logging
import random
import string
from collections.abc import Callable
from typing import Any

import pytest

from inventory.cache.keys import GLOBAL, IAM_KINDS, IAM_ROLE, Partition
from inventory.demo.seed import AccountSeed, Seeder, demo_account
from inventory.registry import BY_STEM
from inventory.runtime import Runtime
from inventory.tasks.accounts import account_record, store_account_mapping
from inventory.tasks.iam import sync_iam_account
from inventory.tasks.resources import sync_kind

MEGABYTE = 1024 * 1024
UNICODE_ROLE = "Über-🚀-角色-ünïcødé"
NOT_JSON = "%7B%22Statement%22%3A%20%5B"  # URL-encoded '{"Statement": [' : cut short
NOT_DECODABLE = "%E0%A4%A%ZZ{"  # neither JSON nor valid percent-encoding
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:*"}
    ],
}


def incompressible(size: int) -> str:
    rng = random.Random(9)
    return "".join(rng.choices(string.ascii_letters + string.digits, k=size))


@pytest.fixture
def dev(runtime: Runtime, moto_server) -> AccountSeed:
    seeder = Seeder(moto_server.url)
    seeder.organisation()
    seed = seeder.create_account(demo_account("dev", 0))
    store_account_mapping(runtime)
    return seed


def doctor(client: Any, operation: str, edit: Callable[[dict[str, Any], dict[str, Any]], None]):
    """Edit moto's parsed answer to ``operation`` on this client (params, parsed) in place, after
    botocore's own handlers (which decode IAM's URL-encoded policies) have run."""
    service = client.meta.service_model.service_name

    def remember(params: dict[str, Any], context: dict[str, Any], **kwargs: Any) -> None:
        context["doctor_params"] = dict(params)  # the call's arguments, for the edit

    def hook(parsed: dict[str, Any], model: Any, context: dict[str, Any], **kwargs: Any) -> None:
        if model.name == operation:
            edit(context.get("doctor_params", {}), parsed)

    client.meta.events.register(f"before-parameter-build.{service}.{operation}", remember)
    client.meta.events.register_last(f"after-call.{service}", hook)


def snapshot(rt: Runtime, kind: str, account: str, region: str = GLOBAL) -> dict[str, Any]:
    return rt.redis_cache.items(Partition(kind, account, region))


# --- IAM ----------------------------------------------------------------------------------------


def test_iam_listing_with_malformed_roles_skips_them_stores_the_rest_and_deletes_nothing(
    runtime, dev, caplog
):
    before = {kind: snapshot(runtime, kind, dev.id) for kind in IAM_KINDS}
    sync_iam_account(runtime, dev.id)
    cached = {kind: snapshot(runtime, kind, dev.id) for kind in IAM_KINDS}
    app, worker = dev.role_arn("dev-app"), dev.role_arn("dev-worker-0")
    assert before[IAM_ROLE] == {} and {app, worker} <= set(cached[IAM_ROLE])

    client = runtime.account_client(
        "iam", account_record(runtime, dev.id), runtime.settings.deployment_region
    )
    unicode_arn = dev.role_arn(UNICODE_ROLE)
    nulls_arn = dev.role_arn("nulls")
    huge_arn = dev.role_arn("huge-tag")

    def edit(params: dict[str, Any], parsed: dict[str, Any]) -> None:
        roles = parsed["RoleDetailList"]
        by_arn = {r["Arn"]: r for r in roles}
        roles.remove(by_arn[worker])  # gone from this listing: must not be deleted (incomplete)
        by_arn[app]["RolePolicyList"] = [{"PolicyName": "cut", "PolicyDocument": NOT_JSON}]
        roles.append({"RoleName": "no-arn", "AssumeRolePolicyDocument": TRUST})
        roles.append(
            {"RoleName": "bad-trust", "Arn": dev.role_arn("bad-trust"),
             "AssumeRolePolicyDocument": NOT_DECODABLE}
        )  # fmt: skip
        roles.append(
            {
                "RoleName": UNICODE_ROLE,
                "Arn": unicode_arn,
                "Description": "Zugriff für 🚀 \u202eRTL\u202c 中文",
                "AssumeRolePolicyDocument": TRUST,
                "Tags": [{"Key": "ñame", "Value": "✓ 🚀 ünï"}],
            }
        )
        roles.append(
            {
                "RoleName": "nulls",
                "Arn": nulls_arn,
                "AssumeRolePolicyDocument": TRUST,
                "Description": None,
                "Tags": None,
                "RolePolicyList": None,
                "AttachedManagedPolicies": None,
                "PermissionsBoundary": None,
                "RoleLastUsed": None,
                "InstanceProfileList": None,
            }
        )
        roles.append(
            {
                "RoleName": "huge-tag",
                "Arn": huge_arn,
                "AssumeRolePolicyDocument": TRUST,
                "Tags": [{"Key": "blob", "Value": incompressible(MEGABYTE)}],
            }
        )
        parsed["UserDetailList"].append({"UserName": None, "Arn": None})
        parsed["GroupDetailList"].append({"GroupName": "g", "Arn": 42})

    doctor(client, "GetAccountAuthorizationDetails", edit)
    with caplog.at_level(logging.WARNING, logger="inventory"):
        result = sync_iam_account(runtime, dev.id)

    skipped = {s["record"]: s["reason"] for s in result["skipped"]}
    assert set(skipped) == {
        f"iam_role {app}",
        "iam_role no-arn",
        f"iam_role {dev.role_arn('bad-trust')}",
        f"iam_role {huge_arn}",
        "iam_user None",  # neither an ARN nor a name: still reported
        "iam_group 42",
    }
    assert skipped["iam_role no-arn"] == "missing field 'Arn'"
    assert skipped["iam_group 42"] == "ARN 42 is not an ARN"
    assert skipped[f"iam_role {huge_arn}"].startswith("record is ")
    for record in skipped:
        assert f"skipped {record}: " in caplog.text
    after = {kind: snapshot(runtime, kind, dev.id) for kind in IAM_KINDS}
    # Nothing deleted: the role missing from the listing and the skipped role keep their copy.
    assert after[IAM_ROLE][worker] == cached[IAM_ROLE][worker]
    assert after[IAM_ROLE][app] == cached[IAM_ROLE][app]
    assert {k: r["removed"] for k, r in result["partitions"].items()} == dict.fromkeys(IAM_KINDS, 0)
    assert {k: r["complete"] for k, r in result["partitions"].items()} == dict.fromkeys(
        IAM_KINDS, False
    )
    # The rest is stored, exactly.
    assert after[IAM_ROLE][unicode_arn]["name"] == UNICODE_ROLE
    assert after[IAM_ROLE][unicode_arn]["tags"] == {"ñame": "✓ 🚀 ünï"}
    assert after[IAM_ROLE][unicode_arn]["description"] == "Zugriff für 🚀 \u202eRTL\u202c 中文"
    assert after[IAM_ROLE][nulls_arn]["tags"] == {}
    assert after[IAM_ROLE][nulls_arn]["inline_policies"] == {}
    assert huge_arn not in after[IAM_ROLE]
    assert set(after[IAM_ROLE]) == set(cached[IAM_ROLE]) | {unicode_arn, nulls_arn}
    for kind in IAM_KINDS:
        if kind != IAM_ROLE:
            assert after[kind] == cached[kind], kind
    # The durable copy agrees: the unicode role read back from DynamoDB.
    durable = runtime.dynamo.items(Partition(IAM_ROLE, dev.id, GLOBAL))
    assert durable == after[IAM_ROLE]


# --- S3, SQS, SNS: the per-resource detail call returns junk --------------------------------------


def junk_policy(field: str) -> Callable[[dict[str, Any], dict[str, Any]], None]:
    def edit(params: dict[str, Any], parsed: dict[str, Any]) -> None:
        if field == "Policy":  # GetBucketPolicy answers {"Policy": "..."}
            parsed["Policy"] = NOT_DECODABLE
        else:
            parsed["Attributes"]["Policy"] = NOT_DECODABLE

    return edit


def null_attributes(params: dict[str, Any], parsed: dict[str, Any]) -> None:
    parsed["Attributes"] = None


def huge_tags(field: str) -> Callable[[dict[str, Any], dict[str, Any]], None]:
    def edit(params: dict[str, Any], parsed: dict[str, Any]) -> None:
        if field == "TagSet":
            parsed["TagSet"] = [{"Key": "blob", "Value": incompressible(MEGABYTE)}]
        elif field == "Tags-map":
            parsed["Tags"] = {"blob": incompressible(MEGABYTE)}
        else:
            parsed["Tags"] = [{"Key": "blob", "Value": incompressible(MEGABYTE)}]

    return edit


def add_queue(seeder: Seeder, seed: AccountSeed, region: str) -> str:
    name = "new-queue"
    seeder.client("sqs", seed.id, region).create_queue(QueueName=name)
    return f"arn:aws:sqs:{region}:{seed.id}:{name}"


def add_topic(seeder: Seeder, seed: AccountSeed, region: str) -> str:
    return seeder.client("sns", seed.id, region).create_topic(Name="new-topic")["TopicArn"]


def add_bucket(seeder: Seeder, seed: AccountSeed, region: str) -> str:
    seeder.client("s3", seed.id, "us-east-1").create_bucket(Bucket=f"new-bucket-{seed.id}")
    return f"arn:aws:s3:::new-bucket-{seed.id}"


SQS, SNS = "GetQueueAttributes", "GetTopicAttributes"
CASES = [
    ("sqs_queues", "sqs_queue", "us-east-1", SQS, junk_policy("Attributes"), add_queue),
    ("sqs_queues", "sqs_queue", "us-east-1", SQS, null_attributes, add_queue),
    ("sqs_queues", "sqs_queue", "us-east-1", "ListQueueTags", huge_tags("Tags-map"), add_queue),
    ("sns_topics", "sns_topic", "us-east-1", SNS, junk_policy("Attributes"), add_topic),
    ("sns_topics", "sns_topic", "us-east-1", SNS, null_attributes, add_topic),
    ("sns_topics", "sns_topic", "us-east-1", "ListTagsForResource", huge_tags("Tags"), add_topic),
    ("s3_buckets", "s3_bucket", GLOBAL, "GetBucketPolicy", junk_policy("Policy"), add_bucket),
    ("s3_buckets", "s3_bucket", GLOBAL, "GetBucketTagging", huge_tags("TagSet"), add_bucket),
]  # fmt: skip


@pytest.mark.parametrize(
    ("stem", "kind", "region", "operation", "edit", "add"),
    CASES,
    ids=[f"{c[0]}-{c[3]}-{c[4].__qualname__.split('.')[0]}" for c in CASES],
)
def test_junk_detail_of_one_resource_is_skipped_and_its_cached_copy_kept(
    runtime, dev, moto_server, stem, kind, region, operation, edit, add
):
    sync_kind(runtime, BY_STEM[stem], dev.id)
    cached = snapshot(runtime, kind, dev.id, region)
    assert len(cached) >= 1
    victim = sorted(cached)[0]
    new_arn = add(Seeder(moto_server.url), dev, region)
    client_region = runtime.settings.deployment_region if region == GLOBAL else region
    service = BY_STEM[stem].service
    client = runtime.account_client(service, account_record(runtime, dev.id), client_region)
    name = victim.rsplit(":", 1)[-1]

    def only_victim(params: dict[str, Any], parsed: dict[str, Any]) -> None:
        target = str(params.get("QueueUrl") or params.get("TopicArn") or params.get("Bucket"))
        target = target or str(params.get("ResourceArn"))
        if target.endswith(name) or params.get("ResourceArn") == victim:
            edit(params, parsed)

    doctor(client, operation, only_victim)
    result = sync_kind(runtime, BY_STEM[stem], dev.id)

    after = snapshot(runtime, kind, dev.id, region)
    summary = result["regions"][region]
    assert after[victim] == cached[victim]  # the bad record kept its cached copy
    assert new_arn in after  # the rest of the partition was stored
    assert set(after) == set(cached) | {new_arn}  # nothing deleted
    assert summary["removed"] == 0
    label = {"sqs_queue": f"queue {name}", "sns_topic": f"topic {victim}"}.get(
        kind, f"bucket {name}"
    )
    assert [s["record"] for s in summary["skipped"]] == [label]
    assert len(summary["skipped"][0]["reason"]) > 0
    assert runtime.dynamo.items(Partition(kind, dev.id, region)) == after
