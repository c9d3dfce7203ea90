"""Findings and "who can do this?" at scale.

    .venv/bin/python -m bench findings [--roles 2000] [--accounts 100] [--per-account 200]

1. One member account with ``--roles`` roles (the synthetic organisation: 2 inline + 2
   attached policies per role, 50 customer managed policies, 20 users, 5 groups) in the
   self-seeding moto host; the real IAM sync caches it, then ``analyse_account`` runs three
   times: first (empty), a reconcile with nothing changed, and after a second IAM sync of the
   unchanged account (which must mark nothing pending). Subjects and documents analysed, wall
   time and peak RSS are reported.
2. ``--accounts`` x ``--per-account`` roles built from the same synthetic specs (through the
   real GetAccountAuthorizationDetails transform, no moto), with buckets whose policies grant
   other accounts: the access index is built in-process and "who can s3:GetObject on this
   bucket" is asked for ``--queries`` random buckets. The time is server side: what the
   handler runs in its executor (``AccessIndex.who_can``), no network.

Writes bench/results/findings.md.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from typing import Any

from bench.common import AWS_ENV, markdown_table, max_rss_mb, servers, write_result
from bench.synthetic import Sizes, account_spec

SIZES = Sizes(policies=50, users=20, groups=5)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def analysis_run(roles: int) -> dict[str, Any]:
    """The first and steady analyses of one ``roles``-role account (real sync, real store)."""
    from inventory.runtime import Runtime
    from inventory.settings import load_settings
    from inventory.tasks.accounts import store_account_mapping
    from inventory.tasks.findings import analyse_account, pending_accounts
    from inventory.tasks.iam import sync_iam_account

    os.environ.update(AWS_ENV)  # this process only: the moto host takes any credentials
    with servers(SIZES.to_json(), roles=[roles]) as s:
        env = s.env(INVENTORY_S3__BUCKET="", INVENTORY_HISTORY__ENABLED="false")
        rt = Runtime(load_settings(paths=[], environ=env))
        rt.ensure_tables()
        store_account_mapping(rt)
        account = s.accounts[0]["id"]
        sync_iam_account(rt, account)
        pending_accounts(rt)
        rss_before = max_rss_mb()
        first = analyse_account(rt, account)
        rss_after = max_rss_mb()
        steady = analyse_account(rt, account)
        sync_iam_account(rt, account)
        pending = pending_accounts(rt)
        after_sync = analyse_account(rt, account)
    return {
        "roles": roles,
        "first": first,
        "steady": steady,
        "after_sync": after_sync,
        "pending_after_unchanged_sync": pending,
        "rss_before_mb": rss_before,
        "rss_after_mb": rss_after,
    }


def _raw(seed: Any, account_id: str) -> Any:
    """The GetAccountAuthorizationDetails shape of a synthetic account."""
    from inventory.aws.iam import AuthorizationDetails

    def policies(docs: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"PolicyName": n, "PolicyDocument": d} for n, d in docs.items()]

    def attached(names: list[str]) -> list[dict[str, str]]:
        return [
            {"PolicyName": n, "PolicyArn": f"arn:aws:iam::{account_id}:policy/{n}"} for n in names
        ]

    details = AuthorizationDetails()
    for role in seed.roles:
        details.roles.append(
            {"Arn": f"arn:aws:iam::{account_id}:role/{role.name}", "RoleName": role.name,
             "Path": "/", "AssumeRolePolicyDocument": role.trust_policy,
             "RolePolicyList": policies(role.inline),
             "AttachedManagedPolicies": attached(role.attached)}
        )  # fmt: skip
    for user in seed.users:
        details.users.append(
            {"Arn": f"arn:aws:iam::{account_id}:user/{user.name}", "UserName": user.name,
             "Path": "/", "UserPolicyList": policies(user.inline),
             "AttachedManagedPolicies": attached(user.attached), "GroupList": user.groups}
        )  # fmt: skip
    for group in seed.groups:
        details.groups.append(
            {"Arn": f"arn:aws:iam::{account_id}:group/{group.name}", "GroupName": group.name,
             "Path": "/", "GroupPolicyList": policies(group.inline),
             "AttachedManagedPolicies": attached(group.attached)}
        )  # fmt: skip
    for name, document in seed.policies.items():
        details.policies.append(
            {"Arn": f"arn:aws:iam::{account_id}:policy/{name}", "PolicyName": name, "Path": "/",
             "PolicyVersionList": [{"Document": document, "IsDefaultVersion": True}]}
        )  # fmt: skip
    return details


def organisation(accounts: int, per_account: int, buckets: int, seed: int = 7) -> tuple[Any, Any]:
    """Records of ``accounts`` synthetic accounts by account and kind, and the bucket ARNs."""
    from inventory.aws.iam import transform_authorization_details

    rng = random.Random(seed)
    ids = [f"{100000000000 + i:012d}" for i in range(accounts)]
    found: dict[str, dict[str, dict[str, Any]]] = {}
    bucket_arns = []
    for index, account_id in enumerate(ids):
        sizes = Sizes(roles=per_account, policies=20, users=10, groups=3)
        spec = account_spec(f"org{index:03d}", sizes, rng)
        records = transform_authorization_details(_raw(spec, account_id), account_id).by_kind
        kinds = {kind: {r["arn"]: r for r in rs} for kind, rs in records.items()}
        kinds["s3_bucket"] = {}
        for b in range(buckets):
            arn = f"arn:aws:s3:::org{index:03d}-bucket-{b}"
            grantee = rng.choice(ids)
            policy = {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{grantee}:root"},
                 "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": [arn, f"{arn}/*"]},
                {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": f"{arn}/*",
                 "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
            ]}  # fmt: skip
            kinds["s3_bucket"][arn] = {"arn": arn, "policy": policy}
            bucket_arns.append(arn)
        found[account_id] = kinds
    return found, bucket_arns


def access_run(accounts: int, per_account: int, queries: int) -> dict[str, Any]:
    from inventory.analysis.access import build_index
    from inventory.analysis.catalogue import catalogue

    catalogue()  # loaded once per process, before anything is timed
    started = time.perf_counter()
    records, buckets = organisation(accounts, per_account, buckets=5)
    generated = time.perf_counter() - started
    started = time.perf_counter()
    index = build_index(records, {}, list(records))
    built = time.perf_counter() - started
    rng = random.Random(11)
    times, allowed, evaluated = [], [], []
    for _ in range(queries):
        bucket = rng.choice(buckets)
        started = time.perf_counter()
        answer = index.who_can("s3:GetObject", f"{bucket}/*", limit=200)
        times.append((time.perf_counter() - started) * 1000)
        allowed.append(answer.allowed + answer.conditional)
        evaluated.append(answer.evaluated_statements)
    role = index.principals[0].arn
    started = time.perf_counter()
    index.what_can(role, "s3")
    what_ms = (time.perf_counter() - started) * 1000
    return {
        "accounts": accounts,
        "principals": index.size,
        "documents": len(index.doc_statements),
        "statements": len(index.statements),
        "generate_s": generated,
        "build_s": built,
        "queries": queries,
        "p50_ms": statistics.median(times),
        "p99_ms": percentile(times, 99),
        "max_ms": max(times),
        "allowed_median": statistics.median(allowed),
        "evaluated_median": statistics.median(evaluated),
        "what_can_ms": what_ms,
        "rss_mb": max_rss_mb(),
    }


def report(analysis: dict[str, Any], access: dict[str, Any]) -> list[str]:
    first, steady, again = analysis["first"], analysis["steady"], analysis["after_sync"]
    lines = [
        "# Findings and access benchmark",
        "",
        "`python -m bench findings` on this machine (2 cores). See bench/findings.py.",
        "",
        f"## First analysis of a {analysis['roles']:,}-role account",
        "",
    ]
    lines += markdown_table(
        ["run", "subjects", "analysed", "documents analysed", "with findings", "seconds"],
        [
            ["first (empty)", first["subjects"], first["analysed"],
             first["documents_analysed"], first["with_findings"], first["seconds"]],
            ["reconcile, nothing changed", steady["subjects"], steady["analysed"],
             steady["documents_analysed"], steady["with_findings"], steady["seconds"]],
            ["after an unchanged IAM sync", again["subjects"], again["analysed"],
             again["documents_analysed"], again["with_findings"], again["seconds"]],
        ],
    )  # fmt: skip
    lines += [
        "",
        f"Accounts marked pending by the unchanged sync: {analysis['pending_after_unchanged_sync']}"
        f". Findings by severity: {first['findings']}. Peak RSS "
        f"{analysis['rss_before_mb']:.0f} MB before, {analysis['rss_after_mb']:.0f} MB after.",
        "",
        f"## Who can s3:GetObject on a bucket: {access['accounts']} accounts",
        "",
    ]
    lines += markdown_table(
        ["principals", "distinct documents", "statements", "index build s", "queries",
         "p50 ms", "p99 ms", "max ms", "target p99", "what-can s3 ms"],
        [[f"{access['principals']:,}", f"{access['documents']:,}",
          f"{access['statements']:,}", f"{access['build_s']:.1f}", access["queries"],
          f"{access['p50_ms']:.1f}", f"{access['p99_ms']:.1f}", f"{access['max_ms']:.1f}",
          "200", f"{access['what_can_ms']:.1f}"]],
    )  # fmt: skip
    lines += [
        "",
        f"Median principals allowed per answer: {access['allowed_median']:.0f}; median "
        f"statements evaluated per query: {access['evaluated_median']:.0f} (the action index "
        f"skips the rest). Process peak RSS {access['rss_mb']:.0f} MB.",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench findings")
    parser.add_argument("--roles", type=int, default=2000)
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--per-account", type=int, default=200)
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args(argv)
    access = access_run(args.accounts, args.per_account, args.queries)
    print({k: v for k, v in access.items()}, flush=True)
    analysis = analysis_run(args.roles)
    write_result("findings.md", report(analysis, access))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
