"""A whole sweep (IAM, S3, SQS, SNS fan-outs) through a real 2-process worker, against its floor.

    .venv/bin/python -m bench sweep [--accounts 100] [--roles 200] [--buckets 20] \
        [--queues 20] [--topics 20] [--concurrency 2]

One moto host holds the organisation (queues and topics in two regions). A real
``inventory worker`` (prefork, ``--concurrency`` processes) runs the four fan-outs; the wall time
runs from sending them until the last per-account task recorded its outcome. The floor is the
same list/describe calls (the fetchers' ``get_*`` functions, through the same clients) with no
processing, made by a pool of as many processes, one (kind, account) unit at a time. Order:
floor, first sweep (empty cache), floor, steady sweep (no AWS change), floor; the floor's median
is reported. Every floor and every sweep starts from fresh processes (a new pool, a new worker),
so each pays its own AssumeRole and client set-up. Peak RSS is each worker process's VmHWM.
Writes bench/results/sweep.md.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time
from contextlib import ExitStack
from typing import Any

from bench.common import (
    BUCKET,
    RESULTS,
    cpu_seconds,
    markdown_table,
    median,
    redis_command_count,
    servers,
    vm_hwm_mb,
    write_result,
)
from bench.synthetic import Sizes
from inventory.tasks.accounts import active_accounts
from tests.processes import Worker

STEMS = ("iam_resources", "s3_buckets", "sqs_queues", "sns_topics")

_runtime: Any = None


def _unit(unit: tuple[str, str]) -> tuple[str, int]:
    """Raw calls of one (kind, account) as its task makes them; returns (stem, resources)."""
    global _runtime
    from bench.kind import raw_floor
    from inventory.runtime import Runtime
    from inventory.settings import load_settings
    from inventory.tasks.accounts import account_record

    if _runtime is None:
        _runtime = Runtime(load_settings(paths=[], environ=dict(os.environ)))
    stem, account_id = unit
    account = account_record(_runtime, account_id)
    if stem == "iam_resources":
        return stem, _iam_calls(_runtime, account)
    return stem, raw_floor(_runtime, stem, account)[1]


def _iam_calls(rt: Any, account: dict[str, Any]) -> int:
    """GetAccountAuthorizationDetails' pages; the items they hold."""
    from inventory.aws.iam import FILTERS

    client = rt.account_client("iam", account, rt.settings.deployment_region)
    paginator = client.get_paginator("get_account_authorization_details")
    count = 0
    for page in paginator.paginate(Filter=FILTERS, PaginationConfig={"PageSize": 1000}):
        count += sum(
            len(page.get(k, ()))
            for k in ("RoleDetailList", "UserDetailList", "GroupDetailList", "Policies")
        )
    return count


def floor(env: dict[str, str], accounts: list[str], processes: int) -> tuple[float, dict[str, int]]:
    """The sweep's raw calls by ``processes`` fresh processes; (seconds, resources by kind)."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        ctx = multiprocessing.get_context("spawn")
        units = [(stem, a) for stem in STEMS for a in accounts]
        with ctx.Pool(processes) as pool:
            pool.map(_noop, range(processes))  # interpreters up before the clock starts
            start = time.perf_counter()
            results = list(pool.imap_unordered(_unit, units, chunksize=1))
            seconds = time.perf_counter() - start
    finally:
        os.environ.clear()
        os.environ.update(saved)
    counts: dict[str, int] = dict.fromkeys(STEMS, 0)
    for stem, count in results:
        counts[stem] += count
    return seconds, counts


def _noop(_: int) -> None:
    import inventory.runtime  # noqa: F401 - import cost is not part of the floor


def sweep(worker: Any, runtime: Any, accounts: list[str], timeout: float) -> dict[str, Any]:
    """Send the four fan-outs; wait until every per-account task has an outcome since then."""
    app = worker.app
    server = runtime.redis
    commands = redis_command_count(server)
    started = time.time()
    for stem in STEMS:
        # Not waited on: the per-account outcomes below say when the sweep is done, and an
        # unwaited result leaves no listener behind to complain when Redis stops.
        app.send_task(f"inventory.cache_{stem}_across_accounts", ignore_result=True)
    wanted = {(f"cache_{stem}_for_account", a) for stem in STEMS for a in accounts}
    deadline = time.monotonic() + timeout
    while True:
        done = {}
        for s in runtime.outcomes.status():
            if (s.task, s.account_id) not in wanted:
                continue
            if (s.last_success or 0) >= started:
                done[(s.task, s.account_id)] = ("ok", s.last_success)
            elif (s.last_failure or 0) >= started:
                done[(s.task, s.account_id)] = ("failed", s.last_failure)
        if len(done) == len(wanted) or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    finished = max((t for _, t in done.values()), default=time.time())
    failed = sorted(f"{task} {acct}" for (task, acct), (o, _) in done.items() if o != "ok")
    missing = sorted(f"{t} {a}" for t, a in wanted - done.keys())
    return {
        "seconds": finished - started,
        "failed": failed,
        "missing": missing,
        "redis_commands": redis_command_count(server) - commands - 1,
    }


def worker_pids(worker: Any) -> list[int]:
    import psutil

    parent = psutil.Process(worker.pid)
    return [parent.pid, *(c.pid for c in parent.children(recursive=True))]


def worker_rss(worker: Any) -> dict[str, float]:
    import psutil

    parent = psutil.Process(worker.pid)
    rss = {f"main {parent.pid}": vm_hwm_mb(parent.pid)}
    for child in parent.children(recursive=True):
        rss[f"child {child.pid}"] = vm_hwm_mb(child.pid)
    return rss


def dynamo_items(runtime: Any) -> int:
    """Items in the inventory tables (a scan count; moto answers quickly)."""
    total = 0
    for model in runtime.dynamo.models.values():
        total += model.count()
    return total


def variant_env(env: dict[str, str], endpoint: str, pool: int) -> dict[str, str]:
    """Each pool size on its own key prefix and tables, so each has a first sweep."""
    return env | {
        "INVENTORY_AWS__ENDPOINT_URL": endpoint,
        "INVENTORY_AWS__DETAIL_READS": str(pool),
        "INVENTORY_REDIS__KEY_PREFIX": f"p{pool}-",  # ("x:" would be YAML)
        "INVENTORY_DYNAMODB__TABLE_PREFIX": f"bench_p{pool}_",
        "INVENTORY_S3__PREFIX": f"p{pool}/",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench sweep")
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--roles", type=int, default=200)
    parser.add_argument("--buckets", type=int, default=20)
    parser.add_argument("--queues", type=int, default=20, help="per region")
    parser.add_argument("--topics", type=int, default=20, help="per region")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--pools", default="1,16", help="aws.detail_reads; 1 = the serial path")
    parser.add_argument("--latency-ms", type=float, default=0, help="added to every AWS answer")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument(
        "--one-floor", action="store_true", help="the floor before the sweeps only (large sizes)"
    )
    parser.add_argument("--output", default="sweep.md")
    args = parser.parse_args(argv)
    pools = [int(p) for p in args.pools.split(",")]

    sizes = Sizes(
        accounts=args.accounts,
        roles=args.roles,
        policies=20,
        users=10,
        groups=3,
        buckets=args.buckets,
        queues=args.queues,
        topics=args.topics,
    )
    with servers(sizes.to_json()) as s, ExitStack() as stack:
        endpoint = s.moto_url
        if args.latency_ms:
            from bench.latency import latency_proxy

            endpoint = stack.enter_context(latency_proxy(s.moto_url, args.latency_ms))
        os.environ.update({k: v for k, v in s.env().items() if k.startswith("AWS_")})
        envs = {pool: variant_env(s.env(), endpoint, pool) for pool in pools}
        runtimes = {pool: prepare(env) for pool, env in envs.items()}
        accounts = [a["id"] for a in active_accounts(runtimes[pools[0]])]
        print(f"{len(accounts)} accounts in the mapping", flush=True)
        bench = Measured(s.moto_pid, args, accounts, envs, runtimes)
        bench.floor()
        for label in ("first", "steady"):
            for pool in pools:
                bench.sweep(label, pool)
            if not args.one_floor:
                bench.floor()
        lines = report(args, sizes, s.seed_seconds, pools, bench, _load())
        write_result(args.output, lines)
    return 0


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def prepare(env: dict[str, str]) -> Any:
    """A Runtime of one variant, with its tables, snapshot bucket and account mapping."""
    from inventory.runtime import Runtime
    from inventory.settings import load_settings
    from inventory.tasks.accounts import store_account_mapping

    runtime = Runtime(load_settings(paths=[], environ=env))
    runtime.ensure_tables()
    hub = runtime.aws.hub_client("s3", "us-east-1")
    if BUCKET not in {b["Name"] for b in hub.list_buckets()["Buckets"]}:
        hub.create_bucket(Bucket=BUCKET)
    store_account_mapping(runtime)
    return runtime


class Measured:
    """Floors and sweeps of one run, with moto's CPU, worker RSS and the load at each."""

    def __init__(
        self,
        moto_pid: int,
        args: argparse.Namespace,
        accounts: list[str],
        envs: dict[int, dict[str, str]],
        runtimes: dict[int, Any],
    ) -> None:
        self.moto_pid = moto_pid
        self.args = args
        self.accounts = accounts
        self.envs = envs
        self.runtimes = runtimes
        self.floors: list[float] = []
        self.counts: dict[str, int] = {}
        self.runs: dict[tuple[str, int], dict[str, Any]] = {}
        self.moto_cpu: dict[str, list[float]] = {"floor": []}

    def floor(self) -> None:
        env = next(iter(self.envs.values()))
        cpu = cpu_seconds(self.moto_pid)
        seconds, self.counts = floor(env, self.accounts, self.args.concurrency)
        self.moto_cpu["floor"].append(cpu_seconds(self.moto_pid) - cpu)
        self.floors.append(seconds)
        print(
            f"floor {seconds:.1f} s ({sum(self.counts.values())} resources), load {_load()}",
            flush=True,
        )

    def sweep(self, label: str, pool: int) -> None:
        """One sweep by a fresh worker (as the floor's processes are fresh each time)."""
        log = RESULTS / ".sweep-worker.log"
        runtime = self.runtimes[pool]
        worker = Worker(self.envs[pool], log, concurrency=self.args.concurrency).start()
        try:
            cpu = cpu_seconds(self.moto_pid)
            run = sweep(worker, runtime, self.accounts, self.args.timeout)
            run["moto_cpu"] = cpu_seconds(self.moto_pid) - cpu
            run["rss"] = worker_rss(worker)
            run["worker_cpu"] = sum(cpu_seconds(p) for p in worker_pids(worker))
            run["load"] = _load()
        finally:
            worker.stop()
            worker.app.close()
            log.unlink(missing_ok=True)
        if label == "first":
            run["dynamo_items"] = dynamo_items(runtime)
        self.runs[(label, pool)] = run
        print(
            f"{label} sweep, detail reads {pool}: {run['seconds']:.1f} s, failed "
            f"{len(run['failed'])}, missing {len(run['missing'])}, worker peak RSS "
            f"{max(run['rss'].values()):.0f} MB, moto CPU {run['moto_cpu']:.0f} s, worker CPU "
            f"{run['worker_cpu']:.0f} s, load {run['load']}",
            flush=True,
        )


def report(
    args: argparse.Namespace,
    sizes: Sizes,
    seed_seconds: float,
    pools: list[int],
    bench: Measured,
    load: str,
) -> list[str]:
    resources = sum(bench.counts.values())
    fl = median(bench.floors)
    proxy = f" behind a proxy holding every AWS answer {args.latency_ms:g} ms (`bench.latency`)"
    when = (
        "measured once, before the sweeps (`--one-floor`)"
        if args.one_floor
        else "measured before, between and after the sweeps (median)"
    )
    values = ", ".join(map(str, pools))
    lines = [
        "# Sweep benchmark",
        "",
        f"{args.accounts} member accounts (+ the management account: {len(bench.accounts)} in "
        f"the mapping) x ({sizes.roles} roles, {sizes.policies} managed policies, {sizes.users} "
        f"users, {sizes.groups} groups, {sizes.buckets} buckets, {sizes.queues} queues and "
        f"{sizes.topics} topics in each of 2 regions), moto in server mode"
        + (proxy if args.latency_ms else "")
        + f"; the IAM, S3, SQS and SNS fan-outs through a real `inventory worker` with "
        f"{args.concurrency} processes, once per `aws.detail_reads` value ({values}; "
        f"1 = the serial path as it was), each on its own keys and tables. Floor: the same "
        f"list/describe calls through the same clients one after another with no processing, "
        f"{args.concurrency} processes, {when}. This machine: 2 cores, shared; load at the "
        f"end {load}. Seeding moto took "
        f"{seed_seconds:.0f} s.",
        "",
    ]
    lines += markdown_table(
        ["sweep", "detail reads", "wall s", "floor s", "wall / floor", "wall / serial",
         "resources/s", "peak worker RSS MB", "failed tasks", "unfinished tasks", "load"],
        _rows(bench, fl, resources),
    )  # fmt: skip
    lines += _notes(bench, resources)
    for key, run in bench.runs.items():
        if run["failed"] or run["missing"]:
            lines += ["", f"{key}: failed {run['failed'][:10]}, unfinished {run['missing'][:10]}"]
    return lines


def _rows(bench: Measured, fl: float, resources: int) -> list[list[Any]]:
    rows = []
    for (label, pool), run in bench.runs.items():
        serial = bench.runs.get((label, 1))
        rows.append(
            [
                label,
                pool,
                f"{run['seconds']:.1f}",
                f"{fl:.1f}",
                f"{run['seconds'] / fl:.2f}x",
                f"{run['seconds'] / serial['seconds']:.2f}x" if serial else "-",
                f"{resources / run['seconds']:.0f}",
                f"{max(run['rss'].values()):.0f}",
                len(run["failed"]),
                len(run["missing"]),
                run["load"],
            ]
        )
    return rows


def _notes(bench: Measured, resources: int) -> list[str]:
    runs = bench.runs
    firsts = ", ".join(
        f"{pool}: {run.get('dynamo_items', 0):,}"
        for (label, pool), run in runs.items()
        if label == "first"
    )
    return [
        "",
        f"Resources per sweep: {resources:,} ("
        + ", ".join(f"{k} {v:,}" for k, v in bench.counts.items())
        + f"). Floors: {', '.join(f'{f:.1f}' for f in bench.floors)} s. DynamoDB items after "
        f"each first sweep: {firsts}. Redis commands: "
        + "; ".join(f"{k[0]} {k[1]}: {r['redis_commands']:,}" for k, r in runs.items())
        + " (worker, broker and results included).",
        "",
        "CPU seconds of the moto server: floors "
        + ", ".join(f"{c:.0f}" for c in bench.moto_cpu["floor"])
        + "; "
        + "; ".join(f"{k[0]} {k[1]}: {r['moto_cpu']:.0f}" for k, r in runs.items())
        + ". CPU seconds of the worker's processes: "
        + "; ".join(f"{k[0]} {k[1]}: {r['worker_cpu']:.0f}" for k, r in runs.items())
        + ".",
        "",
        _peaks(runs),
    ]


def _peaks(runs: dict[tuple[str, int], dict[str, Any]]) -> str:
    return "Peak RSS per worker process (VmHWM, MB): " + "; ".join(
        f"{k[0]} {k[1]}: " + ", ".join(f"{n} {v:.0f}" for n, v in r["rss"].items())
        for k, r in runs.items()
    )
