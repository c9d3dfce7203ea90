"""One kind's sync in one account: today's serial detail reads beside the pool, one run.

    .venv/bin/python -m bench kind s3 --buckets 2000 [--pools 1,16] [--latency-ms 0,30]
    .venv/bin/python -m bench kind sqs --queues 500     (per region: us-east-1 and us-west-2)
    .venv/bin/python -m bench kind sns --topics 500

One moto host holds one member account with that many resources. For each latency (0: moto on
loopback; N: every AWS answer held N ms by tests/faultproxy.py in a process of its own, as
real AWS answers in tens of milliseconds) and each pool size (``aws.detail_reads``; 1 is
today's serial path), this process runs the kind's per-account sync (``sync_kind``, the
task's own code) on an empty cache (first) and again with nothing changed (steady), each pool
size on its own key prefix and tables. The floor is the same raw list/detail calls (the
fetcher's ``get_*`` functions, through the same kind of client) one after another with no
processing, before and after the syncs (median). AWS calls are counted per sync.
Writes bench/results/kind-<kind>.md.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from bench.common import (
    BUCKET,
    AwsCalls,
    calls_since,
    markdown_table,
    max_rss_mb,
    median,
    servers,
    write_result,
)
from bench.synthetic import Sizes

STEMS = {"s3": "s3_buckets", "sqs": "sqs_queues", "sns": "sns_topics"}


def raw_floor(rt: Any, stem: str, account: dict[str, Any]) -> tuple[float, int]:
    """The kind's raw calls one after another, no processing: (seconds, resources)."""
    from inventory.aws import s3, sns, sqs

    home = rt.settings.deployment_region
    start = time.perf_counter()
    count = 0
    if stem == "s3_buckets":
        client = rt.account_client("s3", account, home)
        for raw in s3.get_buckets(client):
            s3.get_bucket_details(client, raw["Name"], raw.get("BucketRegion"))
            count += 1
    for region in rt.settings.aws.regions if stem != "s3_buckets" else ():
        if stem == "sqs_queues":
            client = rt.account_client("sqs", account, region)
            for url in sqs.get_queue_urls(client):
                sqs.get_queue(client, url)
                count += 1
        else:
            client = rt.account_client("sns", account, region)
            for arn in sns.get_topic_arns(client):
                sns.get_topic(client, arn)
                count += 1
    return time.perf_counter() - start, count


def runtime_for(env: dict[str, str], endpoint: str, pool: int, label: str) -> Any:
    """A Runtime reading AWS through ``endpoint`` with ``pool`` detail reads, own namespace."""
    from inventory.runtime import Runtime
    from inventory.settings import load_settings

    env = env | {
        "INVENTORY_AWS__ENDPOINT_URL": endpoint,
        "INVENTORY_AWS__DETAIL_READS": str(pool),
        "INVENTORY_REDIS__KEY_PREFIX": f"{label}-",  # ("x:" would be YAML)
        "INVENTORY_DYNAMODB__TABLE_PREFIX": f"bench_{label}_",
        "INVENTORY_S3__PREFIX": f"{label}/",
    }
    rt = Runtime(load_settings(paths=[], environ=env))
    rt.ensure_tables()
    return rt


def measure(
    env: dict[str, str],
    endpoint: str,
    latency: float,
    pools: list[int],
    stem: str,
    account_id: str,
    reps: int,
    counter: AwsCalls,
    first: bool = True,
    floor_after: bool = True,
) -> dict[str, Any]:
    """Floor, then each pool's first and steady syncs (interleaved), then the floor again.

    Without ``first`` the first syncs run untimed (steady syncs need them)."""
    from inventory.registry import BY_STEM
    from inventory.tasks.accounts import account_record, store_account_mapping
    from inventory.tasks.resources import sync_kind

    runtimes = {}
    for pool in pools:
        rt = runtime_for(env, endpoint, pool, f"l{latency:g}p{pool}")
        store_account_mapping(rt)
        runtimes[pool] = rt
    account = account_record(runtimes[pools[0]], account_id)
    floors: list[float] = []
    resources = 0
    seconds, resources = raw_floor(runtimes[pools[0]], stem, account)
    floors.append(seconds)
    print(f"latency {latency:g} ms: floor {seconds:.2f} s ({resources} resources)", flush=True)
    runs: dict[int, dict[str, list[float]]] = {p: {"first": [], "steady": []} for p in pools}
    calls: dict[int, dict[str, Any]] = {}
    if not first:
        for pool in pools:
            sync_kind(runtimes[pool], BY_STEM[stem], account_id)
    for phase in [*(["first"] if first else []), *["steady"] * reps]:
        for pool in pools:
            before = counter.snapshot()
            start = time.perf_counter()
            summary = sync_kind(runtimes[pool], BY_STEM[stem], account_id)
            runs[pool][phase].append(time.perf_counter() - start)
            calls.setdefault(pool, {})[phase] = calls_since(before, counter.snapshot()) | {
                "dynamo_writes": summary["dynamo_writes"],
                "skipped": len(summary["skipped"]),
            }
            print(
                f"latency {latency:g} ms, pool {pool}: {phase} {runs[pool][phase][-1]:.2f} s",
                flush=True,
            )
    if floor_after:
        seconds, _ = raw_floor(runtimes[pools[0]], stem, account)
        floors.append(seconds)
        print(f"latency {latency:g} ms: floor {seconds:.2f} s", flush=True)
    return {"floors": floors, "resources": resources, "runs": runs, "calls": calls}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench kind")
    parser.add_argument("kind", choices=sorted(STEMS))
    parser.add_argument("--buckets", type=int, default=2000)
    parser.add_argument("--queues", type=int, default=500, help="per region")
    parser.add_argument("--topics", type=int, default=500, help="per region")
    parser.add_argument("--pools", default="1,16", help="aws.detail_reads values; 1 = serial")
    parser.add_argument("--latency-ms", default="0,30", help="added to every AWS answer")
    parser.add_argument("--reps", type=int, default=1, help="steady syncs per pool size")
    parser.add_argument("--no-first", action="store_true", help="time steady syncs only")
    parser.add_argument("--one-floor", action="store_true", help="the floor before only")
    args = parser.parse_args(argv)
    stem = STEMS[args.kind]
    pools = [int(p) for p in args.pools.split(",")]
    latencies = [float(x) for x in args.latency_ms.split(",")]
    sizes = Sizes(
        accounts=1,
        roles=5,
        policies=2,
        users=1,
        groups=1,
        buckets=args.buckets if stem == "s3_buckets" else 0,
        queues=args.queues if stem == "sqs_queues" else 0,
        topics=args.topics if stem == "sns_topics" else 0,
    )
    from bench.latency import latency_proxy

    counter = AwsCalls().install()
    options = (not args.no_first, not args.one_floor)
    results: dict[float, dict[str, Any]] = {}
    load: list[str] = []
    with servers(sizes.to_json()) as s:
        env = s.env()
        os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
        account_id = s.accounts[0]["id"]
        runtime_for(env, s.moto_url, 1, "setup").aws.hub_client("s3", "us-east-1").create_bucket(
            Bucket=BUCKET
        )
        for latency in latencies:
            load.append(_load())
            if latency:
                with latency_proxy(s.moto_url, latency) as url:
                    results[latency] = measure(
                        env, url, latency, pools, stem, account_id, args.reps, counter, *options
                    )
            else:
                results[latency] = measure(
                    env, s.moto_url, latency, pools, stem, account_id, args.reps, counter, *options
                )
        load.append(_load())
    write_result(f"kind-{args.kind}.md", report(args, stem, pools, results, load))
    return 0


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def report(
    args: argparse.Namespace,
    stem: str,
    pools: list[int],
    results: dict[float, dict[str, Any]],
    load: list[str],
) -> list[str]:
    count = next(iter(results.values()))["resources"]
    when = "measured before the syncs only" if args.one_floor else "median of before and after"
    lines = [
        f"# Per-kind benchmark: {stem}",
        "",
        f"One member account with {count:,} resources ({stem}), moto in server mode; this "
        f"process runs `sync_kind` (the task's code) per pool size (`aws.detail_reads`; 1 = "
        f"the serial path as it was). Floor: the same raw calls one after another, no "
        f"processing ({when}). Load average (1, 5, 15 min) at each "
        f"latency's start and at the end: {'; '.join(load)}. This machine: 2 cores, shared. "
        f"Peak RSS of this process (syncs, clients and pools): {max_rss_mb():.0f} MB.",
        "",
    ]
    rows = [_row(latency, pool, result) for latency, result in results.items() for pool in pools]
    lines += markdown_table(
        ["latency ms", "detail reads", "first s", "steady s", "raw floor s",
         "first / steady vs floor", "first / steady vs serial", "AWS reads (steady)",
         "DynamoDB writes (steady)"],
        rows,
    )  # fmt: skip
    lines += ["", "Calls per steady sync by operation (pool, latency):", ""]
    for latency, result in results.items():
        for pool in pools:
            calls = result["calls"][pool]["steady"]["calls"]
            lines.append(
                f"- {latency:g} ms, {pool}: " + ", ".join(f"{k} {v}" for k, v in calls.items())
            )
    return lines


def _row(latency: float, pool: int, result: dict[str, Any]) -> list[Any]:
    """One pool size at one latency: its times, against the floor and the serial path."""
    nan = float("nan")
    floor = median(result["floors"])
    runs, serial = result["runs"][pool], result["runs"].get(1)
    first = runs["first"][0] if runs["first"] else nan
    steady = median(runs["steady"])
    steady_calls = result["calls"][pool]["steady"]
    against_serial = "-"
    if serial:
        serial_first = serial["first"][0] if serial["first"] else nan
        against_serial = f"{first / serial_first:.2f}x / {steady / median(serial['steady']):.2f}x"
    return [
        f"{latency:g}",
        pool,
        f"{first:.2f}",
        f"{steady:.2f}",
        f"{floor:.2f}",
        f"{first / floor:.2f}x / {steady / floor:.2f}x",
        against_serial,
        sum(v for k, v in steady_calls["calls"].items() if not k.startswith(("dynamodb", "sts"))),
        steady_calls["dynamo_writes"],
    ]
