"""The search index shared on disk: real `inventory web` processes on one index directory.

Rows are written by the real PoliciesTable (which is what partition writes call), ARNs as real
partitions, under a key prefix of the test's own. Builds are counted from the indexer's log lines.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from inventory.cache.keys import Keys, Partition
from inventory.cache.policies_table import PoliciesTable
from inventory.cache.redis_cache import RedisCache
from inventory.runtime import Runtime
from inventory.settings import load_settings
from inventory.web.app import Readers, make_app
from inventory.web.search import PolicySearch
from tests.processes import CliProcess
from tests.servers import free_port
from tests.web.test_app import TOKEN, TOKEN_HASH, Server

BUILT = "built from Redis"
ROWS = 60


def _row(i: int, account: str) -> dict[str, Any]:
    name = f"{('batch', 'web', 'data')[i % 3]}-worker-{i}"
    return {
        "arn": f"arn:aws:iam::{account}:role/{name}",
        "name": name,
        "kind": "iam_role",
        "account_id": account,
        "account_name": "dev",
        "region": "global",
        "tags": {"owner": f"team-{i % 4}"},
        "errors": i % 5,
        "owner": f"team-{i % 4}",
        "template": None,
        "last_updated": 1.7e9 + i,
    }


class Web(CliProcess):
    """A real `inventory web` process; ready once /readyz answers 200."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        super().__init__(env, log_path)
        self.port = free_port()

    def start(self) -> Web:
        self.spawn("web", "--port", str(self.port))
        return self

    def get(self, path: str) -> tuple[int, Any]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def wait_ready(self, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, self.log()
            try:
                status, body = self.get("/readyz")
            except OSError:
                time.sleep(0.1)
                continue
            if status == 200:
                return body
            time.sleep(0.1)
        raise AssertionError(f"not ready within {timeout} s: {self.log()}")

    def total(self, text: str) -> int:
        status, body = self.get(f"/api/v1/policies?q={text}&limit=1")
        assert status == 200, body
        return int(body["total"])


@pytest.fixture
def shared(redis_server, moto_server, tmp_path: Path, env: dict[str, str]) -> Iterator[dict]:
    """A seeded cache under a prefix of this test's own, an index directory, process env."""
    prefix = f"t{uuid.uuid4().hex[:8]}-"  # (a trailing colon would read as YAML)
    client = redis.Redis(port=redis_server.port, db=2, decode_responses=True)
    keys = Keys(prefix)
    account = "123456789012"
    table = PoliciesTable(client, keys)
    table.upsert([_row(i, account) for i in range(ROWS)])
    p = Partition("iam_role", account)
    client.hset(keys.items(p), mapping={_row(i, account)["arn"]: "{}" for i in range(ROWS)})
    client.sadd(keys.partitions(), p.id)
    web_env = env | {
        "INVENTORY_REDIS__KEY_PREFIX": prefix,
        "INVENTORY_WEB__API_TOKEN_HASHES": f"[{TOKEN_HASH}]",
        "INVENTORY_WEB__SEARCH_INDEX_DIR": str(tmp_path / "index"),
        "INVENTORY_WEB__SEARCH_REBUILD_SECONDS": "1",
        "INVENTORY_WEB__SEARCH_SYNC_SECONDS": "0.5",
    }
    webs: list[Web] = []

    def start(name: str) -> Web:
        web = Web(web_env, tmp_path / f"{name}.log").start()
        webs.append(web)
        return web

    yield {"client": client, "keys": keys, "table": table, "account": account, "start": start}
    for web in webs:
        web.stop()
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)


def builds(*webs: Web) -> int:
    return sum(web.log().count(BUILT) for web in webs)


def indexers(*webs: Web) -> list[int]:
    """Live indexer children (multiprocessing spawn) of the given web processes."""
    found = []
    for web in webs:
        children = Path(f"/proc/{web.pid}/task/{web.pid}/children")
        for pid in children.read_text().split() if children.exists() else []:
            cmdline = Path(f"/proc/{pid}/cmdline")
            if cmdline.exists() and b"spawn_main" in cmdline.read_bytes():
                found.append(int(pid))
    return found


def wait_for(check, timeout: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"{what} not within {timeout} s")


def test_two_web_processes_on_one_index_dir_share_it_and_one_builds(shared):
    first = shared["start"]("first")
    first.wait_ready()
    second = shared["start"]("second")
    ready = second.wait_ready()

    assert ready["search"]["rows"] == ROWS
    assert ready["search"]["arns"] == ROWS
    assert first.total("worker") == second.total("worker") == ROWS
    assert first.get("/api/v1/policies?q=batch&sort=name&limit=5") == second.get(
        "/api/v1/policies?q=batch&sort=name&limit=5"
    )
    assert builds(first, second) == 1
    assert len(indexers(first, second)) == 1
    (index_dir,) = Path(first.env["INVENTORY_WEB__SEARCH_INDEX_DIR"]).iterdir()
    assert sorted(p.name for p in index_dir.glob("g*")) == ["g000001"]


@pytest.mark.parametrize("damage", ["deleted", "garbage"])
def test_a_lost_or_corrupt_index_is_rebuilt_while_the_web_tier_answers(shared, damage):
    web = shared["start"]("web")
    web.wait_ready()
    (index_dir,) = Path(web.env["INVENTORY_WEB__SEARCH_INDEX_DIR"]).iterdir()
    generation = index_dir / "g000001"
    if damage == "deleted":
        for path in sorted(generation.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        generation.rmdir()
    else:
        # New garbage files replace the old ones (open maps keep the old, as after a bad copy).
        for path in [p for p in generation.rglob("*") if p.is_file()]:
            temporary = path.with_name(path.name + ".garbage")
            temporary.write_bytes(os.urandom(64))
            os.replace(temporary, path)

    # Meanwhile the web tier answers, search from the generation it has open.
    for _ in range(10):
        assert web.get("/healthz") == (200, {"status": "ok"})
        assert web.total("worker") == ROWS
        time.sleep(0.1)
    wait_for(lambda: builds(web) == 2, 60, "a rebuild")
    wait_for(lambda: (index_dir / "g000002").exists() and not generation.exists(), 10, "switch")
    assert "lost or corrupt; rebuilding" in web.log()
    web.wait_ready()
    assert web.total("worker") == ROWS
    assert web.total("batch-worker") == ROWS // 3


def test_a_change_is_searchable_within_the_rebuild_interval_without_a_full_build(shared):
    web = shared["start"]("web")
    web.wait_ready()
    table: PoliciesTable = shared["table"]
    changed = [_row(i, shared["account"]) | {"tags": {"owner": "team-moved"}} for i in range(7)]
    table.upsert(changed)
    table.publish(Partition("iam_role", shared["account"]), {}, [], changed, [])

    elapsed = wait_for(lambda: web.total("team-moved") == 7, 10, "the change")

    # search_rebuild_seconds (1) plus one sync interval (0.5) and a loaded machine's slack.
    assert elapsed < 1 + 0.5 + 1.5
    assert builds(web) == 1
    assert "1 changes applied" in web.log()
    assert web.total("team-0") == ROWS // 4 - 2


def test_readyz_says_indexing_and_search_answers_503_until_the_index_is_built(shared, env):
    settings = load_settings(
        paths=[], environ=env | {"INVENTORY_WEB__API_TOKEN_HASHES": f"[{TOKEN_HASH}]"}
    )
    rt = Runtime(settings)
    search = PolicySearch(shared["client"], shared["keys"])
    readers = Readers(RedisCache(shared["client"], shared["keys"]), rt.outcomes, search=search)
    server = Server(make_app(settings, readers)).start()
    try:
        before = server.get("/readyz")
        page = server.get("/api/v1/policies", TOKEN)
        search.load()
        search.sync()
        after = server.get("/readyz")
    finally:
        server.stop()

    assert before.status == 503
    assert before.json() == {
        "status": "indexing",
        "partitions": 1,
        "search": {"status": "indexing", "rows": None, "arns": None},
    }
    assert page.status == 503
    assert page.json()["error"] == "search index is being built (see /readyz)"
    assert after.status == 200
    assert after.json() == {
        "status": "ready",
        "partitions": 1,
        "search": {"status": "ready", "rows": ROWS, "arns": ROWS},
    }
