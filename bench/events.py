"""Event-driven refresh: event-to-cache lag with 1,000 change events in the queue.

    .venv/bin/python -m bench events [--accounts 10] [--roles 100] [--events 1000]

One moto host holds the organisation; every account is swept once (the cache is warm, as in
production). Then ``--events`` roles each get a changed inline policy in moto, and one
PutRolePolicy event per change (the EventBridge envelope CloudTrail would produce, ``eventTime``
= the moment of the change) goes on a real (moto) SQS queue. One drain (as the beat entry runs
it) dispatches the targeted refreshes to a real worker (prefork, ``--concurrency`` processes).
The lag of each event is the time from its ``eventTime`` to its resource stored again; the
drain starts as soon as the last event is queued, so the lag excludes the beat interval (up to
60 s more when the drain waits for its minute). Then the same events are delivered again
(duplicates): they must cost no AWS call and no write. Writes bench/results/events.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Any

from bench.common import BUCKET, RESULTS, markdown_table, servers, write_result
from bench.synthetic import Sizes

ACTOR = "arn:aws:iam::123456789012:user/bench"


def envelope(account: str, role: str, policy: str, when: float) -> str:
    from inventory.demo.seed import change_event_envelope

    params = {"roleName": role, "policyName": policy}
    return json.dumps(change_event_envelope(account, "PutRolePolicy", params, when, ACTOR))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def drain_all(app: Any, timeout: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]], float]:
    """Drain until the queue is empty; wait for every refresh; (drains, refreshes, seconds)."""
    from celery.result import AsyncResult

    started = time.perf_counter()
    drains, refreshes = [], []
    while True:
        result = app.tasks["inventory.drain_change_events"].apply()
        assert result.successful(), result.traceback
        drained = result.result
        drains.append(drained)
        for task_id in drained["task_ids"]:
            refreshes.append(AsyncResult(task_id, app=app).get(timeout=timeout))
        if drained["received"] == 0:
            break
    return drains, refreshes, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench events")
    parser.add_argument("--accounts", type=int, default=10)
    parser.add_argument("--roles", type=int, default=100, help="per account")
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--output", default="events.md")
    args = parser.parse_args(argv)

    from tests.processes import Worker

    sizes = Sizes(accounts=args.accounts, roles=args.roles, policies=5, users=2, groups=1)
    with servers(sizes.to_json()) as s:
        from bench.common import AWS_ENV
        from inventory.celery_app import create_app
        from inventory.demo.seed import MANAGEMENT_ACCOUNT, Seeder
        from inventory.runtime import Runtime
        from inventory.settings import load_settings
        from inventory.tasks.accounts import active_accounts, store_account_mapping
        from inventory.tasks.iam import sync_iam_account

        os.environ.update(AWS_ENV)
        seeder = Seeder(s.moto_url)
        queue = seeder.client("sqs", MANAGEMENT_ACCOUNT).create_queue(QueueName="bench-events")
        env = s.env(
            INVENTORY_EVENTS__ENABLED="true",
            INVENTORY_EVENTS__QUEUE_URL=queue["QueueUrl"],
            INVENTORY_EVENTS__MAX_MESSAGES=str(max(args.events * 2, 100)),
            INVENTORY_EVENTS__MAX_SECONDS="300",
        )
        os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
        settings = load_settings(paths=[], environ=env)
        runtime = Runtime(settings)
        runtime.ensure_tables()
        runtime.aws.hub_client("s3", "us-east-1").create_bucket(Bucket=BUCKET)
        store_account_mapping(runtime)
        accounts = [a["id"] for a in active_accounts(runtime) if a["id"] != MANAGEMENT_ACCOUNT]
        for account in accounts:
            sync_iam_account(runtime, account)
        targets = []
        for account in accounts:
            iam = seeder.client("iam", account)
            for page in iam.get_paginator("list_roles").paginate():
                targets.extend((account, r["RoleName"]) for r in page["Roles"])
        targets = targets[: args.events]
        print(f"{len(accounts)} accounts swept; changing {len(targets)} roles", flush=True)

        app = create_app(settings)
        app.runtime = runtime
        worker = Worker(env, RESULTS / ".events-worker.log", args.concurrency).start()
        try:
            sqs = seeder.client("sqs", MANAGEMENT_ACCOUNT)
            document = json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Deny", "Action": "s3:*", "Resource": "*"}],
                }
            )
            changes_started = time.perf_counter()
            clients = {account: seeder.client("iam", account) for account in accounts}
            for account, role in targets:
                clients[account].put_role_policy(
                    RoleName=role, PolicyName="bench-change", PolicyDocument=document
                )
            change_seconds = time.perf_counter() - changes_started
            # Stamped as they are queued: the lag is what we control, queue to cache.
            bodies = []
            for start in range(0, len(targets), 10):
                batch = [
                    envelope(account, role, "bench-change", time.time())
                    for account, role in targets[start : start + 10]
                ]
                bodies.extend(batch)
                sqs.send_message_batch(
                    QueueUrl=queue["QueueUrl"],
                    Entries=[{"Id": str(i), "MessageBody": b} for i, b in enumerate(batch)],
                )
            drains, refreshes, seconds = drain_all(app, timeout=600)
            lags = [lag for r in refreshes for lag in r["lags"]]
            processing = [p for r in refreshes for p in r["processing"]]
            writes = sum(p["dynamo_writes"] for r in refreshes for p in r["partitions"].values())
            changed = sum(r["read"] for r in refreshes)
            # The same events again: duplicates by event id.
            for start in range(0, len(bodies), 10):
                batch = bodies[start : start + 10]
                sqs.send_message_batch(
                    QueueUrl=queue["QueueUrl"],
                    Entries=[{"Id": str(i), "MessageBody": b} for i, b in enumerate(batch)],
                )
            dup_drains, dup_refreshes, dup_seconds = drain_all(app, timeout=600)
            dup_reads = sum(r["read"] for r in dup_refreshes)
            dup_dupes = sum(d["duplicates"] for d in dup_drains)
            # The floor of the queue itself: the same number of messages received and deleted
            # with no processing at all (moto's SQS is slow: this is most of the lag above).
            for start in range(0, len(bodies), 10):
                batch = bodies[start : start + 10]
                sqs.send_message_batch(
                    QueueUrl=queue["QueueUrl"],
                    Entries=[{"Id": str(i), "MessageBody": b} for i, b in enumerate(batch)],
                )
            floor_started = time.perf_counter()
            while True:
                got = sqs.receive_message(
                    QueueUrl=queue["QueueUrl"], MaxNumberOfMessages=10, VisibilityTimeout=600
                ).get("Messages", [])
                if not got:
                    break
                sqs.delete_message_batch(
                    QueueUrl=queue["QueueUrl"],
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(got)
                    ],
                )
            floor_seconds = time.perf_counter() - floor_started
        finally:
            worker.stop()

    first_event = min(json.loads(b)["detail"]["eventTime"] for b in bodies)
    rows = [
        ["events queued", len(bodies)],
        ["resources refreshed (one GetRolePolicy each)", changed],
        ["DynamoDB items written", writes],
        ["drain + refresh wall time", f"{seconds:.1f} s"],
        ["making the changes in moto (not in the lag)", f"{change_seconds:.1f} s"],
        ["event-to-cache lag p50", f"{statistics.median(lags):.1f} s"],
        ["event-to-cache lag p99", f"{percentile(lags, 0.99):.1f} s"],
        ["event-to-cache lag max", f"{max(lags):.1f} s"],
        ["received-to-cache (our processing) p50", f"{statistics.median(processing):.1f} s"],
        ["received-to-cache (our processing) p99", f"{percentile(processing, 0.99):.1f} s"],
        ["floor: receive + delete the same messages, no processing", f"{floor_seconds:.1f} s"],
        ["duplicates: events dropped", dup_dupes],
        ["duplicates: AWS reads", dup_reads],
        ["duplicates: drain wall time", f"{dup_seconds:.1f} s"],
    ]  # fmt: skip
    lines = [
        "# Event-driven refresh",
        "",
        f"`python -m bench events --accounts {args.accounts} --roles {args.roles} "
        f"--events {args.events} --concurrency {args.concurrency}`, "
        f"{time.strftime('%Y-%m-%d')}, this 2-core machine, against moto (first event "
        f"{first_event}). Each event's `eventTime` is the moment it was put on the queue; "
        "lag = the time its resource was stored again - eventTime.",
        "",
        *markdown_table(["measure", "value"], rows),
        "",
        "A drain every minute (the beat entry) adds up to 60 s to these figures.",
    ]
    path = write_result(args.output, lines)
    print("\n".join(lines))
    print(f"wrote {path}")
    return 0
