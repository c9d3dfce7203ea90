"""Web tier latency at scale: policies-table pages and typeahead over a large synthetic cache.

    .venv/bin/python bench/web.py --rows 200000 --arns 1000000

Starts its own redis-server on a free port, writes the rows through the real PoliciesTable
(which also feeds the change stream) and the ARNs as real partitions, loads the web tier's
search index, then times the queries the handlers run (server side, no network) and a sample
through real HTTP. Writes a Markdown table to bench/results/web.md.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from inventory.cache.keys import Keys, Partition  # noqa: E402
from inventory.cache.policies_table import PoliciesTable  # noqa: E402
from inventory.demo.runner import free_port, redis_binary  # noqa: E402
from inventory.web.search import PolicySearch, Query  # noqa: E402

KINDS = ["iam_role", "iam_user", "iam_group", "iam_policy", "s3_bucket", "sqs_queue", "sns_topic"]
REGIONS = ["global", "us-east-1", "us-west-2", "eu-west-1"]
WORDS = [
    "api",
    "batch",
    "billing",
    "data",
    "deploy",
    "etl",
    "ingest",
    "jobs",
    "ml",
    "ops",
    "payments",
    "reports",
    "search",
    "sync",
    "web",
    "worker",
]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def synthetic_row(i: int, accounts: list[str], rng: random.Random) -> dict:
    kind = KINDS[i % len(KINDS)]
    account = accounts[i % len(accounts)]
    name = f"{rng.choice(WORDS)}-{rng.choice(WORDS)}-{i}"
    region = "global" if kind.startswith("iam") or kind == "s3_bucket" else rng.choice(REGIONS[1:])
    arn = f"arn:aws:{kind.split('_')[0]}::{account}:{kind}/{name}"
    return {
        "arn": arn,
        "name": name,
        "kind": kind,
        "account_id": account,
        "account_name": f"account-{account[-3:]}",
        "region": region,
        "tags": {"owner": f"team-{rng.choice(WORDS)}", "env": rng.choice(["prod", "dev"])},
        "errors": rng.choice([0] * 9 + [rng.randint(1, 50)]),
        "owner": None,
        "template": None,
        "last_updated": 1.7e9 + rng.random() * 1e7,
    }


def populate(client: redis.Redis, keys: Keys, rows: int, arns: int, rng: random.Random) -> None:
    accounts = [f"{100000000000 + n}" for n in range(100)]
    table = PoliciesTable(client, keys)
    batch = []
    for i in range(rows):
        batch.append(synthetic_row(i, accounts, rng))
        if len(batch) == 5000:
            table.upsert(batch)
            batch = []
    table.upsert(batch)
    # Every cached ARN: real partitions (items hashes) the search index reads at load.
    per_partition = max(1, arns // (len(accounts) * 4))
    written = 0
    pipe = client.pipeline(transaction=False)
    for account in accounts:
        for kind in ("iam_role", "s3_bucket", "sqs_queue", "sns_topic"):
            p = Partition(kind, account, "global")
            mapping = {}
            for _ in range(per_partition):
                name = f"{rng.choice(WORDS)}-{rng.choice(WORDS)}-{written}"
                mapping[f"arn:aws:{kind.split('_')[0]}::{account}:{kind}/{name}"] = "{}"
                written += 1
            pipe.hset(keys.items(p), mapping=mapping)
            pipe.hset(keys.meta(p), mapping={"refreshed_at": time.time(), "count": len(mapping)})
            pipe.sadd(keys.partitions(), p.id)
        pipe.execute()


def time_calls(fn, args_list) -> list[float]:
    out = []
    for args in args_list:
        start = time.perf_counter()
        fn(*args)
        out.append((time.perf_counter() - start) * 1000)
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--arns", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "web.md"))
    args = parser.parse_args()
    rng = random.Random(7)
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="bench-redis-")
    server = subprocess.Popen(
        [
            redis_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(port=port, decode_responses=True)
        for _ in range(50):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.1)
        keys = Keys("inv:")
        started = time.perf_counter()
        populate(client, keys, args.rows, args.arns, rng)
        populate_s = time.perf_counter() - started
        search = PolicySearch(client, keys)
        started = time.perf_counter()
        search.load()
        load_s = time.perf_counter() - started
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        accounts = [f"{100000000000 + n}" for n in range(100)]
        columns = ["name", "kind", "account_id", "region", "errors", "last_updated"]
        page_queries = []
        for _ in range(args.queries):
            page_queries.append(
                (
                    Query(
                        text=rng.choice(
                            [None, rng.choice(WORDS), f"{rng.choice(WORDS)}-{rng.choice(WORDS)}"]
                        ),
                        account=rng.choice([None, rng.choice(accounts)]),
                        kind=rng.choice([None, rng.choice(KINDS)]),
                        region=rng.choice([None, None, rng.choice(REGIONS)]),
                        has_errors=rng.choice([None, None, True]),
                        sort=rng.choice(columns),
                        descending=rng.random() < 0.5,
                        offset=rng.choice([0, 0, 50, 500]),
                        limit=50,
                    ),
                )
            )
        page_ms = time_calls(search.query, page_queries)
        fragments = []
        for _ in range(args.queries):
            word = rng.choice(WORDS)
            start = rng.randint(0, max(0, len(word) - 3))
            fragments.append(
                (word[start : start + rng.randint(3, 6)], rng.choice([None, "iam_role"]), 20)
            )
        typeahead_ms = time_calls(search.typeahead_resources, fragments)
        # A sample of each through real HTTP, as a client sees it.
        http_page, http_typeahead = http_sample(search, client, keys, rng)
        results = [
            ("policies page (filter + sort + page + total)", page_ms),
            ("typeahead over every ARN", typeahead_ms),
            ("policies page over HTTP (incl. JSON, loopback)", http_page),
            ("typeahead over HTTP (incl. JSON, loopback)", http_typeahead),
        ]
        lines = [
            "# Web tier latency",
            "",
            f"{args.rows:,} policies-table rows, {args.arns:,} ARNs; {args.queries} random "
            "queries each; this machine (2 cores). Server side = the query the handler runs.",
            "",
            f"Populate Redis: {populate_s:.1f} s. Search index load: {load_s:.1f} s. "
            f"Peak RSS of the web process: {rss_mb:.0f} MB.",
            "",
            "| query | p50 ms | p99 ms | max ms | target p99 |",
            "|---|---|---|---|---|",
        ]
        targets = ["50", "20", "50", "20"]
        for (label, values), target in zip(results, targets, strict=True):
            lines.append(
                f"| {label} | {statistics.median(values):.2f} | {percentile(values, 99):.2f} | "
                f"{max(values):.2f} | {target} |"
            )
        text = "\n".join(lines) + "\n"
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text)
        print(text)
        return 0
    finally:
        server.terminate()
        server.wait(10)


def http_sample(search: PolicySearch, client: redis.Redis, keys: Keys, rng: random.Random):
    import hashlib
    import http.client
    import threading
    import urllib.parse

    import tornado.httpserver
    import tornado.ioloop
    import tornado.netutil

    from inventory.cache.redis_cache import RedisCache
    from inventory.metrics import TaskOutcomes
    from inventory.settings import load_settings
    from inventory.web.app import Readers, make_app

    token = "bench-token"
    settings = load_settings(
        paths=[],
        environ={
            "INVENTORY_WEB__API_TOKEN_HASHES": f"[{hashlib.sha256(token.encode()).hexdigest()}]"
        },
    )
    readers = Readers(RedisCache(client, keys), TaskOutcomes(client, keys), search=search)
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    port = sockets[0].getsockname()[1]
    loop_holder = {}

    def run() -> None:
        import asyncio

        asyncio.set_event_loop(asyncio.new_event_loop())
        server = tornado.httpserver.HTTPServer(make_app(settings, readers))
        server.add_sockets(sockets)
        loop_holder["loop"] = tornado.ioloop.IOLoop.current()
        loop_holder["loop"].start()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    time.sleep(0.3)
    conn = http.client.HTTPConnection("127.0.0.1", port)
    headers = {"Authorization": f"Bearer {token}"}

    def call(path: str) -> float:
        start = time.perf_counter()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        assert response.status == 200, body[:200]
        json.loads(body)
        return (time.perf_counter() - start) * 1000

    pages, typeaheads = [], []
    for _ in range(200):
        query = {"q": rng.choice(WORDS), "sort": rng.choice(["name", "last_updated"]), "limit": 50}
        pages.append(call(f"/api/v1/policies?{urllib.parse.urlencode(query)}"))
        typeaheads.append(call(f"/api/v1/typeahead/resources?q={rng.choice(WORDS)[:4]}"))
    loop_holder["loop"].add_callback(loop_holder["loop"].stop)
    return pages, typeaheads


if __name__ == "__main__":
    raise SystemExit(main())
