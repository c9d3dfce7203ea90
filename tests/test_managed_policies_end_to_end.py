"""Every managed policy in the typeahead: AWS's catalogue listed once per sweep and each document
read once, customer policies attached or not, a steady sweep making only ListPolicies calls.

moto with its AWS managed policies loaded (about 1,600), a counting proxy before it, real Redis,
DynamoDB (moto) and the web API over HTTP.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis

from inventory.cache.keys import GLOBAL, Partition
from inventory.demo.seed import AccountSeed, Seeder, aws_policy_arn, demo_account
from inventory.registry import BY_STEM
from inventory.runtime import Runtime
from inventory.settings import load_settings
from inventory.tasks.accounts import store_account_mapping
from inventory.tasks.iam import sync_iam_account
from inventory.tasks.resources import sync_kind
from inventory.web.app import Readers, make_app
from inventory.web.search import PolicySearch
from tests.conftest import BUCKET, inventory_env
from tests.faultproxy import FaultProxy
from tests.servers import MotoServer
from tests.web.conftest import Server
from tests.web.test_app import TOKEN, TOKEN_HASH

# Creating an account in a moto that holds AWS's policies takes seconds; the first sweep reads
# every one of their documents.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

COUNTED = ("ListPolicies", "GetPolicyVersion")
UNUSED = "unused-ops-access"


@dataclass
class World:
    rt: Runtime
    seeds: list[AccountSeed]
    catalogue: dict[str, dict[str, Any]]
    calls: dict[str, dict[str, int]] = field(default_factory=dict)
    results: dict[str, dict[str, dict]] = field(default_factory=dict)
    web: Server | None = None


def sweep(rt: Runtime, seeds: list[AccountSeed]) -> dict[str, dict]:
    """One sweep as the fan-out task runs it: a new sweep begins, then each account's sync."""
    rt.shared_documents.new_sweep()
    return {s.id: sync_kind(rt, BY_STEM["managed_policies"], s.id) for s in seeds}


def counted(proxy: FaultProxy, run: Any) -> tuple[Any, dict[str, int]]:
    before = {a: proxy.count(a) for a in COUNTED}
    result = run()
    return result, {a: proxy.count(a) - before[a] for a in COUNTED}


@pytest.fixture(scope="module")
def world(redis_server) -> Iterator[World]:
    moto = MotoServer(env={"MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}).start()
    proxy = FaultProxy(moto.url).start()
    server = None
    try:
        redis.Redis(port=redis_server.port).flushall()
        seeder = Seeder(moto.url)
        seeder.organisation()
        seeds = [seeder.create_account(demo_account(n, i)) for i, n in enumerate(["dev", "prod"])]
        dev_iam = seeder.client("iam", seeds[0].id)
        dev_iam.create_policy(
            PolicyName=UNUSED, PolicyDocument=json.dumps(seeds[0].policies["dev-queue-access"])
        )
        pages = dev_iam.get_paginator("list_policies").paginate(Scope="AWS")
        catalogue = {p["Arn"]: p for page in pages for p in page["Policies"]}
        env = inventory_env(redis_server, moto, INVENTORY_AWS__ENDPOINT_URL=proxy.url)
        settings = load_settings(
            paths=[], environ=env | {"INVENTORY_WEB__API_TOKEN_HASHES": f"[{TOKEN_HASH}]"}
        )
        rt = Runtime(settings)
        rt.ensure_tables()
        rt.aws.hub_client("s3", "us-east-1").create_bucket(Bucket=BUCKET)
        store_account_mapping(rt)
        for seed in seeds:
            sync_iam_account(rt, seed.id)
        w = World(rt, seeds, catalogue)
        w.results["first"], w.calls["first"] = counted(proxy, lambda: sweep(rt, seeds))
        w.results["steady"], w.calls["steady"] = counted(proxy, lambda: sweep(rt, seeds))
        search = PolicySearch(rt.redis, rt.keys)
        search.load()
        server = Server(make_app(settings, Readers(rt.redis_cache, rt.outcomes, search=search)))
        w.web = server.start()
        yield w
    finally:
        if server is not None:
            server.stop()
        proxy.stop()
        moto.stop()


def items(rt: Runtime, kind: str, account: str) -> dict[str, dict]:
    return rt.redis_cache.items(Partition(kind, account, GLOBAL))


def catalogue_pages(world: World) -> int:
    return -(-len(world.catalogue) // 1000)  # ListPolicies answers 1,000 a page


def test_first_sweep_lists_the_catalogue_once_and_reads_each_aws_document_once(world):
    rt, seeds = world.rt, world.seeds
    assert len(world.catalogue) > 1000
    # one page of customer policies per account; the catalogue from the first account only
    assert world.calls["first"] == {
        "ListPolicies": len(seeds) + catalogue_pages(world),
        "GetPolicyVersion": len(world.catalogue),  # no customer document: the IAM sync has them
    }
    shared = items(rt, "aws_managed_policy", "aws")
    assert set(shared) == set(world.catalogue)
    read_only = aws_policy_arn("ReadOnlyAccess")
    assert shared[read_only]["version_id"] == world.catalogue[read_only]["DefaultVersionId"]
    assert shared[read_only]["document"]["Statement"]
    first = world.results["first"]
    assert first[seeds[0].id]["partitions"]["aws_managed_policy"]["created"] == len(shared)
    assert "aws_managed_policy" not in first[seeds[1].id]["partitions"]


def test_customer_policies_are_listed_attached_or_not_and_their_documents_kept_once(world):
    rt, (dev, prod) = world.rt, world.seeds
    for seed, extra in ((dev, {dev.policy_arn(UNUSED)}), (prod, set())):
        cached = items(rt, "managed_policy", seed.id)
        # the boundary policy and "unused-ops-access" are attached nowhere
        assert set(cached) == {seed.policy_arn(p) for p in seed.policies} | extra
        assert cached[seed.policy_arn(f"{seed.name}-boundary")]["attachment_count"] == 0
        assert all("document" not in record for record in cached.values())
        own = items(rt, "iam_policy", seed.id)
        for name, document in seed.policies.items():
            assert own[seed.policy_arn(name)]["document"] == document


def test_steady_sweep_makes_only_the_listpolicies_pages_and_writes_nothing(world):
    assert world.calls["steady"] == {
        "ListPolicies": len(world.seeds) + catalogue_pages(world),
        "GetPolicyVersion": 0,
    }
    steady = world.results["steady"]
    assert {a: (r["dynamo_writes"], r["s3_objects"]) for a, r in steady.items()} == {
        s.id: (0, 0) for s in world.seeds
    }
    lead = steady[world.seeds[0].id]["partitions"]["aws_managed_policy"]
    assert (lead["created"], lead["updated"], lead["removed"]) == (0, 0, 0)


def typeahead(world: World, account: str, q: str) -> list[dict]:
    assert world.web is not None
    query = urllib.parse.urlencode({"account": account, "q": q})
    r = world.web.get(f"/api/v1/typeahead/managed_policies?{query}", TOKEN)
    assert r.status == 200, r.json()
    return r.json()["results"]


def test_typeahead_offers_an_unattached_customer_policy_in_its_own_account_only(world):
    dev, prod = world.seeds
    assert typeahead(world, dev.id, "unused-ops") == [
        {"arn": dev.policy_arn(UNUSED), "name": UNUSED, "aws_managed": False}
    ]
    assert typeahead(world, prod.id, "unused-ops") == []


def test_typeahead_offers_aws_managed_policies_attached_or_not_in_every_account(world):
    read_only = aws_policy_arn("ReadOnlyAccess")
    lambda_full = aws_policy_arn("AWSLambda_FullAccess")  # attached nowhere
    assert lambda_full in world.catalogue
    for seed in world.seeds:
        found = typeahead(world, seed.id, "ReadOnlyAccess")
        assert found[0] == {"arn": read_only, "name": "ReadOnlyAccess", "aws_managed": True}
        assert [r["arn"] for r in typeahead(world, seed.id, "AWSLambda_FullAccess")] == [
            lambda_full
        ]
