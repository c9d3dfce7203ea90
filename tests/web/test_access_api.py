"""Who may use which role, account freshness and on-demand refresh, over real HTTP.

The caches come from the real sync code over a seeded moto organisation; refreshes are sent by
a real Celery app to the real Redis broker, where the test reads the queued message back.
"""

from __future__ import annotations

import base64
import datetime
import json
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from inventory.cache.keys import (
    ACCOUNT,
    ALL_ACCOUNTS,
    GLOBAL,
    IAM_KINDS,
    IAM_ROLE,
    IAM_USER,
    Partition,
)
from inventory.cache.store import Store
from inventory.celery_app import AWS, InventoryCelery, create_app
from inventory.demo.seed import MANAGEMENT_ACCOUNT, SPOKE_ROLE, AccountSeed, seed_demo_organisation
from inventory.registry import BY_STEM, synced_kinds
from inventory.runtime import Runtime
from inventory.settings import Settings, load_settings
from inventory.tasks.access import eligible_roles, store_credential_mapping
from inventory.tasks.accounts import store_account_mapping
from inventory.tasks.iam import sync_iam_account
from inventory.tasks.resources import sync_kind
from inventory.web.base import CeleryQueue, Readers
from tests.conftest import BUCKET, inventory_env
from tests.web.conftest import Client, LiveServer
from tests.web.test_auth import DEV_TOKEN, auth_environ, build_app

STATIC_ROLE = f"arn:aws:iam::{MANAGEMENT_ACCOUNT}:role/platform-admin"
IAM_EVERY = 600.0
IAM_TASK = "inventory.cache_iam_resources_for_account"


@pytest.fixture(scope="module")
def acc_env(redis_server, moto_server) -> dict[str, str]:
    return auth_environ(
        inventory_env(redis_server, moto_server),
        INVENTORY_CREDENTIAL_MAPPING__STATIC=json.dumps(
            {STATIC_ROLE: ["Platform-Team", "dev-devs@example.com"]}
        ),
        INVENTORY_SCHEDULE__CACHE_IAM_RESOURCES_ACROSS_ACCOUNTS__EVERY=str(IAM_EVERY),
        INVENTORY_SCHEDULE__CACHE_S3_BUCKETS_ACROSS_ACCOUNTS__ENABLED="false",
        # The rate limit has its own test; here every test refreshes as the same developer.
        INVENTORY_WEB__REFRESH_RATE="1000000/s",
    )


@pytest.fixture(scope="module")
def acc_settings(acc_env: dict[str, str]) -> Settings:
    return load_settings(paths=[], environ=acc_env)


@pytest.fixture(scope="module")
def rt(acc_settings: Settings, redis_server, moto_server) -> Runtime:
    moto_server.reset()
    redis.Redis(port=redis_server.port).flushall()
    runtime = Runtime(acc_settings)
    runtime.ensure_tables()
    runtime.aws.hub_client("s3", "us-east-1").create_bucket(Bucket=BUCKET)
    return runtime


@pytest.fixture(scope="module")
def org(rt: Runtime, moto_server) -> list[AccountSeed]:
    """The demo organisation: every account's IAM, dev's buckets and queues, the role mapping."""
    seeds = seed_demo_organisation(moto_server.url)
    store_account_mapping(rt)
    for account_id in [MANAGEMENT_ACCOUNT, *(s.id for s in seeds)]:
        sync_iam_account(rt, account_id)
    for stem in ("s3_buckets", "sqs_queues"):
        sync_kind(rt, BY_STEM[stem], seeds[0].id)
    store_credential_mapping(rt)
    return seeds


@pytest.fixture(scope="module")
def celery_app(acc_settings: Settings) -> Iterator[InventoryCelery]:
    app = create_app(acc_settings)
    yield app
    app.close()


@pytest.fixture(scope="module")
def server(
    acc_settings: Settings, rt: Runtime, org: list[AccountSeed], celery_app: InventoryCelery
) -> Iterator[LiveServer]:
    readers = Readers(rt.redis_cache, rt.outcomes, tasks=CeleryQueue(celery_app))
    live = LiveServer(build_app(acc_settings, readers)).start()
    yield live
    live.stop()


@pytest.fixture
def client(server: LiveServer) -> Client:
    return Client(server)


@pytest.fixture
def broker(acc_settings: Settings, rt: Runtime) -> Iterator[redis.Redis]:
    """The Celery broker's Redis with the ``aws`` queue emptied, and no refresh claimed."""
    client = redis.Redis.from_url(acc_settings.celery.broker_url)

    def clean() -> None:
        client.delete(AWS)
        claims = list(rt.redis.scan_iter(match=rt.keys.refresh_claim("*", "*")))
        if claims:
            rt.redis.delete(*claims)

    clean()
    yield client
    clean()


def query(path: str, **params: Any) -> str:
    return f"{path}?{urllib.parse.urlencode(params)}"


# --- roles ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("principal", "expected"),
    [
        ("dev-devs@example.com", ["{dev}:role/dev-app", STATIC_ROLE]),
        ("DEV-Devs@Example.com", ["{dev}:role/dev-app", STATIC_ROLE]),
        ("  staging-devs@example.com ", ["{staging}:role/staging-app"]),
        ("platform-team", [STATIC_ROLE]),
        ("nobody@example.com", []),
    ],
    ids=["tag-and-static", "mixed-case", "padded", "static-only", "unknown"],
)
def test_eligible_roles_lists_exactly_the_mapped_roles(client, rt, org, principal, expected):
    ids = {"dev": f"arn:aws:iam::{org[0].id}", "staging": f"arn:aws:iam::{org[1].id}"}
    roles = sorted(e.format(**ids) for e in expected)

    r = client.get(query("/api/v1/roles/eligible", principal=principal), token=DEV_TOKEN)

    assert r.status == 200
    assert r.json() == {"principal": principal.strip().lower(), "roles": roles}
    assert sorted(eligible_roles(rt, principal.strip())) == roles


@pytest.mark.parametrize("params", ["", "?principal=", "?principal=%20", "?principal=" + "a" * 257])
def test_eligible_roles_without_a_principal_is_400_naming_it(client, params):
    r = client.get("/api/v1/roles/eligible" + params, token=DEV_TOKEN)
    assert r.status == 400
    assert r.json() == {"error": "parameter 'principal' must be a group or an email", "status": 400}


def test_role_principals_lists_who_may_use_a_role(client, org):
    dev = org[0]

    def principals(arn: str) -> Any:
        r = client.get(query("/api/v1/roles/principals", arn=arn), token=DEV_TOKEN)
        assert r.status == 200
        return r.json()

    assert principals(dev.role_arn("dev-app")) == {
        "arn": dev.role_arn("dev-app"),
        "principals": ["dev-devs@example.com"],
    }
    assert principals(STATIC_ROLE) == {
        "arn": STATIC_ROLE,
        "principals": ["dev-devs@example.com", "platform-team"],
    }
    assert principals(dev.role_arn(SPOKE_ROLE)) == {
        "arn": dev.role_arn(SPOKE_ROLE),
        "principals": [],
    }


@pytest.mark.parametrize(
    "arn",
    ["", "arn:aws:s3:::bucket", "arn:aws:iam::123:role/x", "arn:aws:iam::123456789012:user/u"],
)
def test_role_principals_with_a_non_role_arn_is_400(client, arn):
    r = client.get(query("/api/v1/roles/principals", arn=arn), token=DEV_TOKEN)
    assert r.status == 400
    assert r.json() == {"error": "parameter 'arn' must be an IAM role ARN", "status": 400}


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/roles/eligible?principal=x",
        "/api/v1/roles/principals?arn=" + STATIC_ROLE,
        "/api/v1/accounts/freshness",
        "/api/v1/refresh/status?arn=arn:aws:iam::1:role/x&since=0",
    ],
)
def test_access_api_requires_identity(client, path):
    r = client.get(path)
    assert r.status == 401
    assert r.json() == {"error": "authentication required", "status": 401}


# --- freshness --------------------------------------------------------------------------------


def freshness(client: Client) -> tuple[float, dict[str, Any]]:
    r = client.get("/api/v1/accounts/freshness", token=DEV_TOKEN)
    assert r.status == 200
    body = r.json()
    return body["checked_at"], {a["id"]: a for a in body["accounts"]}


def restamp(rt: Runtime, p: Partition, at: float) -> None:
    """Store a partition's own records again as if the sync had run at ``at``."""
    records = list(rt.redis_cache.items(p).values())
    Store(rt.redis_cache, rt.dynamo, None, clock=lambda: at).replace_partition(
        p.kind, p.account_id, p.region, records, complete=True, durable=False
    )


def test_freshness_reports_every_account_and_kind_with_its_age(client, rt, org):
    checked_at, accounts = freshness(client)

    mapped = rt.redis_cache.items(Partition(ACCOUNT, ALL_ACCOUNTS, GLOBAL)).values()
    assert set(accounts) == {MANAGEMENT_ACCOUNT, *(s.id for s in org)}
    assert {a["id"]: (a["name"], a["status"]) for a in accounts.values()} == {
        a["id"]: (a["name"], a["status"]) for a in mapped
    }
    kinds = set(synced_kinds())
    assert kinds >= {*IAM_KINDS, "s3_bucket", "sqs_queue", "sns_topic", "config_resource"}
    for account in accounts.values():
        assert set(account["kinds"]) == kinds
        for kind in IAM_KINDS:
            info = account["kinds"][kind]
            meta = rt.redis_cache.meta(Partition(kind, account["id"], GLOBAL))
            assert info == {
                "age": round(checked_at - meta.refreshed_at, 3),
                "refreshed_at": meta.refreshed_at,
                "interval_seconds": IAM_EVERY,
                "enabled": True,
                "stale": False,
            }
        # Never synced: stale, unless its beat entry is disabled (S3 buckets here).
        assert account["kinds"]["managed_policy"] == {
            "age": None,
            "refreshed_at": None,
            "interval_seconds": 2700.0,
            "enabled": True,
            "stale": True,
        }
        assert account["kinds"]["config_resource"]["interval_seconds"] == 3600.0
        assert account["stale"] is True

    dev = accounts[org[0].id]["kinds"]
    staging = accounts[org[1].id]["kinds"]
    assert dev["s3_bucket"]["stale"] is False and dev["s3_bucket"]["age"] is not None
    # Its beat entry is disabled: not enabled, and so never stale.
    assert staging["s3_bucket"] == {
        "age": None,
        "refreshed_at": None,
        "interval_seconds": 2700.0,
        "enabled": False,
        "stale": False,
    }
    assert dev["sqs_queue"]["stale"] is False
    assert staging["sqs_queue"]["stale"] is True


def test_freshness_flags_data_older_than_two_intervals(client, rt, org):
    staging = org[1].id
    now = time.time()
    restamp(rt, Partition(IAM_ROLE, staging, GLOBAL), now - 2 * IAM_EVERY - 100)
    restamp(rt, Partition(IAM_USER, staging, GLOBAL), now - 2 * IAM_EVERY + 100)
    try:
        checked_at, accounts = freshness(client)
    finally:
        for kind in (IAM_ROLE, IAM_USER):
            restamp(rt, Partition(kind, staging, GLOBAL), time.time())

    kinds = accounts[staging]["kinds"]
    assert kinds[IAM_ROLE] == {
        "age": round(checked_at - (now - 2 * IAM_EVERY - 100), 3),
        "refreshed_at": now - 2 * IAM_EVERY - 100,
        "interval_seconds": IAM_EVERY,
        "enabled": True,
        "stale": True,
    }
    assert kinds[IAM_USER]["refreshed_at"] == now - 2 * IAM_EVERY + 100
    assert kinds[IAM_USER]["stale"] is False
    assert accounts[org[2].id]["kinds"][IAM_ROLE]["stale"] is False


def test_freshness_of_a_regional_kind_is_its_oldest_region(client, rt, org):
    dev = org[0].id
    east, west = Partition("sqs_queue", dev, "us-east-1"), Partition("sqs_queue", dev, "us-west-2")
    assert rt.redis_cache.meta(east) is not None and rt.redis_cache.meta(west) is not None
    old = time.time() - 6000  # more than 2 x 45 minutes
    restamp(rt, west, old)
    try:
        checked_at, accounts = freshness(client)
    finally:
        restamp(rt, west, time.time())

    info = accounts[dev]["kinds"]["sqs_queue"]
    assert info == {
        "age": round(checked_at - old, 3),
        "refreshed_at": old,
        "interval_seconds": 2700.0,
        "enabled": True,
        "stale": True,
    }


def test_config_without_a_recorder_is_not_enabled_and_not_stale(client, rt, org):
    """The seeded member accounts record AWS Config in each region; the management account
    has no recorder: its Config column says "not enabled" and does not count as stale."""
    config = BY_STEM["resources_from_aws_config"]
    sync_kind(rt, config, MANAGEMENT_ACCOUNT)
    sync_kind(rt, config, org[0].id)

    checked_at, accounts = freshness(client)

    at = {
        a: min(
            rt.redis_cache.meta(Partition("config_resource", a, r)).refreshed_at
            for r in ("us-east-1", "us-west-2")
        )
        for a in (MANAGEMENT_ACCOUNT, org[0].id)
    }
    assert accounts[MANAGEMENT_ACCOUNT]["kinds"]["config_resource"] == {
        "age": round(checked_at - at[MANAGEMENT_ACCOUNT], 3),
        "refreshed_at": at[MANAGEMENT_ACCOUNT],
        "interval_seconds": 3600.0,
        "enabled": False,
        "stale": False,
    }
    assert accounts[org[0].id]["kinds"]["config_resource"] == {
        "age": round(checked_at - at[org[0].id], 3),
        "refreshed_at": at[org[0].id],
        "interval_seconds": 3600.0,
        "enabled": True,
        "stale": False,
    }
    # Never synced where a recorder may exist: stale as before.
    assert accounts[org[1].id]["kinds"]["config_resource"]["stale"] is True


def test_freshness_never_flags_an_account_that_is_not_active(client, rt, org):
    mapping = Partition(ACCOUNT, ALL_ACCOUNTS, GLOBAL)
    original = list(rt.redis_cache.items(mapping).values())
    suspended = [a | {"status": "SUSPENDED"} if a["id"] == org[2].id else a for a in original]
    rt.store.replace_partition(ACCOUNT, ALL_ACCOUNTS, GLOBAL, suspended, complete=True)
    try:
        _, accounts = freshness(client)
    finally:
        rt.store.replace_partition(ACCOUNT, ALL_ACCOUNTS, GLOBAL, original, complete=True)

    prod = accounts[org[2].id]
    assert prod["status"] == "SUSPENDED"
    assert prod["stale"] is False
    assert prod["kinds"]["managed_policy"]["stale"] is False
    assert accounts[org[1].id]["stale"] is True


# --- refresh ----------------------------------------------------------------------------------


def queued(broker: redis.Redis) -> list[dict[str, Any]]:
    """Every message in the broker's ``aws`` queue: its task headers and decoded arguments."""
    messages = []
    for raw in broker.lrange(AWS, 0, -1):
        message = json.loads(raw)
        body = json.loads(base64.b64decode(message["body"]))
        messages.append(
            {"task": message["headers"]["task"], "id": message["headers"]["id"], "args": body[0]}
        )
    return messages


@pytest.mark.parametrize(
    ("arn", "task"),
    [
        ("{dev}:role/dev-app", IAM_TASK),
        ("{dev}:user/dev-alice", IAM_TASK),
        ("{dev}:group/dev-admins", IAM_TASK),
        ("{dev}:policy/dev-queue-access", IAM_TASK),
        ("arn:aws:s3:::dev-logs-0", "inventory.cache_s3_buckets_for_account"),
        ("arn:aws:sqs:us-west-2:{id}:dev-jobs", "inventory.cache_sqs_queues_for_account"),
    ],
    ids=["role", "user", "group", "policy", "s3-bucket", "sqs-queue"],
)
def test_refresh_enqueues_exactly_one_task_for_the_resources_account(
    client, rt, org, broker, arn, task
):
    dev = org[0]
    arn = arn.format(dev=f"arn:aws:iam::{dev.id}", id=dev.id)
    assert rt.redis_cache.get(arn) is not None
    before = time.time()

    r = client.post(query("/api/v1/refresh", arn=arn), token=DEV_TOKEN)

    assert r.status == 202
    body = r.json()
    assert set(body) == {"task_id", "task", "account_id", "requested_at", "already_queued"}
    assert (body["task"], body["account_id"], body["already_queued"]) == (task, dev.id, False)
    assert before <= body["requested_at"] <= time.time()
    assert queued(broker) == [{"task": task, "id": body["task_id"], "args": [dev.id]}]


def test_200_refreshes_of_one_account_queue_one_task_and_share_its_id(client, rt, org, broker):
    dev = org[0]
    arns = [dev.role_arn("dev-app"), f"arn:aws:iam::{dev.id}:user/dev-alice"]

    answers = [
        client.post(query("/api/v1/refresh", arn=arns[n % 2]), token=DEV_TOKEN) for n in range(200)
    ]

    first = answers[0].json()
    assert {r.status for r in answers} == {202}
    assert {r.json()["task_id"] for r in answers} == {first["task_id"]}
    assert [r.json()["already_queued"] for r in answers] == [False] + [True] * 199
    # Before, each request queued a full sync of the account: 200 messages.
    assert queued(broker) == [{"task": IAM_TASK, "id": first["task_id"], "args": [dev.id]}]
    # Another task, or the same task for another account, is its own refresh.
    bucket = client.post(query("/api/v1/refresh", arn="arn:aws:s3:::dev-logs-0"), token=DEV_TOKEN)
    staging = client.post(
        query("/api/v1/refresh", arn=org[1].role_arn("staging-app")), token=DEV_TOKEN
    )
    assert [(r.status, r.json()["already_queued"]) for r in (bucket, staging)] == [(202, False)] * 2
    assert len(queued(broker)) == 3


def test_a_refresh_expires_unstarted_within_the_time_limit_and_its_claim_outlives_it(
    client, rt, org, broker, celery_app
):
    dev = org[0]
    before = time.time()
    r = client.post(query("/api/v1/refresh", arn=dev.role_arn("dev-app")), token=DEV_TOKEN)

    limit = celery_app.tasks[IAM_TASK].time_limit
    (raw,) = broker.lrange(AWS, 0, -1)
    expires = datetime.datetime.fromisoformat(json.loads(raw)["headers"]["expires"]).timestamp()
    claim = rt.keys.refresh_claim(IAM_TASK, dev.id)
    assert limit == 960
    assert before + limit - 1 <= expires <= time.time() + limit + 1
    assert rt.redis.get(claim) == r.json()["task_id"]
    assert 2 * limit - 5 <= rt.redis.ttl(claim) <= 2 * limit


def test_refreshes_are_rate_limited_per_identity(acc_env, rt, org, broker, celery_app):
    settings = load_settings(
        paths=[],
        environ=acc_env
        | {
            "INVENTORY_WEB__REFRESH_RATE": "3/h",
            "INVENTORY_WEB__TRUSTED_PROXIES": "[127.0.0.1/32]",
        },
    )
    readers = Readers(rt.redis_cache, rt.outcomes, tasks=CeleryQueue(celery_app))
    live = LiveServer(build_app(settings, readers)).start()
    # A fresh name for every run: the window lives in Redis for the hour.
    me = {"X-Forwarded-User": f"dora-{uuid.uuid4().hex[:8]}@example.com"}
    other = {"X-Forwarded-User": f"erin-{uuid.uuid4().hex[:8]}@example.com"}
    path = query("/api/v1/refresh", arn=org[0].role_arn("dev-app"))
    try:
        c = Client(live)
        mine = [c.post(path, headers=me) for _ in range(4)]
        theirs = c.post(path, headers=other)
    finally:
        live.stop()

    assert [r.status for r in mine] == [202, 202, 202, 429]
    assert mine[3].json() == {
        "error": mine[3].json()["error"],
        "status": 429,
    }
    assert mine[3].json()["error"].startswith("too many refreshes: at most 3 per 3600 s; retry in")
    assert 0 < int(mine[3].headers["Retry-After"]) <= 3600
    assert theirs.status == 202
    assert len(queued(broker)) == 1


@pytest.mark.slow
def test_a_finished_refresh_frees_its_claim_so_the_next_one_is_queued(
    client, rt, org, broker, acc_env, start_worker
):
    dev = org[0]
    path = query("/api/v1/refresh", arn=dev.role_arn("dev-app"))
    first = client.post(path, token=DEV_TOKEN).json()
    claim = rt.keys.refresh_claim(IAM_TASK, dev.id)
    assert rt.redis.get(claim) == first["task_id"]

    start_worker(acc_env)
    deadline = time.monotonic() + 90
    while rt.redis.exists(claim) and time.monotonic() < deadline:
        time.sleep(0.2)
    second = client.post(path, token=DEV_TOKEN).json()

    assert rt.redis.get(claim) == second["task_id"]
    assert second["task_id"] != first["task_id"]
    assert second["already_queued"] is False
    ok = [
        s
        for s in rt.outcomes.status()
        if (s.task, s.account_id) == (IAM_TASK.removeprefix("inventory."), dev.id)
    ]
    assert ok and ok[0].last_success is not None


@pytest.mark.parametrize(
    ("arn", "status", "error"),
    [
        ("arn:aws:iam::123456789012:role/no-such-role", 404, "no cached resource with that ARN"),
        ("not-an-arn", 400, "parameter 'arn' must be an ARN"),
        ("", 400, "parameter 'arn' must be an ARN"),
    ],
    ids=["unknown", "garbage", "missing"],
)
def test_refresh_of_a_bad_or_unknown_arn_enqueues_nothing(client, broker, arn, status, error):
    r = client.post(query("/api/v1/refresh", arn=arn), token=DEV_TOKEN)
    assert r.status == status
    assert r.json() == {"error": error, "status": status}
    assert queued(broker) == []


def test_refresh_requires_identity_and_enqueues_nothing_without_it(client, org, broker):
    r = client.post(query("/api/v1/refresh", arn=org[0].role_arn("dev-app")))
    assert r.status == 401
    assert queued(broker) == []


def test_refresh_without_a_task_sender_is_503(acc_settings, rt, org):
    live = LiveServer(build_app(acc_settings, Readers(rt.redis_cache, rt.outcomes))).start()
    try:
        r = Client(live).post(
            query("/api/v1/refresh", arn=org[0].role_arn("dev-app")), token=DEV_TOKEN
        )
    finally:
        live.stop()
    assert r.status == 503
    assert r.json() == {"error": "refresh is not configured", "status": 503}


def status_of(client: Client, arn: str, since: float) -> dict[str, Any]:
    r = client.get(query("/api/v1/refresh/status", arn=arn, since=repr(since)), token=DEV_TOKEN)
    assert r.status == 200, r.body
    return r.json()


def test_refresh_status_flips_once_the_partition_is_stored_again(client, rt, org):
    dev = org[0]
    arn = dev.role_arn("dev-app")
    p = Partition(IAM_ROLE, dev.id, GLOBAL)
    since = time.time()

    waiting = status_of(client, arn, since)
    sync_iam_account(rt, dev.id)  # what the worker does with the queued task
    done = status_of(client, arn, since)

    before = waiting["refreshed_at"]
    assert waiting == {"arn": arn, "since": since, "refreshed": False, "refreshed_at": before}
    assert before < since
    after = rt.redis_cache.meta(p).refreshed_at
    assert done == {"arn": arn, "since": since, "refreshed": True, "refreshed_at": after}
    assert after > since


def test_refresh_status_reads_the_partition_a_bucket_lives_in(client, rt, org):
    dev = org[0]
    arn = "arn:aws:s3:::dev-logs-0"  # a us-west-2 bucket, in the account's global partition
    since = time.time()

    waiting = status_of(client, arn, since)
    sync_kind(rt, BY_STEM["s3_buckets"], dev.id)
    done = status_of(client, arn, since)

    assert waiting["refreshed"] is False
    assert done["refreshed"] is True
    assert (
        done["refreshed_at"]
        == rt.redis_cache.meta(Partition("s3_bucket", dev.id, GLOBAL)).refreshed_at
    )


@pytest.mark.parametrize(
    ("params", "status", "error"),
    [
        ({"since": "0"}, 400, "parameter 'arn' must be an ARN"),
        ({"arn": "{role}"}, 400, "parameter 'since' must be a unix time"),
        ({"arn": "{role}", "since": "yesterday"}, 400, "parameter 'since' must be a unix time"),
        ({"arn": "{role}", "since": "nan"}, 400, "parameter 'since' must be a unix time"),
        ({"arn": "{role}", "since": "-1"}, 400, "parameter 'since' must be a unix time"),
        (
            {"arn": "arn:aws:iam::123456789012:role/none", "since": "0"},
            404,
            "no cached resource with that ARN",
        ),
    ],
    ids=["no-arn", "no-since", "since-text", "since-nan", "since-negative", "unknown-arn"],
)
def test_refresh_status_with_bad_parameters(client, org, params, status, error):
    role = org[0].role_arn("dev-app")
    filled = {k: v.format(role=role) for k, v in params.items()}
    r = client.get(query("/api/v1/refresh/status", **filled), token=DEV_TOKEN)
    assert r.status == status
    assert r.json() == {"error": error, "status": status}
