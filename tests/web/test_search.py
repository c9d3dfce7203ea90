"""Policies table, typeahead and resource details over real HTTP, on caches the real tasks wrote."""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Iterator

import pytest
import redis

from inventory.cache.keys import Partition
from inventory.demo.seed import MANAGEMENT_ACCOUNT, AccountSeed, Seeder, demo_account
from inventory.registry import BY_STEM
from inventory.runtime import Runtime
from inventory.settings import Settings, load_settings
from inventory.tasks.access import store_credential_mapping
from inventory.tasks.accounts import store_account_mapping
from inventory.tasks.iam import sync_iam_account
from inventory.tasks.resources import sync_kind
from inventory.web import search_index, search_rows
from inventory.web.app import Readers, make_app
from inventory.web.search import PolicySearch, Query
from inventory.web.search_index import Generation
from inventory.web.search_indexer import STATE, Indexer, read_json
from tests.conftest import BUCKET, inventory_env
from tests.web.conftest import Server
from tests.web.test_app import TOKEN, TOKEN_HASH


@pytest.fixture(scope="module")
def settings(redis_server, moto_server) -> Settings:
    env = inventory_env(redis_server, moto_server)
    return load_settings(
        paths=[], environ=env | {"INVENTORY_WEB__API_TOKEN_HASHES": f"[{TOKEN_HASH}]"}
    )


@pytest.fixture(scope="module")
def world(settings, redis_server, moto_server) -> tuple[Runtime, Seeder, list[AccountSeed]]:
    moto_server.reset()
    redis.Redis(port=redis_server.port).flushall()
    rt = Runtime(settings)
    rt.ensure_tables()
    rt.aws.hub_client("s3", "us-east-1").create_bucket(Bucket=BUCKET)
    seeder = Seeder(moto_server.url)
    seeder.organisation()
    seeds = [seeder.create_account(demo_account(n, i)) for i, n in enumerate(["dev", "prod"])]
    store_account_mapping(rt)
    for account_id in [MANAGEMENT_ACCOUNT, *(s.id for s in seeds)]:
        sync_iam_account(rt, account_id)
    for seed in seeds:
        for stem in ("s3_buckets", "sqs_queues", "managed_policies"):
            sync_kind(rt, BY_STEM[stem], seed.id)
    store_credential_mapping(rt)
    return rt, seeder, seeds


@pytest.fixture(scope="module")
def search(world) -> PolicySearch:
    rt = world[0]
    index = PolicySearch(rt.redis, rt.keys)
    index.load()
    return index


@pytest.fixture(scope="module")
def web(settings, world, search) -> Iterator[Server]:
    rt = world[0]
    readers = Readers(rt.redis_cache, rt.outcomes, search=search)
    server = Server(make_app(settings, readers)).start()
    yield server
    server.stop()


def rows(rt: Runtime) -> dict[str, dict]:
    return rt.policies_table.rows()


def get(web: Server, path: str, **query: object) -> dict:
    r = web.get(f"{path}?{urllib.parse.urlencode(query)}", TOKEN)
    assert r.status == 200, r.body
    return r.json()


def test_unfiltered_page_is_sorted_by_name_with_total(web, world):
    rt = world[0]
    everything = rows(rt)
    page = get(web, "/api/v1/policies", limit=10)
    expected = sorted(everything.values(), key=lambda r: (r["name"].lower(), r["arn"]))
    assert page["total"] == len(everything)
    assert [r["arn"] for r in page["rows"]] == [r["arn"] for r in expected[:10]]
    second = get(web, "/api/v1/policies", limit=10, offset=10)
    assert [r["arn"] for r in second["rows"]] == [r["arn"] for r in expected[10:20]]


def test_filters_combine_and_totals_match(web, world):
    rt, _, seeds = world
    dev = seeds[0]
    everything = rows(rt).values()
    page = get(web, "/api/v1/policies", account=dev.id, kind="iam_role", limit=500)
    expected = {
        r["arn"] for r in everything if r["account_id"] == dev.id and r["kind"] == "iam_role"
    }
    assert {r["arn"] for r in page["rows"]} == expected
    assert page["total"] == len(expected)
    west = get(web, "/api/v1/policies", region="us-west-2", limit=500)
    assert {r["arn"] for r in west["rows"]} == {
        r["arn"] for r in everything if r["region"] == "us-west-2"
    }


def test_free_text_matches_arn_name_and_tags_as_substrings(web, world):
    rt, _, seeds = world
    everything = rows(rt).values()
    worker = get(web, "/api/v1/policies", q="WORKER-0", limit=500)
    assert {r["arn"] for r in worker["rows"]} == {
        r["arn"] for r in everything if "worker-0" in r["arn"].lower()
    }
    by_tag = get(web, "/api/v1/policies", q="team-prod", limit=500)
    assert {r["arn"] for r in by_tag["rows"]} == {
        r["arn"] for r in everything if r["tags"].get("owner") == "team-prod"
    }
    # Under three characters there are no trigrams: such text matches name prefixes.
    short = get(web, "/api/v1/policies", q="De", kind="sqs_queue", limit=500)
    assert {r["arn"] for r in short["rows"]} == {
        r["arn"]
        for r in everything
        if r["kind"] == "sqs_queue" and r["name"].lower().startswith("de")
    }
    assert short["total"] == 4
    literal = get(web, "/api/v1/policies", q="100%_", limit=5)
    assert literal == {"total": 0, "rows": [], "offset": 0, "limit": 5}


@pytest.mark.parametrize("column", ["name", "kind", "region", "account_id", "last_updated"])
def test_sort_by_any_column_both_ways(web, world, column):
    rt = world[0]
    everything = list(rows(rt).values())
    for order in ("asc", "desc"):
        page = get(web, "/api/v1/policies", sort=column, order=order, limit=500)
        values = [r[column] for r in page["rows"]]
        key = (lambda v: v.lower()) if column == "name" else (lambda v: v)
        assert values == sorted(values, key=key, reverse=order == "desc")
        assert len(values) == len(everything)


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "x"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"sort": "password"}, "sort"),
        ({"order": "sideways"}, "order"),
        ({"account": "12"}, "account"),
        ({"has_errors": "maybe"}, "has_errors"),
        ({"kind": "a b"}, "kind"),
        ({"q": "x" * 300}, "q"),
    ],
)
def test_bad_parameters_get_400_naming_them(web, query, parameter):
    r = web.get(f"/api/v1/policies?{urllib.parse.urlencode(query)}", TOKEN)
    assert r.status == 400
    assert r.json()["error"].startswith(f"parameter '{parameter}'")


CONTROL = "must not contain control characters"
DIGITS = "must be an integer from"


@pytest.mark.parametrize(
    ("path", "query", "error"),
    [
        # Tornado turns control characters into spaces and strips them: q=%00 was no filter.
        ("/api/v1/policies", "q=%00", f"parameter 'q' {CONTROL}"),
        ("/api/v1/policies", "q=role%00x", f"parameter 'q' {CONTROL}"),
        ("/api/v1/policies", "q=a%1B%5B31m", f"parameter 'q' {CONTROL}"),
        ("/api/v1/policies", "q=a%7F", f"parameter 'q' {CONTROL}"),
        ("/api/v1/policies", "q=a%C2%85", f"parameter 'q' {CONTROL}"),  # C1 next line
        ("/api/v1/policies", "q=a%09b", f"parameter 'q' {CONTROL}"),
        ("/api/v1/policies", "region=us-east-1%00", f"parameter 'region' {CONTROL}"),
        ("/api/v1/policies", "sort=name%00", f"parameter 'sort' {CONTROL}"),
        ("/api/v1/typeahead/resources", "q=%00", f"parameter 'q' {CONTROL}"),
        # int() reads other scripts' digits, padding and underscores: limit=٣ was 3.
        ("/api/v1/policies", "limit=%D9%A3", f"parameter 'limit' {DIGITS} 1 to 500"),
        ("/api/v1/policies", "limit=%EF%BC%93", f"parameter 'limit' {DIGITS} 1 to 500"),
        ("/api/v1/policies", "limit=1_0", f"parameter 'limit' {DIGITS} 1 to 500"),
        ("/api/v1/policies", "limit=%2B3", f"parameter 'limit' {DIGITS} 1 to 500"),
        ("/api/v1/policies", "offset=%D9%A3", f"parameter 'offset' {DIGITS} 0 to 10000000"),
        ("/api/v1/typeahead/resources", "q=a&limit=%D9%A3", f"parameter 'limit' {DIGITS} 1 to 100"),
    ],
)
def test_control_characters_and_non_ascii_digits_are_400_naming_the_parameter(
    web, path, query, error
):
    r = web.get(f"{path}?{query}", TOKEN)
    assert r.status == 400
    assert r.json() == {"error": error, "status": 400}


def test_padded_ascii_numbers_and_text_still_count(web, world):
    padded = get(web, "/api/v1/policies", q=" dev-app ", limit=" 3 ")
    plain = get(web, "/api/v1/policies", q="dev-app", limit="3")
    assert padded == plain
    assert padded["limit"] == 3


def test_typeahead_prefix_first_then_substring(web, world):
    _, _, seeds = world
    dev = seeds[0]
    results = get(web, "/api/v1/typeahead/resources", q="dev-w", limit=50)["results"]
    names = [r["name"] for r in results]
    assert names[: len([n for n in names if n.startswith("dev-w")])] == sorted(
        n for n in names if n.startswith("dev-w")
    )
    assert {r["arn"] for r in results} >= {dev.role_arn("dev-worker-0")}
    contains = get(web, "/api/v1/typeahead/resources", q="jobs-dl", kind="sqs_queue")["results"]
    assert {r["arn"] for r in contains} == {
        f"arn:aws:sqs:{region}:{s.id}:{s.name}-jobs-dlq"
        for s in seeds
        for region in ("us-east-1", "us-west-2")
    }


def test_managed_policy_typeahead_is_per_account(web, world):
    _, _, seeds = world
    dev = seeds[0]
    results = get(web, "/api/v1/typeahead/managed_policies", account=dev.id, q="queue")["results"]
    assert results == [
        {
            "arn": dev.policy_arn("dev-queue-access"),
            "name": "dev-queue-access",
            "aws_managed": False,
        }
    ]
    r = web.get("/api/v1/typeahead/managed_policies?q=x", TOKEN)
    assert r.status == 400 and "'account'" in r.json()["error"]


def test_resource_details_bring_documents_errors_and_principals(web, world):
    rt, _, seeds = world
    dev = seeds[0]
    arn = dev.role_arn("dev-app")
    details = get(web, "/api/v1/resource/details", arn=arn)
    assert details["record"] == rt.redis_cache.get(arn)
    assert details["account_name"] == "dev" and details["kind"] == "iam_role"
    assert details["attached_documents"] == {
        dev.policy_arn("dev-queue-access"): dev.policies["dev-queue-access"]
    }
    assert details["principals"] == ["dev-devs@example.com"]
    assert details["cloudtrail_errors"] is None
    assert (
        details["refreshed_at"] == rt.redis_cache.meta(Partition("iam_role", dev.id)).refreshed_at
    )
    missing = web.get(f"/api/v1/resource/details?arn={dev.role_arn('nope')}", TOKEN)
    assert missing.status == 404


def total(index: PolicySearch, text: str) -> int:
    return int(index.query(Query(text=text, limit=1))["total"])


def test_index_follows_changes_and_reloads_after_a_gap(world):
    rt, seeder, seeds = world
    dev = seeds[1]
    index = PolicySearch(rt.redis, rt.keys)
    index.load()
    before = total(index, "worker")
    iam = seeder.client("iam", dev.id)
    iam.create_role(RoleName="late-worker-role", AssumeRolePolicyDocument="{}")
    try:
        sync_iam_account(rt, dev.id)

        applied = index.sync()

        assert applied >= 1
        assert total(index, "worker") == before + 1
        # A reader that fell behind a trimmed stream rebuilds instead of missing changes.
        stale = PolicySearch(rt.redis, rt.keys)
        stale.load()
        stale.cursor = "1-0"
        rt.redis.xtrim(rt.keys.changes(), maxlen=1)
        stale.sync()
        assert total(stale, "worker") == total(index, "worker")
    finally:
        # The module's other tests share this world (in any order): leave it as it was.
        iam.delete_role(RoleName="late-worker-role")
        sync_iam_account(rt, dev.id)


def test_changes_waiting_for_their_commit_are_committed_when_due_not_after_the_wait(world):
    """A change applied too soon after a commit waits for ``rebuild_seconds``, not for the next
    change or for the indexer's whole XREAD wait (which would hold it back up to that long)."""
    rt, _, _ = world
    table = rt.policies_table
    index = PolicySearch(rt.redis, rt.keys, rebuild_seconds=2.0)
    index.load()
    original = next(iter(rows(rt).values()))
    p = Partition(original["kind"], original["account_id"], original["region"])

    def change(tag: str) -> None:
        # Straight into the change stream (the cached table is left as it is).
        table.publish(p, {}, [], [original | {"tags": {**original["tags"], "probe": tag}}], [])

    try:
        change("first")
        index.sync()  # the first change after a build commits at once
        assert total(index, "probe=first") == 1
        change("second")
        index.sync()
        assert total(index, "probe=second") == 0, "applied, and waiting for its commit"
        started = time.monotonic()
        # No more changes come: the wait ends when the commit is due (2 s), not after 8 s (under
        # the client's 10 s socket timeout).
        index.sync(block_ms=8_000)
        waited = time.monotonic() - started
        assert total(index, "probe=second") == 1
        assert waited < 6, waited
    finally:
        table.publish(p, {}, [], [original], [])


def test_typeahead_on_a_typed_arn_is_a_prefix_range(web, world):
    _, _, seeds = world
    dev = seeds[0]
    prefix = f"arn:aws:iam::{dev.id}:role/dev-w"
    results = get(web, "/api/v1/typeahead/resources", q=prefix)["results"]
    assert [r["arn"] for r in results] == sorted(
        dev.role_arn(r.name) for r in dev.roles if r.name.startswith("dev-w")
    )


def test_a_generation_an_older_release_wrote_is_rebuilt(world, tmp_path, monkeypatch):
    # Written before the severity facet: it lacks a field queries use, so it cannot be opened
    # and the indexer builds a new generation instead of answering 5xx on every severity filter.
    rt = world[0]
    older = ("kind", "account_id", "region")
    with monkeypatch.context() as m:
        m.setattr(search_index, "FACETS", older)
        m.setattr(search_rows, "FACETS", older)
        Indexer(tmp_path, rt.redis, rt.keys).build()
    old = (read_json(tmp_path / STATE) or {})["generation"]
    with pytest.raises(ValueError, match="severity"):
        Generation(tmp_path / old)

    indexer = Indexer(tmp_path, rt.redis, rt.keys)
    indexer.start()
    try:
        assert (indexer.builds, indexer.generation != old) == (1, True)
        opened = Generation(tmp_path / str(indexer.generation))
        total, _ = opened.select(None, {"severity": "critical"}, None, "findings", True, 0, 1)
        assert total == 0  # this world has no findings
        opened.close()
    finally:
        indexer.close()
