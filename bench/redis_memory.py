"""Redis memory per cached resource, by kind, from caches the real sync code wrote.

    .venv/bin/python -m bench redis-memory [--accounts 3] [--roles 200] [--per-region 20]

A seeded moto organisation (``bench/synthetic.py``: roles with inline and attached policies and
tags, customer managed policies, users, groups, buckets with policies, queues and topics in two
regions) is swept once through the real fetchers and ``Store`` into our own redis-server; then
every key's ``MEMORY USAGE`` (all of its elements sampled) is summed by what it is: a kind's
partition keys (items, content hashes, seen times, meta), the ARN index, the policies table
(rows, facet sets, sort sets) and the change stream. Writes results/redis-memory.md with the
bytes per resource of each kind and what 10,000,000 resources need.
"""

from __future__ import annotations

import argparse
import os
import re
from collections import Counter, defaultdict
from typing import Any

from bench.common import BUCKET, markdown_table, servers, write_result
from bench.synthetic import Sizes

#: A large organisation's mix, for the 10,000,000-resource line (IAM-heavy, as ConsoleMe's were).
MIX = {
    "iam_role": 0.45,
    "iam_policy": 0.10,
    "iam_user": 0.05,
    "iam_group": 0.01,
    "s3_bucket": 0.14,
    "sqs_queue": 0.15,
    "sns_topic": 0.10,
}
TARGET = 10_000_000


def family(key: str, prefix: str) -> tuple[str, str | None]:
    """(what a key is, the kind it belongs to or None when shared by every kind)."""
    rest = key[len(prefix) :]
    found = re.match(r"p:([a-z0-9_]+)\|[^:]*\|[^:]*:(\w+)$", rest)
    if found:
        return f"partition {found.group(2)}", found.group(1)
    if rest == "arn":
        return "ARN index", None
    if rest.startswith("pt:rows"):
        return "policies-table rows", None
    if rest.startswith("pt:f:"):
        return "policies-table facet sets", None
    if rest.startswith("pt:s:"):
        return "policies-table sort sets", None
    if rest == "changes":
        return "change stream (capped)", None
    return "other", None


def sweep(s: Any, accounts: int) -> tuple[Any, Any]:
    from bench.common import AWS_ENV
    from inventory.registry import BY_STEM
    from inventory.runtime import Runtime
    from inventory.settings import load_settings
    from inventory.tasks.accounts import active_accounts, store_account_mapping
    from inventory.tasks.iam import sync_iam_account
    from inventory.tasks.resources import sync_kind

    os.environ.update(AWS_ENV)
    runtime = Runtime(load_settings(paths=[], environ=s.env()))
    runtime.ensure_tables()
    runtime.aws.hub_client("s3", "us-east-1").create_bucket(Bucket=BUCKET)
    store_account_mapping(runtime)
    for account in [a["id"] for a in active_accounts(runtime)]:
        sync_iam_account(runtime, account)
        for stem in ("s3_buckets", "sqs_queues", "sns_topics", "managed_policies"):
            sync_kind(runtime, BY_STEM[stem], account)
    return runtime, s.redis()


def measure(client: Any, prefix: str) -> tuple[dict, Counter, int]:
    """Bytes by (family, kind), resources by kind, and the policies-table row count."""
    by_family: dict[tuple[str, str | None], int] = defaultdict(int)
    resources: Counter[str] = Counter()
    for key in client.scan_iter(f"{prefix}*", count=1000):
        what, kind = family(key, prefix)
        by_family[(what, kind)] += int(client.memory_usage(key, samples=0) or 0)
        if what == "partition items":
            resources[str(kind)] += int(client.hlen(key))
    rows = int(client.hlen(f"{prefix}pt:rows"))
    return by_family, resources, rows


def render(by_family: dict, resources: Counter, rows: int, used: int, args: Any) -> list[str]:
    total = sum(resources.values())
    shared = {what: b for (what, kind), b in by_family.items() if kind is None}
    table_bytes = sum(b for w, b in shared.items() if w.startswith("policies-table"))
    arn_bytes = shared.get("ARN index", 0)
    lines = [
        "# Redis memory per cached resource",
        "",
        f"{args.accounts} accounts (+ management) x {args.roles} roles, {args.per_region} "
        "buckets, queues and topics per region (2 regions), swept once by the real code. "
        f"{total:,} resources in partitions, {rows:,} policies-table rows; Redis used_memory "
        f"{used / 1e6:.1f} MB. `MEMORY USAGE key SAMPLES 0` of every key, summed.",
        "",
    ]
    header = ["kind", "resources", "partition keys B/resource", "+ ARN index", "+ table row"]
    header.append("total B/resource")
    table = []
    per_resource: dict[str, float] = {}
    for kind in sorted(resources):
        count = resources[kind]
        own = sum(b for (what, k), b in by_family.items() if k == kind) / count
        arn = arn_bytes / total
        row = table_bytes / rows if kind in MIX else 0.0
        per_resource[kind] = own + arn + row
        table.append([kind, f"{count:,}", f"{own:,.0f}", f"{arn:,.0f}", f"{row:,.0f}"])
        table[-1].append(f"{per_resource[kind]:,.0f}")
    lines += markdown_table(header, table)
    lines += ["", "Shared keys:", ""]
    lines += markdown_table(["what", "bytes"], [[w, f"{b:,}"] for w, b in sorted(shared.items())])
    mixed = sum(share * per_resource.get(kind, 0.0) for kind, share in MIX.items())
    lines += [
        "",
        f"At the mix {MIX}: {mixed:,.0f} B per resource, so {TARGET:,} resources need about "
        f"{mixed * TARGET / 1e9:.1f} GB of Redis data (before replication buffers and "
        "fragmentation; add ~30% headroom).",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench redis-memory")
    parser.add_argument("--accounts", type=int, default=3)
    parser.add_argument("--roles", type=int, default=200)
    parser.add_argument("--per-region", type=int, default=20)
    parser.add_argument("--output", default="redis-memory.md")
    args = parser.parse_args(argv)
    sizes = Sizes(
        accounts=args.accounts,
        roles=args.roles,
        policies=20,
        users=10,
        groups=3,
        buckets=args.per_region,
        queues=args.per_region,
        topics=args.per_region,
    )
    with servers(sizes.to_json()) as s:
        runtime, client = sweep(s, args.accounts)
        by_family, resources, rows = measure(client, runtime.keys.prefix)
        used = int(client.info("memory")["used_memory"])
        write_result(args.output, render(by_family, resources, rows, used, args))
    return 0
