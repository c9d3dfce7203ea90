"""Every kind the registry declares reaches every surface derived from it, and nothing else
names it: tasks and their queues, the beat schedule, CLI choices, the demo's sweep, events,
labels served to the browser, history, the policies table, and the spoke role's permissions."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from inventory import permissions
from inventory.celery_app import QUEUES, create_app
from inventory.cli import _sync_choices, main
from inventory.demo.runner import summary_table  # noqa: F401 - the demo module imports
from inventory.registry import (
    BY_KIND,
    BY_STEM,
    EVENT_KINDS,
    EVENT_NAMES,
    KINDS,
    SYNCS,
    TABLE_KINDS,
    UNINDEXED_KINDS,
    public_kinds,
    synced_kinds,
)
from inventory.schedule import CONSOLEME_ALIASES, SCHEDULE
from inventory.settings import load_settings
from inventory.web.handlers.history import HISTORY_KINDS, KIND_LABELS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def app():
    return create_app(load_settings(paths=[], environ={}))


@pytest.mark.parametrize("sync", SYNCS, ids=lambda s: s.stem)
def test_every_sync_has_its_tasks_queues_beat_entry_and_cli_choice(app, sync):
    per_account = app.tasks[sync.for_account_task]
    fan_out = app.tasks[sync.across_accounts_task]
    assert (per_account.routing_queue, fan_out.routing_queue) == ("aws", "fanout")
    assert per_account.per_account and per_account.active_only
    assert set(per_account.replicates) == set(sync.kinds)
    assert app.conf.beat_schedule[sync.schedule_name]["task"] == sync.across_accounts_task
    assert sync.name in _sync_choices()
    assert all(BY_KIND[k].sync == sync.stem for k in sync.kinds)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_every_kind_has_a_label_everywhere_a_label_is_shown(kind):
    served = {k["kind"]: k for k in public_kinds()}
    assert served[kind.kind]["label"] == kind.label == KIND_LABELS[kind.kind]
    assert (kind.kind in HISTORY_KINDS) == (kind.durable and kind.history)
    assert (kind.kind in TABLE_KINDS) == kind.table
    assert (kind.kind in UNINDEXED_KINDS) == (not kind.indexed)
    if kind.sync is not None:
        assert kind.kind in BY_STEM[kind.sync].kinds
        assert (kind.kind in synced_kinds()) == (kind.shared_account is None)


@pytest.mark.parametrize("kind", EVENT_KINDS, ids=lambda k: k.kind)
def test_every_followed_kind_reads_back_and_its_events_are_forwarded(kind):
    assert kind.events is not None and kind.refresh is not None and kind.arn_for is not None
    assert kind.service is not None and kind.sync is not None
    assert set(kind.events.aspects) <= set(EVENT_NAMES[kind.events.source])
    # The EventBridge rule operators create forwards exactly these (docs/events.md).
    text = (ROOT / "docs" / "events.md").read_text()
    (pattern,) = [
        json.loads(b)
        for b in re.findall(r"```json\n(.*?)```", text, re.S)
        if "detail-type" in json.loads(b)
    ]
    assert set(kind.events.aspects) <= set(pattern["detail"]["eventName"])


@pytest.mark.parametrize("kind", [k for k in KINDS if k.sync], ids=lambda k: k.kind)
def test_every_synced_kind_has_its_read_actions_in_the_spoke_policy(kind):
    allowed = {a for actions in permissions.spoke_actions().values() for a in actions}
    if kind.shared_account is None:
        assert kind.actions, kind.kind
    assert set(kind.actions) <= allowed


def test_the_permissions_document_holds_exactly_the_generated_policy():
    path = ROOT / "docs" / "aws-permissions.md"
    assert permissions.render(path.read_text()) == path.read_text(), (
        "docs/aws-permissions.md is out of date: run inventory permissions"
    )
    result = CliRunner().invoke(main, ["permissions", "--check", "-o", str(path)])
    assert result.exit_code == 0, result.output


def test_the_schedule_has_one_entry_per_sync_and_no_kind_outside_the_registry(app):
    entries = {e.name for e in SCHEDULE}
    assert {s.schedule_name for s in SYNCS} <= entries
    ours = [
        n
        for n in app.tasks
        if n.startswith("inventory.cache_")
        and n.endswith("_account")
        and n.removeprefix("inventory.") not in CONSOLEME_ALIASES  # forwarders to ours
    ]
    stems = {
        re.sub(r"^inventory\.cache_(.*)_(for_account|across_accounts)$", r"\1", n) for n in ours
    }
    assert stems == set(BY_STEM)
    assert {t.routing_queue for n, t in app.tasks.items() if n.startswith("inventory.")} <= set(
        QUEUES
    )


@pytest.mark.parametrize("kind", [k for k in KINDS if k.resource_policy], ids=lambda k: k.kind)
def test_a_resource_kind_is_named_in_at_most_three_files(kind):
    """The issue's own measure: its fetcher, the registry and at most one more.

    Named: as a quoted string that is not a record's field name (``"kms_key": ...`` is the
    field of an SQS queue or a secret, not the kind) or as an upper-case constant.
    """
    found = subprocess.run(
        [
            "grep", "-rlP", f"[\"']{kind.kind}[\"'](?!\\s*:)|\\b{kind.kind.upper()}\\b",
            "inventory", "--include=*.py", "--include=*.js", "--include=*.html",
        ],
        cwd=ROOT, capture_output=True, text=True, check=False,
    ).stdout.split()  # fmt: skip
    assert len(found) <= 3, found
    assert kind.refresh is not None
    fetcher = importlib.import_module(kind.refresh.__module__)
    assert fetcher.__name__.replace(".", "/") + ".py" in found
    assert fetcher.KIND == kind.kind  # the registry entry takes its name from the fetcher


# --- the spoke role allows every call a sweep and a read-back make ---------------------------

#: IAM action names that differ from the API operation's.
ACTION_OF = {("s3", "ListBuckets"): "s3:ListAllMyBuckets"}


def test_a_sweep_and_every_read_back_call_only_what_the_spoke_policy_allows(
    runtime, redis_server, moto_server
):
    from inventory.aws.events import ResourceEvent
    from inventory.aws.kind import CREATE
    from inventory.demo.seed import Seeder, demo_account
    from inventory.runtime import Runtime
    from inventory.tasks.accounts import store_account_mapping
    from inventory.tasks.events import refresh, refs_by_account
    from inventory.tasks.resources import sync_kind
    from tests.conftest import inventory_env
    from tests.faultproxy import FaultProxy

    seeder = Seeder(moto_server.url)
    seeder.organisation()
    dev = seeder.create_account(demo_account("dev", 0))
    store_account_mapping(runtime)  # through the Organizations reader role: not a spoke's
    proxy = FaultProxy(moto_server.url).start()
    try:
        env = inventory_env(redis_server, moto_server, INVENTORY_AWS__ENDPOINT_URL=proxy.url)
        rt = Runtime(load_settings(paths=[], environ=env))
        for sync in SYNCS:
            sync_kind(rt, sync, dev.id)
        # Every followed kind read back in full (a create: every call its read can make).
        names = {
            "iam_role": dev.roles[0].name,
            "iam_user": dev.users[0].name,
            "iam_group": dev.groups[0].name,
            "iam_policy": f"arn:aws:iam::{dev.id}:policy/{next(iter(dev.policies))}",
            "s3_bucket": dev.buckets[0].name,
            "sqs_queue": f"https://sqs.us-east-1.amazonaws.com/{dev.id}/{dev.queues[0].name}",
            "sns_topic": f"arn:aws:sns:us-east-1:{dev.id}:{dev.topics[0].name}",
            "kms_key": seeder.client("kms", dev.id).describe_key(
                KeyId=f"alias/{dev.keys[0].alias}"
            )["KeyMetadata"]["KeyId"],
            "lambda_function": dev.functions[0].name,
            "secretsmanager_secret": seeder.client("secretsmanager", dev.id).describe_secret(
                SecretId=dev.secrets[0].name
            )["ARN"],
            "ecr_repository": dev.repositories[0].name,
        }
        assert set(names) == {k.kind for k in EVENT_KINDS}
        # A queue created after the sweep: its read-back finds its URL first (GetQueueUrl).
        late = seeder.client("sqs", dev.id, "us-east-1").create_queue(QueueName="late")
        names["sqs_queue"] = late["QueueUrl"]
        regional = {k.kind: "us-east-1" for k in EVENT_KINDS if k.regional}
        events = [
            (
                ResourceEvent(
                    kind,
                    dev.id,
                    regional.get(kind, "global"),
                    name,
                    CREATE,
                    "Create",
                    1.0,
                    f"e-{kind}",
                    None,
                ),
                2.0,
            )  # fmt: skip
            for kind, name in names.items()
        ]
        (refs,) = refs_by_account(events).values()
        result = refresh(rt, dev.id, refs, lambda *a, **k: None)
        assert result["failed"] == {} and result["read"] == len(names)
    finally:
        proxy.stop()
    hub = {"testing"}  # the hub's credentials (tests/conftest.py); assumed ones differ
    spoke_calls = {
        ACTION_OF.get((service, action), f"{service}:{action}")
        for key, service, action in proxy.signed
        if key not in hub
    }
    allowed = {a for actions in permissions.spoke_actions().values() for a in actions}
    assert spoke_calls, "no call went through the spoke role"
    assert spoke_calls <= allowed, sorted(spoke_calls - allowed)
