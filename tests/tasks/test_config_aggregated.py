"""AWS Config through an aggregator, stored: the same partitions as the per-account sync.

The member accounts and their Config recorders are moto's; the aggregator's two calls
(SelectAggregateResourceConfig, DescribeConfigurationAggregatorSourcesStatus) are not in moto,
so the aggregator account's real client (the one the runtime caches and the task uses) is
wrapped in botocore's Stubber.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import redis
from botocore.stub import Stubber

from inventory.aws.config_aggregator import AGGREGATE_FIELDS
from inventory.cache.keys import Partition
from inventory.celery_app import AWS, create_app
from inventory.demo.seed import MANAGEMENT_ACCOUNT, REGIONS, AccountSeed, Seeder, demo_account
from inventory.registry import BY_STEM
from inventory.runtime import Runtime
from inventory.tasks.accounts import store_account_mapping
from inventory.tasks.resources import aggregator_of, sync_aggregated, sync_kind
from tests.conftest import inventory_env

AGGREGATOR = "org-aggregator"
CONFIG = BY_STEM["resources_from_aws_config"]
KIND = "config_resource"


@pytest.fixture
def env(redis_server, moto_server) -> dict[str, str]:
    return inventory_env(
        redis_server,
        moto_server,
        INVENTORY_AWS_CONFIG__AGGREGATOR__NAME=AGGREGATOR,
        INVENTORY_AWS_CONFIG__AGGREGATOR__ACCOUNT_ID=MANAGEMENT_ACCOUNT,
    )


@pytest.fixture
def org(runtime: Runtime, moto_server) -> list[AccountSeed]:
    seeder = Seeder(moto_server.url)
    seeder.organisation()
    seeds = [seeder.create_account(demo_account(n, i)) for i, n in enumerate(["dev", "prod"])]
    store_account_mapping(runtime)
    return seeds


def partitions(rt: Runtime) -> dict[str, dict[str, Any]]:
    return {p.id: rt.redis_cache.items(p) for p in rt.redis_cache.partitions(KIND)}


def raw_result(record: dict[str, Any]) -> str:
    """What the aggregator answers for a resource we cached (awsRegion: its partition's)."""
    return json.dumps(
        {
            "accountId": record["account_id"],
            "resourceType": record["resource_type"],
            "resourceId": record["resource_id"],
            "resourceName": record["name"],
            "arn": record["arn"],
            "awsRegion": record["region"],
            "tags": record["tags"],
            "configuration": record["configuration"],
            "configurationItemCaptureTime": record["captured"],
        }
    )


def stub_aggregator(
    rt: Runtime, results: list[str], status: dict[tuple[str, str], str]
) -> tuple[Any, Stubber]:
    account = {"id": MANAGEMENT_ACCOUNT}
    client = rt.account_client("config", account, "us-east-1")
    stubber = Stubber(client)
    stubber.add_response(
        "describe_configuration_aggregator_sources_status",
        {
            "AggregatedSourceStatusList": [
                {"SourceId": a, "SourceType": "ACCOUNT", "AwsRegion": r, "LastUpdateStatus": s}
                for (a, r), s in status.items()
            ]
        },
        {"ConfigurationAggregatorName": AGGREGATOR},
    )
    half = len(results) // 2
    query = {
        "Expression": f"SELECT {AGGREGATE_FIELDS}",
        "ConfigurationAggregatorName": AGGREGATOR,
        "Limit": 100,
    }
    stubber.add_response(
        "select_aggregate_resource_config",
        {"Results": results[:half], "NextToken": "page-2"},
        query,
    )
    stubber.add_response(
        "select_aggregate_resource_config",
        {"Results": results[half:]},
        {**query, "NextToken": "page-2"},
    )
    return client, stubber


def test_aggregator_writes_the_partitions_the_per_account_sync_writes(runtime, org):
    for seed in org:
        sync_kind(runtime, CONFIG, seed.id)
    per_account = partitions(runtime)
    assert set(per_account) == {
        Partition(KIND, s.id, r).id for s in org for r in REGIONS
    }  # each member account records Config in each region
    records = [r for items in per_account.values() for r in items.values()]
    ok = {(s.id, r): "SUCCEEDED" for s in org for r in REGIONS}
    _, stubber = stub_aggregator(runtime, [raw_result(r) for r in records], ok)

    assert aggregator_of(runtime, CONFIG)["name"] == AGGREGATOR
    with stubber:
        result = sync_aggregated(runtime, CONFIG, MANAGEMENT_ACCOUNT)
        stubber.assert_no_pending_responses()

    assert partitions(runtime) == per_account
    # The same records in the same partitions: a steady state that writes nothing.
    assert {k: v[KIND]["dynamo_writes"] for k, v in result["partitions"].items()} == {
        f"{s.id} {r}": 0 for s in org for r in REGIONS
    }


def test_a_failed_source_keeps_its_cache_and_a_current_one_drops_what_is_gone(runtime, org):
    for seed in org:
        sync_kind(runtime, CONFIG, seed.id)
    before = partitions(runtime)
    dev, prod = org
    east, west = (Partition(KIND, dev.id, r).id for r in REGIONS)
    gone = sorted(before[east])[0]
    kept = [
        r
        for pid, items in before.items()
        if pid != west
        for arn, r in items.items()
        if (pid, arn) != (east, gone)
    ]
    status = {(s.id, r): "SUCCEEDED" for s in org for r in REGIONS}
    status[(dev.id, "us-west-2")] = "FAILED"  # its results are missing from the query
    _, stubber = stub_aggregator(runtime, [raw_result(r) for r in kept], status)

    with stubber:
        sync_aggregated(runtime, CONFIG, MANAGEMENT_ACCOUNT)

    after = partitions(runtime)
    assert after[west] == before[west]  # failed: nothing removed
    assert after[east] == {a: r for a, r in before[east].items() if a != gone}
    assert {p: after[p] for p in after if p not in (east, west)} == {
        p: before[p] for p in before if p not in (east, west)
    }
    meta = runtime.redis_cache.meta(Partition(KIND, dev.id, "us-west-2"))
    assert meta is not None and meta.complete is False


def test_with_an_aggregator_the_fan_out_sends_one_task_to_the_aggregator_account(
    runtime, settings, org
):
    """One message on the real broker, for the account holding the aggregator; no fan-out."""
    broker = redis.Redis.from_url(settings.celery.broker_url)
    broker.delete(AWS)
    app = create_app(settings)
    app.runtime = runtime
    try:
        result = app.tasks[CONFIG.across_accounts_task].apply()
        assert result.successful(), result.traceback
        messages = []
        for raw in broker.lrange(AWS, 0, -1):
            message = json.loads(raw)
            args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
            messages.append((message["headers"]["task"], args, kwargs))
    finally:
        broker.delete(AWS)
        app.close()

    assert messages == [(CONFIG.for_account_task, [MANAGEMENT_ACCOUNT], {"aggregate": True})]
    assert result.result["aggregator"] == AGGREGATOR
    assert set(result.result["accounts"]) == {MANAGEMENT_ACCOUNT, *(s.id for s in org)}
