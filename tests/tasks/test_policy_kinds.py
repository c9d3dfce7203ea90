"""KMS keys, Lambda functions, Secrets Manager secrets and ECR repositories against moto and Redis:
exact records, deletions, the steady state writing nothing, a failing region kept as cached,
and a secret's value found nowhere we store."""

from __future__ import annotations

import json
from typing import Any

import pytest

from inventory.cache.keys import Partition
from inventory.demo.seed import AccountSeed, Seeder, demo_account
from inventory.registry import BY_STEM
from inventory.runtime import Runtime
from inventory.settings import load_settings
from inventory.tasks.accounts import store_account_mapping
from inventory.tasks.resources import RegionsFailed, sync_kind
from tests.conftest import inventory_env
from tests.faultproxy import FaultProxy

REGION = "us-east-1"


@pytest.fixture
def org(runtime: Runtime, moto_server) -> tuple[Seeder, list[AccountSeed]]:
    seeder = Seeder(moto_server.url)
    seeder.organisation()
    seeds = [seeder.create_account(demo_account(n, i)) for i, n in enumerate(["dev", "prod"])]
    store_account_mapping(runtime)
    return seeder, seeds


def items(rt: Runtime, kind: str, account: str, region: str = REGION) -> dict:
    return rt.redis_cache.items(Partition(kind, account, region))


def iso(value: Any) -> str:
    return value.astimezone(__import__("datetime").UTC).isoformat().replace("+00:00", "Z")


# --- exact records ---------------------------------------------------------------------------


def test_kms_key_cached_with_key_policy_aliases_rotation_and_tags(runtime, org):
    seeder, (dev, _) = org
    kms = seeder.client("kms", dev.id, REGION)
    metadata = kms.describe_key(KeyId=f"alias/{dev.keys[0].alias}")["KeyMetadata"]
    key_id = metadata["KeyId"]

    summary = sync_kind(runtime, BY_STEM["kms_keys"], dev.id)

    assert summary["regions"][REGION]["created"] == 1
    cached = items(runtime, "kms_key", dev.id)
    assert set(cached) == {metadata["Arn"]}
    assert cached[metadata["Arn"]] == (
        {
            "arn": metadata["Arn"],
            "kind": "kms_key",
            "account_id": dev.id,
            "region": REGION,
            "name": key_id,
            "aliases": ["alias/dev-data"],
            "description": "dev data key",
            "manager": "CUSTOMER",
            "state": "Enabled",
            "spec": "SYMMETRIC_DEFAULT",
            "usage": metadata.get("KeyUsage"),
            "origin": "AWS_KMS",
            "multi_region": metadata.get("MultiRegion"),
            "deletion_date": None,
            "rotation_enabled": True,
            "policy": json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]),
            "created": iso(metadata["CreationDate"]),
            "tags": {"owner": "dev"},
        }
    )
    assert items(runtime, "kms_key", dev.id, "us-west-2") == {}


def test_lambda_function_cached_with_policy_role_runtime_and_tags_but_no_environment(runtime, org):
    seeder, (dev, _) = org
    awslambda = seeder.client("lambda", dev.id, REGION)
    awslambda.update_function_configuration(
        FunctionName="dev-thumbnails", Environment={"Variables": {"DB_PASSWORD": "hunter2-env"}}
    )
    config = awslambda.get_function_configuration(FunctionName="dev-thumbnails")
    arn = config["FunctionArn"]

    sync_kind(runtime, BY_STEM["lambda_functions"], dev.id)

    cached = items(runtime, "lambda_function", dev.id)
    assert set(cached) == {arn}
    assert cached[arn] == (
        {
            "arn": arn,
            "kind": "lambda_function",
            "account_id": dev.id,
            "region": REGION,
            "name": "dev-thumbnails",
            "policy": {
                "Version": "2012-10-17",
                "Id": "default",
                "Statement": [
                    {
                        "Sid": "invoke",
                        "Effect": "Allow",
                        "Principal": {"Service": "events.amazonaws.com"},
                        "Action": "lambda:InvokeFunction",
                        "Resource": arn,
                        "Condition": {"StringEquals": {"AWS:SourceAccount": dev.id}},
                    }
                ],
            },
            "role": dev.role_arn("dev-worker-0"),
            "runtime": "python3.12",
            "handler": "app.handler",
            "package_type": "Zip",
            "architectures": ["x86_64"],
            "description": None,
            "timeout": 3,
            "memory": 128,
            "kms_key": None,
            "layers": [],
            "vpc_id": None,
            "code_sha256": config["CodeSha256"],
            "last_modified": config["LastModified"],
            "tags": {"service": "thumbnails"},
        }
    )
    assert "hunter2-env" not in json.dumps(cached)


def test_secret_cached_with_policy_rotation_kms_key_and_tags(runtime, org):
    seeder, (dev, _) = org
    sm = seeder.client("secretsmanager", dev.id, REGION)
    described = sm.describe_secret(SecretId=dev.secrets[0].name)
    arn = described["ARN"]

    sync_kind(runtime, BY_STEM["secrets"], dev.id)

    cached = items(runtime, "secretsmanager_secret", dev.id)
    assert set(cached) == {arn}
    assert cached[arn] == (
        {
            "arn": arn,
            "kind": "secretsmanager_secret",
            "account_id": dev.id,
            "region": REGION,
            "name": "dev/db-password",
            "description": None,
            "policy": dev.resolve(dev.secrets[0].policy or {}),
            "kms_key": "alias/dev-data",
            "rotation_enabled": False,
            "rotation_lambda": None,
            "rotation_days": None,
            "rotation_schedule": None,
            "last_rotated": None,
            "primary_region": None,
            "owning_service": None,
            "created": iso(described["CreatedDate"]),
            "tags": {"service": "db"},
        }
    )


def test_ecr_repository_cached_with_policy_scan_on_push_and_tags(runtime, org):
    seeder, (dev, _) = org
    ecr = seeder.client("ecr", dev.id, REGION)
    (repository,) = ecr.describe_repositories()["repositories"]
    arn = repository["repositoryArn"]

    sync_kind(runtime, BY_STEM["ecr_repositories"], dev.id)

    cached = items(runtime, "ecr_repository", dev.id)
    assert set(cached) == {arn}
    assert cached[arn] == (
        {
            "arn": arn,
            "kind": "ecr_repository",
            "account_id": dev.id,
            "region": REGION,
            "name": "dev/app",
            "uri": f"{dev.id}.dkr.ecr.{REGION}.amazonaws.com/dev/app",
            "policy": dev.resolve(dev.repositories[0].policy or {}),
            "scan_on_push": True,
            "tag_mutability": "MUTABLE",
            "encryption": "AES256",
            "kms_key": None,
            "created": iso(repository["createdAt"]),
            "tags": {"app": "dev"},
        }
    )


# --- deletions, the steady state, a failing region -------------------------------------------


def _delete(seeder: Seeder, seed: AccountSeed, stem: str) -> None:
    """Delete the account's one resource of the kind in AWS."""
    client = seeder.client(BY_STEM[stem].service, seed.id, REGION)
    if stem == "kms_keys":
        # A key is never deleted at once: ScheduleKeyDeletion, then AWS deletes it. moto
        # keeps it pending; its state is what changes.
        key = client.describe_key(KeyId=f"alias/{seed.keys[0].alias}")["KeyMetadata"]
        client.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    elif stem == "lambda_functions":
        client.delete_function(FunctionName=seed.functions[0].name)
    elif stem == "secrets":
        client.delete_secret(SecretId=seed.secrets[0].name, ForceDeleteWithoutRecovery=True)
    elif stem == "ecr_repositories":
        client.delete_repository(repositoryName=seed.repositories[0].name)


KIND_OF = {
    "kms_keys": "kms_key",
    "lambda_functions": "lambda_function",
    "secrets": "secretsmanager_secret",
    "ecr_repositories": "ecr_repository",
}
#: What each listing's first call is, as the fault proxy names it.
LISTING_CALL = {
    "kms_keys": "ListAliases",
    "lambda_functions": "ListFunctions",
    "secrets": "ListSecrets",
    "ecr_repositories": "DescribeRepositories",
}


def assert_steady(runtime: Runtime, stem: str, seeds: tuple[AccountSeed, ...]) -> None:
    """A second sweep of each account writes nothing durable."""
    for seed in seeds:
        again = sync_kind(runtime, BY_STEM[stem], seed.id)["regions"]
        assert {r: (s["dynamo_writes"], s["s3_objects"]) for r, s in again.items()} == {
            r: (0, 0) for r in again
        }


@pytest.mark.parametrize("stem", sorted(KIND_OF))
def test_steady_state_writes_nothing_and_deleted_resource_goes(runtime, org, stem):
    seeder, (dev, prod) = org
    kind = KIND_OF[stem]
    for seed in (dev, prod):
        sync_kind(runtime, BY_STEM[stem], seed.id)
    assert_steady(runtime, stem, (dev, prod))
    (arn,) = items(runtime, kind, dev.id)
    prod_before = items(runtime, kind, prod.id)
    _delete(seeder, dev, stem)

    result = sync_kind(runtime, BY_STEM[stem], dev.id)["regions"][REGION]

    if stem == "kms_keys":  # pending deletion: still listed, its state and date changed
        assert result["updated"] == 1
        assert items(runtime, kind, dev.id)[arn]["state"] == "PendingDeletion"
        assert items(runtime, kind, dev.id)[arn]["deletion_date"] is not None
    else:
        assert result["removed"] == 1
        assert arn not in items(runtime, kind, dev.id)
        assert arn not in runtime.dynamo.items(Partition(kind, dev.id, REGION))
    assert items(runtime, kind, prod.id) == prod_before


@pytest.mark.parametrize("stem", sorted(KIND_OF))
def test_failing_region_keeps_its_cache_while_other_regions_update(
    runtime, org, redis_server, moto_server, stem
):
    seeder, (dev, _) = org
    kind = KIND_OF[stem]
    proxy = FaultProxy(moto_server.url).start()
    try:
        env = inventory_env(
            redis_server,
            moto_server,
            INVENTORY_AWS__ENDPOINT_URL=proxy.url,
            INVENTORY_AWS__MAX_ATTEMPTS="1",
        )
        rt = Runtime(load_settings(paths=[], environ=env))
        sync_kind(rt, BY_STEM[stem], dev.id)
        before = items(rt, kind, dev.id)
        assert len(before) == 1
        _delete(seeder, dev, stem)
        proxy.fail(LISTING_CALL[stem], "AccessDenied", 403, region=REGION)

        with pytest.raises(RegionsFailed) as failed:
            sync_kind(rt, BY_STEM[stem], dev.id)

        assert set(failed.value.failures) == {REGION}
        assert failed.value.retryable is False
        assert items(rt, kind, dev.id) == before
        assert items(rt, kind, dev.id, "us-west-2") == {}
    finally:
        proxy.stop()


# --- never the secret's value ----------------------------------------------------------------


def redis_text(client: Any) -> str:
    """Every key and value in Redis, whatever its type, as one text."""
    read = {
        "string": lambda k: [client.get(k)],
        "hash": lambda k: [b for kv in client.hgetall(k).items() for b in kv],
        "list": lambda k: client.lrange(k, 0, -1),
        "set": lambda k: list(client.smembers(k)),
        "zset": lambda k: client.zrange(k, 0, -1),
        "stream": lambda k: [json.dumps(e, default=repr) for e in client.xrange(k)],
    }
    parts: list[str] = []
    for key in client.scan_iter("*"):
        kind = client.type(key)
        values = [key, *read[kind.decode() if isinstance(kind, bytes) else kind](key)]
        parts += [v.decode(errors="replace") if isinstance(v, bytes) else str(v) for v in values]
    return "\n".join(parts)


def test_secret_value_is_in_no_redis_key_nor_dynamodb_item(runtime, org):
    seeder, (dev, _) = org
    value = dev.secrets[0].value
    sm = seeder.client("secretsmanager", dev.id, REGION)
    assert sm.get_secret_value(SecretId=dev.secrets[0].name)["SecretString"] == value
    sync_kind(runtime, BY_STEM["secrets"], dev.id)
    (arn,) = items(runtime, "secretsmanager_secret", dev.id)

    stored = redis_text(runtime.redis)
    assert arn in stored and "alias/dev-data" in stored  # records are readable here
    assert value not in stored
    durable = runtime.dynamo.items(Partition("secretsmanager_secret", dev.id, REGION))
    assert arn in durable and value not in json.dumps(durable, default=str)
