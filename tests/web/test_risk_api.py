"""/api/v1/findings and /api/v1/access over real HTTP, on caches the real sync and analysis wrote.

The demo organisation plus, in dev, a role that can escalate only through two policies
together, a bucket anyone may read and a role trusted by an account outside the organisation.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from inventory.cache.keys import FINDING, GLOBAL, Partition
from inventory.demo.seed import MANAGEMENT_ACCOUNT, AccountSeed, Seeder, seed_demo_organisation
from inventory.registry import BY_STEM
from inventory.runtime import Runtime
from inventory.settings import Settings, load_settings
from inventory.tasks.accounts import store_account_mapping
from inventory.tasks.findings import analyse_account
from inventory.tasks.iam import sync_iam_account
from inventory.tasks.resources import sync_kind
from inventory.web.access_reader import AccessReader
from inventory.web.app import make_app
from inventory.web.base import Readers
from inventory.web.search import PolicySearch
from tests.conftest import BUCKET, inventory_env
from tests.web.conftest import Client, LiveServer
from tests.web.test_auth import DEV_TOKEN, auth_environ

OUTSIDE = "999999999999"
PUBLIC_BUCKET = "dev-public-site"


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


@pytest.fixture(scope="module")
def risk_settings(redis_server, moto_server) -> Settings:
    env = auth_environ(inventory_env(redis_server, moto_server))
    return load_settings(paths=[], environ=env | {"INVENTORY_HISTORY__ENABLED": "false"})


@pytest.fixture(scope="module")
def world(risk_settings: Settings, redis_server, moto_server) -> tuple[Runtime, list[AccountSeed]]:
    moto_server.reset()
    redis.Redis(port=redis_server.port).flushall()
    rt = Runtime(risk_settings)
    rt.ensure_tables()
    rt.aws.hub_client("s3", "us-east-1").create_bucket(Bucket=BUCKET)
    seeds = seed_demo_organisation(moto_server.url, names=["dev", "prod"])
    dev = seeds[0]
    seeder = Seeder(moto_server.url)
    iam = seeder.client("iam", dev.id)
    trust = doc(
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OUTSIDE}:root"},
         "Action": "sts:AssumeRole"}
    )  # fmt: skip
    iam.create_role(RoleName="dev-escalate", AssumeRolePolicyDocument=trust)
    iam.put_role_policy(
        RoleName="dev-escalate",
        PolicyName="pass",
        PolicyDocument=doc({"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"}),
    )
    iam.put_role_policy(
        RoleName="dev-escalate",
        PolicyName="functions",
        PolicyDocument=doc(
            {"Effect": "Allow", "Action": ["lambda:CreateFunction", "lambda:InvokeFunction"],
             "Resource": "*"}
        ),
    )  # fmt: skip
    s3 = seeder.client("s3", dev.id)
    s3.create_bucket(Bucket=PUBLIC_BUCKET)
    s3.put_bucket_policy(
        Bucket=PUBLIC_BUCKET,
        Policy=doc(
            {"Sid": "Public", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
             "Resource": f"arn:aws:s3:::{PUBLIC_BUCKET}/*"}
        ),
    )  # fmt: skip
    store_account_mapping(rt)
    for account_id in [MANAGEMENT_ACCOUNT, *(s.id for s in seeds)]:
        sync_iam_account(rt, account_id)
    for seed in seeds:
        sync_kind(rt, BY_STEM["s3_buckets"], seed.id)
    for account_id in [MANAGEMENT_ACCOUNT, *(s.id for s in seeds)]:
        analyse_account(rt, account_id)
    return rt, seeds


@pytest.fixture(scope="module")
def server(risk_settings: Settings, world) -> Iterator[LiveServer]:
    rt, _ = world
    reader = AccessReader(rt.redis_cache)
    reader.refresh()
    search = PolicySearch(rt.redis, rt.keys)
    search.load()
    readers = Readers(rt.redis_cache, rt.outcomes, search=search, access=reader)
    live = LiveServer(make_app(risk_settings, readers)).start()
    yield live
    live.stop()


@pytest.fixture
def client(server: LiveServer) -> Client:
    return Client(server)


def get(client: Client, path: str, **params: Any) -> Any:
    response = client.get(f"{path}?{urllib.parse.urlencode(params)}", token=DEV_TOKEN)
    assert response.status == 200, response.body
    return response.json()


def test_findings_of_the_escalating_role_include_the_combined_method(client, world):
    _, (dev, _) = world
    role = dev.role_arn("dev-escalate")
    page = get(client, "/api/v1/findings", arn=role)
    assert {(f["category"], f["source"]) for f in page["findings"]} == {
        ("privilege_escalation", "several policies together"),
        ("outside_organisation", "trust policy"),
        ("infrastructure_modification", "inline policy functions"),
        ("infrastructure_modification", "inline policy pass"),
        ("resource_exposure", "inline policy pass"),
        ("policy_grammar", "inline policy functions"),
        ("policy_grammar", "inline policy pass"),
    }
    combined = next(f for f in page["findings"] if f["source"] == "several policies together")
    assert {m["type"] for m in combined["detail"]["methods"]} >= {
        "PassExistingRoleToNewLambdaThenInvoke"
    }


def test_findings_filter_by_account_severity_and_kind(client, world):
    _, (dev, prod) = world
    public = get(client, "/api/v1/findings", kind="public_access")
    assert [(f["arn"], f["severity"]) for f in public["findings"]] == [
        (f"arn:aws:s3:::{PUBLIC_BUCKET}", "critical")
    ]
    critical = get(client, "/api/v1/findings", account=prod.id, severity="critical")
    assert {(f["arn"], f["category"]) for f in critical["findings"]} == {
        (prod.policy_arn("prod-boundary"), "full_admin")
    }
    assert critical["counts"]["critical"] == critical["total"] == 1
    paged = get(client, "/api/v1/findings", account=dev.id, limit=2, offset=1)
    assert (len(paged["findings"]), paged["offset"], paged["limit"]) == (2, 1, 2)


def test_policies_table_filters_by_worst_severity_and_sorts_by_findings(client, world):
    rt, _ = world
    rows = rt.policies_table.rows()
    critical = get(client, "/api/v1/policies", severity="critical", limit=500)
    expected = {arn for arn, r in rows.items() if r["severity"] == "critical"}
    assert {r["arn"] for r in critical["rows"]} == expected
    assert critical["total"] == len(expected)
    assert {f"arn:aws:s3:::{PUBLIC_BUCKET}"} <= expected
    most = get(client, "/api/v1/policies", sort="findings", order="desc", limit=20)
    ordered = sorted(rows.values(), key=lambda r: (r["findings"], r["arn"]), reverse=True)
    assert [(r["arn"], r["findings"]) for r in most["rows"]] == [
        (r["arn"], r["findings"]) for r in ordered[:20]
    ]
    facets = get(client, "/api/v1/policies/facets")
    assert facets["severity"] == sorted({r["severity"] for r in rows.values() if r["severity"]})


def test_typeahead_keeps_a_resource_whose_findings_are_resolved(client, world):
    # A findings record is keyed by its subject's ARN: were the kind in the typeahead, a
    # resolved finding (its record removed) would remove the bucket itself from it.
    rt, (dev, _) = world
    bucket = f"arn:aws:s3:::{PUBLIC_BUCKET}"
    found = get(client, "/api/v1/typeahead/resources", q=PUBLIC_BUCKET)["results"]
    assert [(r["arn"], r["kind"]) for r in found] == [(bucket, "s3_bucket")]
    index = PolicySearch(rt.redis, rt.keys)
    index.load()
    records = rt.redis_cache.items(Partition(FINDING, dev.id, GLOBAL))
    kept = [r for arn, r in records.items() if arn != bucket]
    rt.store.replace_partition(FINDING, dev.id, GLOBAL, kept, complete=True)
    try:
        assert index.sync() == 1
        found = index.typeahead_resources(PUBLIC_BUCKET, None, 20)
        assert [(r["arn"], r["kind"]) for r in found] == [(bucket, "s3_bucket")]
        assert index.typeahead_resources(PUBLIC_BUCKET, "finding", 20) == []
    finally:
        # The module's other tests share this world (in any order): leave it as it was.
        rt.store.replace_partition(FINDING, dev.id, GLOBAL, list(records.values()), complete=True)


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ({"severity": "urgent"}, "parameter 'severity' must be one of critical, high, medium, low"),
        ({"kind": "<script>"}, "parameter 'kind' must be one of"),
        ({"account": "12"}, "parameter 'account' must be a 12-digit account id"),
        ({"arn": "role/x"}, "parameter 'arn' must be an ARN"),
        ({"limit": "0"}, "parameter 'limit' must be an integer from 1 to 1000"),
    ],
)
def test_findings_bad_parameters_are_400_with_a_reason(client, query, reason):
    response = client.get(f"/api/v1/findings?{urllib.parse.urlencode(query)}", token=DEV_TOKEN)
    assert response.status == 400
    assert response.json()["error"].startswith(reason)


def test_who_can_read_the_public_bucket_lists_every_principal_and_the_public(client, world):
    rt, (dev, prod) = world
    answer = get(
        client, "/api/v1/access", action="s3:GetObject", resource=f"arn:aws:s3:::{PUBLIC_BUCKET}/x"
    )
    allowed = {p["arn"] for p in answer["principals"] if p["decision"] == "allowed"}
    # Principal "*" grants every principal of the bucket's own account directly; other
    # accounts' principals also need an identity allow (none of theirs has s3:GetObject on *).
    own = {
        arn
        for kind in ("iam_role", "iam_user")
        for arn in rt.redis_cache.items(Partition(kind, dev.id))
    }
    assert allowed == own
    assert answer["other_grants"] == [{"principal": "*", "type": "public", "level": "yes"}]
    assert answer["resource_kind"] == "s3_bucket"
    assert answer["resource_account"] == dev.id


def test_who_can_assume_a_role_follows_its_trust_policy(client, world):
    _, (dev, _) = world
    answer = get(
        client, "/api/v1/access", action="sts:AssumeRole", resource=dev.role_arn("dev-escalate")
    )
    assert answer["principals"] == []
    assert answer["other_grants"] == [
        {"principal": f"arn:aws:iam::{OUTSIDE}:root", "type": "outside the organisation",
         "level": "yes"}
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ({"action": "s3:GetObjekt", "resource": "arn:aws:s3:::b"}, "parameter 'action' must be"),
        ({"action": "s3:GetObject"}, "parameter 'resource' must be an ARN"),
        ({"action": "s3:GetObject", "resource": "bucket"}, "parameter 'resource' must be an ARN"),
        ({"resource": "arn:aws:s3:::b"}, "parameter 'action' is required"),
        ({"action": "s3:GetObject", "resource": "arn:aws:s3:::b", "limit": "x"},
         "parameter 'limit' must be an integer"),
    ],
)  # fmt: skip
def test_access_bad_parameters_are_400_with_a_reason(client, query, reason):
    response = client.get(f"/api/v1/access?{urllib.parse.urlencode(query)}", token=DEV_TOKEN)
    assert response.status == 400
    assert response.json()["error"].startswith(reason)


def test_what_a_role_can_do_on_a_service(client, world):
    _, (dev, _) = world
    answer = get(client, "/api/v1/access/principal", arn=dev.role_arn("dev-app"), service="s3")
    assert [(a["action"], a["resources"]) for a in answer["actions"]] == [
        ("s3:GetObject", ["arn:aws:s3:::dev-data/*"])
    ]
    missing = client.get(
        "/api/v1/access/principal?"
        + urllib.parse.urlencode({"arn": dev.role_arn("nobody"), "service": "s3"}),
        token=DEV_TOKEN,
    )
    assert (missing.status, missing.json()["error"]) == (
        404,
        "no cached role or user with that ARN",
    )


def test_a_role_cached_after_the_last_rebuild_is_found_at_once_and_rechecks_are_bounded(
    risk_settings, world, moto_server
):
    """The web tier rebuilds its access index every 15 s; a role synced since then (a demo
    opened the moment its first sweep ends) is found by one recheck, not a 404, while a reader
    that checked Redis under ``recheck_seconds`` ago keeps its index and answers 404."""
    rt, (dev, _) = world
    prompt = AccessReader(rt.redis_cache, recheck_seconds=0)
    bounded = AccessReader(rt.redis_cache, recheck_seconds=3600)
    for reader in (prompt, bounded):
        reader.refresh()
    iam = Seeder(moto_server.url).client("iam", dev.id)
    trust = doc({"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                 "Action": "sts:AssumeRole"})  # fmt: skip
    iam.create_role(RoleName="dev-late", AssumeRolePolicyDocument=trust)
    iam.put_role_policy(
        RoleName="dev-late",
        PolicyName="read",
        PolicyDocument=doc({"Effect": "Allow", "Action": "sqs:GetQueueUrl", "Resource": "*"}),
    )
    servers = [
        LiveServer(make_app(risk_settings, Readers(rt.redis_cache, rt.outcomes, access=r))).start()
        for r in (prompt, bounded)
    ]
    try:
        sync_iam_account(rt, dev.id)
        query = urllib.parse.urlencode({"arn": dev.role_arn("dev-late"), "service": "sqs"})
        found, missed = (
            Client(s).get(f"/api/v1/access/principal?{query}", token=DEV_TOKEN) for s in servers
        )
        assert found.status == 200, found.body
        assert [a["action"] for a in found.json()["actions"]] == ["sqs:GetQueueUrl"]
        assert missed.status == 404
    finally:
        for s in servers:
            s.stop()
        iam.delete_role_policy(RoleName="dev-late", PolicyName="read")
        iam.delete_role(RoleName="dev-late")
        sync_iam_account(rt, dev.id)


def test_a_recheck_never_queues_behind_a_rebuild_under_way(world):
    """Misses during a long rebuild (a large organisation) answer from the current index at
    once instead of each holding an executor thread until the rebuild ends. The rebuild under
    way is stood in for by holding the reader's lock (no real rebuild can be made slow here)."""
    rt, _ = world
    reader = AccessReader(rt.redis_cache, recheck_seconds=0)
    reader.refresh()
    index = reader.current()
    held, release = threading.Event(), threading.Event()

    def rebuilding() -> None:
        with reader._lock:
            held.set()
            release.wait(10)

    rebuild = threading.Thread(target=rebuilding)
    rebuild.start()
    try:
        held.wait(5)
        started = time.monotonic()
        assert reader.checked() is index
        assert time.monotonic() - started < 2
    finally:
        release.set()
        rebuild.join()
    assert reader.refresh() is False  # nothing changed: the waiting refresh still works


def test_access_without_an_index_is_503_and_every_route_needs_a_login(risk_settings, world):
    rt, _ = world
    live = LiveServer(make_app(risk_settings, Readers(rt.redis_cache, rt.outcomes))).start()
    try:
        client = Client(live)
        path = "/api/v1/access?action=s3:GetObject&resource=arn:aws:s3:::b"
        assert client.get(path, token=DEV_TOKEN).status == 503
        for route in (path, "/api/v1/findings", "/api/v1/access/actions?service=s3"):
            assert client.get(route).status == 401
    finally:
        live.stop()
