"""The policy requests API over real HTTP: DynamoDB (moto) is the truth, Redis the read model."""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from inventory.cache.keys import GLOBAL
from inventory.runtime import Runtime
from inventory.settings import Settings, load_settings
from inventory.tasks.requests import refresh_request_cache
from inventory.web.base import Readers
from inventory.web.handlers.requests import READ_MODEL
from tests.conftest import inventory_env
from tests.web.conftest import Client, LiveServer
from tests.web.test_auth import (
    ADMIN,
    ADMIN_TOKEN,
    DEV_TOKEN,
    DEVELOPER,
    LEGACY_TOKEN,
    auth_environ,
    build_app,
)

ACCOUNT_ID = "111122223333"
ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/app"
OTHER_ROLE = "arn:aws:iam::444455556666:role/worker"
POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
}
NEW = {"arn": ROLE, "justification": "The app reads its bucket.", "policy_document": POLICY}
PROXY_ADMIN = {
    "X-Forwarded-User": "proxy-admin@example.com",
    "X-Forwarded-Groups": "ops, inventory-admins",
}


@pytest.fixture(scope="module")
def req_settings(redis_server, moto_server) -> Settings:
    env = auth_environ(
        inventory_env(redis_server, moto_server),
        INVENTORY_WEB__TRUSTED_PROXIES="[127.0.0.1/32]",
        INVENTORY_WEB__MAX_BODY_BYTES="65536",
        # Every test here creates as the same few users; the limits have their own tests.
        INVENTORY_WEB__REQUEST_RATE="1000000/s",
    )
    return load_settings(paths=[], environ=env)


@pytest.fixture(scope="module")
def req_runtime(req_settings: Settings, redis_server, moto_server) -> Runtime:
    moto_server.reset()
    redis.Redis(port=redis_server.port).flushall()
    rt = Runtime(req_settings)
    rt.ensure_tables()
    return rt


@pytest.fixture(scope="module")
def req_server(req_settings: Settings, req_runtime: Runtime) -> Iterator[LiveServer]:
    readers = Readers(req_runtime.redis_cache, req_runtime.outcomes, requests=req_runtime.requests)
    server = LiveServer(
        build_app(req_settings, readers), max_body_size=req_settings.web.max_body_bytes
    ).start()
    yield server
    server.stop()
    for body in server.bodies:
        for token in (ADMIN_TOKEN, DEV_TOKEN, LEGACY_TOKEN):
            assert token.encode() not in body


@pytest.fixture
def rt(req_runtime: Runtime) -> Runtime:
    """The runtime with an empty requests table and no read model."""
    for item in req_runtime.requests.model.scan():
        item.delete()
    k = req_runtime.keys
    req_runtime.redis.delete(k.items(READ_MODEL), k.hashes(READ_MODEL), k.seen(READ_MODEL))
    req_runtime.redis.delete(k.summaries(READ_MODEL))
    req_runtime.redis.delete(k.meta(READ_MODEL))
    req_runtime.redis.srem(k.partitions(), READ_MODEL.id)
    return req_runtime


@pytest.fixture
def client(req_server: LiveServer, rt: Runtime) -> Client:
    return Client(req_server)


def assert_read_model_is_the_table(rt: Runtime) -> dict[str, dict[str, Any]]:
    """Redis holds exactly the table's records, as the hourly task would have written them."""
    table = {r["arn"]: r for r in rt.requests.all()}
    assert rt.redis_cache.items(READ_MODEL) == table
    meta = rt.redis_cache.meta(READ_MODEL)
    assert meta is not None and meta.count == len(table) and meta.complete
    # cache_policy_requests finds nothing to change: same documents, same content hashes.
    assert refresh_request_cache(rt)["changed"] == 0
    return table


def create(client: Client, token: str = DEV_TOKEN, **changes: Any) -> dict[str, Any]:
    r = client.post("/api/v1/requests", token=token, json_body=NEW | changes)
    assert r.status == 201, r.body
    return r.json()


# --- create -----------------------------------------------------------------------------------


def test_create_stores_a_pending_request_by_the_caller_and_returns_201(client, rt):
    r = client.post("/api/v1/requests", token=DEV_TOKEN, json_body=NEW)

    assert r.status == 201
    created = r.json()
    assert r.headers["Location"] == f"/api/v1/requests/{created['id']}"
    assert created == rt.requests.get(created["id"])
    assert {k: created[k] for k in NEW.keys() - {"arn"}} == {
        "justification": NEW["justification"],
        "policy_document": POLICY,
    }
    assert created["resource_arn"] == ROLE
    assert created["account_id"] == ACCOUNT_ID
    assert created["requester"] == DEVELOPER
    assert created["status"] == "pending"
    assert created["reviewer"] is None
    assert created["created_at"] == created["updated_at"]
    assert uuid.UUID(created["id"]) and created["arn"] == created["id"]
    assert assert_read_model_is_the_table(rt) == {created["id"]: created}


def test_create_accepts_the_policy_document_as_a_json_string(client, rt):
    created = create(client, policy_document=json.dumps(POLICY))
    assert created["policy_document"] == POLICY
    assert_read_model_is_the_table(rt)


def test_create_takes_the_account_of_an_s3_bucket_from_its_cached_record(client, rt):
    bucket = "arn:aws:s3:::team-data"
    rt.store.replace_partition(
        "s3_bucket",
        ACCOUNT_ID,
        GLOBAL,
        [{"arn": bucket, "kind": "s3_bucket", "account_id": ACCOUNT_ID, "name": "team-data"}],
        complete=True,
        durable=False,
    )
    created = create(client, arn=bucket)
    unknown = client.post(
        "/api/v1/requests", token=DEV_TOKEN, json_body=NEW | {"arn": "arn:aws:s3:::nobody"}
    )

    assert created["account_id"] == ACCOUNT_ID
    assert created["resource_arn"] == bucket
    assert unknown.status == 400
    assert unknown.json()["error"] == "field 'arn' has no account id and is not a cached resource"


ARN_ERROR = "field 'arn' must be an ARN (arn:aws...) of at most 2048 characters"
TEXT_ERROR = "field 'justification' must be 1 to 2000 characters"


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"arn": None}, ARN_ERROR),
        ({"arn": 12}, ARN_ERROR),
        ({"arn": "not-an-arn"}, ARN_ERROR),
        ({"arn": "arn:aws:iam::1234:role/x"}, ARN_ERROR),
        ({"arn": "arn:aws:iam::111122223333:role/a b"}, ARN_ERROR),
        ({"arn": "arn:aws:iam::111122223333:role/" + "x" * 2020}, ARN_ERROR),
        ({"justification": None}, TEXT_ERROR),
        ({"justification": ""}, TEXT_ERROR),
        ({"justification": "   "}, TEXT_ERROR),
        ({"justification": "x" * 2001}, TEXT_ERROR),
        ({"justification": ["why"]}, TEXT_ERROR),
        ({"policy_document": None}, "field 'policy_document' must be a JSON object"),
        ({"policy_document": [POLICY]}, "field 'policy_document' must be a JSON object"),
        ({"policy_document": "[1]"}, "field 'policy_document' must be a JSON object"),
        ({"policy_document": "{nope"}, "field 'policy_document' is a string but not valid JSON"),
        ({"policy_document": {"Version": "x"}}, "field 'policy_document' must have a Statement"),
        ({"policy_document": {"Statement": []}}, "field 'policy_document' must have a Statement"),
        ({"policy_document": {"Statement": "x"}}, "field 'policy_document' must have a Statement"),
    ],
    ids=[
        "arn-missing",
        "arn-number",
        "arn-garbage",
        "arn-short-account",
        "arn-space",
        "arn-too-long",
        "justification-missing",
        "justification-empty",
        "justification-blank",
        "justification-too-long",
        "justification-list",
        "policy-missing",
        "policy-list",
        "policy-string-list",
        "policy-string-garbage",
        "policy-no-statement",
        "policy-empty-statement",
        "policy-string-statement",
    ],
)
def test_create_with_an_invalid_field_is_400_naming_it_and_writes_nothing(
    client, rt, changes, error
):
    r = client.post("/api/v1/requests", token=DEV_TOKEN, json_body=NEW | changes)
    assert r.status == 400
    assert r.json() == {"error": error, "status": 400}
    assert rt.requests.all() == []
    assert rt.redis_cache.meta(READ_MODEL) is None


def test_create_with_a_non_object_body_is_400(client, rt):
    r = client.post("/api/v1/requests", token=DEV_TOKEN, json_body=[NEW])
    assert r.status == 400
    assert r.json() == {"error": "request body must be a JSON object", "status": 400}


def test_create_fills_a_cold_read_model_from_the_whole_table(client, rt):
    # Requests the read model has never seen (written before this web process, or by another).
    old = [
        rt.requests.create(OTHER_ROLE, "444455556666", "someone", f"old {n}", POLICY, 1000.0 + n)
        for n in range(2)
    ]
    assert rt.redis_cache.load_hashes(READ_MODEL) is None

    created = create(client)

    table = assert_read_model_is_the_table(rt)
    assert set(table) == {old[0]["id"], old[1]["id"], created["id"]}


def sized_policy(characters: int, spaced: bool = False) -> dict[str, Any] | str:
    """A policy document of exactly ``characters`` characters other than whitespace."""
    statement = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::"}
    document = {"Version": "2012-10-17", "Statement": [statement]}
    base = len(json.dumps(document, separators=(",", ":")))
    statement["Resource"] += "x" * (characters - base)
    return json.dumps(document, indent=8) if spaced else document


@pytest.mark.parametrize(
    ("arn", "limit", "what"),
    [
        (ROLE, 10_240, "an IAM role"),
        (f"arn:aws:iam::{ACCOUNT_ID}:policy/team/read", 6_144, "an IAM policy"),
        (f"arn:aws:iam::{ACCOUNT_ID}:user/carol", 2_048, "an IAM user"),
        (f"arn:aws:iam::{ACCOUNT_ID}:group/devs", 5_120, "an IAM group"),
        (f"arn:aws:sqs:us-east-1:{ACCOUNT_ID}:jobs", 10_240, "any policy"),
    ],
    ids=["role", "managed-policy", "user", "group", "queue"],
)
def test_a_policy_document_is_capped_at_iams_own_size_limit(client, rt, arn, limit, what):
    at_limit = client.post(
        "/api/v1/requests",
        token=DEV_TOKEN,
        json_body=NEW | {"arn": arn, "policy_document": sized_policy(limit)},
    )
    # IAM does not count whitespace: an indented document of the same size is as good.
    indented = client.post(
        "/api/v1/requests",
        token=DEV_TOKEN,
        json_body=NEW | {"arn": arn, "policy_document": sized_policy(limit, spaced=True)},
    )
    over = client.post(
        "/api/v1/requests",
        token=DEV_TOKEN,
        json_body=NEW | {"arn": arn, "policy_document": sized_policy(limit + 1)},
    )

    assert (at_limit.status, indented.status) == (201, 201)
    assert over.status == 400
    assert over.json() == {
        "error": f"field 'policy_document' has {limit + 1:,} characters other than "
        f"whitespace; IAM allows {limit:,} for {what}",
        "status": 400,
    }
    assert len(rt.requests.all()) == 2


def test_a_213_kb_policy_document_is_refused_and_stores_nothing(client, rt):
    r = client.post(
        "/api/v1/requests",
        token=DEV_TOKEN,
        json_body=NEW | {"policy_document": sized_policy(60_000)},
    )
    assert r.status == 400
    assert r.json()["error"].startswith("field 'policy_document' has 60,000 characters")
    assert rt.requests.all() == []


@pytest.fixture
def limited(redis_server, moto_server, rt: Runtime) -> Iterator[Client]:
    """A server allowing 3 pending requests per requester and 5 creations an hour."""
    settings = load_settings(
        paths=[],
        environ=auth_environ(
            inventory_env(redis_server, moto_server),
            INVENTORY_WEB__TRUSTED_PROXIES="[127.0.0.1/32]",
            INVENTORY_WEB__MAX_OPEN_REQUESTS="3",
            INVENTORY_WEB__REQUEST_RATE="5/h",
        ),
    )
    readers = Readers(rt.redis_cache, rt.outcomes, requests=rt.requests)
    server = LiveServer(build_app(settings, readers)).start()
    yield Client(server)
    server.stop()


def proxy_user(name: str) -> dict[str, str]:
    """A user the trusted proxy names, fresh for every run (rate windows last the hour)."""
    return {"X-Forwarded-User": f"{name}-{uuid.uuid4().hex[:8]}@example.com"}


def test_a_requester_may_have_only_so_many_pending_requests(limited, rt):
    frank, grace = proxy_user("frank"), proxy_user("grace")
    made = [limited.post("/api/v1/requests", headers=frank, json_body=NEW) for _ in range(3)]
    fourth = limited.post("/api/v1/requests", headers=frank, json_body=NEW)
    someone_else = limited.post("/api/v1/requests", headers=grace, json_body=NEW)
    cancelled = limited.post(f"/api/v1/requests/{made[0].json()['id']}/cancel", headers=frank)
    after_cancel = limited.post("/api/v1/requests", headers=frank, json_body=NEW)

    assert [r.status for r in made] == [201, 201, 201]
    assert fourth.status == 409
    assert fourth.json() == {
        "error": "you have 3 pending requests, the most one may have (web.max_open_requests): "
        "cancel one or wait for a review",
        "status": 409,
    }
    assert (someone_else.status, cancelled.status, after_cancel.status) == (201, 200, 201)
    assert len(rt.requests.all()) == 5


def test_creating_requests_is_rate_limited_per_identity(limited, rt):
    henry = proxy_user("henry")
    statuses = []
    for _ in range(6):
        r = limited.post("/api/v1/requests", headers=henry, json_body=NEW)
        statuses.append(r.status)
        if r.status == 201:
            limited.post(f"/api/v1/requests/{r.json()['id']}/cancel", headers=henry)
    refused = limited.post("/api/v1/requests", headers=henry, json_body=NEW)

    # Cancelling keeps the open count down; the rate still ends the create-cancel loop.
    assert statuses == [201] * 5 + [429]
    assert refused.json()["error"].startswith("too many policy requests: at most 5 per 3600 s")
    assert 0 < int(refused.headers["Retry-After"]) <= 3600
    assert len(rt.requests.all()) == 5


# --- list -------------------------------------------------------------------------------------


def test_list_is_newest_first_with_total_limit_and_offset(client, rt):
    made = [create(client, justification=f"request {n}") for n in range(4)]
    newest_first = [m["id"] for m in reversed(made)]

    everything = client.get("/api/v1/requests", token=DEV_TOKEN).json()
    page = client.get("/api/v1/requests?limit=2&offset=1", token=DEV_TOKEN).json()
    past_end = client.get("/api/v1/requests?offset=10", token=DEV_TOKEN).json()

    assert [r["id"] for r in everything["requests"]] == newest_first
    assert everything["requests"] == [rt.requests.get(i) for i in newest_first]
    assert (everything["total"], everything["limit"], everything["offset"]) == (4, 100, 0)
    assert [r["id"] for r in page["requests"]] == newest_first[1:3]
    assert (page["total"], page["limit"], page["offset"]) == (4, 2, 1)
    assert past_end == {"requests": [], "total": 4, "limit": 100, "offset": 10}


def test_list_filters_by_status_arn_requester_and_account(client, rt):
    mine = create(client)
    other_role = create(client, arn=OTHER_ROLE)
    admins = create(client, token=ADMIN_TOKEN)
    approved = client.post(f"/api/v1/requests/{admins['id']}/approve", headers=PROXY_ADMIN)
    assert approved.status == 200

    def ids(query: str) -> list[str]:
        r = client.get(f"/api/v1/requests?{query}", token=DEV_TOKEN)
        assert r.status == 200, r.body
        return [x["id"] for x in r.json()["requests"]]

    assert ids("status=pending") == [other_role["id"], mine["id"]]
    assert ids("status=APPROVED") == [admins["id"]]
    assert ids("status=rejected") == []
    assert ids(f"arn={OTHER_ROLE}") == [other_role["id"]]
    assert ids(f"requester={ADMIN}") == [admins["id"]]
    assert ids(f"requester={DEVELOPER.upper()}") == [other_role["id"], mine["id"]]
    assert ids("account=444455556666") == [other_role["id"]]
    assert ids(f"account={ACCOUNT_ID}&status=pending") == [mine["id"]]
    assert ids(f"account={ACCOUNT_ID}&requester={ADMIN}") == [admins["id"]]


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("status=open", "parameter 'status' must be one of pending, approved, rejected, cancelled"),
        ("account=12345", "parameter 'account' must be a 12-digit account id"),
        ("limit=0", "parameter 'limit' must be an integer from 1 to 1000"),
        ("limit=1001", "parameter 'limit' must be an integer from 1 to 1000"),
        ("limit=ten", "parameter 'limit' must be an integer from 1 to 1000"),
        ("offset=-1", "parameter 'offset' must be an integer from 0 to 1000000000"),
    ],
    ids=["status", "account", "limit-zero", "limit-big", "limit-text", "offset-negative"],
)
def test_list_with_a_bad_filter_is_400_naming_it(client, query, error):
    r = client.get(f"/api/v1/requests?{query}", token=DEV_TOKEN)
    assert r.status == 400
    assert r.json() == {"error": error, "status": 400}


def test_list_is_right_for_a_read_model_written_before_summaries_existed(client, rt):
    made = [create(client, justification=f"request {n}") for n in range(3)]
    approve = client.post(f"/api/v1/requests/{made[1]['id']}/approve", token=ADMIN_TOKEN)
    rt.redis.delete(rt.keys.summaries(READ_MODEL))

    pending = client.get("/api/v1/requests?status=pending", token=DEV_TOKEN).json()
    everything = client.get("/api/v1/requests?limit=1&offset=1", token=DEV_TOKEN).json()

    assert approve.status == 200
    assert [r["id"] for r in pending["requests"]] == [made[2]["id"], made[0]["id"]]
    assert (everything["total"], [r["id"] for r in everything["requests"]]) == (3, [made[1]["id"]])
    assert rt.redis.hlen(rt.keys.summaries(READ_MODEL)) == 3


def test_a_page_reads_only_its_own_documents(client, rt):
    oldest, newest = create(client, justification="old"), create(client, justification="new")
    # Stand-in for a document too big to read on every list: this one cannot be read at all.
    rt.redis.hset(rt.keys.items(READ_MODEL), oldest["id"], "{not json")

    r = client.get("/api/v1/requests?limit=1", token=DEV_TOKEN)

    assert r.status == 200
    assert r.json() == {"requests": [newest], "total": 2, "limit": 1, "offset": 0}


def test_a_page_of_big_requests_is_read_without_holding_up_healthz(client, rt):
    """60 requests at the size limit: a one-item page reads one document, off the event loop."""
    big = sized_policy(10_240)
    for n in range(60):
        rt.requests.create(ROLE, ACCOUNT_ID, DEVELOPER, f"big {n}", big, 1000.0 + n)
    refresh_request_cache(rt)
    port = client.server.port
    pages: list[float] = []

    def page() -> None:
        started = time.perf_counter()
        r = Client(client.server).get("/api/v1/requests?limit=1", token=DEV_TOKEN)
        assert (r.status, r.json()["total"]) == (200, 60)
        pages.append(time.perf_counter() - started)

    readers = [threading.Thread(target=page) for _ in range(20)]
    for reader in readers:
        reader.start()
    health = []
    while any(t.is_alive() for t in readers):
        started = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/healthz")
        assert conn.getresponse().status == 200
        conn.close()
        health.append(time.perf_counter() - started)
    for reader in readers:
        reader.join()
    assert len(pages) == 20
    assert max(pages) < 2.0
    assert max(health) < 1.0, health


def test_get_one_request_reads_the_read_model(client, rt):
    created = create(client)
    r = client.get(f"/api/v1/requests/{created['id']}", token=DEV_TOKEN)
    missing = client.get(f"/api/v1/requests/{uuid.uuid4()}", token=DEV_TOKEN)
    assert r.json() == created
    assert missing.status == 404
    assert missing.json() == {"error": "no request with that id", "status": 404}


# --- review -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("action", "status"), [("approve", "approved"), ("reject", "rejected")])
def test_admin_reviews_a_pending_request_with_a_comment(client, rt, action, status):
    created = create(client)

    r = client.post(
        f"/api/v1/requests/{created['id']}/{action}",
        token=ADMIN_TOKEN,
        json_body={"comment": "  looks fine  "},
    )

    assert r.status == 200
    reviewed = r.json()
    assert reviewed == rt.requests.get(created["id"])
    assert reviewed["status"] == status
    assert reviewed["reviewer"] == ADMIN
    assert reviewed["review_comment"] == "looks fine"
    assert reviewed["updated_at"] >= created["updated_at"]
    assert {
        k: v
        for k, v in reviewed.items()
        if k not in ("status", "reviewer", "review_comment", "updated_at")
    } == {
        k: v
        for k, v in created.items()
        if k not in ("status", "reviewer", "review_comment", "updated_at")
    }
    assert assert_read_model_is_the_table(rt)[created["id"]]["status"] == status


def test_review_without_a_body_or_with_an_empty_object_works(client, rt):
    first, second = create(client), create(client)
    bare = client.post(f"/api/v1/requests/{first['id']}/approve", token=ADMIN_TOKEN)
    empty = client.post(f"/api/v1/requests/{second['id']}/reject", token=ADMIN_TOKEN, json_body={})
    assert (bare.status, bare.json()["review_comment"]) == (200, None)
    assert (empty.status, empty.json()["status"]) == (200, "rejected")
    assert_read_model_is_the_table(rt)


def test_admin_group_from_a_trusted_proxy_may_approve(client, rt):
    created = create(client)
    r = client.post(f"/api/v1/requests/{created['id']}/approve", headers=PROXY_ADMIN)
    assert r.status == 200
    assert r.json()["reviewer"] == "proxy-admin@example.com"
    assert_read_model_is_the_table(rt)


@pytest.mark.parametrize(
    "approver",
    [
        {"token": ADMIN_TOKEN},
        {"headers": {"X-Forwarded-User": ADMIN.upper(), "X-Forwarded-Groups": "inventory-admins"}},
    ],
    ids=["same-token", "same-name-via-proxy"],
)
def test_nobody_approves_their_own_request(client, rt, approver):
    created = create(client, token=ADMIN_TOKEN)

    own = client.post(f"/api/v1/requests/{created['id']}/approve", **approver)
    other = client.post(f"/api/v1/requests/{created['id']}/approve", headers=PROXY_ADMIN)

    assert own.status == 403
    assert own.json() == {"error": "nobody may approve their own request", "status": 403}
    assert (other.status, other.json()["status"]) == (200, "approved")
    assert (other.json()["requester"], other.json()["reviewer"]) == (
        ADMIN,
        "proxy-admin@example.com",
    )
    assert_read_model_is_the_table(rt)


def test_an_admin_may_reject_their_own_request(client, rt):
    created = create(client, token=ADMIN_TOKEN)
    r = client.post(f"/api/v1/requests/{created['id']}/reject", token=ADMIN_TOKEN)
    assert (r.status, r.json()["status"], r.json()["reviewer"]) == (200, "rejected", ADMIN)


@pytest.mark.parametrize("action", ["approve", "reject"])
def test_non_admin_may_not_review_403_naming_the_group(client, rt, action):
    created = create(client)

    by_developer = client.post(f"/api/v1/requests/{created['id']}/{action}", token=DEV_TOKEN)
    by_legacy = client.post(f"/api/v1/requests/{created['id']}/{action}", token=LEGACY_TOKEN)

    for r in (by_developer, by_legacy):
        assert r.status == 403
        assert r.json() == {"error": "group 'inventory-admins' required", "status": 403}
    assert rt.requests.get(created["id"])["status"] == "pending"
    assert_read_model_is_the_table(rt)


@pytest.mark.parametrize(
    ("first", "second", "state"),
    [
        ("approve", "approve", "approved"),
        ("approve", "reject", "approved"),
        ("reject", "approve", "rejected"),
        ("cancel", "approve", "cancelled"),
    ],
)
def test_second_review_of_a_request_is_409_and_changes_nothing(client, rt, first, second, state):
    created = create(client)
    token = DEV_TOKEN if first == "cancel" else ADMIN_TOKEN
    assert client.post(f"/api/v1/requests/{created['id']}/{first}", token=token).status == 200
    before = rt.requests.get(created["id"])

    r = client.post(f"/api/v1/requests/{created['id']}/{second}", token=ADMIN_TOKEN)

    assert r.status == 409
    assert r.json() == {"error": f"request is {state}, not pending", "status": 409}
    assert rt.requests.get(created["id"]) == before
    assert_read_model_is_the_table(rt)


@pytest.mark.parametrize("action", ["approve", "reject", "cancel"])
def test_review_of_an_unknown_request_is_404(client, rt, action):
    r = client.post(f"/api/v1/requests/{uuid.uuid4()}/{action}", token=ADMIN_TOKEN)
    malformed = client.post(f"/api/v1/requests/not-a-uuid/{action}", token=ADMIN_TOKEN)
    assert r.status == 404
    assert r.json() == {"error": "no request with that id", "status": 404}
    assert malformed.status == 404
    assert malformed.json() == {"error": "not found", "status": 404}
    assert rt.requests.all() == []


def test_requester_cancels_their_own_request(client, rt):
    created = create(client, token=DEV_TOKEN)
    r = client.post(
        f"/api/v1/requests/{created['id']}/cancel", token=DEV_TOKEN, json_body={"comment": "no"}
    )
    assert r.status == 200
    assert (r.json()["status"], r.json()["reviewer"], r.json()["review_comment"]) == (
        "cancelled",
        DEVELOPER,
        "no",
    )
    assert_read_model_is_the_table(rt)


@pytest.mark.parametrize("token", [ADMIN_TOKEN, LEGACY_TOKEN], ids=["admin", "other-user"])
def test_only_the_requester_may_cancel(client, rt, token):
    created = create(client, token=DEV_TOKEN)
    r = client.post(f"/api/v1/requests/{created['id']}/cancel", token=token)
    assert r.status == 403
    assert r.json() == {"error": "only the requester may cancel a request", "status": 403}
    assert rt.requests.get(created["id"])["status"] == "pending"


@pytest.mark.parametrize(
    "body",
    [{"comment": "x" * 2001}, {"comment": 5}, {"comment": ""}],
    ids=["long", "number", "empty"],
)
def test_review_with_a_bad_comment_is_400(client, rt, body):
    created = create(client)
    r = client.post(f"/api/v1/requests/{created['id']}/approve", token=ADMIN_TOKEN, json_body=body)
    assert r.status == 400
    assert r.json() == {"error": "field 'comment' must be 1 to 2000 characters", "status": 400}
    assert rt.requests.get(created["id"])["status"] == "pending"


def test_a_cookie_login_creates_and_cancels_as_that_identity(client, rt):
    assert client.post("/login", form={"token": DEV_TOKEN}).status == 303
    r = client.post("/api/v1/requests", json_body=NEW)
    cancel = client.post(f"/api/v1/requests/{r.json()['id']}/cancel")
    assert r.status == 201 and r.json()["requester"] == DEVELOPER
    assert cancel.status == 200 and cancel.json()["status"] == "cancelled"
    assert_read_model_is_the_table(rt)


# --- not configured ---------------------------------------------------------------------------


def test_without_a_requests_table_writes_are_503_and_reads_still_work(req_settings, rt):
    readers = Readers(rt.redis_cache, rt.outcomes)
    server = LiveServer(build_app(req_settings, readers)).start()
    try:
        client = Client(server)
        unavailable = {"error": "policy requests are not configured", "status": 503}
        created = client.post("/api/v1/requests", token=DEV_TOKEN, json_body=NEW)
        approve = client.post(f"/api/v1/requests/{uuid.uuid4()}/approve", token=ADMIN_TOKEN)
        listed = client.get("/api/v1/requests", token=DEV_TOKEN)
    finally:
        server.stop()
    assert (created.status, created.json()) == (503, unavailable)
    assert (approve.status, approve.json()) == (503, unavailable)
    assert listed.json() == {"requests": [], "total": 0, "limit": 100, "offset": 0}
