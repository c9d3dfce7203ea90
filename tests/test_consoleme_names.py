"""ConsoleMe's old names for the IAM sync (until its 1.0.3): accepted with a deprecation warning
in schedule overrides, celery.tasks and as Celery task names sent through the broker."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from celery.result import AsyncResult

from inventory.cache.keys import IAM_ROLE, Partition
from inventory.celery_app import create_app
from inventory.demo.seed import Seeder, demo_account
from inventory.schedule import beat_schedule, effective_schedule
from inventory.settings import ConfigError, load_settings
from inventory.tasks.accounts import store_account_mapping

OLD_FANOUT, NEW_FANOUT = "cache_roles_across_accounts", "cache_iam_resources_across_accounts"
OLD_ACCOUNT, NEW_ACCOUNT = "cache_roles_for_account", "cache_iam_resources_for_account"


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_consoleme_schedule_entry_name_retimes_ours_with_a_deprecation_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="inventory.schedule"):
        settings = load_settings(
            paths=[], environ={"INVENTORY_SCHEDULE": f"{{{OLD_FANOUT}: {{every: 600}}}}"}
        )

    entries = {e.name: e for e in effective_schedule(settings)}
    assert entries[NEW_FANOUT].every == 600
    assert OLD_FANOUT not in beat_schedule(settings)
    assert beat_schedule(settings)[NEW_FANOUT]["options"]["expires"] == 600
    assert warnings_of(caplog) == [
        f"schedule entry {OLD_FANOUT!r} is ConsoleMe's name until 1.0.3 and is deprecated: "
        f"use {NEW_FANOUT!r}"
    ]


def test_consoleme_task_name_in_celery_tasks_sets_our_tasks_options(caplog):
    tasks = f"{{{OLD_ACCOUNT}: {{soft_time_limit: 1100, time_limit: 1200}}}}"
    with caplog.at_level(logging.WARNING, logger="inventory.schedule"):
        settings = load_settings(paths=[], environ={"INVENTORY_CELERY__TASKS": tasks})

    assert set(settings.celery.tasks) == {NEW_ACCOUNT}
    assert settings.celery.tasks[NEW_ACCOUNT].time_limit == 1200
    assert create_app(settings).tasks[f"inventory.{NEW_ACCOUNT}"].name == f"inventory.{NEW_ACCOUNT}"
    assert warnings_of(caplog) == [
        f"celery.tasks {OLD_ACCOUNT!r} is ConsoleMe's name until 1.0.3 and is deprecated: "
        f"use {NEW_ACCOUNT!r}"
    ]


def test_old_and_new_name_together_are_a_config_error_naming_both(tmp_path: Path):
    path = tmp_path / "inventory.yaml"
    path.write_text(f"schedule:\n  {OLD_FANOUT}: {{every: 600}}\n  {NEW_FANOUT}: {{every: 900}}\n")

    with pytest.raises(ConfigError) as exc:
        load_settings(paths=[path], environ={})

    assert f"name the same task: keep {NEW_FANOUT!r} only" in str(exc.value)
    assert "schedule = " in str(exc.value)


def test_a_name_consoleme_never_had_is_still_unknown(tmp_path: Path):
    path = tmp_path / "inventory.yaml"
    path.write_text(f"schedule:\n  {OLD_ACCOUNT}: {{every: 600}}\n")  # never a beat entry

    with pytest.raises(ConfigError, match=f"unknown schedule entry {OLD_ACCOUNT!r}"):
        load_settings(paths=[path], environ={})


def test_old_celery_task_names_are_routed_and_declared_like_every_task():
    app = create_app(load_settings(paths=[], environ={}))
    for old in (OLD_FANOUT, OLD_ACCOUNT):
        task = app.tasks[f"inventory.{old}"]
        assert app.amqp.router.route({}, task.name)["queue"].name == "fanout"
        assert "Deprecated" in (task.__doc__ or "")


@pytest.mark.slow
def test_old_task_name_sent_through_the_broker_runs_our_iam_sync(
    runtime, moto_server, env, start_worker
):
    seeder = Seeder(moto_server.url)
    seeder.organisation()
    dev = seeder.create_account(demo_account("dev", 0))
    store_account_mapping(runtime)
    worker = start_worker(env)

    sent = worker.app.send_task(f"inventory.{OLD_ACCOUNT}", args=(dev.id,), queue="fanout")
    forwarded = sent.get(timeout=60)
    summary = AsyncResult(forwarded["task_id"], app=worker.app).get(timeout=90)

    assert forwarded["forwarded_to"] == f"inventory.{NEW_ACCOUNT}"
    assert summary["account_id"] == dev.id
    roles = runtime.redis_cache.items(Partition(IAM_ROLE, dev.id))
    assert {dev.role_arn(r.name) for r in dev.roles} <= set(roles)
    assert "ConsoleMe's name until 1.0.3" in worker.log()
