"""Event-driven refresh against moto, a real Redis and a real worker.

The worker's AWS endpoint is a counting proxy in front of moto, so the test sees every call the
refresh makes. CloudTrail does not run in moto: the test puts the EventBridge envelopes that
CloudTrail would produce on a real (moto) SQS queue, after making the change in moto itself.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator

import pytest
from celery.result import AsyncResult

from inventory.aws.kind import NotAChange
from inventory.cache.keys import IAM_GROUP, IAM_ROLE, IAM_USER, Partition
from inventory.celery_app import create_app
from inventory.demo.seed import (
    MANAGEMENT_ACCOUNT,
    AccountSeed,
    Seeder,
    change_event_envelope,
    demo_account,
)
from inventory.registry import BY_STEM, EVENT_NAMES, parse_event
from inventory.runtime import Runtime
from inventory.settings import load_settings
from inventory.tasks.accounts import store_account_mapping
from inventory.tasks.iam import sync_iam_account
from tests.conftest import inventory_env
from tests.faultproxy import FaultProxy

ALICE = "arn:aws:iam::123456789012:user/alice"
# Calls that are not reading a changed resource: the queue, credentials, the cache's own tables.
PLUMBING = {
    "ReceiveMessage",
    "DeleteMessageBatch",
    "AssumeRole",
    "GetCallerIdentity",
    "DescribeTable",
    "Query",
    "GetItem",
    "PutItem",
    "BatchGetItem",
    "BatchWriteItem",
    "PutObject",
}


def envelope(
    account: str,
    name: str,
    params: dict,
    when: float,
    event_id: str | None = None,
    source: str = "iam.amazonaws.com",
) -> str:
    return json.dumps(
        change_event_envelope(account, name, params, when, ALICE, event_id, source=source)
    )


@pytest.fixture
def proxy(moto_server) -> Iterator[FaultProxy]:
    p = FaultProxy(moto_server.url).start()
    yield p
    p.stop()


@pytest.fixture
def events_env(redis_server, moto_server, proxy) -> dict[str, str]:
    queue = (
        Seeder(moto_server.url)
        .client("sqs", MANAGEMENT_ACCOUNT)
        .create_queue(QueueName="inventory-iam-events")["QueueUrl"]
    )
    return inventory_env(
        redis_server,
        moto_server,
        INVENTORY_AWS__ENDPOINT_URL=proxy.url,
        INVENTORY_EVENTS__ENABLED="true",
        INVENTORY_EVENTS__QUEUE_URL=queue,
        INVENTORY_EVENTS__MAX_SECONDS="5",
    )


@pytest.fixture
def world(runtime: Runtime, moto_server, events_env, start_worker):
    """A seeded account, swept once; a worker and an app that share the events settings."""
    seeder = Seeder(moto_server.url)
    seeder.organisation()
    dev: AccountSeed = seeder.create_account(demo_account("dev", 0))
    settings = load_settings(paths=[], environ=events_env)
    rt = Runtime(settings)
    store_account_mapping(rt)
    sync_iam_account(rt, dev.id)
    app = create_app(settings)
    app.runtime = rt
    start_worker(events_env)
    return seeder, dev, rt, app, events_env["INVENTORY_EVENTS__QUEUE_URL"]


def drain_cycle(app, proxy: FaultProxy) -> tuple[dict, list[dict], list[str]]:
    """One drain (as beat runs it) and the refreshes it sent, through the worker."""
    proxy.calls.clear()
    result = app.tasks["inventory.drain_change_events"].apply()
    assert result.successful(), result.traceback
    drained = result.result
    refreshes = [AsyncResult(task_id, app=app).get(timeout=60) for task_id in drained["task_ids"]]
    calls = [c for c in proxy.calls if c not in PLUMBING]
    return drained, refreshes, calls


def send(seeder: Seeder, queue: str, *bodies: str) -> None:
    sqs = seeder.client("sqs", MANAGEMENT_ACCOUNT)
    for body in bodies:
        sqs.send_message(QueueUrl=queue, MessageBody=body)


def test_changed_role_policy_is_cached_with_history_in_one_drain(world, proxy):
    seeder, dev, rt, app, queue = world
    role = dev.roles[0]
    arn = dev.role_arn(role.name)
    p = Partition(IAM_ROLE, dev.id)
    before = rt.redis_cache.item(p, arn)
    deny = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Action": "s3:*", "Resource": "*"}],
    }
    iam = seeder.client("iam", dev.id)
    iam.put_role_policy(RoleName=role.name, PolicyName="deny-s3", PolicyDocument=json.dumps(deny))
    changed_at = time.time()
    event_id = str(uuid.uuid4())
    params = {"roleName": role.name, "policyName": "deny-s3", "policyDocument": json.dumps(deny)}
    send(seeder, queue, envelope(dev.id, "PutRolePolicy", params, changed_at, event_id))

    drained, refreshes, calls = drain_cycle(app, proxy)

    assert (drained["received"], drained["events"], drained["resources"]) == (1, 1, 1)
    assert calls == ["GetRolePolicy"]  # exactly one call for the one changed resource
    cached = rt.redis_cache.item(p, arn)
    assert cached["inline_policies"]["deny-s3"] == deny
    assert {k: v for k, v in cached.items() if k != "inline_policies"} == {
        k: v for k, v in before.items() if k != "inline_policies"
    }
    assert rt.dynamo.items(p)[arn] == cached
    (change,) = rt.history.for_resource(IAM_ROLE, arn)
    assert change.change == "updated"
    assert change.actor == ALICE and change.event_name == "PutRolePolicy"
    assert change.diff == [{"op": "add", "path": "/inline_policies/deny-s3", "new": deny}]
    feed, _ = rt.history.feed(account_id=dev.id)
    assert [c.arn for c in feed] == [arn]
    lag = refreshes[0]["lags"][0]
    assert 0 <= lag < 60
    assert float(rt.redis.hget(rt.keys.event_lag(), "+Inf")) == 1
    # The queue is empty: the message was deleted once the refresh was sent.
    assert drain_cycle(app, proxy)[0]["received"] == 0

    # The same event again (EventBridge delivers at least once) and an event older than our
    # last read of the role: no call, no write, no new history.
    stale = envelope(dev.id, "PutRolePolicy", params, changed_at - 3600)
    send(seeder, queue, envelope(dev.id, "PutRolePolicy", params, changed_at, event_id), stale)
    writes_before = rt.dynamo.model(IAM_ROLE).get(arn, dev.id).updatedAt

    drained, refreshes, calls = drain_cycle(app, proxy)

    assert (drained["received"], drained["duplicates"], drained["events"]) == (2, 1, 1)
    assert refreshes[0]["stale"] == 1 and refreshes[0]["read"] == 0
    assert calls == []
    assert rt.dynamo.model(IAM_ROLE).get(arn, dev.id).updatedAt == writes_before
    assert len(rt.history.for_resource(IAM_ROLE, arn)) == 1
    # What the refresh stored is exactly what a full sweep stores: the sweep writes nothing.
    assert sync_iam_account(rt, dev.id)["dynamo_writes"] == 0


def test_created_role_is_read_in_full_exactly_as_a_sweep_would(world, proxy):
    seeder, dev, rt, app, queue = world
    iam = seeder.client("iam", dev.id)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    arn = iam.create_role(
        RoleName="fresh", Path="/team/", AssumeRolePolicyDocument=json.dumps(trust),
        Tags=[{"Key": "owner", "Value": "alice"}], Description="Fresh app",
        MaxSessionDuration=7200,
    )["Role"]["Arn"]  # fmt: skip
    inline = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"}],
    }
    iam.put_role_policy(RoleName="fresh", PolicyName="inline", PolicyDocument=json.dumps(inline))
    iam.attach_role_policy(RoleName="fresh", PolicyArn=dev.policy_arn("dev-queue-access"))
    now = time.time()
    send(
        seeder,
        queue,
        envelope(dev.id, "CreateRole", {"roleName": "fresh", "path": "/team/"}, now),
        envelope(dev.id, "PutRolePolicy", {"roleName": "fresh", "policyName": "inline"}, now + 1),
    )

    drained, refreshes, calls = drain_cycle(app, proxy)

    assert drained["resources"] == 1  # two events, one resource
    p = Partition(IAM_ROLE, dev.id)
    cached = rt.redis_cache.item(p, arn)
    assert cached["inline_policies"] == {"inline": inline}
    assert cached["tags"] == {"owner": "alice"}
    assert (cached["description"], cached["max_session_duration"]) == ("Fresh app", 7200)
    (change,) = rt.history.for_resource(IAM_ROLE, arn)
    assert change.change == "created" and change.event_name == "PutRolePolicy"
    # The sweep agrees with the refresh about the role (the attached policy's count moved, and
    # no event told us: that one the sweep writes).
    roles = sync_iam_account(rt, dev.id)["partitions"][IAM_ROLE]
    assert (roles["created"], roles["updated"], roles["removed"]) == (0, 0, 0)


def test_delete_event_for_a_role_that_still_exists_deletes_nothing(world, proxy):
    seeder, dev, rt, app, queue = world
    role = dev.roles[0]
    arn = dev.role_arn(role.name)
    p = Partition(IAM_ROLE, dev.id)
    cached = rt.redis_cache.item(p, arn)
    stamp = rt.dynamo.model(IAM_ROLE).get(arn, dev.id).updatedAt
    # A minute old: IAM has settled, so a role that is there is not being deleted (a younger
    # delete is checked again later: tests/tasks/test_events_edge.py).
    deleted_at = time.time() - 60
    send(seeder, queue, envelope(dev.id, "DeleteRole", {"roleName": role.name}, deleted_at))

    drained, refreshes, calls = drain_cycle(app, proxy)

    assert calls == ["GetRole"]  # the delete is checked, and the role is there
    assert refreshes[0]["partitions"][p.id]["removed"] == 0
    assert refreshes[0]["partitions"][p.id]["dynamo_writes"] == 0
    assert rt.redis_cache.item(p, arn) == cached
    assert rt.dynamo.model(IAM_ROLE).get(arn, dev.id).updatedAt == stamp
    assert rt.history.for_resource(IAM_ROLE, arn) == []

    # Now really deleted in AWS: the next delete event removes it, and says who did it.
    iam = seeder.client("iam", dev.id)
    for name in iam.list_role_policies(RoleName=role.name)["PolicyNames"]:
        iam.delete_role_policy(RoleName=role.name, PolicyName=name)
    for attached in iam.list_attached_role_policies(RoleName=role.name)["AttachedPolicies"]:
        iam.detach_role_policy(RoleName=role.name, PolicyArn=attached["PolicyArn"])
    for profile in iam.list_instance_profiles_for_role(RoleName=role.name)["InstanceProfiles"]:
        iam.remove_role_from_instance_profile(
            InstanceProfileName=profile["InstanceProfileName"], RoleName=role.name
        )
    iam.delete_role(RoleName=role.name)
    send(seeder, queue, envelope(dev.id, "DeleteRole", {"roleName": role.name}, time.time() + 10))

    drained, refreshes, calls = drain_cycle(app, proxy)

    assert calls == ["GetRole"]
    assert rt.redis_cache.item(p, arn) is None
    assert rt.redis_cache.get(arn) is None
    assert arn not in rt.dynamo.items(p)
    (change,) = rt.history.for_resource(IAM_ROLE, arn)
    assert (change.change, change.actor, change.event_name) == ("deleted", ALICE, "DeleteRole")
    assert {op["path"] for op in change.diff} >= {"/name", "/trust_policy"}


def test_messages_that_name_no_change_are_ignored_and_removed(world, proxy):
    seeder, dev, rt, app, queue = world
    failed = json.loads(envelope(dev.id, "PutRolePolicy", {"roleName": "x"}, time.time()))
    failed["detail"]["errorCode"] = "AccessDenied"
    # Nested past the recursion limit: json.loads raises RecursionError, not ValueError.
    nested = "[" * 200_000
    send(seeder, queue, "not json", json.dumps({"detail": {}}), json.dumps(failed), nested)

    drained, refreshes, calls = drain_cycle(app, proxy)

    assert (drained["received"], drained["ignored"], drained["events"]) == (4, 4, 0)
    assert refreshes == [] and calls == []
    assert drain_cycle(app, proxy)[0]["received"] == 0


def test_events_of_an_account_not_synced_send_no_refresh_and_a_refresh_sent_anyway_fails(
    world, proxy
):
    seeder, dev, rt, app, queue = world
    stranger = "999999999999"  # not in the mapping; moto would let the hub assume a role there
    role = dev.roles[0]
    params = {"roleName": role.name, "policyName": "p", "policyDocument": "{}"}
    send(
        seeder,
        queue,
        envelope(stranger, "PutRolePolicy", {**params, "roleName": "intruder"}, time.time()),
        envelope(dev.id, "PutRolePolicy", params, time.time()),
    )

    # Any role assumed in that account would show here (and be refused).
    into_stranger = proxy.fail("AssumeRole", "AccessDenied", status=403, match=stranger)

    drained, refreshes, calls = drain_cycle(app, proxy)

    assert (drained["received"], drained["not_synced"], drained["events"]) == (2, 1, 1)
    assert [r["account_id"] for r in refreshes] == [dev.id]
    assert into_stranger.seen == 0  # never fetched
    assert rt.event_ledger.counts() == {"received": 2, "dropped|not_synced": 1, "applied": 1}
    assert drain_cycle(app, proxy)[0]["received"] == 0  # both messages were deleted
    # A refresh for that account reaching a worker by another way is refused, not retried.
    proxy.calls.clear()
    ref = {"kind": IAM_ROLE, "region": "global", "name": "intruder", "aspects": [], "events": []}
    sent = app.send_task("inventory.refresh_changed_resources", args=[stranger, [ref]])
    with pytest.raises(Exception, match=f"account {stranger} is not in the account mapping"):
        sent.get(timeout=60)
    assert proxy.count("AssumeRole") == 0
    (status,) = [s for s in rt.outcomes.status() if s.account_id == stranger]
    assert status.last_success is None and "AccountNotSynced" in (status.last_error or "")
    assert [p for p in rt.redis_cache.partitions() if p.account_id == stranger] == []


def test_every_followed_event_parses_to_the_resource_it_names():
    when = time.time()
    samples = {
        ("iam.amazonaws.com", "AttachRolePolicy"): (
            {"roleName": "r", "policyArn": "arn:aws:iam::111111111111:policy/p"},
            [
                ("iam_role", "r", "attached"),
                ("iam_policy", "arn:aws:iam::111111111111:policy/p", "resource"),
            ],
        ),
        ("iam.amazonaws.com", "DetachRolePolicy"): (
            {"roleName": "r", "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"},
            [("iam_role", "r", "attached")],
        ),
        ("iam.amazonaws.com", "AddUserToGroup"): (
            {"userName": "u", "groupName": "g"},
            [("iam_user", "u", "groups")],
        ),
        ("iam.amazonaws.com", "SetDefaultPolicyVersion"): (
            {"policyArn": "arn:aws:iam::111111111111:policy/p", "versionId": "v2"},
            [("iam_policy", "arn:aws:iam::111111111111:policy/p", "resource")],
        ),
        ("s3.amazonaws.com", "PutBucketPolicy"): (
            {"bucketName": "b"},
            [("s3_bucket", "b", "policy")],
        ),
        ("sqs.amazonaws.com", "SetQueueAttributes"): (
            {"queueUrl": "https://sqs.us-east-1.amazonaws.com/111111111111/q"},
            [("sqs_queue", "https://sqs.us-east-1.amazonaws.com/111111111111/q", "resource")],
        ),
        ("sns.amazonaws.com", "TagResource"): (
            {"resourceArn": "arn:aws:sns:us-east-1:111111111111:t"},
            [("sns_topic", "arn:aws:sns:us-east-1:111111111111:t", "tags")],
        ),
    }
    for (source, name), (params, expected) in samples.items():
        assert name in EVENT_NAMES[source]
        events = parse_event(envelope("111111111111", name, params, when, source=source))
        assert [(e.kind, e.name, e.aspect) for e in events] == expected, name
        assert all(e.account_id == "111111111111" and e.actor == ALICE for e in events)
    with pytest.raises(NotAChange):
        parse_event(envelope("111111111111", "ListRoles", {}, when))
    with pytest.raises(NotAChange):
        parse_event(envelope("111111111111", "PutRolePolicy", {}, when))


def test_documented_eventbridge_pattern_forwards_exactly_the_events_we_follow():
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "events.md").read_text()
    blocks = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", text, re.S)]
    (pattern,) = [b for b in blocks if "detail-type" in b]
    assert set(pattern["detail"]["eventSource"]) == set(EVENT_NAMES)
    assert set(pattern["detail"]["eventName"]) == {n for v in EVENT_NAMES.values() for n in v}
    assert set(pattern["source"]) == {"aws." + s.split(".")[0] for s in EVENT_NAMES}


def test_rename_events_name_the_old_principal_gone_and_the_new_one_created():
    when = time.time()
    cases = {
        "UpdateUser": (
            {"userName": "a", "newUserName": "b", "newPath": "/x/"},
            [("iam_user", "a", "delete"), ("iam_user", "b", "create")],
        ),
        "UpdateGroup": (
            {"groupName": "g", "newGroupName": "h"},
            [("iam_group", "g", "delete"), ("iam_group", "h", "create")],
        ),
    }
    for name, (params, expected) in cases.items():
        events = parse_event(envelope("111111111111", name, params, when))
        assert [(e.kind, e.name, e.aspect) for e in events] == expected, name
        assert {e.event_name for e in events} == {name}
    # A new path alone, or a new name equal to the old: the principal read back by name.
    for params in ({"userName": "a", "newPath": "/x/"}, {"userName": "a", "newUserName": "a"}):
        (event,) = parse_event(envelope("111111111111", "UpdateUser", params, when))
        assert (event.name, event.aspect) == ("a", "resource")
    # UpdateRole renames nothing (description, maximum session): one GetRole.
    (event,) = parse_event(envelope("111111111111", "UpdateRole", {"roleName": "r"}, when))
    assert (event.kind, event.name, event.aspect) == ("iam_role", "r", "resource")


def test_renamed_user_is_removed_under_its_old_name_and_cached_under_the_new(world, proxy):
    seeder, dev, rt, app, queue = world
    user = dev.users[0].name
    p = Partition(IAM_USER, dev.id)
    old_arn = f"arn:aws:iam::{dev.id}:user/{user}"
    new_arn = f"arn:aws:iam::{dev.id}:user/{user}-renamed"
    before = rt.redis_cache.item(p, old_arn)
    assert before is not None and before["groups"] == [dev.groups[0].name]
    iam = seeder.client("iam", dev.id)
    iam.update_user(UserName=user, NewUserName=f"{user}-renamed")
    params = {"userName": user, "newUserName": f"{user}-renamed"}
    send(seeder, queue, envelope(dev.id, "UpdateUser", params, time.time()))

    drained, refreshes, calls = drain_cycle(app, proxy)

    assert (drained["received"], drained["events"], drained["resources"]) == (1, 2, 2)
    assert calls.count("GetUser") == 2  # the old name (gone) and the new one, read in full
    assert rt.redis_cache.item(p, old_arn) is None
    assert old_arn not in rt.dynamo.items(p)
    renamed = rt.redis_cache.item(p, new_arn)
    assert renamed["name"] == f"{user}-renamed"
    assert renamed["groups"] == before["groups"]
    assert renamed["inline_policies"] == before["inline_policies"]
    assert rt.dynamo.items(p)[new_arn] == renamed
    (gone,) = rt.history.for_resource(IAM_USER, old_arn)
    (created,) = rt.history.for_resource(IAM_USER, new_arn)
    assert (gone.change, gone.event_name) == ("deleted", "UpdateUser")
    assert (created.change, created.event_name, created.actor) == ("created", "UpdateUser", ALICE)
    # The sweep finds the users exactly as the events left them.
    users = sync_iam_account(rt, dev.id)["partitions"][IAM_USER]
    assert (users["created"], users["updated"], users["removed"]) == (0, 0, 0)


def test_user_moved_to_a_new_path_is_stored_under_its_new_arn_only(world, proxy):
    seeder, dev, rt, app, queue = world
    user = dev.users[0].name
    p = Partition(IAM_USER, dev.id)
    old_arn = f"arn:aws:iam::{dev.id}:user/{user}"
    new_arn = f"arn:aws:iam::{dev.id}:user/moved/{user}"
    seeder.client("iam", dev.id).update_user(UserName=user, NewPath="/moved/")
    params = {"userName": user, "newPath": "/moved/"}
    send(seeder, queue, envelope(dev.id, "UpdateUser", params, time.time()))

    drained, refreshes, calls = drain_cycle(app, proxy)

    assert calls == ["GetUser"]
    assert rt.redis_cache.item(p, old_arn) is None
    assert rt.redis_cache.item(p, new_arn)["path"] == "/moved/"
    assert set(rt.dynamo.items(p)) == {new_arn}
    assert [c.change for c in rt.history.for_resource(IAM_USER, old_arn)] == ["deleted"]
    assert [c.change for c in rt.history.for_resource(IAM_USER, new_arn)] == ["created"]
    users = sync_iam_account(rt, dev.id)["partitions"][IAM_USER]
    assert (users["created"], users["updated"], users["removed"]) == (0, 0, 0)


def test_renamed_group_is_followed_by_its_event(world, proxy):
    seeder, dev, rt, app, queue = world
    group = dev.groups[0].name
    p = Partition(IAM_GROUP, dev.id)
    old_arn = f"arn:aws:iam::{dev.id}:group/{group}"
    new_arn = f"arn:aws:iam::{dev.id}:group/ops/{group}-ops"
    before = rt.redis_cache.item(p, old_arn)
    seeder.client("iam", dev.id).update_group(
        GroupName=group, NewGroupName=f"{group}-ops", NewPath="/ops/"
    )
    params = {"groupName": group, "newGroupName": f"{group}-ops", "newPath": "/ops/"}
    send(seeder, queue, envelope(dev.id, "UpdateGroup", params, time.time()))

    drain_cycle(app, proxy)

    assert rt.redis_cache.item(p, old_arn) is None
    renamed = rt.redis_cache.item(p, new_arn)
    assert renamed["attached_policies"] == before["attached_policies"]
    assert set(rt.dynamo.items(p)) == {new_arn}
    assert [c.event_name for c in rt.history.for_resource(IAM_GROUP, new_arn)] == ["UpdateGroup"]


NEW_POLICY_STATEMENT = {
    "Sid": "Auditors",
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::{account}:role/dev-app"},
    "Action": "*",
    "Resource": "*",
}


def _put_policy(seeder: Seeder, dev: AccountSeed, stem: str) -> tuple[str, str, dict, str]:
    """Change the resource policy of dev's one resource of the kind in AWS, as a person would.

    (event source, event name, requestParameters, the one read the refresh must make).
    """
    client = seeder.client(BY_STEM[stem].service, dev.id, "us-east-1")
    statement = dev.resolve(NEW_POLICY_STATEMENT)
    if stem == "ecr_repositories":
        name = dev.repositories[0].name
        document = {"Version": "2012-10-17", "Statement": [{**statement, "Action": "ecr:*"}]}
        del document["Statement"][0]["Resource"]
        client.set_repository_policy(repositoryName=name, policyText=json.dumps(document))
        params = {"repositoryName": name, "policyText": json.dumps(document)}
        return "ecr.amazonaws.com", "SetRepositoryPolicy", params, "GetRepositoryPolicy"
    if stem == "lambda_functions":
        name = dev.functions[0].name
        client.add_permission(
            FunctionName=name,
            StatementId="auditors",
            Action="lambda:GetFunction",
            Principal=dev.id,
        )
        params = {"functionName": name, "statementId": "auditors", "principal": dev.id}
        return "lambda.amazonaws.com", "AddPermission20150331v2", params, "GetPolicy"
    if stem == "secrets":
        arn = client.describe_secret(SecretId=dev.secrets[0].name)["ARN"]
        document = {"Version": "2012-10-17", "Statement": [statement]}
        client.put_resource_policy(SecretId=arn, ResourcePolicy=json.dumps(document))
        return (
            "secretsmanager.amazonaws.com",
            "PutResourcePolicy",
            {"secretId": arn},
            ("GetResourcePolicy"),
        )
    key_id = client.describe_key(KeyId=f"alias/{dev.keys[0].alias}")["KeyMetadata"]["KeyId"]
    document = {"Version": "2012-10-17", "Statement": [statement]}
    client.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(document))
    params = {"keyId": key_id, "policyName": "default"}
    return "kms.amazonaws.com", "PutKeyPolicy", params, "GetKeyPolicy"


@pytest.mark.parametrize("stem", ["ecr_repositories", "lambda_functions", "secrets", "kms_keys"])
def test_resource_policy_event_reads_only_the_policy_and_matches_the_next_sweep(world, proxy, stem):
    from inventory.tasks.resources import sync_kind

    seeder, dev, rt, app, queue = world
    sync = BY_STEM[stem]
    (kind,) = sync.kinds
    p = Partition(kind, dev.id, "us-east-1")
    sync_kind(rt, sync, dev.id)
    ((arn, before),) = rt.redis_cache.items(p).items()
    source, name, params, read = _put_policy(seeder, dev, stem)
    send(seeder, queue, json.dumps(
        change_event_envelope(dev.id, name, params, time.time(), ALICE, source=source)
    ))  # fmt: skip

    drained, refreshes, calls = drain_cycle(app, proxy)

    assert (drained["events"], drained["resources"]) == (1, 1)
    assert refreshes[0]["failed"] == {}
    assert calls == [read]  # the policy alone, nothing else of the resource
    cached = rt.redis_cache.item(p, arn)
    assert cached["policy"] != before["policy"]
    assert {k: v for k, v in cached.items() if k != "policy"} == {
        k: v for k, v in before.items() if k != "policy"
    }
    (change,) = rt.history.for_resource(kind, arn)
    assert (change.actor, change.event_name) == (ALICE, name)
    # What the refresh stored is exactly what a full sweep stores: the sweep writes nothing.
    assert sync_kind(rt, sync, dev.id)["regions"]["us-east-1"]["dynamo_writes"] == 0
