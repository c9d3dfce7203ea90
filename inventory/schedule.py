"""The beat schedule as one table, and how settings re-time or disable its entries."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from inventory.settings import Settings

MINUTE = 60.0
HOUR = 60 * MINUTE


@dataclass(frozen=True)
class ScheduleEntry:
    """One beat entry: which task runs how often, on which queue, and when a run goes stale."""

    name: str
    task: str
    every: float
    queue: str = "fanout"
    expires: float | None = None
    enabled: bool = True
    description: str = ""

    @property
    def effective_expires(self) -> float:
        """A run still queued after one interval is dropped: the next one will do its work."""
        return self.expires if self.expires is not None else self.every

    def beat_entry(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "schedule": self.every,
            "options": {"queue": self.queue, "expires": self.effective_expires},
        }


SCHEDULE: tuple[ScheduleEntry, ...] = (
    ScheduleEntry(
        "cache_iam_resources_across_accounts",
        "inventory.cache_iam_resources_across_accounts",
        45 * MINUTE,
        description="Fan out one IAM sync per active account",
    ),
    ScheduleEntry(
        "clear_old_redis_iam_cache",
        "inventory.clear_old_redis_iam_cache",
        6 * HOUR,
        queue="maintenance",
        description="Remove IAM entries not refreshed within iam.stale_after_seconds",
    ),
    ScheduleEntry(
        "cache_policies_table_details",
        "inventory.cache_policies_table_details",
        30 * MINUTE,
        queue="maintenance",
        description="Rebuild and verify the policies table the web UI searches",
    ),
    ScheduleEntry(
        "report_celery_last_success_metrics",
        "inventory.report_celery_last_success_metrics",
        1 * MINUTE,
        queue="metrics",
        description="Time since the last success of every task, per account",
    ),
    ScheduleEntry(
        "get_iam_role_limit",
        "inventory.get_iam_role_limit",
        24 * HOUR,
        queue="aws",
        description="IAM roles used / roles quota per account",
    ),
    ScheduleEntry(
        "cache_cloudtrail_errors_by_arn",
        "inventory.cache_cloudtrail_errors_by_arn",
        1 * HOUR,
        queue="aws",
        description="Recent CloudTrail errors by principal ARN, from the configured source",
    ),
    ScheduleEntry(
        "cache_policy_requests",
        "inventory.cache_policy_requests",
        1 * HOUR,
        queue="maintenance",
        description="Policy requests from DynamoDB into the Redis read model",
    ),
    ScheduleEntry(
        "cache_credential_authorization_mapping",
        "inventory.cache_credential_authorization_mapping",
        5 * MINUTE,
        queue="maintenance",
        description="Which groups and users may use which roles (role tags + config)",
    ),
    ScheduleEntry(
        "cache_cloud_account_mapping",
        "inventory.cache_cloud_account_mapping",
        1 * HOUR,
        queue="maintenance",
        description="Refresh the account list from config and AWS Organizations",
    ),
)


def _registry_entries() -> tuple[ScheduleEntry, ...]:
    from inventory.registry import KINDS

    return tuple(
        ScheduleEntry(k.schedule_name, k.across_accounts_task, k.every, description=k.description)
        for k in KINDS
    )


SCHEDULE = SCHEDULE + _registry_entries()


def effective_schedule(settings: Settings) -> list[ScheduleEntry]:
    """The schedule table with the settings' per-entry overrides applied."""
    entries = []
    for entry in SCHEDULE:
        override = settings.schedule.get(entry.name)
        if override is not None:
            changes = {
                k: v
                for k, v in override.model_dump().items()
                if v is not None and k in ("enabled", "every", "expires")
            }
            entry = replace(entry, **changes)
        entries.append(entry)
    return entries


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """Celery ``beat_schedule`` from the enabled entries."""
    return {e.name: e.beat_entry() for e in effective_schedule(settings) if e.enabled}
