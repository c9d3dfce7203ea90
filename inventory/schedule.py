"""The beat schedule as one table, and how settings re-time or disable its entries."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

from celery.schedules import crontab

if TYPE_CHECKING:
    from inventory.settings import Settings

MINUTE = 60.0
HOUR = 60 * MINUTE

log = logging.getLogger(__name__)
V = TypeVar("V")

#: ConsoleMe's names for the IAM sync until its release 1.0.3 (Netflix/consoleme#9168 renamed
#: them to ours in 1.0.4): an operator may still have them in config or alerts. Accepted, with a
#: deprecation warning, as schedule entries, ``celery.tasks`` keys and Celery task names.
CONSOLEME_ALIASES = {
    "cache_roles_across_accounts": "cache_iam_resources_across_accounts",
    "cache_roles_for_account": "cache_iam_resources_for_account",
}


def deprecation(old: str, where: str) -> str:
    return (
        f"{where} {old!r} is ConsoleMe's name until 1.0.3 and is deprecated: "
        f"use {CONSOLEME_ALIASES[old]!r}"
    )


def current_names(values: Mapping[str, V], where: str, known: set[str]) -> dict[str, V]:
    """``values`` keyed by current names: an old ConsoleMe name of one of ``known`` is renamed,
    with a warning (any other name is left for the caller to judge).

    Raises ValueError when a name and its old name are both given.
    """
    renamed: dict[str, V] = {}
    for name, value in values.items():
        new = CONSOLEME_ALIASES.get(name, name)
        if new not in known:
            new = name
        if new != name:
            log.warning("%s", deprecation(name, where))
        if new in renamed:
            raise ValueError(f"{name!r} and {new!r} name the same task: keep {new!r} only")
        renamed[new] = value
    return renamed


def parse_crontab(text: str) -> crontab:
    """Five cron fields -> a Celery crontab; a field Celery cannot parse raises ValueError."""
    fields = text.split()
    if len(fields) != 5:
        raise ValueError("crontab needs five fields: minute hour day-of-month month day-of-week")
    minute, hour, day_of_month, month, day_of_week = fields
    try:
        schedule = crontab(
            minute=minute,
            hour=hour,
            day_of_month=day_of_month,
            month_of_year=month,
            day_of_week=day_of_week,
        )
    except Exception as exc:  # noqa: BLE001 - celery raises several types for a bad field
        raise ValueError(f"invalid crontab {text!r}: {exc}") from None
    return schedule


@dataclass(frozen=True)
class ScheduleEntry:
    """One beat entry: which task runs how often, and when a run goes stale (the queue is the
    task's own, declared with it)."""

    name: str
    task: str
    every: float
    expires: float | None = None
    enabled: bool = True
    description: str = ""
    crontab: str | None = None
    #: A boolean setting (``section.key``) without which the entry has nothing to do.
    requires: str | None = None
    #: Derived data a page shows: sent at the first tick of a beat that has never run it (a
    #: fresh deployment, a new entry), not one interval later.
    at_start: bool = False

    @property
    def effective_expires(self) -> float:
        """A run still queued after one interval is dropped: the next one will do its work."""
        if self.expires is not None:
            return self.expires
        return self.every if self.crontab is None else HOUR

    def schedule(self) -> Any:
        return self.every if self.crontab is None else parse_crontab(self.crontab)

    def describe(self) -> str:
        """The schedule in words."""
        when = f"cron `{self.crontab}`" if self.crontab is not None else None
        when = when or f"every {_duration(self.every)}"
        return when + (", and at first start" if self.at_start else "")

    def beat_entry(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "schedule": self.schedule(),
            "options": {"expires": self.effective_expires},
        }


def _duration(seconds: float) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds:g} seconds"


SCHEDULE: tuple[ScheduleEntry, ...] = (
    ScheduleEntry(
        "clear_old_redis_iam_cache",
        "inventory.clear_old_redis_iam_cache",
        6 * HOUR,
        description="Remove IAM entries not refreshed within iam.stale_after_seconds",
    ),
    ScheduleEntry(
        "cache_policies_table_details",
        "inventory.cache_policies_table_details",
        30 * MINUTE,
        description="Rebuild and verify the policies table the web UI searches",
    ),
    ScheduleEntry(
        "report_celery_last_success_metrics",
        "inventory.report_celery_last_success_metrics",
        1 * MINUTE,
        description="Time since the last success of every task, per account",
    ),
    ScheduleEntry(
        "get_iam_role_limit",
        "inventory.get_iam_role_limit",
        24 * HOUR,
        description="IAM roles used / roles quota per account",
        at_start=True,
    ),
    ScheduleEntry(
        "cache_cloudtrail_errors_by_arn",
        "inventory.cache_cloudtrail_errors_by_arn",
        1 * HOUR,
        description="Recent CloudTrail errors by principal ARN, from the configured source",
        at_start=True,
    ),
    ScheduleEntry(
        "cache_policy_requests",
        "inventory.cache_policy_requests",
        1 * HOUR,
        description="Policy requests from DynamoDB into the Redis read model",
        at_start=True,
    ),
    ScheduleEntry(
        "cache_credential_authorization_mapping",
        "inventory.cache_credential_authorization_mapping",
        5 * MINUTE,
        description="Which groups and users may use which roles (role tags + config)",
        at_start=True,
    ),
    ScheduleEntry(
        "drain_change_events",
        "inventory.drain_change_events",
        1 * MINUTE,
        description="CloudTrail change events from SQS -> targeted refresh (needs events.enabled)",
        requires="events.enabled",
    ),
    ScheduleEntry(
        "cache_cloud_account_mapping",
        "inventory.cache_cloud_account_mapping",
        1 * HOUR,
        description="Refresh the account list from config and AWS Organizations",
    ),
    ScheduleEntry(
        "analyse_pending_findings",
        "inventory.analyse_pending_findings",
        1 * MINUTE,
        description="Risk findings for accounts whose cached IAM or resource policies changed",
    ),
    ScheduleEntry(
        "analyse_findings_across_accounts",
        "inventory.analyse_findings_across_accounts",
        6 * HOUR,
        description="Reconcile every account's findings (only changed subjects are analysed)",
    ),
)


def _registry_entries() -> tuple[ScheduleEntry, ...]:
    from inventory.registry import SYNCS

    return tuple(
        ScheduleEntry(s.schedule_name, s.across_accounts_task, s.every, description=s.description)
        for s in SYNCS
    )


# The syncs first: the IAM one (ConsoleMe's cache_iam_resources_across_accounts) at the top.
SCHEDULE = _registry_entries() + SCHEDULE


def known_task_names() -> set[str]:
    """Short names of every task (scheduled ones and the per-account ones they send)."""
    from inventory.registry import SYNCS

    names = {e.task.removeprefix("inventory.") for e in SCHEDULE}
    names |= {s.for_account_task.removeprefix("inventory.") for s in SYNCS}
    names.add("refresh_changed_resources")
    names.add("analyse_findings_for_account")
    return names


def effective_schedule(settings: Settings) -> list[ScheduleEntry]:
    """The schedule table with the settings' per-entry overrides applied."""
    entries = []
    for entry in SCHEDULE:
        override = settings.schedule.get(entry.name)
        if override is not None:
            changes = {
                k: v
                for k, v in override.model_dump().items()
                if v is not None and k in ("enabled", "every", "expires", "crontab")
            }
            if "every" in changes:
                changes["crontab"] = None
            entry = replace(entry, **changes)
        if entry.requires and not _setting(settings, entry.requires):
            entry = replace(entry, enabled=False)
        entries.append(entry)
    return entries


def _setting(settings: Settings, path: str) -> Any:
    value: Any = settings
    for part in path.split("."):
        value = getattr(value, part)
    return value


def at_start_entries() -> frozenset[str]:
    """Names of the entries a beat sends at once when it has no record of running them."""
    return frozenset(e.name for e in SCHEDULE if e.at_start)


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """Celery ``beat_schedule`` from the enabled entries."""
    return {e.name: e.beat_entry() for e in effective_schedule(settings) if e.enabled}


class UnregisteredTask(Exception):
    """A beat entry names a task that no module registers."""


def render_schedule_docs(app: Any, settings: Settings) -> str:
    """A Markdown table of every beat entry; raises UnregisteredTask for an unknown task."""
    lines = [
        "# Beat schedule",
        "",
        "Generated by `inventory schedule docs -o docs/schedule.md` from the defaults (a test",
        "fails when it is out of date). Re-time or disable entries with `schedule.<name>`",
        "(`every` seconds or a five-field `crontab`, `expires`, `enabled`).",
        "",
        "Beat runs as RedBeat: the schedule and a leader lock live in Redis, so any number of",
        "beat processes can run and exactly one dispatches. If the leader dies, a standby takes",
        "the lock after `beat.lock_timeout` seconds. **Missed runs**: an entry whose slot passed",
        "while no beat was running is sent once when a leader next ticks (not once per missed",
        "slot), then follows its schedule. A queued run not consumed before `expires` is",
        "dropped: the next run does its work. **At first start**: the entries that derive what",
        "the pages show (who may use a role, CloudTrail errors, requests, role quotas) are sent",
        "at the first tick of a beat with no record of running them, not one interval later.",
        "",
        "| entry | task | schedule | queue | expires | time limits (soft / hard) | enabled |"
        " description |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for entry in effective_schedule(settings):
        task = app.tasks.get(entry.task)
        if task is None:
            raise UnregisteredTask(
                f"schedule entry {entry.name!r} names {entry.task!r}, "
                "which no task module registers"
            )
        doc = (task.__doc__ or "").strip().splitlines()[0] if task.__doc__ else ""
        limits = f"{task.soft_time_limit}s / {task.time_limit}s"
        lines.append(
            f"| `{entry.name}` | `{entry.task}` | {entry.describe()} | {task.routing_queue} | "
            f"{_duration(entry.effective_expires)} | {limits} | "
            f"{'yes' if entry.enabled else 'no'} | {doc} |"
        )
    return "\n".join(lines) + "\n"
