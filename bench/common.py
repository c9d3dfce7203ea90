"""What every benchmark needs: its own redis-server and moto server, counters, Markdown tables."""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from tests.servers import wait_started

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
BROKER_DB, RESULTS_DB, CACHE_DB = 0, 1, 2
BUCKET = "inventory-bench-snapshots"
# Fake credentials: a benchmark must never reach a real AWS account.
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def stop(proc: subprocess.Popen | None) -> None:
    """Stop one process we started, by its PID."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class Servers:
    """A redis-server and a seeded moto server, both on free ports."""

    redis_port: int
    moto_port: int
    accounts: list[dict[str, Any]]
    seed_seconds: float
    procs: list[subprocess.Popen] = field(default_factory=list)

    @property
    def moto_pid(self) -> int:
        return self.procs[1].pid

    @property
    def moto_url(self) -> str:
        return f"http://127.0.0.1:{self.moto_port}"

    def redis_url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/{db}"

    def redis(self, db: int = CACHE_DB) -> redis.Redis:
        return redis.Redis(port=self.redis_port, db=db, decode_responses=True)

    def env(self, **extra: str) -> dict[str, str]:
        """INVENTORY_* (and fake AWS) variables pointing every part of the service at us."""
        from inventory.demo.seed import MANAGEMENT_ACCOUNT, SPOKE_ROLE

        base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "INVENTORY_"))}
        return (
            base
            | AWS_ENV
            | {
                "INVENTORY_CELERY__BROKER_URL": self.redis_url(BROKER_DB),
                "INVENTORY_CELERY__RESULT_BACKEND": self.redis_url(RESULTS_DB),
                "INVENTORY_REDIS__URL": self.redis_url(CACHE_DB),
                "INVENTORY_AWS__ENDPOINT_URL": self.moto_url,
                "INVENTORY_AWS__ROLE_NAME": SPOKE_ROLE,
                "INVENTORY_AWS__REGIONS": "[us-east-1, us-west-2]",
                "INVENTORY_ACCOUNTS__ORGANIZATIONS__ENABLED": "true",
                "INVENTORY_ACCOUNTS__ORGANIZATIONS__MANAGEMENT_ACCOUNT_ID": MANAGEMENT_ACCOUNT,
                "INVENTORY_S3__BUCKET": BUCKET,
                "INVENTORY_DYNAMODB__TABLE_PREFIX": "bench_",
                "PYTHONPATH": str(ROOT),
            }
            | extra
        )


@contextmanager
def servers(
    sizes_json: str, roles: list[int] | None = None, timeout: float = 1800
) -> Iterator[Servers]:
    """Start redis-server and the self-seeding moto host; stop both (by PID) on the way out."""
    from inventory.demo.runner import free_port, redis_binary

    procs: list[subprocess.Popen] = []
    workdir = Path(tempfile.mkdtemp(prefix="inventory-bench-"))
    try:
        redis_port, moto_port = free_port(), free_port()
        procs.append(
            subprocess.Popen(
                [redis_binary(), "--port", str(redis_port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--dir", str(workdir)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )  # fmt: skip
        client = redis.Redis(port=redis_port, socket_connect_timeout=0.5)
        wait_started(lambda: bool(client.ping()), "redis-server", procs[0], 30)
        ready = workdir / "moto-ready.json"
        argv = [sys.executable, "-m", "bench.motohost", "--port", str(moto_port)]
        argv += ["--sizes", sizes_json, "--ready", str(ready)]
        if roles:
            argv += ["--roles", ",".join(str(r) for r in roles)]
        moto_log = (workdir / "moto.log").open("wb")
        procs.append(
            subprocess.Popen(
                argv,
                cwd=ROOT,
                env={**os.environ, **AWS_ENV, "PYTHONPATH": str(ROOT)},
                stdout=moto_log,
                stderr=subprocess.STDOUT,
            )
        )
        print(f"seeding moto (log: {workdir / 'moto.log'}) ...", flush=True)
        wait_started(ready.exists, "moto host", procs[1], timeout)
        info = json.loads(ready.read_text())
        print(f"seeded {len(info['accounts'])} accounts in {info['seconds']} s", flush=True)
        yield Servers(redis_port, moto_port, info["accounts"], info["seconds"], procs)
    finally:
        for proc in reversed(procs):
            stop(proc)


class AwsCalls:
    """AWS calls by service and operation, through a botocore event hook on every client.

    Every botocore client (boto3's and PynamoDB's) is created by ``Session.create_client``; the
    hook registers ``before-call`` on each new client, and counts BatchWriteItem items too.
    """

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.batch_items = 0

    def install(self) -> AwsCalls:
        import botocore.session

        original = botocore.session.Session.create_client
        counter = self

        def create_client(session: Any, *args: Any, **kwargs: Any) -> Any:
            client = original(session, *args, **kwargs)
            client.meta.events.register("before-call.*.*", counter._before_call)
            client.meta.events.register(
                "before-parameter-build.dynamodb.BatchWriteItem", counter._batch
            )
            return client

        botocore.session.Session.create_client = create_client  # type: ignore[method-assign]
        return self

    def _before_call(self, model: Any, **_: Any) -> None:
        self.calls[f"{model.service_model.service_name}:{model.name}"] += 1

    def _batch(self, params: dict[str, Any], **_: Any) -> None:
        self.batch_items += sum(len(v) for v in params.get("RequestItems", {}).values())

    def snapshot(self) -> tuple[Counter[str], int]:
        return Counter(self.calls), self.batch_items


def calls_since(before: tuple[Counter[str], int], now: tuple[Counter[str], int]) -> dict[str, Any]:
    calls = now[0] - before[0]
    return {"calls": dict(sorted(calls.items())), "batch_items": now[1] - before[1]}


def redis_command_count(client: redis.Redis) -> int:
    """Total commands the server has run (INFO commandstats; a delta includes the first INFO)."""
    stats = client.info("commandstats")
    return sum(int(v["calls"]) for v in stats.values())


def max_rss_mb() -> float:
    """This process's peak RSS (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def vm_hwm_mb(pid: int) -> float:
    """Peak RSS of another process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process (and its reaped children) has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(f) for f in fields[11:15]) / ticks


def median(values: list[float]) -> float:
    return statistics.median(values)


def markdown_table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def write_result(name: str, lines: list[str]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    path.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"written: {path}")
    return path
