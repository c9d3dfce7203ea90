"""`inventory events`, the long-polling consumer: real consumer processes, a real worker, moto
SQS in server mode (through a proxy that sees every call) and a real Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from inventory.cache.keys import IAM_ROLE, Partition
from inventory.celery_app import create_app
from inventory.demo.seed import MANAGEMENT_ACCOUNT, AccountSeed, Seeder, demo_account
from inventory.runtime import Runtime
from inventory.settings import load_settings
from inventory.tasks.accounts import store_account_mapping
from inventory.tasks.iam import sync_iam_account
from tests.conftest import inventory_env
from tests.faultproxy import FaultProxy
from tests.processes import EventConsumer
from tests.tasks.test_events import envelope

#: Seconds a consumer hides what it received; a killed consumer's messages come back after it.
HIDDEN = 5
#: Roles made beside the demo account's own, for events on many resources.
ROLES = 12


@pytest.fixture
def proxy(moto_server) -> Iterator[FaultProxy]:
    p = FaultProxy(moto_server.url).start()
    yield p
    p.stop()


@pytest.fixture
def consumer_env(redis_server, moto_server, proxy) -> dict[str, str]:
    queue = (
        Seeder(moto_server.url)
        .client("sqs", MANAGEMENT_ACCOUNT)
        .create_queue(QueueName=f"events-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    )
    return inventory_env(
        redis_server,
        moto_server,
        INVENTORY_AWS__ENDPOINT_URL=proxy.url,
        INVENTORY_EVENTS__ENABLED="true",
        INVENTORY_EVENTS__QUEUE_URL=queue,
        INVENTORY_EVENTS__MAX_SECONDS="5",
        INVENTORY_EVENTS__VISIBILITY_SECONDS=str(HIDDEN),
    )


@pytest.fixture
def world(runtime: Runtime, moto_server, consumer_env, start_worker):
    """A seeded account swept once, a worker, and the runtime and app of the consumers."""
    seeder = Seeder(moto_server.url)
    seeder.organisation()
    dev: AccountSeed = seeder.create_account(demo_account("dev", 0))
    iam = seeder.client("iam", dev.id)
    trust = {"Version": "2012-10-17", "Statement": []}
    for n in range(ROLES):
        iam.create_role(RoleName=f"team-{n:02d}", AssumeRolePolicyDocument=json.dumps(trust))
    rt = Runtime(load_settings(paths=[], environ=consumer_env))
    store_account_mapping(rt)
    sync_iam_account(rt, dev.id)
    app = create_app(rt.settings)
    app.runtime = rt
    start_worker(consumer_env)
    return seeder, dev, rt, app


@pytest.fixture
def consumers(consumer_env, world, tmp_path: Path) -> Iterator[Callable[[], EventConsumer]]:
    rt = world[2]
    started: list[EventConsumer] = []

    def start() -> EventConsumer:
        consumer = EventConsumer(consumer_env, tmp_path / f"consumer{len(started)}.log")
        started.append(consumer)
        return consumer.start(rt.event_ledger.consumers)

    yield start
    for consumer in started:
        consumer.stop()


DENY = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}


def change_roles(
    seeder: Seeder, dev: AccountSeed, queue: str, count: int, copies: int = 1
) -> list[str]:
    """An inline policy put on ``count`` roles in moto, and each one's event queued
    ``copies`` times (one event id: EventBridge delivers at least once)."""
    iam = seeder.client("iam", dev.id)
    names = [f"team-{n:02d}" for n in range(count)]
    bodies = []
    for name in names:
        iam.put_role_policy(RoleName=name, PolicyName="deny", PolicyDocument=json.dumps(DENY))
        params = {"roleName": name, "policyName": "deny"}
        body = envelope(dev.id, "PutRolePolicy", params, time.time(), str(uuid.uuid4()))
        bodies += [body] * copies
    sqs = seeder.client("sqs", MANAGEMENT_ACCOUNT)
    for start in range(0, len(bodies), 10):
        entries = [
            {"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start : start + 10])
        ]
        sqs.send_message_batch(QueueUrl=queue, Entries=entries)
    return names


def cached_policies(rt: Runtime, dev: AccountSeed, names: list[str]) -> dict[str, bool]:
    p = Partition(IAM_ROLE, dev.id)
    return {
        name: "deny"
        in (rt.redis_cache.item(p, dev.role_arn(name)) or {}).get("inline_policies", {})
        for name in names
    }


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        time.sleep(0.2)


def settled_counts(rt: Runtime, received: int, applied: int) -> dict[str, int]:
    """The event counters once ``received`` and ``applied`` are reached and stay put for 2 s
    (a double apply would go on counting)."""

    def reached() -> bool:
        counts = rt.event_ledger.counts()
        return counts.get("received", 0) >= received and counts.get("applied", 0) >= applied

    wait_until(reached, 60, f"{received} received and {applied} applied")
    while True:
        counts = rt.event_ledger.counts()
        time.sleep(2)
        if rt.event_ledger.counts() == counts:
            return counts


def history_counts(rt: Runtime, dev: AccountSeed, names: list[str]) -> dict[str, int]:
    return {n: len(rt.history.for_resource(IAM_ROLE, dev.role_arn(n))) for n in names}


def drain(app) -> dict:
    result = app.tasks["inventory.drain_change_events"].apply()
    assert result.successful(), result.traceback
    return result.result


def test_consumer_caches_an_event_as_it_arrives_while_the_beat_drain_steps_aside(
    world, consumers, proxy
):
    seeder, dev, rt, app = world
    queue = rt.settings.events.queue_url
    consumer = consumers()
    assert drain(app) == {"skipped": "an `inventory events` consumer is polling the queue"}

    (name,) = change_roles(seeder, dev, queue, 1)
    wait_until(lambda: cached_policies(rt, dev, [name])[name], 60, "the change cached")

    (change,) = rt.history.for_resource(IAM_ROLE, dev.role_arn(name))
    assert (change.change, change.event_name) == ("updated", "PutRolePolicy")
    assert settled_counts(rt, 1, 1) == {"received": 1, "applied": 1}
    # Long polls: waiting for the one message took one ReceiveMessage per 20 s, not a stream.
    assert proxy.count("ReceiveMessage") <= 4

    # SIGTERM ends the long poll in progress at once, and the drain takes the queue back.
    assert consumer.proc is not None
    consumer.stop(timeout=10)
    assert consumer.proc.returncode == 0, consumer.log()
    assert json.loads(consumer.log().splitlines()[-1])["received"] == 1
    assert rt.event_ledger.consumers() == {}
    assert drain(app)["received"] == 0


def test_events_command_without_events_enabled_is_a_config_error(redis_server, moto_server):
    env = inventory_env(redis_server, moto_server)
    result = subprocess.run(
        [sys.executable, "-m", "inventory.cli", "events"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "events.enabled is false" in result.stderr


@pytest.mark.slow
def test_two_consumers_at_once_apply_every_event_exactly_once(world, consumers):
    seeder, dev, rt, app = world
    consumers(), consumers()

    names = change_roles(seeder, dev, rt.settings.events.queue_url, 12, copies=2)

    wait_until(lambda: all(cached_policies(rt, dev, names).values()), 90, "every change cached")
    counts = settled_counts(rt, 24, 12)
    # Every copy received once; each event applied by one of the two, its copy dropped.
    assert counts == {"received": 24, "applied": 12, "dropped|duplicate": 12}
    assert history_counts(rt, dev, names) == dict.fromkeys(names, 1)


@pytest.mark.slow
@pytest.mark.faults
@pytest.mark.parametrize("stage", ["before_sending", "before_deleting"])
def test_consumer_killed_mid_batch_loses_nothing_and_applies_once(
    world, consumers, proxy, redis_server, stage
):
    seeder, dev, rt, app = world
    queue = rt.settings.events.queue_url
    first = consumers()
    sqs = seeder.client("sqs", MANAGEMENT_ACCOUNT)
    if stage == "before_sending":
        # Redis takes no write for a while: the consumer holds the messages, blocked on its claim.
        rt.redis.execute_command("CLIENT", "PAUSE", 20_000, "WRITE")
    else:
        proxy.slow("DeleteMessageBatch", 60)  # sent and marked seen, then stuck deleting

    names = change_roles(seeder, dev, queue, 5)

    def hidden() -> int:
        attrs = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
        return int(attrs["ApproximateNumberOfMessagesNotVisible"])

    if stage == "before_sending":
        wait_until(lambda: hidden() > 0, 15, "the consumer holds messages")
    else:
        wait_until(lambda: proxy.count("DeleteMessageBatch") > 0, 60, "the consumer deleting")
    held = hidden()
    first.kill()
    if stage == "before_sending":
        rt.redis.execute_command("CLIENT", "UNPAUSE")
    proxy.clear()
    consumers()

    wait_until(lambda: all(cached_policies(rt, dev, names).values()), 90, "every change cached")
    counts = settled_counts(rt, 5, 5)
    # The killed consumer counted nothing; the second received all 5. Killed before sending:
    # it applies them all; killed before deleting: those the first sent come back as duplicates.
    duplicates = {"dropped|duplicate": held} if stage == "before_deleting" else {}
    assert held > 0
    assert counts == {"received": 5, "applied": 5, **duplicates}
    assert history_counts(rt, dev, names) == dict.fromkeys(names, 1)
