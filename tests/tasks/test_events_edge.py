"""Edge cases of the event-driven refresh: parsing hostile or cross-account events, and
``refresh`` called in-process against moto and a real Redis (the drain is only needed where
it must dispatch: tests/tasks/test_events.py runs it through a real worker)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest

from inventory.aws import sns, sqs
from inventory.aws.kind import NotAChange
from inventory.cache.keys import IAM_ROLE, Partition
from inventory.celery_app import create_app
from inventory.demo.seed import (
    MANAGEMENT_ACCOUNT,
    AccountSeed,
    Seeder,
    change_event_envelope,
    demo_account,
)
from inventory.registry import BY_STEM, parse_event
from inventory.runtime import Runtime
from inventory.settings import load_settings
from inventory.tasks.accounts import store_account_mapping
from inventory.tasks.events import drain, refresh, refs_by_account
from inventory.tasks.iam import sync_iam_account
from inventory.tasks.resources import sync_kind
from tests.conftest import inventory_env
from tests.faultproxy import FaultProxy
from tests.tasks.test_events import PLUMBING

ALICE = "arn:aws:iam::111111111111:user/alice"
OURS, THEIRS = "111111111111", "222222222222"
DOC = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
}
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def body(account: str, name: str, params: dict, source: str, region: str = "us-east-1") -> str:
    return json.dumps(
        change_event_envelope(
            account, name, params, time.time(), ALICE, source=source, region=region
        )
    )


@pytest.mark.parametrize(
    "text",
    [
        "[" * 200_000,  # RecursionError in json.loads
        '{"detail": ' * 5_000 + "1" + "}" * 5_000,
        json.dumps({"detail": {"eventName": "PutRolePolicy", "eventSource": 7, "eventTime": 3}}),
        json.dumps({"detail": []}),
        json.dumps([1, 2]),
        "\udcff",
    ],
)
def test_unreadable_message_is_not_a_change_whatever_it_holds(text):
    with pytest.raises(NotAChange):
        parse_event(text)


@pytest.mark.parametrize(
    ("url", "region"),
    [
        (f"https://sqs.us-west-2.amazonaws.com/{OURS}/q", "us-west-2"),
        (f"https://us-west-2.queue.amazonaws.com/{OURS}/q", "us-west-2"),
        (f"https://queue.amazonaws.com/{OURS}/q", "us-east-1"),
        (f"http://localhost:5000/{OURS}/q", "eu-west-1"),  # no region in the host: the event's
    ],
)
def test_queue_event_takes_account_and_region_from_the_queue_url(url, region):
    (event,) = parse_event(
        body(OURS, "SetQueueAttributes", {"queueUrl": url}, "sqs.amazonaws.com", "eu-west-1")
    )
    assert (event.kind, event.account_id, event.region, event.name) == (
        sqs.KIND,
        OURS,
        region,
        url,
    )


def test_call_on_another_accounts_queue_or_topic_is_not_a_change_of_ours():
    queue = f"https://sqs.us-east-1.amazonaws.com/{THEIRS}/shared"
    topic = f"arn:aws:sns:us-east-1:{THEIRS}:shared"
    for name, params, source in [
        ("SetQueueAttributes", {"queueUrl": queue}, "sqs.amazonaws.com"),
        ("TagQueue", {"queueUrl": queue, "tags": {"a": "b"}}, "sqs.amazonaws.com"),
        ("SetTopicAttributes", {"topicArn": topic}, "sns.amazonaws.com"),
        ("TagResource", {"resourceArn": topic}, "sns.amazonaws.com"),
    ]:
        with pytest.raises(NotAChange, match=THEIRS):
            parse_event(body(OURS, name, params, source))
    # The topic's own region, not the region the call was recorded in.
    (event,) = parse_event(
        body(OURS, "SetTopicAttributes", {"topicArn": f"arn:aws:sns:eu-west-1:{OURS}:t"},
             "sns.amazonaws.com", "us-east-1")
    )  # fmt: skip
    assert (event.kind, event.account_id, event.region) == (sns.KIND, OURS, "eu-west-1")


def test_attaching_another_accounts_policy_refreshes_only_our_role():
    theirs = f"arn:aws:iam::{THEIRS}:policy/shared"
    events = parse_event(
        body(OURS, "AttachRolePolicy", {"roleName": "r", "policyArn": theirs}, "iam.amazonaws.com")
    )
    assert [(e.kind, e.account_id, e.name, e.aspect) for e in events] == [
        ("iam_role", OURS, "r", "attached")
    ]
    for name in ("CreatePolicyVersion", "SetDefaultPolicyVersion", "DeletePolicy"):
        with pytest.raises(NotAChange):
            parse_event(body(OURS, name, {"policyArn": theirs}, "iam.amazonaws.com"))


# --- refresh in-process against moto (through a counting proxy) and a real Redis ---------


@pytest.fixture
def proxy(moto_server) -> Iterator[FaultProxy]:
    p = FaultProxy(moto_server.url).start()
    yield p
    p.stop()


@pytest.fixture
def dev(runtime, redis_server, moto_server, proxy):
    """A member account with its role swept; a runtime whose AWS calls go through the proxy.

    The Celery app is created (and so current) for its broker: what the refresh and the drain
    send is read back from the real Redis broker, no worker runs it.
    """
    seeder = Seeder(moto_server.url)
    seeder.organisation()
    account: AccountSeed = seeder.create_account(demo_account("dev", 0))
    queue = (
        seeder.client("sqs", MANAGEMENT_ACCOUNT)
        .create_queue(QueueName="inventory-change-events")["QueueUrl"]
    )  # fmt: skip
    env = inventory_env(
        redis_server,
        moto_server,
        INVENTORY_AWS__ENDPOINT_URL=proxy.url,
        INVENTORY_EVENTS__ENABLED="true",
        INVENTORY_EVENTS__QUEUE_URL=queue,
        INVENTORY_EVENTS__MAX_SECONDS="20",
    )
    settings = load_settings(paths=[], environ=env)
    rt = Runtime(settings)
    store_account_mapping(rt)
    sync_iam_account(rt, account.id)
    app = create_app(settings)
    proxy.calls.clear()
    return seeder, account, rt, app, queue


def refs(*bodies: str) -> list[dict]:
    """The refs a drain sends for these message bodies (one account)."""
    received = time.time()
    by_account = refs_by_account([(e, received) for b in bodies for e in parse_event(b)])
    (found,) = by_account.values()
    return found


def iam_event(account: str, name: str, params: dict, when: float) -> str:
    return json.dumps(change_event_envelope(account, name, params, when, ALICE))


def queued_refreshes(app) -> list[tuple[dict, tuple]]:
    """Every task message waiting in the broker's aws queue: (headers, args), consumed."""
    found = []
    with app.connection_for_read() as conn, conn.SimpleQueue("aws") as queue:
        while True:
            try:
                message = queue.get(timeout=0.2)
            except queue.Empty:
                return found
            args, _kwargs, _embed = message.payload
            found.append((message.headers, tuple(args)))
            message.ack()


def reads(proxy: FaultProxy) -> list[str]:
    """The AWS calls made to read resources (not the cache's own DynamoDB and S3 writes)."""
    return [c for c in proxy.calls if c not in PLUMBING]


def read_times(rt: Runtime) -> dict[str, float]:
    return {k: float(v) for k, v in rt.redis.hgetall(rt.keys.event_applied()).items()}


def test_read_of_one_aspect_does_not_make_an_older_event_of_another_stale(dev, proxy):
    seeder, account, rt, app, _queue = dev
    role = account.roles[0].name
    arn = account.role_arn(role)
    iam = seeder.client("iam", account.id)
    extra = iam.create_policy(PolicyName="extra", PolicyDocument=json.dumps(DOC))["Policy"]["Arn"]
    iam.attach_role_policy(RoleName=role, PolicyArn=extra)  # 12:00:00
    iam.put_role_policy(RoleName=role, PolicyName="x", PolicyDocument=json.dumps(DOC))  # :01
    t0 = time.time() - 60
    attach = iam_event(account.id, "AttachRolePolicy", {"roleName": role, "policyArn": extra}, t0)
    inline = iam_event(account.id, "PutRolePolicy", {"roleName": role, "policyName": "x"}, t0 + 1)

    # The newest event arrives first, in its own drain: only the inline policy is read.
    first = refresh(rt, account.id, refs(inline), app.send_task)
    assert reads(proxy) == ["GetRolePolicy"] and first["read"] == 1
    proxy.calls.clear()

    (role_ref, _policy_ref) = refs(attach)
    second = refresh(rt, account.id, [role_ref], app.send_task)

    assert reads(proxy) == ["ListAttachedRolePolicies"]  # not stale: its aspect was not read
    assert second["stale"] == 0
    record = rt.redis_cache.item(Partition(IAM_ROLE, account.id), arn)
    assert extra in {p["arn"] for p in record["attached_policies"]}
    assert record["inline_policies"]["x"] == DOC
    fields = read_times(rt)
    assert {f"{arn}|inline:x", f"{arn}|attached", arn} <= fields.keys()
    assert fields[arn] == max(fields[f"{arn}|inline:x"], fields[f"{arn}|attached"])

    # Both again, older than their reads: no call at all. Then a ref of two aspects of which
    # one was read after its event: only the other is read.
    proxy.calls.clear()
    again = refresh(rt, account.id, refs(inline, attach)[:1], app.send_task)
    assert (again["stale"], again["read"], reads(proxy)) == (1, 0, [])
    tag = iam_event(account.id, "TagRole", {"roleName": role}, time.time())
    both = refresh(rt, account.id, refs(inline, tag), app.send_task)
    assert (both["stale"], both["read"], reads(proxy)) == (0, 1, ["GetRole"])


def test_whole_read_counts_for_every_aspect(dev, proxy):
    seeder, account, rt, app, _queue = dev
    iam = seeder.client("iam", account.id)
    iam.create_role(RoleName="fresh", AssumeRolePolicyDocument=json.dumps(TRUST))
    now = time.time()
    created = refresh(
        rt,
        account.id,
        refs(iam_event(account.id, "CreateRole", {"roleName": "fresh"}, now - 40)),
        app.send_task,
    )
    assert created["read"] == 1 and f"{account.role_arn('fresh')}|*" in read_times(rt)
    proxy.calls.clear()
    older = iam_event(
        account.id, "PutRolePolicy", {"roleName": "fresh", "policyName": "p"}, now - 41
    )
    assert refresh(rt, account.id, refs(older), app.send_task)["stale"] == 1
    assert reads(proxy) == []


def test_one_malformed_resource_does_not_lose_the_others(dev, proxy):
    seeder, account, rt, app, _queue = dev
    s3 = seeder.client("s3", account.id)
    for bucket, policy in (("good-bucket", json.dumps(DOC)), ("bad-bucket", "not json")):
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_policy(Bucket=bucket, Policy=policy)  # moto keeps a policy that is not JSON
    now = time.time()
    bodies = [
        json.dumps(
            change_event_envelope(
                account.id,
                "PutBucketPolicy",
                {"bucketName": b},
                now,
                ALICE,
                source="s3.amazonaws.com",
            )
        )  # fmt: skip
        for b in ("bad-bucket", "good-bucket")
    ]

    result = refresh(rt, account.id, refs(*bodies), app.send_task)

    assert set(result["failed"]) == {"bad-bucket"}
    assert "not a JSON policy document" in result["failed"]["bad-bucket"]
    p = Partition("s3_bucket", account.id)
    assert rt.redis_cache.item(p, "arn:aws:s3:::good-bucket")["policy"] == DOC
    assert rt.redis_cache.item(p, "arn:aws:s3:::bad-bucket") is None
    assert "arn:aws:s3:::bad-bucket" not in read_times(rt)  # not read: the next event retries


def test_burst_of_events_is_sent_in_tasks_of_at_most_100_resources(dev):
    seeder, account, rt, app, queue = dev
    sqs = seeder.client("sqs", MANAGEMENT_ACCOUNT)
    now = time.time()
    bodies = [
        iam_event(account.id, "PutRolePolicy", {"roleName": f"r{i}", "policyName": "p"}, now)
        for i in range(150)
    ]
    for start in range(0, len(bodies), 10):
        entries = [
            {"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start : start + 10])
        ]
        sqs.send_message_batch(QueueUrl=queue, Entries=entries)

    drained = drain(rt, app.send_task)

    assert (drained["received"], drained["resources"]) == (150, 150)
    sent = queued_refreshes(app)
    assert len(sent) == len(drained["task_ids"]) >= 2
    assert {h["task"] for h, _ in sent} == {"inventory.refresh_changed_resources"}
    # Usually [50, 100]; a slow machine may also flush part of the burst after FLUSH_SECONDS.
    assert max(len(args[1]) for _, args in sent) <= 100
    assert {r["name"] for _, args in sent for r in args[1]} == {f"r{i}" for i in range(150)}


def test_event_queue_url_form_is_not_stored_over_the_listed_one(dev, proxy):
    seeder, account, rt, app, _queue = dev
    sqs = seeder.client("sqs", account.id, "us-east-1")
    listed = sqs.create_queue(QueueName="orders")["QueueUrl"]
    sync_kind(rt, BY_STEM["sqs_queues"], account.id)
    arn = f"arn:aws:sqs:us-east-1:{account.id}:orders"
    p = Partition("sqs_queue", account.id, "us-east-1")
    swept = rt.redis_cache.item(p, arn)["url"]  # moto answers with the host it was called at
    sqs.set_queue_attributes(QueueUrl=listed, Attributes={"VisibilityTimeout": "45"})
    sqs_event = {"source": "sqs.amazonaws.com"}
    legacy = f"https://queue.amazonaws.com/{account.id}/orders"
    body = json.dumps(
        change_event_envelope(account.id, "SetQueueAttributes", {"queueUrl": legacy},
                              time.time(), ALICE, **sqs_event)
    )  # fmt: skip
    proxy.calls.clear()

    refresh(rt, account.id, refs(body), app.send_task)

    assert reads(proxy) == ["GetQueueAttributes"]
    assert rt.redis_cache.item(p, arn)["url"] == swept != legacy
    (change,) = rt.history.for_resource("sqs_queue", arn)
    assert [op["path"] for op in change.diff] == ["/visibility_timeout"]

    # A queue we do not hold yet: its URL is asked for once, in the form ListQueues gives.
    sqs.create_queue(QueueName="fresh")
    regional = f"https://us-east-1.queue.amazonaws.com/{account.id}/fresh"
    created = change_event_envelope(
        account.id, "CreateQueue", {"queueName": "fresh"}, time.time(), ALICE, **sqs_event
    )
    created["detail"]["responseElements"] = {"queueUrl": regional}
    proxy.calls.clear()

    refresh(rt, account.id, refs(json.dumps(created)), app.send_task)

    assert reads(proxy) == ["GetQueueUrl", "GetQueueAttributes", "ListQueueTags"]
    fresh_arn = f"arn:aws:sqs:us-east-1:{account.id}:fresh"
    stored = rt.redis_cache.item(p, fresh_arn)["url"]
    assert stored.endswith(f"/{account.id}/fresh") and stored != regional
    # What the sweep lists is what the refresh stored: the sweep changes nothing.
    again = sync_kind(rt, BY_STEM["sqs_queues"], account.id)["regions"]["us-east-1"]
    assert (again["updated"], again["created"]) == (0, 0)
    assert rt.redis_cache.item(p, fresh_arn)["url"] == stored


def test_concurrent_refreshes_of_one_account_keep_both_changes(dev, proxy):
    seeder, account, rt, app, _queue = dev
    role = account.roles[0].name
    arn = account.role_arn(role)
    iam = seeder.client("iam", account.id)
    extra = iam.create_policy(PolicyName="extra", PolicyDocument=json.dumps(DOC))["Policy"]["Arn"]
    iam.put_role_policy(RoleName=role, PolicyName="x", PolicyDocument=json.dumps(DOC))
    iam.attach_role_policy(RoleName=role, PolicyArn=extra)
    now = time.time()
    inline = refs(
        iam_event(account.id, "PutRolePolicy", {"roleName": role, "policyName": "x"}, now)
    )
    attach = refs(
        iam_event(account.id, "AttachRolePolicy", {"roleName": role, "policyArn": extra}, now)
    )[:1]
    # The inline read is slow: the attach refresh starts (from two successive drains) while it
    # is still reading, from the same cached record.
    proxy.slow("GetRolePolicy", 2.0, times=1)
    results: dict[str, dict] = {}

    def run(name: str, these: list[dict]) -> None:
        results[name] = refresh(Runtime(rt.settings), account.id, these, app.send_task)

    first = threading.Thread(target=run, args=("inline", inline))
    second = threading.Thread(target=run, args=("attach", attach))
    first.start()
    time.sleep(0.5)
    second.start()
    first.join(30)
    second.join(30)

    assert results["inline"]["read"] == results["attach"]["read"] == 1
    record = rt.redis_cache.item(Partition(IAM_ROLE, account.id), arn)
    assert record["inline_policies"]["x"] == DOC
    assert extra in {p["arn"] for p in record["attached_policies"]}
    assert rt.dynamo.items(Partition(IAM_ROLE, account.id))[arn] == record
    assert not rt.redis.exists(rt.keys.event_lock(account.id))


def test_create_not_yet_visible_in_iam_is_checked_again_later(dev, proxy):
    seeder, account, rt, app, _queue = dev
    arn = account.role_arn("late")
    create = iam_event(account.id, "CreateRole", {"roleName": "late"}, time.time())

    result = refresh(rt, account.id, refs(create), app.send_task)

    assert (result["rechecked"], result["read"], reads(proxy)) == (1, 0, ["GetRole"])
    assert not any(k.startswith(arn) for k in read_times(rt))  # no read time: not stale later
    ((headers, args),) = queued_refreshes(app)
    assert headers["task"] == "inventory.refresh_changed_resources" and headers["eta"]
    assert args[0] == account.id and args[1][0]["rechecks"] == 1
    assert args[1][0]["name"] == "late"

    # IAM has caught up by the time the recheck runs.
    seeder.client("iam", account.id).create_role(
        RoleName="late", AssumeRolePolicyDocument=json.dumps(TRUST)
    )
    again = refresh(rt, account.id, args[1], app.send_task)

    assert (again["rechecked"], again["read"]) == (0, 1)
    assert rt.redis_cache.item(Partition(IAM_ROLE, account.id), arn)["name"] == "late"
    (change,) = rt.history.for_resource(IAM_ROLE, arn)
    assert (change.change, change.event_name) == ("created", "CreateRole")


def test_delete_still_visible_in_iam_is_checked_again_at_most_three_times(dev, proxy):
    seeder, account, rt, app, _queue = dev
    role = account.roles[0].name
    arn = account.role_arn(role)
    p = Partition(IAM_ROLE, account.id)
    before = rt.redis_cache.item(p, arn)
    (ref,) = refs(iam_event(account.id, "DeleteRole", {"roleName": role}, time.time()))

    for attempt in range(1, 4):
        result = refresh(rt, account.id, [ref], app.send_task)
        assert (result["rechecked"], result["partitions"]) == (1, {})
        ((_headers, args),) = queued_refreshes(app)
        ref = args[1][0]
        assert ref["rechecks"] == attempt
    assert arn not in read_times(rt)

    # The role is still there after three rechecks: it exists (say, created again).
    result = refresh(rt, account.id, [ref], app.send_task)
    assert (result["rechecked"], result["read"]) == (0, 1)
    assert queued_refreshes(app) == []
    assert rt.redis_cache.item(p, arn) == before
    assert arn in read_times(rt)


def test_read_backs_of_one_refresh_run_on_the_detail_read_pool(dev, proxy):
    """The resources of one refresh are read back at once (at most ``aws.detail_reads``), and
    with a pool of 1 one after another: the same records are stored either way."""
    seeder, account, rt, app, _queue = dev
    iam = seeder.client("iam", account.id)
    roles = [f"pooled-{n}" for n in range(4)]
    for role in roles:
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(TRUST))
    sync_iam_account(rt, account.id)
    proxy.max_in_flight = 0
    now = time.time()
    bodies = []
    for n, role in enumerate(roles):
        document = {**DOC, "Statement": [{**DOC["Statement"][0], "Sid": f"S{n}"}]}
        iam.put_role_policy(RoleName=role, PolicyName="pooled", PolicyDocument=json.dumps(document))
        bodies.append(
            iam_event(account.id, "PutRolePolicy", {"roleName": role, "policyName": "pooled"}, now)
        )
    # Each read held long enough that reads started together are answered together.
    proxy.slow("GetRolePolicy", 0.3)
    serial_settings = rt.settings.model_copy(
        update={"aws": rt.settings.aws.model_copy(update={"detail_reads": 1})}
    )

    serial = refresh(Runtime(serial_settings), account.id, refs(*bodies), app.send_task)
    assert proxy.max_in_flight == 1
    proxy.max_in_flight = 0
    rt.redis.delete(rt.keys.event_applied())  # forget those reads: read every one again
    pooled = refresh(rt, account.id, refs(*bodies), app.send_task)

    assert serial["read"] == pooled["read"] == len(roles)
    assert not serial["failed"] and not pooled["failed"]
    assert 2 <= proxy.max_in_flight <= rt.settings.aws.detail_reads
    p = Partition(IAM_ROLE, account.id)
    for n, role in enumerate(roles):
        record = rt.redis_cache.item(p, account.role_arn(role))
        assert record["inline_policies"]["pooled"]["Statement"][0]["Sid"] == f"S{n}"
