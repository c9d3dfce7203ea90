"""The schedule table, the shipped config files and the generated docs stay true."""

from __future__ import annotations

from pathlib import Path

import pytest

from inventory.celery_app import create_app
from inventory.schedule import SCHEDULE, beat_schedule, effective_schedule
from inventory.settings import load_settings, reference_markdown

ROOT = Path(__file__).resolve().parent.parent

# The schedule table of ../shared/DESIGN.md: every entry, with its default interval.
DESIGN_DEFAULTS = {
    "cache_iam_resources_across_accounts": 45 * 60,
    "clear_old_redis_iam_cache": 6 * 3600,
    "cache_cloud_account_mapping": 3600,
    "cache_managed_policies_across_accounts": 45 * 60,
    "cache_s3_buckets_across_accounts": 45 * 60,
    "cache_sqs_queues_across_accounts": 45 * 60,
    "cache_sns_topics_across_accounts": 45 * 60,
    # Issue 17's resource-policy kinds (not yet in DESIGN.md's table): as SQS and SNS.
    "cache_kms_keys_across_accounts": 45 * 60,
    "cache_lambda_functions_across_accounts": 45 * 60,
    "cache_secrets_across_accounts": 45 * 60,
    "cache_ecr_repositories_across_accounts": 45 * 60,
    "cache_resources_from_aws_config_across_accounts": 3600,
    "cache_policies_table_details": 30 * 60,
    "report_celery_last_success_metrics": 60,
    "get_iam_role_limit": 24 * 3600,
    "cache_cloudtrail_errors_by_arn": 3600,
    "cache_policy_requests": 3600,
    "cache_credential_authorization_mapping": 5 * 60,
    # Findings (issue 21): pending accounts every minute, a reconcile of all every 6 hours.
    "analyse_pending_findings": 60,
    "analyse_findings_across_accounts": 6 * 3600,
}


def test_every_scheduled_task_is_registered_with_design_interval():
    app = create_app(load_settings(paths=[], environ={}))
    schedule = app.conf.beat_schedule
    assert {name: entry["schedule"] for name, entry in schedule.items()} == DESIGN_DEFAULTS
    for name, entry in schedule.items():
        assert entry["task"] in app.tasks, name
        assert entry["task"] == f"inventory.{name}"
        assert entry["options"]["expires"] > 0
        assert "queue" not in entry["options"], name  # the task's own, declared once with it


def test_every_task_declares_its_queue_once_and_messages_sent_by_name_go_there():
    from inventory.celery_app import QUEUES

    app = create_app(load_settings(paths=[], environ={}))
    ours = {name: task for name, task in app.tasks.items() if name.startswith("inventory.")}
    assert {n: t.routing_queue in QUEUES for n, t in ours.items()} == dict.fromkeys(ours, True)
    for name, task in ours.items():
        # send_task by name (beat, the web tier) routes as the task declares.
        assert app.amqp.router.route({}, name)["queue"].name == task.routing_queue, name
    assert ours["inventory.cache_sqs_queues_for_account"].routing_queue == "aws"
    assert ours["inventory.cache_sqs_queues_across_accounts"].routing_queue == "fanout"


def test_every_task_has_a_name_docstring_time_limits_and_late_ack():
    app = create_app(load_settings(paths=[], environ={}))
    ours = {name: task for name, task in app.tasks.items() if name.startswith("inventory.")}
    assert set(ours) >= {e.task for e in SCHEDULE} | {"inventory.cache_iam_resources_for_account"}
    for name, task in ours.items():
        assert task.__doc__ and task.__doc__.strip(), name
        assert task.acks_late and task.reject_on_worker_lost, name
        assert 0 < task.soft_time_limit < task.time_limit, name


def test_schedule_overrides_retime_and_disable_entries():
    settings = load_settings(
        paths=[],
        environ={
            "INVENTORY_SCHEDULE": "{cache_iam_resources_across_accounts: {every: 600}, "
            "clear_old_redis_iam_cache: {enabled: false}}"
        },
    )
    entries = {e.name: e for e in effective_schedule(settings)}
    assert entries["cache_iam_resources_across_accounts"].every == 600
    assert entries["clear_old_redis_iam_cache"].enabled is False
    assert set(beat_schedule(settings)) == set(DESIGN_DEFAULTS) - {"clear_old_redis_iam_cache"}
    assert (
        beat_schedule(settings)["cache_iam_resources_across_accounts"]["options"]["expires"] == 600
    )


@pytest.mark.parametrize("path", sorted((ROOT / "config").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_config_files_load(path):
    load_settings(paths=[path], environ={})


def test_default_yaml_equals_model_defaults():
    from_file = load_settings(paths=[ROOT / "config" / "default.yaml"], environ={})
    assert from_file == load_settings(paths=[], environ={})


def test_configuration_reference_is_up_to_date():
    committed = (ROOT / "docs" / "configuration.md").read_text()
    assert committed == reference_markdown(), (
        "run: inventory config --reference > docs/configuration.md"
    )


def test_drain_of_change_events_is_scheduled_only_when_events_are_enabled():
    off = beat_schedule(load_settings(paths=[], environ={}))
    on = beat_schedule(
        load_settings(
            paths=[],
            environ={
                "INVENTORY_EVENTS__ENABLED": "true",
                "INVENTORY_EVENTS__QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/q",
            },
        )
    )
    assert "drain_change_events" not in off
    assert on["drain_change_events"]["task"] == "inventory.drain_change_events"
    assert on["drain_change_events"]["schedule"] == 60
