"""Freshness: seconds since each task's last success, per task and per account."""

from __future__ import annotations

import time
from typing import Any

from celery import Celery, shared_task

from inventory.runtime import Runtime
from inventory.tasks.base import METRICS, InventoryTask


def last_success_ages(runtime: Runtime, now: float | None = None) -> dict[str, dict[str, Any]]:
    """``{task: {account: seconds since last success (None if never)}}``."""
    now = time.time() if now is None else now
    ages: dict[str, dict[str, Any]] = {}
    for status in runtime.outcomes.status():
        age = None if status.last_success is None else round(now - status.last_success, 3)
        ages.setdefault(status.task, {})[status.account_id] = age
    return ages


def active_only_tasks(app: Celery) -> set[str]:
    """Short names of the tasks only the active region runs (their outcomes are replicated)."""
    return {
        name.removeprefix("inventory.")
        for name, task in app.tasks.items()
        if getattr(task, "active_only", False)
    }


@shared_task(
    bind=True,
    base=InventoryTask,
    name="inventory.report_celery_last_success_metrics",
    routing_queue=METRICS,
    soft_time_limit=30,
    time_limit=45,
)
def report_celery_last_success_metrics(self: InventoryTask) -> dict[str, dict[str, Any]]:
    """Report time since the last success of every task and account (ConsoleMe's gauge).

    The active region also publishes the outcomes of its AWS-calling tasks to the replication
    log; a secondary region imports them, so its freshness is the active region's.
    """
    runtime = self.runtime
    if not runtime.settings.is_active_region:
        runtime.replica.import_outcomes()
    ages = last_success_ages(runtime)
    # ConsoleMe's gauge is per task: the time since any run of it last succeeded.
    per_task = {
        task: min((a for a in by_account.values() if a is not None), default=None)
        for task, by_account in ages.items()
    }
    gauge: dict[str, float] = {task: age for task, age in per_task.items() if age is not None}
    runtime.outcomes.set_last_success_gauge(gauge)
    if runtime.settings.is_active_region:
        runtime.replica.publish_outcomes(active_only_tasks(self.app))
    return ages
