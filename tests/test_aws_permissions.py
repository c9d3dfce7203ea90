"""docs/aws-permissions.md: the web tier's role allows every AWS call `inventory web` makes and
nothing that reaches the accounts; the hub assumes roles only inside the organisation."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from inventory.demo.seed import Seeder, demo_account
from inventory.tasks.accounts import store_account_mapping
from inventory.tasks.iam import sync_iam_account
from tests.conftest import inventory_env
from tests.faultproxy import FaultProxy
from tests.processes import CliProcess
from tests.servers import free_port
from tests.web.test_auth import ADMIN_TOKEN, DEV_TOKEN, auth_environ

DOC = Path(__file__).resolve().parent.parent / "docs" / "aws-permissions.md"
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "CreateTable"}


def policies() -> dict[str, dict]:
    """The first JSON policy under each ``##`` heading of the document."""
    found = {}
    for section in re.split(r"^## ", DOC.read_text(), flags=re.M)[1:]:
        heading = section.splitlines()[0].strip()
        block = re.search(r"```json\n(.*?)```", section, re.S)
        if block:
            found[heading] = json.loads(block.group(1))
    return found


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def allowed_actions(policy: dict) -> set[str]:
    return {a for s in policy["Statement"] for a in as_list(s["Action"]) if s["Effect"] == "Allow"}


def test_the_web_role_reads_tables_and_writes_only_policy_requests():
    web = policies()["Web tier role"]
    assert {a.split(":")[0] for a in allowed_actions(web)} == {"dynamodb"}  # no sts:AssumeRole
    for statement in web["Statement"]:
        writes = {a.split(":")[1] for a in as_list(statement["Action"])} & WRITES
        if writes:
            assert writes == {"PutItem", "UpdateItem"}
            assert as_list(statement["Resource"]) == [
                "arn:aws:dynamodb:*:*:table/inventory_policyrequests"
            ]


def test_the_hub_assumes_roles_only_inside_the_organisation():
    hub = policies()["Hub role (workers and beat)"]
    (assume,) = [s for s in hub["Statement"] if "sts:AssumeRole" in as_list(s["Action"])]
    assert assume["Condition"] == {"StringEquals": {"aws:ResourceOrgID": "o-exampleorgid"}}
    assert as_list(assume["Resource"]) == [
        "arn:aws:iam::*:role/InventoryReadOnly",
        "arn:aws:iam::*:role/InventoryOrgReader",
    ]


@pytest.fixture
def proxy(moto_server) -> Iterator[FaultProxy]:
    p = FaultProxy(moto_server.url).start()
    yield p
    p.stop()


def call(
    port: int, method: str, path: str, body: dict | None = None, token: str = ADMIN_TOKEN
) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


@pytest.mark.slow
def test_every_aws_call_of_the_web_tier_is_allowed_by_its_documented_role(
    runtime, redis_server, moto_server, proxy, tmp_path
):
    seeder = Seeder(moto_server.url)
    seeder.organisation()
    dev = seeder.create_account(demo_account("dev", 0))
    store_account_mapping(runtime)
    sync_iam_account(runtime, dev.id)  # a cached role to request a policy for
    role = dev.role_arn("dev-app")
    port = free_port()
    env = auth_environ(inventory_env(redis_server, moto_server))
    web = CliProcess(env | {"INVENTORY_AWS__ENDPOINT_URL": proxy.url}, tmp_path / "web.log")
    web.spawn("web", "--host", "127.0.0.1", "--port", str(port))
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if call(port, "GET", "/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail(f"web did not start:\n{web.log()}")
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*"}]}
        status, created = call(
            port,
            "POST",
            "/api/v1/requests",
            {"arn": role, "justification": "reads its bucket", "policy_document": policy},
            token=DEV_TOKEN,  # a developer asks, an admin approves (nobody approves their own)
        )
        assert status == 201, created
        assert call(port, "POST", f"/api/v1/requests/{created['id']}/approve", {})[0] == 200
        assert call(port, "GET", "/api/v1/requests")[0] == 200
        status, history = call(port, "GET", f"/api/v1/resource/history?arn={role}")
        assert (status, history["arn"]) == (200, role)  # read from the changes table
        assert call(port, "GET", f"/api/v1/changes?account={dev.id}")[0] == 200
    finally:
        web.stop()

    made = set(proxy.calls)
    allowed = {a.split(":")[1] for a in allowed_actions(policies()["Web tier role"])}
    # The test made the web tier write a request and read the history: not an empty check.
    assert {"PutItem", "UpdateItem", "Query"} <= made
    assert made <= allowed, f"calls the web role does not allow: {sorted(made - allowed)}"
