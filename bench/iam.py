"""IAM sync cost next to the floor set by its one AWS listing, at 500, 2,000 and 5,000 roles.

    .venv/bin/python -m bench iam [--sizes 500,2000,5000] [--reps 3] [--profile 2000]
                                  [--latency-ms 30]

One moto host holds one member account per size (roles with 2 inline + 2 attached policies
and 3 tags; customer managed policies, users and groups). For each size a fresh process runs
``cache_iam_resources_for_account`` in-process (Celery ``apply``), against our own
redis-server, moto's DynamoDB and S3:

* floor: the same GetAccountAuthorizationDetails pages through the same client and paginator,
  with no processing; repeated between the syncs of the same process, median reported;
* first sync (empty cache) and steady sync (nothing changed in AWS), ``--reps`` each on fresh
  key/table prefixes, median reported;
* AWS calls by operation (botocore ``before-call`` hook on every client), DynamoDB items written
  (BatchWriteItem request sizes), Redis commands (INFO commandstats delta), S3 objects
  (PutObject calls), and the process's peak RSS right after its first sync.

A warm-up child (unreported) runs before the measured ones: the first child against a fresh
moto measured slower throughout, floors included.

With ``--latency-ms N`` every AWS answer (IAM, DynamoDB and S3 alike, floors included) is held
N ms by tests/faultproxy.py in a process of its own (bench/latency.py), as real AWS takes tens
of milliseconds where moto on loopback takes none.

Writes bench/results/iam.md (iam-<N>ms.md with a latency).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import (
    BUCKET,
    RESULTS,
    AwsCalls,
    calls_since,
    cpu_seconds,
    markdown_table,
    max_rss_mb,
    median,
    redis_command_count,
    servers,
    write_result,
)
from bench.synthetic import Sizes

TASK = "inventory.cache_iam_resources_for_account"
SIZES = Sizes(policies=50, users=20, groups=5)


def authorization_details_fetch(client: Any) -> int:
    """Exactly the listing's GetAccountAuthorizationDetails calls
    (inventory.aws.iam.get_authorization_details) and no more."""
    from inventory.aws.iam import FILTERS

    pages = 0
    paginator = client.get_paginator("get_account_authorization_details")
    for _page in paginator.paginate(Filter=FILTERS, PaginationConfig={"PageSize": 1000}):
        pages += 1
    return pages


def list_roles_fetch(client: Any) -> int:
    """Exactly the ListRoles calls for the roles' settings (get_role_settings) and no more."""
    pages = 0
    for _page in client.get_paginator("list_roles").paginate(PaginationConfig={"PageSize": 1000}):
        pages += 1
    return pages


def child(account_id: str, reps: int, profile: str | None) -> dict[str, Any]:
    """Runs in a fresh process: setup, then floors interleaved with first and steady syncs."""
    counter = AwsCalls().install()
    import redis

    from inventory.celery_app import create_app
    from inventory.runtime import Runtime
    from inventory.settings import load_settings
    from inventory.tasks.accounts import account_record, store_account_mapping

    base_env = dict(os.environ)
    app = create_app(load_settings(paths=[], environ=base_env))
    task = app.tasks[TASK]
    shared_aws = app.runtime.aws
    runtimes = []
    # The warm-up child's own prefixes: a measured first sync must find nothing cached.
    warm = base_env.get("BENCH_WARM_UP", "")
    for rep in range(reps):
        env = base_env | {
            "INVENTORY_DYNAMODB__TABLE_PREFIX": f"bench{warm}{rep}_",
            "INVENTORY_REDIS__KEY_PREFIX": f"b{warm}{rep}.",
            "INVENTORY_S3__PREFIX": f"rep{warm}{rep}/",
        }
        runtime = Runtime(load_settings(paths=[], environ=env))
        runtime.__dict__["aws"] = shared_aws  # one set of sessions, as in one worker process
        runtime.ensure_tables()
        # Beat keeps the mapping cached; without it the first sync would build it and the
        # figures would measure that too.
        store_account_mapping(runtime)
        runtimes.append(runtime)
    server = redis.Redis.from_url(base_env["INVENTORY_REDIS__URL"])
    region = app.runtime.settings.deployment_region
    client = app.runtime.account_client("iam", account_record(app.runtime, account_id), region)
    # Warm-up: AssumeRole, the client, botocore's IAM model (once per process).
    authorization_details_fetch(client)
    list_roles_fetch(client)
    rss_setup = max_rss_mb()
    from inventory.celery_signals import freeze_start_up_heap

    freeze_start_up_heap()  # as every worker pool process does when it starts

    floors: list[float] = []  # GetAccountAuthorizationDetails alone (the floor)
    list_roles: list[float] = []  # ListRoles alone (the sync reads it beside the former)
    gc_seconds = [0.0]  # time spent in the cyclic garbage collector, for the report
    gc_started = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
        else:
            gc_seconds[0] += time.perf_counter() - gc_started[0]

    gc.callbacks.append(on_gc)

    moto_pid = int(base_env["BENCH_MOTO_PID"])
    moto_cpu: dict[str, list[float]] = {"floor": [], "list_roles": [], "first": [], "steady": []}

    def floor() -> None:
        for fetch, seconds, cpu_used in (
            (authorization_details_fetch, floors, moto_cpu["floor"]),
            (list_roles_fetch, list_roles, moto_cpu["list_roles"]),
        ):
            cpu, start = cpu_seconds(moto_pid), time.perf_counter()
            fetch(client)
            seconds.append(time.perf_counter() - start)
            cpu_used.append(cpu_seconds(moto_pid) - cpu)

    def sync(rep: int) -> dict[str, Any]:
        app.runtime = runtimes[rep]
        before, commands = counter.snapshot(), redis_command_count(server)
        gc_before = gc_seconds[0]
        cpu = cpu_seconds(moto_pid)
        start = time.perf_counter()
        result = task.apply(args=[account_id]).get()
        seconds = time.perf_counter() - start
        moto_cpu["first" if len(first) < reps else "steady"].append(cpu_seconds(moto_pid) - cpu)
        commands = redis_command_count(server) - commands - 1  # the first INFO
        used = calls_since(before, counter.snapshot())
        return {
            "seconds": seconds,
            "gc_seconds": gc_seconds[0] - gc_before,
            "redis_commands": commands,
            **used,
            "result": result,
        }

    profiler = None
    if profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.001)
    first, steady = [], []
    rss_first = 0.0
    for rep in range(reps):
        floor()
        if profiler is not None and rep == 0:
            profiler.start()
        first.append(sync(rep))
        if profiler is not None and rep == 0:
            profiler.stop()
            Path(profile + ".first.txt").write_text(profiler.output_text(unicode=True))
            profiler.reset()
        if rep == 0:
            rss_first = max_rss_mb()
    for rep in range(reps):
        floor()
        if profiler is not None and rep == 0:
            profiler.start()
        steady.append(sync(rep))
        if profiler is not None and rep == 0:
            profiler.stop()
            Path(profile + ".steady.txt").write_text(profiler.output_text(unicode=True))
    floor()
    return {
        "floors": floors,
        "list_roles": list_roles,
        "first": first,
        "steady": steady,
        "rss_setup_mb": rss_setup,
        "rss_first_mb": rss_first,
        "moto_cpu": moto_cpu,
    }


def run_child(env: dict[str, str], account: dict[str, Any], reps: int, profile: str | None):
    out = Path(env["BENCH_OUT"])
    argv = [sys.executable, "-m", "bench.iam", "--child", account["id"], "--reps", str(reps)]
    if profile:
        argv += ["--profile-out", profile]
    subprocess.run(argv, env=env, check=True, cwd=Path(__file__).resolve().parent.parent)
    return json.loads(out.read_text())


def summarise(size: int, data: dict[str, Any]) -> dict[str, Any]:
    floor = median(data["floors"])
    first = data["first"][0]
    steady = data["steady"][0]
    first_items = first["batch_items"]
    if any(r["batch_items"] == 0 for r in data["first"]):
        raise SystemExit(f"{size} roles: a first sync wrote nothing (its prefixes were in use)")
    return {
        "roles": size,
        "floor_s": floor,
        "floors": data["floors"],
        "list_roles_s": median(data["list_roles"]),
        "first_s": median([r["seconds"] for r in data["first"]]),
        "firsts": [r["seconds"] for r in data["first"]],
        "first_gc_s": median([r["gc_seconds"] for r in data["first"]]),
        "steady_s": median([r["seconds"] for r in data["steady"]]),
        "steadies": [r["seconds"] for r in data["steady"]],
        "first_calls": first["calls"],
        "steady_calls": steady["calls"],
        "first_items": first_items,
        "first_batches": first["calls"].get("dynamodb:BatchWriteItem", 0),
        "batch_limit": math.ceil(first_items / 25),
        "steady_items": steady["batch_items"],
        "first_s3": first["calls"].get("s3:PutObject", 0),
        "steady_s3": steady["calls"].get("s3:PutObject", 0),
        "first_redis": first["redis_commands"],
        "steady_redis": steady["redis_commands"],
        "rss_setup_mb": data["rss_setup_mb"],
        "rss_first_mb": data["rss_first_mb"],
        "listed": {k: v["listed"] for k, v in first["result"]["partitions"].items()},
        "moto_cpu": {k: median(v) for k, v in data["moto_cpu"].items()},
    }


def report(
    rows: list[dict[str, Any]], reps: int, seed_seconds: float, latency: float = 0
) -> list[str]:
    held = f", every AWS answer held {latency:g} ms by a proxy" if latency else ""
    lines = [
        "# IAM sync benchmark" + (f", {latency:g} ms per AWS answer" if latency else ""),
        "",
        f"`cache_iam_resources_for_account` run in-process, one member account per size, "
        f"against moto (server mode, HTTP{held}), our own redis-server, moto DynamoDB and S3; this "
        f"machine (2 cores, shared). Median of {reps} first syncs (each on fresh tables and "
        f"keys) and {reps} steady syncs (no AWS change); the floor is the same "
        f"GetAccountAuthorizationDetails pages through the same client with no processing, "
        f"measured {2 * reps + 1} times between the syncs of the same process (median). "
        f"The sync also reads ListRoles (the roles' descriptions and session limits), beside "
        f"those pages; its time alone is the ListRoles column, and the last ratio is against "
        f"both listings one after the other. "
        f"Seeding moto took {seed_seconds:.0f} s.",
        "",
        "## Wall time against the floor",
        "",
    ]
    table = []
    for r in rows:
        table.append(
            [
                f"{r['roles']:,}",
                f"{r['floor_s']:.2f}",
                f"{r['first_s']:.2f}",
                f"{r['first_s'] / r['floor_s']:.2f}x",
                f"{r['steady_s']:.2f}",
                f"{r['steady_s'] / r['floor_s']:.2f}x",
                f"{r['list_roles_s']:.2f}",
                f"{r['first_s'] / (r['floor_s'] + r['list_roles_s']):.2f}x",
                f"{r['rss_first_mb']:.0f}",
            ]
        )
    lines += markdown_table(
        ["roles", "floor s", "first sync s", "first / floor", "steady s", "steady / floor",
         "ListRoles s", "first / both listings", "peak RSS MB"],
        table,
    )  # fmt: skip
    lines += ["", "## Writes", ""]
    table = []
    for r in rows:
        table.append(
            [
                f"{r['roles']:,}",
                ", ".join(f"{k} {v:,}" for k, v in sorted(r["listed"].items())),
                f"{r['first_items']:,}",
                f"{r['first_batches']} (limit {r['batch_limit']})",
                r["first_redis"],
                r["first_s3"],
                r["steady_items"],
                r["steady_calls"].get("dynamodb:BatchWriteItem", 0),
                r["steady_redis"],
                r["steady_s3"],
            ]
        )
    lines += markdown_table(
        ["roles", "listed", "first: DynamoDB items", "first: BatchWriteItem calls",
         "first: Redis commands", "first: S3 objects", "steady: DynamoDB items",
         "steady: BatchWriteItem calls", "steady: Redis commands", "steady: S3 objects"],
        table,
    )  # fmt: skip
    lines += ["", "## AWS calls by operation (one sync)", ""]
    table = []
    for r in rows:
        for label, calls in (("first", r["first_calls"]), ("steady", r["steady_calls"])):
            table.append(
                [f"{r['roles']:,}", label, ", ".join(f"{k} {v}" for k, v in calls.items())]
            )
    lines += markdown_table(["roles", "sync", "calls"], table)
    lines += ["", "## Every measurement (seconds)", ""]
    table = [
        [
            f"{r['roles']:,}",
            " ".join(f"{x:.2f}" for x in r["floors"]),
            " ".join(f"{x:.2f}" for x in r["firsts"]),
            " ".join(f"{x:.2f}" for x in r["steadies"]),
        ]
        for r in rows
    ]
    lines += markdown_table(["roles", "floors", "first syncs", "steady syncs"], table)
    lines += [
        "",
        "CPU seconds of the moto server (median): "
        + ", ".join(
            f"{r['roles']:,} roles: floor {r['moto_cpu']['floor']:.2f}, ListRoles "
            f"{r['moto_cpu']['list_roles']:.2f}, first sync "
            f"{r['moto_cpu']['first']:.2f}, steady sync {r['moto_cpu']['steady']:.2f}"
            for r in rows
        )
        + ". moto serves every call on one core, so its CPU during a sync bounds the sync's "
        "wall time from below on this machine.",
        "",
        "Time in Python's cyclic garbage collector during a first sync (median): "
        + ", ".join(f"{r['roles']:,} roles {r['first_gc_s']:.2f} s" for r in rows)
        + ".",
        "",
        "Peak RSS is the sync process's ru_maxrss right after its first sync (imports, Celery "
        f"app and clients included; {rows[0]['rss_setup_mb']:.0f} MB before any sync at the "
        "first size).",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench iam")
    parser.add_argument("--sizes", default="500,2000,5000", help="roles per account")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=0, help="added to every AWS answer")
    parser.add_argument("--profile", type=int, default=None, help="pyinstrument this size")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        data = child(args.child, args.reps, args.profile_out)
        Path(os.environ["BENCH_OUT"]).write_text(json.dumps(data))
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    with servers(SIZES.to_json(), roles=sizes) as s, _endpoint(s.moto_url, args.latency_ms) as url:
        import boto3

        boto3.client(
            "s3", endpoint_url=s.moto_url, region_name="us-east-1", **_fake_credentials()
        ).create_bucket(Bucket=BUCKET)
        # The first child against a fresh moto measured slower in everything, its floors
        # included (about a second at 2,000 roles): a warm-up child runs first, unreported.
        warm = s.env(
            BENCH_MOTO_PID=str(s.moto_pid),
            BENCH_OUT=str(RESULTS / ".iam-warm-up.json"),
            BENCH_WARM_UP="w",
            INVENTORY_AWS__ENDPOINT_URL=url,
        )
        print("warm-up child ...", flush=True)
        run_child(warm, s.accounts[0], 1, None)
        (RESULTS / ".iam-warm-up.json").unlink()
        for size, account in zip(sizes, s.accounts, strict=True):
            out = RESULTS / f".iam-{size}.json"
            profile = str(RESULTS / f"profile-iam-{size}") if args.profile == size else None
            env = s.env(
                BENCH_OUT=str(out), BENCH_MOTO_PID=str(s.moto_pid), INVENTORY_AWS__ENDPOINT_URL=url
            )
            print(f"{size} roles: account {account['id']} ...", flush=True)
            data = run_child(env, account, args.reps, profile)
            out.unlink()
            rows.append(summarise(size, data))
            r = rows[-1]
            print(
                f"  floor {r['floor_s']:.2f}s first {r['first_s']:.2f}s "
                f"steady {r['steady_s']:.2f}s rss {r['rss_first_mb']:.0f}MB",
                flush=True,
            )
        name = f"iam-{args.latency_ms:g}ms.md" if args.latency_ms else "iam.md"
        write_result(name, report(rows, args.reps, s.seed_seconds, args.latency_ms))
    return 0


@contextmanager
def _endpoint(moto_url: str, latency_ms: float) -> Iterator[str]:
    """moto's URL, or a latency proxy's in front of it."""
    if not latency_ms:
        yield moto_url
        return
    from bench.latency import latency_proxy

    with latency_proxy(moto_url, latency_ms) as url:
        yield url


def _fake_credentials() -> dict[str, str]:
    return {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}


if __name__ == "__main__":
    raise SystemExit(main())
