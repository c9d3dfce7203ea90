"""The ``inventory`` command: config refusal at start-up, in-process sync, the demo end to end."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from inventory.cache.keys import (
    ACCOUNT,
    ALL_ACCOUNTS,
    GLOBAL,
    IAM_KINDS,
    IAM_ROLE,
    TABLE_CHANGES,
    TABLE_POLICY_REQUESTS,
    TABLE_REPLICATION,
    TABLES,
    Partition,
)
from inventory.cli import main
from inventory.demo.seed import MANAGEMENT_ACCOUNT, SPOKE_ROLE, AccountSeed, seed_demo_organisation
from inventory.runtime import Runtime
from tests.servers import free_port

CLI = [sys.executable, "-m", "inventory.cli"]
BAD_CONCURRENCY = (
    "error: invalid configuration (defaults + INVENTORY_* environment):\n"
    "  celery.worker_concurrency = 'lots': "
    "Input should be a valid integer, unable to parse string as an integer\n"
)
BAD_REDIS_URL = (
    "error: invalid configuration (defaults + INVENTORY_* environment):\n"
    "  redis.url = 'http://nope': expected a redis://, rediss:// or unix:// URL\n"
)


# --- start-up refuses a bad configuration ------------------------------------------------------


def run_cli(
    args: list[str], extra_env: dict[str, str]
) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    proc = subprocess.run(
        [*CLI, *args],
        env={**os.environ, **extra_env},
        capture_output=True,
        text=True,
        timeout=20,
        start_new_session=True,
    )
    return proc, time.monotonic() - started


@pytest.mark.parametrize("command", ["worker", "beat", "web"])
def test_start_up_refuses_non_integer_worker_concurrency_with_exit_2(command):
    proc, took = run_cli([command], {"INVENTORY_CELERY__WORKER_CONCURRENCY": "lots"})
    assert (proc.returncode, proc.stdout, proc.stderr) == (2, "", BAD_CONCURRENCY)
    assert "celery.worker_concurrency" in proc.stderr and "'lots'" in proc.stderr
    assert took < 20


@pytest.mark.parametrize("command", ["worker", "beat", "web"])
def test_start_up_refuses_a_non_redis_cache_url_with_exit_2(command):
    proc, took = run_cli([command], {"INVENTORY_REDIS__URL": "http://nope"})
    assert (proc.returncode, proc.stdout, proc.stderr) == (2, "", BAD_REDIS_URL)
    assert "redis.url" in proc.stderr
    assert took < 20


@pytest.mark.parametrize("command", ["worker", "beat", "web"])
def test_start_up_refuses_a_config_file_with_an_unknown_key_with_exit_2(command, tmp_config):
    path = tmp_config("redis:\n  urll: redis://127.0.0.1:6379/2\n")
    proc, took = run_cli(["--config", str(path), command], {})
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (
        f"error: invalid configuration ({path}):\n  redis.urll: unknown key (did you mean 'url'?)\n"
    )
    assert took < 20


def test_start_up_refusal_starts_no_worker_even_with_a_reachable_broker(env, tmp_path):
    """A bad value next to a good broker still exits 2 at once: no worker, no broker traffic."""
    proc, took = run_cli(["worker"], env | {"INVENTORY_CELERY__WORKER_CONCURRENCY": "lots"})
    assert (proc.returncode, proc.stdout) == (2, "")
    assert "celery.worker_concurrency = 'lots'" in proc.stderr
    assert "celery@" not in proc.stderr and "[tasks]" not in proc.stderr
    assert took < 20


# --- in-process commands ------------------------------------------------------------------------


def invoke(env: dict[str, str], *args: str) -> click.testing.Result:
    result = CliRunner().invoke(main, list(args), env=env, prog_name="inventory")
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


@pytest.fixture
def org(runtime: Runtime, moto_server) -> list[AccountSeed]:
    return seed_demo_organisation(moto_server.url)


def test_sync_iam_json_syncs_every_active_account_and_reports_what_redis_holds(env, runtime, org):
    result = invoke(env, "sync", "iam", "--json")

    assert result.exit_code == 0, result.output
    summaries = json.loads(result.stdout)
    accounts = {MANAGEMENT_ACCOUNT, *(s.id for s in org)}
    assert set(summaries) == accounts
    cache = runtime.redis_cache
    for account_id, summary in summaries.items():
        assert summary["account_id"] == account_id
        assert set(summary["partitions"]) == set(IAM_KINDS)
        listed = {k: p["listed"] for k, p in summary["partitions"].items()}
        assert listed == {k: len(cache.items(Partition(k, account_id, GLOBAL))) for k in IAM_KINDS}
        # A first sync creates everything it listed and removes nothing.
        assert {k: p["created"] for k, p in summary["partitions"].items()} == listed
        assert {
            k: (p["updated"], p["removed"], p["complete"]) for k, p in summary["partitions"].items()
        } == dict.fromkeys(IAM_KINDS, (0, 0, True))
        assert summary["skipped"] == []
    for seed in org:
        roles = set(cache.items(Partition(IAM_ROLE, seed.id, GLOBAL)))
        assert roles == {seed.role_arn(r.name) for r in seed.roles} | {seed.role_arn(SPOKE_ROLE)}
    expected = {Partition(k, a, GLOBAL) for k in IAM_KINDS for a in accounts}
    assert set(cache.partitions()) == expected | {Partition(ACCOUNT, ALL_ACCOUNTS, GLOBAL)}


def test_sync_iam_for_one_account_syncs_only_that_account(env, runtime, org):
    dev = org[0]

    result = invoke(env, "sync", "iam", "--account", dev.id, "--json")

    assert result.exit_code == 0, result.output
    summaries = json.loads(result.stdout)
    assert set(summaries) == {dev.id}
    listed = {k: p["listed"] for k, p in summaries[dev.id]["partitions"].items()}
    cache = runtime.redis_cache
    assert listed == {k: len(cache.items(Partition(k, dev.id, GLOBAL))) for k in IAM_KINDS}
    assert listed[IAM_ROLE] == len(dev.roles) + 1
    # Besides that account's IAM, only the account mapping it was checked against (built,
    # as it had never been cached).
    assert set(cache.partitions()) == {Partition(k, dev.id, GLOBAL) for k in IAM_KINDS} | {
        Partition(ACCOUNT, ALL_ACCOUNTS, GLOBAL)
    }


def test_sync_iam_for_an_account_not_in_the_mapping_fails_without_syncing(env, runtime, org):
    result = invoke(env, "sync", "iam", "--account", "999999999999", "--json")

    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "999999999999": {
            "error": "AccountNotSynced: account 999999999999 is not in the account mapping"
        }
    }
    assert [p for p in runtime.redis_cache.partitions() if p.kind != ACCOUNT] == []


def test_sync_iam_table_output_lists_every_account_and_kind(env, runtime, org):
    result = invoke(env, "sync", "iam", "--account", org[1].id)

    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if org[1].id in line]
    assert {kind for line in rows for kind in IAM_KINDS if kind in line} == set(IAM_KINDS)


def test_sync_accounts_json_summarises_the_mapping(env, runtime, org):
    result = invoke(env, "sync", "accounts", "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "accounts": 4,
        "active": 4,
        "created": 4,
        "updated": 0,
        "removed": 0,
    }


def test_accounts_json_lists_the_org_accounts(env, runtime, org):
    result = invoke(env, "accounts", "--json")

    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert [a["id"] for a in listed] == sorted({MANAGEMENT_ACCOUNT, *(s.id for s in org)})
    assert {a["id"]: a["name"] for a in listed if a["id"] != MANAGEMENT_ACCOUNT} == {
        s.id: s.name for s in org
    }
    assert {a["status"] for a in listed} == {"ACTIVE"}
    stored = runtime.redis_cache.items(Partition(ACCOUNT, ALL_ACCOUNTS, GLOBAL))
    assert {a["arn"]: a for a in listed} == stored


def test_tables_create_says_all_tables_exist_when_they_exist(env, runtime):
    result = invoke(env, "tables", "create")
    assert (result.exit_code, result.stdout) == (0, "all tables exist\n")


def test_tables_create_creates_every_table_the_service_uses(env, runtime):
    # IaC-style: nothing is created on start-up, the operator runs `tables create` once.
    fresh = env | {
        "INVENTORY_DYNAMODB__TABLE_PREFIX": "fresh_",
        "INVENTORY_DYNAMODB__CREATE_TABLES": "false",
    }
    wanted = {
        f"fresh_{t}" for t in (*TABLES, TABLE_POLICY_REQUESTS, TABLE_REPLICATION, TABLE_CHANGES)
    }

    first = invoke(fresh, "tables", "create")
    second = invoke(fresh, "tables", "create")

    assert first.exit_code == 0, first.output
    assert first.stdout.startswith("created: ")
    assert set(first.stdout.removeprefix("created: ").strip().split(", ")) == wanted
    dynamodb = runtime.aws.hub_client("dynamodb", "us-east-1")
    existing = set(dynamodb.list_tables()["TableNames"])
    assert {t for t in existing if t.startswith("fresh_")} == wanted
    assert (second.exit_code, second.stdout) == (0, "all tables exist\n")


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            paths += command_paths(command, (*prefix, name))
        else:
            paths.append((*prefix, name))
    return paths


@pytest.mark.parametrize("path", command_paths(main), ids=lambda p: " ".join(p) or "inventory")
def test_help_exits_0_for_every_command(path):
    # --help must work even where no configuration could load.
    result = CliRunner().invoke(
        main, [*path, "--help"], env={"INVENTORY_REDIS__URL": "http://nope"}, prog_name="inventory"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"Usage: {' '.join(('inventory', *path))} ")


# --- the demo end to end ------------------------------------------------------------------------


def proc_stat(pid: int) -> tuple[int, str, int] | None:
    """(parent pid, state, start time) of a live process, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), fields[0], int(fields[19])


def all_processes() -> dict[int, tuple[int, str, int]]:
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := proc_stat(int(entry))) is not None:
            found[int(entry)] = stat
    return found


def descendants(root: int) -> dict[int, int]:
    """Every process below ``root``: pid -> start time (so a reused pid is not mistaken)."""
    procs = all_processes()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _state, _start) in procs.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = {}, list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found[pid] = procs[pid][2]
        todo += children.get(pid, [])
    return found


def still_alive(pids: dict[int, int]) -> dict[int, str]:
    alive = {}
    for pid, start in pids.items():
        stat = proc_stat(pid)
        if stat is not None and stat[2] == start and stat[1] != "Z":
            alive[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return alive


def in_group(pgid: int) -> list[int]:
    found = []
    for pid in all_processes():
        try:
            if os.getpgid(pid) == pgid and proc_stat(pid) and proc_stat(pid)[1] != "Z":
                found.append(pid)
        except ProcessLookupError:
            pass
    return found


def role_of(cmdline: str) -> str:
    """What a demo child is, from its command line."""
    if "redis-server" in cmdline:
        return "redis"
    if "-m moto.server" in cmdline:
        return "moto"
    # The web tier's search indexer (a spawned child) and multiprocessing's resource tracker.
    if "multiprocessing.spawn import spawn_main" in cmdline:
        return "search-indexer"
    if "multiprocessing.resource_tracker" in cmdline:
        return "resource-tracker"
    match = re.search(r"-m inventory\.cli (\w+)", cmdline)
    return match.group(1) if match else cmdline


def api(port: int, path: str, token: str) -> Any:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        return json.loads(response.read())


def start_in_terminal(
    argv: list[str], out_path: Path, columns: int
) -> tuple[subprocess.Popen[bytes], threading.Thread]:
    """Run ``argv`` on a pseudo-terminal ``columns`` wide; a thread copies its output to a file."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.Popen(
        argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True, env=env
    )
    os.close(slave)

    def copy() -> None:
        with out_path.open("wb") as out:
            while True:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every holder of the terminal is gone
                    break
                if not chunk:
                    break
                out.write(chunk)
                out.flush()
        os.close(master)

    reader = threading.Thread(target=copy, daemon=True)
    reader.start()
    return proc, reader


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")


def check_summary_fits_80_columns(raw: str, token: str, port: int) -> None:
    """The summary table whole in 80 columns (kinds as rows), the curl example on one line."""
    lines = ANSI.sub("", raw).splitlines()
    table = [line for line in lines if line.startswith(("┃", "│"))]
    assert table, raw
    assert all(len(line) <= 80 and "…" not in line for line in table), table
    rows = {line.split("│")[1].strip() for line in table if line.startswith("│")}
    assert {"IAM role", "S3 bucket", "SQS queue"} <= rows
    (command,) = [line for line in lines if line.startswith("curl ")]
    # Copied as printed, the command runs: one line however wide the terminal is.
    result = subprocess.run(
        ["bash", "-c", command.replace("curl ", "curl -sf ", 1)],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, (command, result.stderr)
    assert json.loads(result.stdout)["name"] == "dev-app"
    assert f"http://127.0.0.1:{port}/login" in lines


@pytest.mark.slow
@pytest.mark.timeout(480)
def test_demo_serves_the_org_and_ctrl_c_stops_every_process_it_started(tmp_path):
    port = free_port()
    out_path = tmp_path / "demo.out"
    state = tmp_path / "demo"
    started = time.monotonic()
    # An 80-column terminal, as a newcomer's: the demo's output goes to a pseudo-terminal.
    proc, reader = start_in_terminal(
        [*CLI, "demo", "--accounts", "3", "--state-dir", str(state), "--port", str(port)],
        out_path,
        columns=80,
    )
    spawned: dict[int, int] = {}
    try:
        token = None
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            spawned |= descendants(proc.pid)
            match = re.search(r"API token: (\S+)", out_path.read_text(errors="replace"))
            if match:
                token = match.group(1)
                break
            time.sleep(0.5)
        output = out_path.read_text(errors="replace")
        assert token is not None, f"demo exited {proc.poll()} or timed out:\n{output}"
        ready_after = time.monotonic() - started
        # Search already shows everything the summary announced (the demo waited for it).
        search_total = api(port, "/api/v1/policies?limit=1", token)["total"]
        time.sleep(1)  # the lines after the token
        check_summary_fits_80_columns(out_path.read_text(errors="replace"), token, port)

        accounts = api(port, "/api/v1/accounts", token)["accounts"]
        ids = [a["id"] for a in accounts]
        assert len(ids) == 4 and len(set(ids)) == 4
        assert MANAGEMENT_ACCOUNT in ids
        names = {a["name"]: a["id"] for a in accounts if a["id"] != MANAGEMENT_ACCOUNT}
        assert set(names) == {"dev", "staging", "prod"}

        partitions = api(port, "/api/v1/partitions", token)["partitions"]
        roles = {p["account_id"]: p["count"] for p in partitions if p["kind"] == IAM_ROLE}
        assert set(roles) == set(ids)
        for account_id in names.values():
            assert roles[account_id] >= 1, (account_id, roles)
        # dev-app, dev-worker-0 and the spoke role; staging one more worker, prod two more.
        assert {n: roles[i] for n, i in names.items()} == {"dev": 3, "staging": 4, "prod": 5}
        # The policies API (the search index) finds roles from every demo account.
        # It follows the change stream in the background: give it a moment on a busy machine.
        deadline = time.monotonic() + 30
        while True:
            table = api(port, "/api/v1/policies?kind=iam_role&limit=500", token)
            by_account: dict[str, set[str]] = {}
            for row in table["rows"]:
                by_account.setdefault(row["account_id"], set()).add(row["name"])
            if set(by_account) >= set(names.values()) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert {n: by_account[i] for n, i in names.items()} == {
            "dev": {"dev-app", "dev-worker-0", "OrganizationAccountAccessRole"},
            "staging": {
                "staging-app",
                "staging-worker-0",
                "staging-worker-1",
                "OrganizationAccountAccessRole",
            },
            "prod": {
                "prod-app",
                "prod-worker-0",
                "prod-worker-1",
                "prod-worker-2",
                "OrganizationAccountAccessRole",
            },
        }
        assert table["total"] == sum(roles.values())
        # What search found as the summary was printed is all it finds once its index has
        # caught up with the cache (it follows it up to ~15 s behind).
        time.sleep(max(0, 20 - (time.monotonic() - started - ready_after)))
        assert search_total == api(port, "/api/v1/policies?limit=1", token)["total"]
        # The demo changed dev-app's inline policy in AWS and queued its CloudTrail event: the
        # drain refreshed that one role, and the change is in the history with who made it.
        dev_app = f"arn:aws:iam::{names['dev']}:role/dev-app"
        deadline = time.monotonic() + 30
        while True:
            changes = api(port, f"/api/v1/changes?account={names['dev']}", token)["changes"]
            if changes or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert [(c["arn"], c["event_name"]) for c in changes] == [(dev_app, "PutRolePolicy")]
        assert changes[0]["diff"][0]["path"] == "/inline_policies/demo-guardrail"

        dev_app = f"arn:aws:iam::{names['dev']}:role/dev-app"
        role = api(port, "/api/v1/resource?" + urllib.parse.urlencode({"arn": dev_app}), token)
        assert (role["arn"], role["kind"], role["name"], role["account_id"]) == (
            dev_app,
            IAM_ROLE,
            "dev-app",
            names["dev"],
        )
        assert role["tags"] == {"owner": "team-dev", "inventory-groups": "dev-devs@example.com"}

        spawned |= descendants(proc.pid)
        # Everything the demo runs, found by walking parent pids: prefork adds two pool children.
        roles_running = sorted(role_of(c) for c in still_alive(spawned).values())
        assert roles_running == [
            "beat",
            "moto",
            "redis",
            "resource-tracker",
            "search-indexer",
            "web",
            "worker",
            "worker",
            "worker",
        ]
        assert token not in json.dumps([accounts, partitions, role])

        os.kill(proc.pid, signal.SIGINT)
        stop_started = time.monotonic()
        code = proc.wait(60)
        stopped_in = time.monotonic() - stop_started
        output = out_path.read_text(errors="replace")
        assert code == 0, output
        assert "stopped." in output
        assert stopped_in <= 60
        assert in_group(proc.pid) == []
        assert still_alive(spawned) == {}
        print(f"demo ready after {ready_after:.1f}s, stopped in {stopped_in:.1f}s")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        reader.join(10)
        for pid in still_alive(spawned):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
