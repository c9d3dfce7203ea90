"""Change history over real HTTP: the feed API, a resource's history and their HTML pages.

The changes are recorded by the real ``Store.replace_partition`` (DynamoDB in moto, the Redis
feed in a real redis-server): each partition is loaded once, then changed.
"""

from __future__ import annotations

import html
import re
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import redis

from inventory.cache.history import Cause, diff_records
from inventory.cache.keys import ACCOUNT, ALL_ACCOUNTS, GLOBAL, Partition
from inventory.runtime import Runtime
from inventory.settings import Settings, load_settings
from tests.conftest import BUCKET, inventory_env
from tests.web.conftest import Server
from tests.web.test_app import TOKEN, TOKEN_HASH, serve

DEV, PROD = "111111111111", "222222222222"
REGION = "us-east-1"
XSS = "<script>alert(1)</script>"
ACTOR = f"arn:aws:sts::{PROD}:assumed-role/admin/<img src=x onerror=alert(2)>"


def queue(account: str, name: str) -> str:
    return f"arn:aws:sqs:{REGION}:{account}:{name}"


def role(account: str, name: str) -> str:
    return f"arn:aws:iam::{account}:role/{name}"


DEV_APP, DEV_OLD, DEV_QUIET = queue(DEV, "app"), queue(DEV, "old"), queue(DEV, "quiet")
PROD_NEW, PROD_ROLE = queue(PROD, "new"), role(PROD, "deployer")


@dataclass
class World:
    runtime: Runtime
    #: Before the first changes, between the two batches, after the second.
    t0: float
    t1: float
    t2: float
    event_time: float


def sleep_past_a_millisecond() -> None:
    # Feed entries are ordered and filtered by their stream id, in milliseconds.
    time.sleep(0.01)


@pytest.fixture(scope="module")
def history_settings(redis_server, moto_server) -> Settings:
    env = inventory_env(redis_server, moto_server)
    return load_settings(
        paths=[], environ=env | {"INVENTORY_WEB__API_TOKEN_HASHES": f"[{TOKEN_HASH}]"}
    )


@pytest.fixture(scope="module")
def world(history_settings: Settings, redis_server, moto_server) -> World:
    moto_server.reset()
    redis.Redis(port=redis_server.port).flushall()
    rt = Runtime(history_settings)
    rt.ensure_tables()
    rt.aws.hub_client("s3", "us-east-1").create_bucket(Bucket=BUCKET)
    store = rt.store
    accounts = [
        {"arn": f"arn:aws:iam::{a}:root", "id": a, "name": n}
        for a, n in ((DEV, "dev"), (PROD, "prod"))
    ]
    store.replace_partition(ACCOUNT, ALL_ACCOUNTS, GLOBAL, accounts, complete=True)
    # First loads: starting points, not changes.
    dev_queues = [
        {"arn": DEV_APP, "name": "app", "tags": {"note": "fine", "env": "dev"}},
        {"arn": DEV_OLD, "name": "old", "tags": {}},
        {"arn": DEV_QUIET, "name": "quiet", "tags": {}},
    ]
    store.replace_partition("sqs_queue", DEV, REGION, dev_queues, complete=True)
    store.replace_partition("sqs_queue", PROD, REGION, [], complete=True)
    prod_role = {"arn": PROD_ROLE, "name": "deployer", "max_session_duration": 3600}
    store.replace_partition("iam_role", PROD, GLOBAL, [prod_role], complete=True)

    sleep_past_a_millisecond()
    t0 = time.time()
    sleep_past_a_millisecond()
    # Batch 1 (dev): app's note becomes markup; old is deleted.
    changed = dev_queues[0] | {"tags": {"note": XSS, "env": "dev"}}
    store.replace_partition("sqs_queue", DEV, REGION, [changed, dev_queues[2]], complete=True)
    sleep_past_a_millisecond()
    t1 = time.time()
    sleep_past_a_millisecond()
    # Batch 2 (prod): the role changes through a CloudTrail event; a queue is created.
    event_time = t1 - 30
    store.replace_partition(
        "iam_role",
        PROD,
        GLOBAL,
        [prod_role | {"max_session_duration": 7200}],
        complete=True,
        causes={PROD_ROLE: Cause(ACTOR, "UpdateRole", event_time, "event-1")},
    )
    new_queue = {"arn": PROD_NEW, "name": "new", "tags": {"team": "ops"}}
    store.replace_partition("sqs_queue", PROD, REGION, [new_queue], complete=True)
    sleep_past_a_millisecond()
    return World(rt, t0, t1, time.time(), event_time)


@pytest.fixture(scope="module")
def web(history_settings: Settings, world: World) -> Iterator[Server]:
    yield from serve(history_settings, world.runtime)


def api(web: Server, path: str, **query: Any) -> tuple[int, Any]:
    r = web.get(path + ("?" + urllib.parse.urlencode(query) if query else ""), token=TOKEN)
    return r.status, r.json()


def arns(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["arn"], c["change"]) for c in body["changes"]]


ALL = [
    (PROD_NEW, "created"),
    (PROD_ROLE, "updated"),
    (DEV_OLD, "deleted"),
    (DEV_APP, "updated"),
]


# --- the feed -----------------------------------------------------------------------------------


def test_feed_lists_every_change_newest_first_with_its_diff_and_cause(web, world):
    status, body = api(web, "/api/v1/changes")

    assert status == 200
    assert arns(body) == ALL
    assert body["next_cursor"] is None
    by_arn = {c["arn"]: c for c in body["changes"]}
    assert by_arn[DEV_APP]["diff"] == [
        {"op": "replace", "path": "/tags/note", "old": "fine", "new": XSS}
    ]
    assert by_arn[DEV_OLD]["diff"] == [
        {"op": "remove", "path": "/arn", "old": DEV_OLD},
        {"op": "remove", "path": "/name", "old": "old"},
        {"op": "remove", "path": "/tags", "old": {}},
    ]
    role_change = by_arn[PROD_ROLE]
    assert (role_change["actor"], role_change["event_name"], role_change["event_id"]) == (
        ACTOR,
        "UpdateRole",
        "event-1",
    )
    assert role_change["event_time"] == pytest.approx(world.event_time)
    assert (role_change["kind"], role_change["account_id"], role_change["region"]) == (
        "iam_role",
        PROD,
        GLOBAL,
    )
    assert all(world.t0 <= c["at"] <= world.t2 for c in body["changes"])
    span = body["feed_span"]
    assert world.t0 - 0.001 <= span["oldest"] <= span["newest"] <= world.t2


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"account": DEV}, [(DEV_OLD, "deleted"), (DEV_APP, "updated")]),
        ({"account": PROD}, [(PROD_NEW, "created"), (PROD_ROLE, "updated")]),
        ({"kind": "iam_role"}, [(PROD_ROLE, "updated")]),
        ({"kind": "sqs_queue", "account": PROD}, [(PROD_NEW, "created")]),
        ({"kind": "s3_bucket"}, []),
        ({"account": "333333333333"}, []),
        # Blank filters are no filters (what a form with an empty field sends).
        ({"account": "", "kind": "", "since": "", "until": "", "cursor": ""}, ALL),
    ],
    ids=["dev", "prod", "kind", "kind-and-account", "no-such-kind-changed", "other", "blank"],
)
def test_feed_filters_by_account_and_kind(web, query, expected):
    status, body = api(web, "/api/v1/changes", **query)
    assert (status, arns(body), body["next_cursor"]) == (200, expected, None)


def iso(at: float, naive: bool = False) -> str:
    moment = datetime.fromtimestamp(at, UTC)
    return moment.replace(tzinfo=None).isoformat() if naive else moment.isoformat()


@pytest.mark.parametrize("form", ["unix", "iso", "naive-iso"])
def test_feed_filters_by_time_range_given_as_unix_seconds_or_iso(web, world, form):
    def t(at: float) -> str:
        return f"{at:.3f}" if form == "unix" else iso(at, naive=form == "naive-iso")

    _, later = api(web, "/api/v1/changes", since=t(world.t1))
    _, earlier = api(web, "/api/v1/changes", until=t(world.t1))
    _, between = api(web, "/api/v1/changes", since=t(world.t0), until=t(world.t1))
    _, after = api(web, "/api/v1/changes", since=t(world.t2))

    assert arns(later) == ALL[:2]
    assert arns(earlier) == ALL[2:]
    assert arns(between) == ALL[2:]
    assert arns(after) == []


def test_cursor_walks_the_feed_one_change_at_a_time(web):
    seen: list[tuple[str, str]] = []
    cursor = ""
    for _ in range(10):
        status, body = api(web, "/api/v1/changes", limit=1, cursor=cursor)
        assert status == 200 and len(body["changes"]) <= 1
        seen += arns(body)
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == ALL
    assert cursor is None


def test_cursor_keeps_the_filters_and_limit_takes_that_many(web):
    status, first = api(web, "/api/v1/changes", limit=2)
    _, rest = api(web, "/api/v1/changes", limit=2, cursor=first["next_cursor"])
    _, dev_first = api(web, "/api/v1/changes", account=DEV, limit=1)
    _, dev_rest = api(web, "/api/v1/changes", account=DEV, cursor=dev_first["next_cursor"])

    assert (status, arns(first), arns(rest)) == (200, ALL[:2], ALL[2:])
    assert first["next_cursor"] is not None
    assert (arns(dev_first), arns(dev_rest)) == ([(DEV_OLD, "deleted")], [(DEV_APP, "updated")])
    assert dev_rest["next_cursor"] is None


NOT_A_CURSOR = "parameter 'cursor' must be a next_cursor value from an earlier page"


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ({"account": "1234"}, "parameter 'account' must be a 12-digit account id"),
        ({"account": "١١١١١١١١١١١١"}, "parameter 'account' must be a 12-digit account id"),
        ({"kind": "nope"}, "parameter 'kind' must be one of "),
        ({"since": "yesterday"}, "parameter 'since' must be unix seconds or an ISO-8601 time"),
        ({"until": "2024-13-01"}, "parameter 'until' must be unix seconds or an ISO-8601 time"),
        ({"since": "١٧٠٠٠٠٠٠٠٠"}, "parameter 'since' must be unix seconds or an ISO-8601 time"),
        ({"since": "-5"}, "parameter 'since' must be unix seconds or an ISO-8601 time"),
        ({"since": "nan"}, "parameter 'since' must be unix seconds or an ISO-8601 time"),
        ({"since": "0001-01-01T00:00:00Z"}, "parameter 'since' must be between 1970 and 9999"),
        ({"since": "2000", "until": "1000"}, "parameter 'since' must not be after 'until'"),
        (
            {"since": "2024-05-02T00:00:00Z", "until": "2024-05-01T00:00:00Z"},
            "parameter 'since' must not be after 'until'",
        ),
        ({"limit": "0"}, "parameter 'limit' must be an integer from 1 to 500"),
        ({"limit": "501"}, "parameter 'limit' must be an integer from 1 to 500"),
        ({"limit": "ten"}, "parameter 'limit' must be an integer from 1 to 500"),
        ({"limit": "٣"}, "parameter 'limit' must be an integer from 1 to 500"),
        ({"limit": "3_0"}, "parameter 'limit' must be an integer from 1 to 500"),
        ({"account": "\x00"}, "parameter 'account' must not contain control characters"),
        ({"cursor": "abc"}, "parameter 'cursor' must be a next_cursor value from an earlier page"),
        # Redis refuses a range ending before 0-0; this was a 503 "cache unavailable".
        ({"cursor": "0-0"}, NOT_A_CURSOR),
        ({"cursor": "000-0"}, NOT_A_CURSOR),
        ({"cursor": "0-00"}, NOT_A_CURSOR),
        (
            {"cursor": "99999999999999999999-0"},
            "parameter 'cursor' must be a next_cursor value from an earlier page",
        ),
    ],
)
def test_bad_feed_parameters_are_400_naming_the_parameter(web, query, error):
    status, body = api(web, "/api/v1/changes", **query)
    assert status == 400
    assert body["status"] == 400
    assert body["error"].startswith(error), body


@pytest.mark.parametrize("cursor", ["0-1", "1-0", "0001-0"])
def test_a_cursor_older_than_every_entry_is_an_empty_last_page(web, cursor):
    status, body = api(web, "/api/v1/changes", cursor=cursor)
    assert (status, body["changes"], body["next_cursor"]) == (200, [], None)


def test_feed_needs_an_identity(web):
    assert web.get("/api/v1/changes").status == 401


# --- one resource's history ---------------------------------------------------------------------


def test_resource_history_is_read_from_dynamodb_newest_first(web, world):
    status, body = api(web, "/api/v1/resource/history", arn=DEV_APP)
    _, quiet = api(web, "/api/v1/resource/history", arn=DEV_QUIET)

    assert status == 200
    assert (body["arn"], body["kind"], body["retention_days"]) == (DEV_APP, "sqs_queue", 365)
    assert [(c["change"], c["diff"]) for c in body["changes"]] == [
        ("updated", [{"op": "replace", "path": "/tags/note", "old": "fine", "new": XSS}])
    ]
    assert quiet["changes"] == []


def test_resource_history_takes_the_newest_first_and_limit(web, world):
    # Written to DynamoDB only (as Store does for this half), so the feed stays as it was.
    arn = queue(PROD, "busy")
    history = world.runtime.history
    p = Partition("sqs_queue", PROD, REGION)
    versions = [{"arn": arn, "tags": {"n": str(n)}} for n in range(4)]
    base = time.time()
    for n, version in enumerate(versions):
        old = {arn: versions[n - 1]} if n else {}
        history.write(diff_records(p, old, {arn: version}, [], base + n))
    _, every = api(web, "/api/v1/resource/history", arn=arn, kind="sqs_queue")
    _, two = api(web, "/api/v1/resource/history", arn=arn, kind="sqs_queue", limit=2)

    assert [c["change"] for c in every["changes"]] == ["updated"] * 3 + ["created"]
    assert [c["diff"] for c in every["changes"]] == [
        [{"op": "replace", "path": "/tags/n", "old": str(n - 1), "new": str(n)}] for n in (3, 2, 1)
    ] + [
        [
            {"op": "add", "path": "/arn", "new": arn},
            {"op": "add", "path": "/tags", "new": {"n": "0"}},
        ]
    ]
    assert two["changes"] == every["changes"][:2]


def test_a_deleted_resource_needs_its_kind_and_then_shows_its_deletion(web):
    missing, error = api(web, "/api/v1/resource/history", arn=DEV_OLD)
    status, body = api(web, "/api/v1/resource/history", arn=DEV_OLD, kind="sqs_queue")

    assert (missing, error["status"]) == (404, 404)
    assert "give 'kind'" in error["error"]
    assert status == 200
    assert [c["change"] for c in body["changes"]] == ["deleted"]


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ({}, "parameter 'arn' must be an ARN"),
        ({"arn": "not-an-arn"}, "parameter 'arn' must be an ARN"),
        ({"arn": DEV_APP, "kind": "nope"}, "parameter 'kind' must be one of "),
        ({"arn": DEV_APP, "limit": "0"}, "parameter 'limit' must be an integer from 1 to 500"),
    ],
)
def test_bad_resource_history_parameters_are_400(web, query, error):
    status, body = api(web, "/api/v1/resource/history", **query)
    assert (status, body["status"]) == (400, 400)
    assert body["error"].startswith(error)


def test_an_arn_too_long_to_be_a_dynamodb_key_has_no_history_not_an_error(web):
    arn = "arn:aws:sqs:us-east-1:111111111111:" + "q" * 2000
    status, body = api(web, "/api/v1/resource/history", arn=arn, kind="sqs_queue")
    assert (status, body["changes"]) == (200, [])


# --- HTML ---------------------------------------------------------------------------------------


def page(web: Server, path: str) -> tuple[int, str]:
    r = web.get(path, token=TOKEN)
    assert r.headers["Content-Type"].startswith("text/html")
    return r.status, r.body.decode()


def test_resource_page_shows_the_history_with_the_diff_escaped(web):
    status, body = page(web, "/resource/" + urllib.parse.quote(DEV_APP, safe=""))

    assert status == 200
    history = body[body.index('id="history"') :]
    assert "updated" in history
    assert "/tags/note" in history
    assert html.escape('"fine"') in history
    assert html.escape(f'"{XSS}"') in history
    assert XSS not in body


def text_of(markup: str) -> str:
    """The page as its ARNs read: the wrap points (<wbr>, part spans) left out."""
    return re.sub(r'<wbr>|<span class="part">|</span>', "", markup)


def test_resource_page_shows_the_actor_and_event_escaped(web, world):
    _, body = page(web, "/resource/" + urllib.parse.quote(PROD_ROLE, safe=""))

    history = body[body.index('id="history"') :]
    assert html.escape(ACTOR) in text_of(history)
    assert "UpdateRole" in history
    assert datetime.fromtimestamp(world.event_time, UTC).strftime("%H:%M:%S UTC") in history
    assert "<img" not in body


def test_resource_page_without_changes_says_so(web):
    _, body = page(web, "/resource/" + urllib.parse.quote(DEV_QUIET, safe=""))
    assert 'id="history-empty"' in body
    assert "No changes recorded since the inventory first cached" in body


def test_changes_page_lists_the_feed_with_links_and_escaped_values(web):
    status, body = page(web, "/changes")

    assert status == 200
    rows = body[body.index('id="rows"') :]
    for arn, kind in ((PROD_NEW, "sqs_queue"), (PROD_ROLE, "iam_role"), (DEV_APP, "sqs_queue")):
        href = "/resource/" + urllib.parse.quote(arn, safe="") + "?kind=" + kind
        assert f'href="{html.escape(href)}"' in rows
    assert html.escape(ACTOR) in text_of(rows)
    assert "<img" not in body and XSS not in body


def test_changes_page_filters_by_account_and_pages_to_older_changes(web):
    _, dev = page(web, f"/changes?account={DEV}")
    _, first = page(web, "/changes?limit=1")

    assert set(re.findall(r'<tr data-account="(\d+)"', dev)) == {DEV}
    assert re.findall(r'<tr data-account="(\d+)"', first) == [PROD]
    assert f'<option value="{DEV}" selected>' in dev
    older = first.split('id="older" href="', 1)[1].split('"', 1)[0]
    _, second = page(web, html.unescape(older))
    assert re.findall(r'<tr data-account="(\d+)"', second) == [PROD]
    assert 'id="newest"' in second
    assert older.startswith("/changes?cursor=")


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("since=yesterday", "parameter 'since' must be unix seconds or an ISO-8601 time"),
        ("cursor=0-0", "parameter 'cursor' must be a next_cursor value from an earlier page"),
        ("account=%00", "parameter 'account' must not contain control characters"),
    ],
)
def test_changes_page_with_a_bad_filter_is_a_400_page_naming_it(web, query, error):
    status, body = page(web, f"/changes?{query}")
    assert status == 400
    assert 'id="changes-error"' in body
    assert html.escape(error) in body


def test_the_nav_links_to_the_changes_page(web):
    _, body = page(web, "/policies")
    assert '<a href="/changes">Changes</a>' in body


def test_with_history_disabled_the_api_is_503_and_the_pages_say_so(
    world, redis_server, moto_server
):
    env = inventory_env(redis_server, moto_server)
    settings = load_settings(
        paths=[],
        environ=env
        | {
            "INVENTORY_WEB__API_TOKEN_HASHES": f"[{TOKEN_HASH}]",
            "INVENTORY_HISTORY__ENABLED": "false",
        },
    )
    for server in serve(settings, world.runtime):
        status, body = api(server, "/api/v1/changes")
        history_status, _ = api(server, "/api/v1/resource/history", arn=DEV_APP)
        _, changes_page = page(server, "/changes")
        _, resource_page = page(server, "/resource/" + urllib.parse.quote(DEV_APP, safe=""))

    assert (status, body["error"], history_status) == (503, "change history is not enabled", 503)
    assert "Change history is not enabled" in changes_page
    assert "Change history is not enabled." in resource_page
