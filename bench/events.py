"""Event-driven refresh through `inventory events`: a single event on an idle system, a burst.

    .venv/bin/python -m bench events [--accounts 10] [--roles 100] [--events 1000] [--singles 20]

One moto host holds the organisation; every account is swept once (the cache is warm, as in
production). A real worker (prefork, ``--concurrency`` processes) and a real `inventory events`
consumer run. Each change is made in moto first, then its PutRolePolicy event (the EventBridge
envelope CloudTrail would produce, ``eventTime`` = the moment it is queued) goes on a real
(moto) SQS queue:

* single: ``--singles`` events one at a time, each once the previous one is cached;
* burst: ``--events`` roles changed, then their events queued 10 per SendMessageBatch.

Per event, from each refresh's own result: end to end (``eventTime`` to cached) and our part
(the consumer receiving it to cached). The queue's own floor is measured the same way with the
consumer stopped: a bare receiver long-polls (WaitTimeSeconds=20) and deletes, with no
processing, while the same messages are queued the same way: queued to received. Then the
burst is delivered again (duplicates: no call, no write). Writes bench/results/events.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from bench.common import BUCKET, RESULTS, markdown_table, servers, write_result
from bench.synthetic import Sizes

ACTOR = "arn:aws:iam::123456789012:user/bench"
DOCUMENT = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "s3:*", "Resource": "*"}]}
)


def envelope(account: str, role: str, policy: str, when: float) -> str:
    from inventory.demo.seed import change_event_envelope

    params = {"roleName": role, "policyName": policy}
    return json.dumps(change_event_envelope(account, "PutRolePolicy", params, when, ACTOR))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values: list[float]) -> list[str]:
    return [
        f"{statistics.median(values):.2f} s",
        f"{percentile(values, 0.99):.2f} s",
        f"{max(values):.2f} s",
    ]


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"not within {timeout}s: {what}")
        time.sleep(0.05)


def refresh_results(app: Any) -> list[dict[str, Any]]:
    """Every refresh result in the result backend, then forgotten (each phase reads its own)."""
    from celery.result import AsyncResult

    found = []
    for key in list(app.backend.client.scan_iter(match="celery-task-meta-*")):
        task_id = (key.decode() if isinstance(key, bytes) else key).split("meta-", 1)[1]
        result = AsyncResult(task_id, app=app)
        if result.successful() and isinstance(result.result, dict) and "lags" in result.result:
            found.append(result.result)
        result.forget()
    return found


class Sender:
    """Queues events as the bench's changes happen, stamped with the moment they are queued."""

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self.sqs, self.queue_url = sqs, queue_url

    def one(self, account: str, role: str, policy: str) -> float:
        now = time.time()
        self.sqs.send_message(
            QueueUrl=self.queue_url, MessageBody=envelope(account, role, policy, now)
        )
        return now

    def count_one(self, account: str, role: str) -> int:
        self.one(account, role, "bench-single")
        return 1

    def burst(self, targets: list[tuple[str, str]], policy: str) -> list[str]:
        bodies = []
        for start in range(0, len(targets), 10):
            batch = [envelope(a, r, policy, time.time()) for a, r in targets[start : start + 10]]
            bodies += batch
            self.again(batch)
        return bodies

    def again(self, bodies: list[str]) -> None:
        for start in range(0, len(bodies), 10):
            entries = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start:][:10])]
            self.sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)


class BareReceiver(threading.Thread):
    """The queue's floor: long-poll, delete, note when each message arrived; nothing else."""

    def __init__(self, sqs: Any, queue_url: str) -> None:
        super().__init__(daemon=True)
        self.sqs, self.queue_url = sqs, queue_url
        self.delays: list[float] = []
        self.done = threading.Event()

    def run(self) -> None:
        from inventory.aws.events import parse_time

        while not self.done.is_set():
            got = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=2
            ).get("Messages", [])
            now = time.time()
            for m in got:
                self.delays.append(now - parse_time(json.loads(m["Body"])["detail"]["eventTime"]))
            if got:
                entries = [
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)
                ]
                self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)


def floor(sqs: Any, queue_url: str, send: Callable[[], int]) -> list[float]:
    """Queued-to-received of ``send()``'s messages by a receiver that does nothing else."""
    receiver = BareReceiver(sqs, queue_url)
    receiver.start()
    time.sleep(0.5)  # waiting on the queue, as the consumer is
    expected = send()
    wait_for(lambda: len(receiver.delays) >= expected, 600, "the bare receiver")
    receiver.done.set()
    receiver.join()
    return receiver.delays


@dataclass
class Run:
    """One run against one moto host: its cache, app, queue, roles to change, and what it got."""

    args: argparse.Namespace
    runtime: Any
    app: Any
    sqs: Any
    queue_url: str
    clients: dict[str, Any]
    targets: list[tuple[str, str]]
    found: dict[str, Any] = field(default_factory=dict)

    @property
    def sender(self) -> Sender:
        return Sender(self.sqs, self.queue_url)

    def change(self, some: list[tuple[str, str]], policy: str) -> None:
        for account, role in some:
            self.clients[account].put_role_policy(
                RoleName=role, PolicyName=policy, PolicyDocument=DOCUMENT
            )

    def count(self, name: str) -> int:
        return self.runtime.event_ledger.counts().get(name, 0)

    def single(self) -> None:
        """A single event on an idle system, one after the other."""
        singles = self.targets[: self.args.singles]
        self.change(singles, "bench-single")
        for account, role in singles:
            time.sleep(1.0)  # idle: the consumer waits in its long poll
            applied = self.count("applied")
            self.sender.one(account, role, "bench-single")
            wait_for(lambda a=applied: self.count("applied") > a, 60, "a single event")
        self.found["single"] = refresh_results(self.app)
        self.found["load single"] = os.getloadavg()

    def burst(self) -> list[str]:
        self.change(self.targets, "bench-burst")
        applied = self.count("applied")
        started = time.perf_counter()
        bodies = self.sender.burst(self.targets, "bench-burst")
        wait_for(lambda: self.count("applied") >= applied + len(bodies), 900, "the burst")
        self.found["burst seconds"] = time.perf_counter() - started
        self.found["burst"] = refresh_results(self.app)
        self.found["load burst"] = os.getloadavg()
        return bodies

    def duplicates(self, bodies: list[str]) -> None:
        """The burst delivered again: dropped by event id, no call, nothing applied."""
        before = self.runtime.event_ledger.counts()
        self.sender.again(bodies)
        wait_for(
            lambda: self.count("received") >= before.get("received", 0) + len(bodies),
            900,
            "the duplicates",
        )
        time.sleep(2)
        after = self.runtime.event_ledger.counts()
        self.found["duplicates"] = {
            k: after.get(k, 0) - before.get(k, 0)
            for k in ("received", "applied", "dropped|duplicate")
        }

    def floors(self) -> None:
        """The queue's floor (the consumer stopped), the same messages queued the same way."""
        single: list[float] = []
        for account, role in self.targets[: self.args.singles]:
            single += floor(self.sqs, self.queue_url, partial(self.sender.count_one, account, role))
        self.found["single floor"] = single
        self.found["burst floor"] = floor(
            self.sqs, self.queue_url, lambda: len(self.sender.burst(self.targets, "bench-burst"))
        )


def prepare(s: Any, args: argparse.Namespace) -> tuple[Run, dict[str, str]]:
    """The organisation swept once, the queue, and the roles the events will change."""
    from bench.common import AWS_ENV
    from inventory.celery_app import create_app
    from inventory.demo.seed import MANAGEMENT_ACCOUNT, Seeder
    from inventory.runtime import Runtime
    from inventory.settings import load_settings
    from inventory.tasks.accounts import active_accounts, store_account_mapping
    from inventory.tasks.iam import sync_iam_account

    os.environ.update(AWS_ENV)
    seeder = Seeder(s.moto_url)
    sqs = seeder.client("sqs", MANAGEMENT_ACCOUNT)
    queue_url = sqs.create_queue(QueueName="bench-events")["QueueUrl"]
    env = s.env(INVENTORY_EVENTS__ENABLED="true", INVENTORY_EVENTS__QUEUE_URL=queue_url)
    os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
    settings = load_settings(paths=[], environ=env)
    runtime = Runtime(settings)
    runtime.ensure_tables()
    runtime.aws.hub_client("s3", "us-east-1").create_bucket(Bucket=BUCKET)
    store_account_mapping(runtime)
    accounts = [a["id"] for a in active_accounts(runtime) if a["id"] != MANAGEMENT_ACCOUNT]
    clients = {account: seeder.client("iam", account) for account in accounts}
    targets = []
    for account in accounts:
        sync_iam_account(runtime, account)
        for page in clients[account].get_paginator("list_roles").paginate():
            targets.extend((account, r["RoleName"]) for r in page["Roles"])
    print(f"{len(accounts)} accounts swept; {len(targets)} roles", flush=True)
    app = create_app(settings)
    app.runtime = runtime
    run = Run(args, runtime, app, sqs, queue_url, clients, targets[: args.events])
    return run, env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench events")
    parser.add_argument("--accounts", type=int, default=10)
    parser.add_argument("--roles", type=int, default=100, help="per account")
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--singles", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--output", default="events.md")
    args = parser.parse_args(argv)

    from tests.processes import EventConsumer, Worker

    load_before = os.getloadavg()
    sizes = Sizes(accounts=args.accounts, roles=args.roles, policies=5, users=2, groups=1)
    with servers(sizes.to_json()) as s:
        run, env = prepare(s, args)
        run.found["load before"] = load_before
        worker = Worker(env, RESULTS / ".events-worker.log", args.concurrency).start()
        consumer = EventConsumer(env, RESULTS / ".events-consumer.log")
        try:
            consumer.start(run.runtime.event_ledger.consumers)
            run.single()
            run.duplicates(run.burst())
            consumer.stop()
            run.floors()
        finally:
            consumer.stop()
            worker.stop()
    write_result(args.output, report(args, run.found))
    return 0


def measures(results: list[dict[str, Any]]) -> tuple[list[float], list[float]]:
    """End to end (eventTime to cached) and our part (received to cached) of every event."""
    return (
        [lag for r in results for lag in r["lags"]],
        [p for r in results for p in r["processing"]],
    )


def report(args: argparse.Namespace, found: dict[str, Any]) -> list[str]:
    single_e2e, single_ours = measures(found["single"])
    burst_e2e, burst_ours = measures(found["burst"])
    single_floor, burst_floor = found["single floor"], found["burst floor"]
    rows = [
        ["single", "SQS floor: queued to received (bare long poll)", *summary(single_floor)],
        ["single", "our part: received to cached", *summary(single_ours)],
        ["single", "end to end: queued to cached", *summary(single_e2e)],
        ["burst", "SQS floor: queued to received (bare long poll)", *summary(burst_floor)],
        ["burst", "our part: received to cached", *summary(burst_ours)],
        ["burst", "end to end: queued to cached", *summary(burst_e2e)],
    ]
    checks = [
        ["single: our part p99 <= 5 s", f"{percentile(single_ours, 0.99):.2f} s",
         percentile(single_ours, 0.99) <= 5],
        ["burst: our part p99 <= 10 s", f"{percentile(burst_ours, 0.99):.2f} s",
         percentile(burst_ours, 0.99) <= 10],
        ["single: end to end p99 <= floor p99 + 5 s",
         f"{percentile(single_e2e, 0.99):.2f} s vs {percentile(single_floor, 0.99) + 5:.2f} s",
         percentile(single_e2e, 0.99) <= percentile(single_floor, 0.99) + 5],
        ["burst: end to end p99 <= floor p99 + 5 s",
         f"{percentile(burst_e2e, 0.99):.2f} s vs {percentile(burst_floor, 0.99) + 5:.2f} s",
         percentile(burst_e2e, 0.99) <= percentile(burst_floor, 0.99) + 5],
    ]  # fmt: skip
    dup = found["duplicates"]
    load = ", ".join(
        f"{name} {a[0]:.1f}/{a[1]:.1f}/{a[2]:.1f}"
        for name in ("before", "single", "burst")
        for a in [found[f"load {name}"]]
    )
    lines = [
        "# Event-driven refresh: `inventory events`",
        "",
        f"`python -m bench events --accounts {args.accounts} --roles {args.roles} "
        f"--events {args.events} --singles {args.singles} --concurrency {args.concurrency}`, "
        f"{time.strftime('%Y-%m-%d %H:%M')}, this 2-core machine, against moto; load average "
        f"(1/5/15 min) {load}. Events counted: single {len(single_e2e)}, burst {len(burst_e2e)}"
        f" (burst queued to all cached: {found['burst seconds']:.1f} s).",
        "",
        *markdown_table(["phase", "measure", "p50", "p99", "max"], rows),
        "",
        *markdown_table(["target", "measured", "met"], checks),
        "",
        f"Duplicates (the burst delivered again): {dup['received']} received, "
        f"{dup['dropped|duplicate']} dropped, {dup['applied']} applied.",
    ]
    return lines
