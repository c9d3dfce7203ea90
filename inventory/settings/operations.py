"""Settings of running the service: schedule overrides, Sentry, logs, metrics, health,
replication."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator

from inventory.settings.base import _Section


class ScheduleOverride(_Section):
    """Re-time or disable one beat entry."""

    enabled: bool | None = None
    every: float | None = Field(None, ge=1, le=7 * 24 * 3600, description="Seconds between runs")
    crontab: str | None = Field(
        None, description="Five cron fields (minute hour day month weekday), instead of every"
    )
    expires: float | None = Field(None, gt=0, description="Seconds after which a run is dropped")

    @model_validator(mode="after")
    def _one_timing(self) -> ScheduleOverride:
        if self.every is not None and self.crontab is not None:
            raise ValueError("set either every or crontab, not both")
        if self.crontab is not None:
            from inventory.schedule import parse_crontab

            parse_crontab(self.crontab)
        return self


class SentrySettings(_Section):
    """Error reporting; nothing is sent without a DSN."""

    dsn: SecretStr | None = Field(None, description="Sentry DSN (from a secret, e.g. env)")
    environment: str = Field("production", description="Sentry environment tag")
    traces_sample_rate: float = Field(0.0, ge=0, le=1)


class LoggingSettings(_Section):
    """Log format for every process."""

    format: Literal["text", "json"] = Field("text", description="json: one object per line")
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


#: Not 9808, celery-exporter's port: both often run side by side.
DEFAULT_METRICS_PORT = 8099


class MetricsSettings(_Section):
    """The Prometheus exporter (``inventory metrics``; also /metrics on the web tier)."""

    host: str = Field("127.0.0.1", description="Listen address of `inventory metrics`")
    port: int = Field(
        DEFAULT_METRICS_PORT, ge=1, le=65535, description="Listen port of `inventory metrics`"
    )
    stale_after_seconds: float = Field(
        7200, gt=0, description="An account whose task has not succeeded for this long is stale"
    )
    partition_series: bool = Field(
        True,
        description="One series per cached partition (kind, account, region); false: per kind "
        "only, for organisations with thousands of accounts",
    )


class HealthSettings(_Section):
    """A heartbeat file every long-running process touches: health checks need no broker."""

    # Not `file`: INVENTORY_HEALTH__FILE would read as a secret file variable (`*_FILE`).
    heartbeat_path: str | None = Field(
        None,
        description="Heartbeat file (the container image sets /tmp/inventory.alive); null: none",
    )
    interval_seconds: float = Field(15, ge=1, le=300, description="How often it is touched")
    max_age_seconds: float = Field(
        120, ge=5, le=3600, description="`inventory health` fails when it is older than this"
    )

    @model_validator(mode="after")
    def _age(self) -> HealthSettings:
        if self.max_age_seconds < 2 * self.interval_seconds:
            raise ValueError("max_age_seconds must be at least 2 x interval_seconds")
        return self


class ReplicationSettings(_Section):
    """How a secondary region follows the active one (see README, Multi-region)."""

    overlap_seconds: float = Field(
        300,
        ge=0,
        le=86400,
        description="Re-read manifests this far behind the cursor: bounds global-table "
        "replication lag between tables",
    )
