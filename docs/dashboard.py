"""The Grafana dashboard over the exporter's metrics, built with grafanalib.

Regenerate docs/grafana-dashboard.json after a change:

    .venv/bin/python docs/dashboard.py > docs/grafana-dashboard.json

tests/test_dashboard.py fails when the JSON is out of date, and runs every panel's query on a
real Prometheus scraping a live exporter. Import the JSON in Grafana and pick the Prometheus
data source that scrapes `inventory metrics` (docs/metrics.md).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from grafanalib._gen import DashboardEncoder
from grafanalib.core import (
    Dashboard,
    DataSourceInput,
    GridPos,
    RowPanel,
    Stat,
    Table,
    Target,
    Template,
    Templating,
    TimeSeries,
)

DATASOURCE = "${DS_PROMETHEUS}"
#: Every task and account series, narrowed by the dashboard's variables.
TA = 'task=~"$task", account=~"$account"'
RATE = "$__rate_interval"


def target(expr: str, legend: str = "", ref: str = "A", instant: bool = False) -> Target:
    return Target(expr=expr, legendFormat=legend, refId=ref, datasource=DATASOURCE, instant=instant)


def series(
    title: str, targets: list[Target], x: int, y: int, unit: str = "", w: int = 12
) -> TimeSeries:
    return TimeSeries(
        title=title,
        dataSource=DATASOURCE,
        targets=targets,
        unit=unit,
        gridPos=GridPos(h=8, w=w, x=x, y=y),
        legendDisplayMode="table",
        legendPlacement="right",
    )


def variable(name: str, query: str) -> Template:
    return Template(
        name=name,
        label=name,
        query=query,
        dataSource=DATASOURCE,
        includeAll=True,
        multi=True,
        default="$__all",
        allValue=".*",
        refresh=2,
    )


PANELS = [
    RowPanel(title="Freshness", gridPos=GridPos(h=1, w=24, x=0, y=0)),
    Stat(
        title="Stale task/account pairs",
        dataSource=DATASOURCE,
        targets=[target(f"count(max by (task, account) (inventory_task_stale{{{TA}}}) == 1)")],
        gridPos=GridPos(h=8, w=6, x=0, y=1),
        thresholds=[
            {"color": "green", "value": None},
            {"color": "red", "value": 1},
        ],
        reduceCalc="lastNotNull",
    ),
    Table(
        title="Stale accounts (task, account, seconds since last success)",
        dataSource=DATASOURCE,
        targets=[
            target(
                f"max by (task, account) (inventory_task_last_success_age_seconds{{{TA}}})"
                f" and on (task, account) (max by (task, account) "
                f"(inventory_task_stale{{{TA}}}) == 1)",
                instant=True,
            )
        ],
        gridPos=GridPos(h=8, w=18, x=6, y=1),
        unit="s",
    ),
    series(
        "Seconds since last success, per task and account",
        [
            target(
                f"max by (task, account) (inventory_task_last_success_age_seconds{{{TA}}})",
                "{{task}} {{account}}",
            )
        ],
        0,
        9,
        unit="s",
        w=24,
    ),
    RowPanel(title="Tasks and queues", gridPos=GridPos(h=1, w=24, x=0, y=17)),
    series(
        "Queue lengths",
        [target("max by (queue) (inventory_queue_length)", "{{queue}}")],
        0,
        18,
    ),
    series(
        "Task failures (final) per interval",
        [
            target(
                'sum by (task) (increase(inventory_task_outcomes_total{outcome="failed", '
                f'task=~"$task", account=~"$account"}}[{RATE}]))',
                "{{task}}",
            )
        ],
        12,
        18,
    ),
    series(
        "Task runtime p50 / p95",
        [
            target(
                "histogram_quantile(0.5, sum by (task, le) "
                f'(rate(inventory_task_runtime_seconds_bucket{{task=~"$task"}}[{RATE}])))',
                "p50 {{task}}",
            ),
            target(
                "histogram_quantile(0.95, sum by (task, le) "
                f'(rate(inventory_task_runtime_seconds_bucket{{task=~"$task"}}[{RATE}])))',
                "p95 {{task}}",
                ref="B",
            ),
        ],
        0,
        26,
        unit="s",
    ),
    series(
        "Change-event lag p50 / p95 (CloudTrail event to cache)",
        [
            target(
                "histogram_quantile(0.5, sum by (le) "
                f"(rate(inventory_event_lag_seconds_bucket[{RATE}])))",
                "p50",
            ),
            target(
                "histogram_quantile(0.95, sum by (le) "
                f"(rate(inventory_event_lag_seconds_bucket[{RATE}])))",
                "p95",
                ref="B",
            ),
        ],
        12,
        26,
        unit="s",
    ),
    RowPanel(title="Accounts, beat and exporter", gridPos=GridPos(h=1, w=24, x=0, y=34)),
    series(
        "IAM role quota used",
        [
            target(
                'max by (account) (inventory_iam_role_quota_ratio{account=~"$account"})',
                "{{account}}",
            )
        ],
        0,
        35,
        unit="percentunit",
    ),
    Table(
        title="Beat leader",
        dataSource=DATASOURCE,
        targets=[target("max by (leader) (inventory_beat_leader_info)", instant=True)],
        gridPos=GridPos(h=4, w=6, x=12, y=35),
    ),
    Stat(
        title="Seconds since the last beat tick",
        dataSource=DATASOURCE,
        targets=[target("time() - max(inventory_beat_last_tick_timestamp_seconds)")],
        gridPos=GridPos(h=4, w=6, x=18, y=35),
        format="s",
        thresholds=[
            {"color": "green", "value": None},
            {"color": "red", "value": 300},
        ],
        reduceCalc="lastNotNull",
    ),
    Stat(
        title="Exporter reads Redis",
        dataSource=DATASOURCE,
        targets=[target("min(inventory_exporter_up)")],
        gridPos=GridPos(h=4, w=12, x=12, y=39),
        thresholds=[
            {"color": "red", "value": None},
            {"color": "green", "value": 1},
        ],
        reduceCalc="lastNotNull",
    ),
]


def dashboard() -> Dashboard:
    return Dashboard(
        title="Inventory",
        uid="inventory-overview",
        description="Freshness, queues, tasks, event lag, IAM role quota and beat of inventory",
        tags=["inventory", "celery", "aws"],
        timezone="utc",
        refresh="1m",
        inputs=[
            DataSourceInput(
                name="DS_PROMETHEUS",
                label="Prometheus",
                pluginId="prometheus",
                pluginName="Prometheus",
            )
        ],
        templating=Templating(
            list=[
                variable("task", "label_values(inventory_task_stale, task)"),
                variable("account", "label_values(inventory_task_stale, account)"),
            ]
        ),
        panels=PANELS,
    ).auto_panel_ids()


def render() -> str:
    """The dashboard as the JSON Grafana imports (stable key order, trailing newline)."""
    data: dict[str, Any] = json.loads(json.dumps(dashboard().to_json_data(), cls=DashboardEncoder))
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
