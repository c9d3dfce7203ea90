"""The Tornado web tier over real HTTP, reading caches filled by the real sync code."""

from __future__ import annotations

import base64
import hashlib
import urllib.parse
from collections.abc import Iterator

import pytest
import redis

from inventory.cache.keys import ACCOUNT, ALL_ACCOUNTS, GLOBAL, IAM_KINDS, IAM_ROLE, Partition
from inventory.demo.seed import MANAGEMENT_ACCOUNT, SPOKE_ROLE, AccountSeed, seed_demo_organisation
from inventory.runtime import Runtime
from inventory.settings import Settings, load_settings
from inventory.tasks.accounts import store_account_mapping
from inventory.tasks.iam import sync_iam_account
from inventory.web.app import Readers, make_app
from tests.conftest import BUCKET, inventory_env
from tests.servers import free_port
from tests.web.conftest import Server

TOKEN = "web-test-token-Zq8v1xK3mP0w"
WRONG_TOKEN = "not-the-token-Yb7c2dL4nQ9e"
TOKEN_HASH = hashlib.sha256(TOKEN.encode()).hexdigest()
API_PATHS = [
    "/api/v1/resource?arn=arn:aws:iam::123456789012:role/x",
    "/api/v1/partitions",
    "/api/v1/accounts",
]
UNAVAILABLE = {"error": "cache unavailable", "status": 503}


def serve(settings: Settings, runtime: Runtime) -> Iterator[Server]:
    server = Server(make_app(settings, Readers(runtime.redis_cache, runtime.outcomes))).start()
    try:
        yield server
    finally:
        server.stop()
    # No response of this test, whatever it was, ever carried a token.
    for body in server.bodies:
        assert TOKEN.encode() not in body
        assert WRONG_TOKEN.encode() not in body


# The tests here only read, so one seeded organisation serves the whole module.
@pytest.fixture(scope="module")
def web_settings(redis_server, moto_server) -> Settings:
    env = inventory_env(redis_server, moto_server)
    return load_settings(
        paths=[], environ=env | {"INVENTORY_WEB__API_TOKEN_HASHES": f"[{TOKEN_HASH}]"}
    )


@pytest.fixture(scope="module")
def runtime(web_settings: Settings, redis_server, moto_server) -> Runtime:
    moto_server.reset()
    redis.Redis(port=redis_server.port).flushall()
    rt = Runtime(web_settings)
    rt.ensure_tables()
    rt.aws.hub_client("s3", "us-east-1").create_bucket(Bucket=BUCKET)
    return rt


@pytest.fixture(scope="module")
def web(web_settings: Settings, runtime: Runtime) -> Iterator[Server]:
    yield from serve(web_settings, runtime)


@pytest.fixture
def empty_web(env: dict[str, str]) -> Iterator[Server]:
    """An app over a Redis database nothing has written to."""
    settings = load_settings(
        paths=[],
        environ=env
        | {
            "INVENTORY_WEB__API_TOKEN_HASHES": f"[{TOKEN_HASH}]",
            "INVENTORY_REDIS__URL": env["INVENTORY_REDIS__URL"].rsplit("/", 1)[0] + "/9",
        },
    )
    yield from serve(settings, Runtime(settings))


@pytest.fixture
def redis_down(env: dict[str, str]) -> Iterator[Server]:
    """An app whose Redis URL points at a free port where nothing listens."""
    down_env = env | {
        "INVENTORY_WEB__API_TOKEN_HASHES": f"[{TOKEN_HASH}]",
        "INVENTORY_REDIS__URL": f"redis://127.0.0.1:{free_port()}/2",
    }
    settings = load_settings(paths=[], environ=down_env)
    yield from serve(settings, Runtime(settings))


@pytest.fixture(scope="module")
def org(runtime: Runtime, moto_server) -> list[AccountSeed]:
    """A demo organisation in moto, its mapping and every account's IAM synced by the real code."""
    seeds = seed_demo_organisation(moto_server.url)
    store_account_mapping(runtime)
    for account_id in [MANAGEMENT_ACCOUNT, *(s.id for s in seeds)]:
        sync_iam_account(runtime, account_id)
    return seeds


def test_healthz_answers_ok_json_without_auth(web):
    r = web.get("/healthz")
    assert r.status == 200
    assert r.json() == {"status": "ok"}


def test_readyz_reports_partition_count_when_caches_are_filled(web, runtime, org):
    r = web.get("/readyz")
    accounts = 1 + len(org)
    assert r.status == 200
    assert r.json() == {"status": "ready", "partitions": 1 + accounts * len(IAM_KINDS)}
    assert r.json()["partitions"] == len(runtime.redis_cache.partitions())


def test_readyz_is_503_empty_on_an_empty_redis(empty_web):
    r = empty_web.get("/readyz")
    assert r.status == 503
    assert r.json() == {"status": "empty", "partitions": 0}


def test_healthz_stays_200_when_redis_is_unreachable(redis_down):
    r = redis_down.get("/healthz")
    assert r.status == 200
    assert r.json() == {"status": "ok"}


def test_readyz_is_503_not_500_when_redis_is_unreachable(redis_down):
    r = redis_down.get("/readyz")
    assert r.status == 503
    assert r.json() == {"status": "unavailable", "redis": False}


@pytest.mark.parametrize("path", API_PATHS)
def test_api_without_authorization_is_401_authentication_required(web, path):
    r = web.get(path)
    assert r.status == 401
    assert r.json() == {"error": "authentication required", "status": 401}


@pytest.mark.parametrize("path", API_PATHS)
def test_api_with_wrong_token_is_401_invalid_token(web, path):
    r = web.get(path, WRONG_TOKEN)
    assert r.status == 401
    assert r.json() == {"error": "invalid token", "status": 401}


@pytest.mark.parametrize(
    "header",
    [
        f"Basic {TOKEN}",
        "Basic " + base64.b64encode(f"user:{TOKEN}".encode()).decode(),
        TOKEN,
        "Bearer",
        "Bearer ",
    ],
    ids=["basic-token", "basic-userpass", "bare-token", "bearer-no-token", "bearer-space"],
)
def test_api_rejects_non_bearer_or_empty_authorization_with_401(web, header):
    r = web.get("/api/v1/partitions", headers={"Authorization": header})
    assert r.status == 401
    assert r.json() == {"error": "authentication required", "status": 401}


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_resource_returns_exactly_the_record_stored_in_redis(web, runtime, org, scheme):
    arn = org[0].role_arn(f"{org[0].name}-app")
    stored = runtime.redis_cache.get(arn)
    assert stored is not None and stored["arn"] == arn and stored["kind"] == IAM_ROLE

    query = urllib.parse.urlencode({"arn": arn})
    r = web.get(f"/api/v1/resource?{query}", headers={"Authorization": f"{scheme} {TOKEN}"})

    assert r.status == 200
    assert r.json() == stored


def test_resource_finds_records_of_every_kind_and_the_spoke_role(web, runtime, org):
    dev = org[0]
    arns = [
        dev.role_arn(SPOKE_ROLE),
        f"arn:aws:iam::{dev.id}:user/{dev.name}-alice",
        f"arn:aws:iam::{dev.id}:group/{dev.name}-admins",
        dev.policy_arn(f"{dev.name}-queue-access"),
    ]
    got = {}
    for arn in arns:
        r = web.get("/api/v1/resource?" + urllib.parse.urlencode({"arn": arn}), TOKEN)
        assert r.status == 200, (arn, r.body)
        got[arn] = r.json()
    assert got == {arn: runtime.redis_cache.get(arn) for arn in arns}
    assert {g["kind"] for g in got.values()} == set(IAM_KINDS)


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?arn=",
        "?arn=%20%20",
        "?arn=not-an-arn",
        "?other=arn:aws:iam::1:role/x",
        "?arn=" + "arn:" + "x" * 2045,
    ],
    ids=["missing", "empty", "blank", "garbage", "other-param", "too-long"],
)
def test_resource_with_missing_or_garbage_arn_is_400_naming_arn(web, query):
    r = web.get("/api/v1/resource" + query, TOKEN)
    assert r.status == 400
    assert r.json() == {"error": "parameter 'arn' must be an ARN", "status": 400}


def test_resource_with_undecodable_arn_is_400_json_naming_arn(web):
    r = web.get("/api/v1/resource?arn=%ff", TOKEN)
    assert r.status == 400
    assert r.json() == {"error": "parameter 'arn' is not valid UTF-8", "status": 400}


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:iam::{dev}:role/no-such-role",
        "arn:aws:iam::999999999999:role/dev-app",
        "arn:" + "x" * 2044,
    ],
    ids=["no-such-role", "other-account", "longest-allowed"],
)
def test_resource_with_unknown_arn_is_404_json(web, org, arn):
    arn = arn.format(dev=org[0].id)
    r = web.get("/api/v1/resource?" + urllib.parse.urlencode({"arn": arn}), TOKEN)
    assert r.status == 404
    assert r.json() == {"error": "no cached resource with that ARN", "status": 404}


def test_partitions_lists_exactly_the_redis_partitions_with_item_counts(web, runtime, org):
    r = web.get("/api/v1/partitions", TOKEN)

    assert r.status == 200
    body = r.json()
    assert set(body) == {"partitions"}
    rows = body["partitions"]
    accounts = [MANAGEMENT_ACCOUNT, *(s.id for s in org)]
    expected = {Partition(k, a, GLOBAL) for k in IAM_KINDS for a in accounts}
    expected.add(Partition(ACCOUNT, ALL_ACCOUNTS, GLOBAL))
    assert set(runtime.redis_cache.partitions()) == expected
    got = {Partition(row["kind"], row["account_id"], row["region"]): row for row in rows}
    assert len(rows) == len(got)
    assert set(got) == expected
    assert {p: row["count"] for p, row in got.items()} == {
        p: len(runtime.redis_cache.items(p)) for p in expected
    }
    assert {p: row["complete"] for p, row in got.items()} == dict.fromkeys(expected, True)
    assert {p: row["refreshed_at"] for p, row in got.items()} == {
        p: runtime.redis_cache.meta(p).refreshed_at for p in expected
    }
    # The seed itself: dev has dev-app, dev-worker-0 and the spoke role.
    assert got[Partition(IAM_ROLE, org[0].id, GLOBAL)]["count"] == 3
    assert got[Partition(ACCOUNT, ALL_ACCOUNTS, GLOBAL)]["count"] == len(accounts)


def test_partitions_is_empty_list_on_an_empty_redis(empty_web):
    r = empty_web.get("/api/v1/partitions", TOKEN)
    assert r.status == 200
    assert r.json() == {"partitions": []}


def test_accounts_returns_the_org_account_ids_sorted(web, runtime, org):
    r = web.get("/api/v1/accounts", TOKEN)

    assert r.status == 200
    body = r.json()
    assert set(body) == {"accounts"}
    ids = [a["id"] for a in body["accounts"]]
    assert ids == sorted({MANAGEMENT_ACCOUNT, *(s.id for s in org)})
    stored = runtime.redis_cache.items(Partition(ACCOUNT, ALL_ACCOUNTS, GLOBAL))
    assert {a["arn"]: a for a in body["accounts"]} == stored
    names = {a["id"]: a["name"] for a in body["accounts"]}
    assert {names[s.id] for s in org} == {s.name for s in org}


@pytest.mark.parametrize("token", [None, TOKEN], ids=["anonymous", "authenticated"])
@pytest.mark.parametrize("path", ["/nope", "/api/v1", "/api/v1/resources", "/healthz/x"])
def test_unknown_path_is_404_json_never_html(web, path, token):
    r = web.get(path, token)
    assert r.status == 404
    assert b"<html" not in r.body.lower()
    assert r.json() == {"error": "not found", "status": 404}


@pytest.mark.parametrize("path", API_PATHS)
def test_api_when_redis_is_down_is_503_json_without_traceback(redis_down, path):
    r = redis_down.get(path, TOKEN)
    assert r.status == 503
    assert r.json() == UNAVAILABLE
    for text in (b"Traceback", b"ConnectionError", b"redis.exceptions", b"File "):
        assert text not in r.body


def test_auth_is_checked_before_redis_when_redis_is_down(redis_down):
    r = redis_down.get("/api/v1/partitions")
    assert r.status == 401
    assert r.json() == {"error": "authentication required", "status": 401}


def test_every_response_sends_nosniff_and_no_store(web, org):
    cases = {
        ("/healthz", None): 200,
        ("/readyz", None): 200,
        ("/api/v1/partitions", TOKEN): 200,
        ("/api/v1/accounts", TOKEN): 200,
        ("/api/v1/resource?arn=" + org[0].role_arn("dev-app"), TOKEN): 200,
        ("/api/v1/partitions", None): 401,
        ("/api/v1/partitions", WRONG_TOKEN): 401,
        ("/api/v1/resource?arn=bad", TOKEN): 400,
        ("/api/v1/resource?arn=arn:aws:iam::1:role/none", TOKEN): 404,
        ("/missing", None): 404,
    }
    got = {}
    for path, token in cases:
        r = web.get(path, token)
        got[(path, token)] = (
            r.status,
            r.headers.get_all("X-Content-Type-Options"),
            r.headers.get_all("Cache-Control"),
        )
    assert got == {case: (status, ["nosniff"], ["no-store"]) for case, status in cases.items()}


def test_error_responses_from_a_dead_redis_send_nosniff(redis_down):
    r = redis_down.get("/api/v1/accounts", TOKEN)
    assert r.status == 503
    assert r.headers.get_all("X-Content-Type-Options") == ["nosniff"]


def test_token_never_appears_in_any_response_body(web, org):
    dev_app = org[0].role_arn(f"{org[0].name}-app")
    paths = [
        "/healthz",
        "/readyz",
        "/api/v1/partitions",
        "/api/v1/accounts",
        "/api/v1/resource?" + urllib.parse.urlencode({"arn": dev_app}),
        f"/api/v1/resource?arn={TOKEN}",
        f"/api/v1/resource?arn=arn:{TOKEN}",
        f"/{TOKEN}",
    ]
    statuses = []
    for path in paths:
        for token in (None, TOKEN, WRONG_TOKEN):
            r = web.get(path, token)
            statuses.append(r.status)
            assert TOKEN.encode() not in r.body, (path, token)
            assert WRONG_TOKEN.encode() not in r.body, (path, token)
    assert set(statuses) == {200, 400, 401, 404}
