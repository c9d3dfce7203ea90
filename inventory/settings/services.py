"""Settings of the services we connect to: Celery, the Redis cache, DynamoDB, S3, beat."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from inventory.settings.base import _check_region, _check_url, _http_url, _redis_url, _Section


class TaskOptions(_Section):
    """Per-task overrides, applied as Celery ``task_annotations``."""

    rate_limit: str | None = Field(
        None, pattern=r"^\d+(\.\d+)?/[smh]$", description="e.g. '10/m': at most 10 a minute"
    )
    soft_time_limit: int | None = Field(None, ge=1, le=24 * 3600, description="Seconds")
    time_limit: int | None = Field(None, ge=1, le=24 * 3600, description="Seconds (hard)")
    max_retries: int | None = Field(None, ge=0, le=50)

    @model_validator(mode="after")
    def _limits(self) -> TaskOptions:
        if self.soft_time_limit and self.time_limit and self.soft_time_limit >= self.time_limit:
            raise ValueError("soft_time_limit must be below time_limit")
        return self


class SigningSettings(_Section):
    """Celery message signing (the ``auth`` serializer): workers reject unsigned messages."""

    enabled: bool = Field(False, description="Sign every task message and accept only signed ones")
    key: str | None = Field(None, description="Path of the PEM private key")
    certificate: str | None = Field(None, description="Path of the PEM certificate")
    cert_store: str | None = Field(None, description="Directory of trusted PEM certificates")
    digest: Literal["sha256", "sha384", "sha512"] = "sha256"
    max_message_age: float = Field(
        86400.0,
        ge=60,
        le=30 * 86400,
        description="A signed message older than this (after its ETA) is refused; its seal is "
        "remembered until then, so a replay of a message that already ran is refused too",
    )

    @model_validator(mode="after")
    def _paths(self) -> SigningSettings:
        if not self.enabled:
            return self
        for name in ("key", "certificate", "cert_store"):
            value = getattr(self, name)
            if not value:
                raise ValueError(f"{name} is required when signing is enabled")
            path = Path(value)
            if not (path.is_dir() if name == "cert_store" else path.is_file()):
                kind = "directory" if name == "cert_store" else "file"
                raise ValueError(f"{name}: no readable {kind} at {value}")
        return self


class TlsSettings(_Section):
    """TLS for rediss:// broker, backend and cache URLs: certificates are always verified."""

    ca_certs: str | None = Field(None, description="CA bundle for rediss:// (system CAs if null)")
    certfile: str | None = Field(None, description="Client certificate (mutual TLS)")
    keyfile: str | None = Field(None, description="Client key (mutual TLS)")


#: SQS keeps a message invisible for at most 12 hours.
SQS_MAX_VISIBILITY = 43200


class SqsBrokerSettings(_Section):
    """Amazon SQS as the broker (``sqs://``): kombu's SQS transport options."""

    region: str | None = Field(None, description="Region of the broker queues; active_region")
    queue_name_prefix: str = Field(
        "inventory-",
        pattern=r"^[\w-]{0,40}$",
        description="Prefix of every broker queue name (inventory-aws, inventory-fanout, ...)",
    )
    wait_time_seconds: int = Field(
        10, ge=0, le=20, description="Long polling: seconds a ReceiveMessage call waits"
    )
    polling_interval: float = Field(
        1.0, ge=0, le=60, description="Seconds between receives when the queues are empty"
    )
    is_secure: bool = Field(
        True, description="https to an endpoint named in the sqs:// URL (false: http, for moto)"
    )

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        return None if value is None else _check_region(value)


class CelerySettings(_Section):
    """Broker, result backend and delivery guarantees."""

    broker_url: str = Field("redis://127.0.0.1:6379/0", description="Celery broker URL")
    result_backend: str | None = Field(
        "redis://127.0.0.1:6379/1", description="Celery result backend URL; null disables results"
    )
    worker_concurrency: int = Field(2, ge=1, le=256, description="Worker processes by default")
    visibility_timeout: int = Field(
        7200,
        ge=10,
        description="Seconds before an unacknowledged message is redelivered (Redis and SQS "
        "brokers); must exceed the longest hard time limit plus retry_backoff_max",
    )
    unacked_restore_seconds: int = Field(
        100,
        ge=1,
        le=3600,
        description="How often workers look for messages whose visibility timeout passed "
        "(their worker died) and requeue them",
    )
    retry_backoff_base: float = Field(5.0, gt=0, le=600, description="First retry delay, seconds")
    retry_backoff_max: float = Field(300.0, gt=0, le=3600, description="Longest retry delay")
    tasks: dict[str, TaskOptions] = Field(
        default_factory=dict,
        description="Per task (short name): rate_limit, soft_time_limit, time_limit, max_retries",
    )
    signing: SigningSettings = Field(default_factory=SigningSettings)
    tls: TlsSettings = Field(default_factory=TlsSettings)
    sqs: SqsBrokerSettings = Field(default_factory=SqsBrokerSettings)

    @field_validator("broker_url")
    @classmethod
    def _broker(cls, value: str) -> str:
        if not re.match(r"^(redis|rediss|amqp|amqps|sqs|memory)://", value):
            raise ValueError("expected a redis://, rediss://, amqp://, amqps:// or sqs:// URL")
        return _check_url(value)

    @model_validator(mode="after")
    def _sqs_visibility(self) -> CelerySettings:
        if self.broker_url.startswith("sqs://") and self.visibility_timeout > SQS_MAX_VISIBILITY:
            raise ValueError(
                f"visibility_timeout ({self.visibility_timeout}s) is above SQS's limit of "
                f"{SQS_MAX_VISIBILITY}s: lower it and the task time limits with it"
            )
        return self

    @field_validator("result_backend")
    @classmethod
    def _backend(cls, value: str | None) -> str | None:
        return None if value is None else _redis_url(value)


class RedisSettings(_Section):
    """The Redis cache the web tier reads."""

    url: str = Field("redis://127.0.0.1:6379/2", description="Redis URL of the cache")
    key_prefix: str = Field("inv:", pattern=r"^[\w:.-]{0,32}$", description="Prefix of every key")
    socket_timeout: float = Field(10.0, gt=0, le=300, description="Seconds per Redis command")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _redis_url(value)


class DynamoSettings(_Section):
    """DynamoDB tables (PynamoDB); global tables in a multi-region deployment."""

    region: str = Field("us-east-1", description="Region of the DynamoDB tables")
    table_prefix: str = Field(
        "inventory_", pattern=r"^[A-Za-z0-9_.-]{0,64}$", description="Prefix of every table name"
    )
    endpoint_url: str | None = Field(
        None, description="DynamoDB endpoint; defaults to aws.endpoint_url"
    )
    create_tables: bool = Field(
        True, description="Create missing tables on start-up (turn off when IaC owns them)"
    )
    item_ttl_days: int = Field(
        30, ge=1, le=3650, description="Items not refreshed for this long expire (TTL attribute)"
    )
    read_capacity: int = Field(0, ge=0, description="0 means on-demand billing")
    write_capacity: int = Field(0, ge=0, description="0 means on-demand billing")
    write_concurrency: int = Field(
        16,
        ge=1,
        le=64,
        description="BatchWriteItem calls in flight per worker process, shared by its syncs; "
        "1 = one after another",
    )

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        return _check_region(value)

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        return _http_url(value)


class S3Settings(_Section):
    """Optional gzipped JSON snapshot per partition."""

    bucket: str | None = Field(None, description="Bucket for partition snapshots; null disables S3")
    prefix: str = Field("inventory/", description="Key prefix inside the bucket")
    region: str | None = Field(None, description="Bucket region; defaults to dynamodb.region")
    layout: Literal["envelope", "jsonl"] = Field(
        "envelope",
        description="envelope: <kind>/<account>/<region>.json.gz, {last_updated, data}; jsonl: "
        "kind=<kind>/account=<id>/region=<region>/records.jsonl.gz, a record a line (Athena, "
        "DuckDB)",
    )

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", value):
            raise ValueError("expected an S3 bucket name (3-63 lowercase letters, digits, . and -)")
        return value


class BeatSettings(_Section):
    """The scheduler: RedBeat keeps the schedule and a leader lock in Redis."""

    redis_url: str | None = Field(
        None, description="Redis for the schedule and lock; defaults to celery.broker_url"
    )
    key_prefix: str = Field("inv:redbeat:", pattern=r"^[\w:.-]{1,64}$")
    max_loop_interval: float = Field(
        30.0, ge=1, le=600, description="Longest sleep between beat ticks, seconds"
    )
    lock_timeout: float = Field(
        150.0,
        ge=2,
        description="Seconds a dead leader keeps the lock; the standby takes over after this. "
        "Must be at least 2 x max_loop_interval",
    )
    timezone: str = Field("UTC", description="Timezone of crontab entries")

    @field_validator("redis_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _redis_url(value)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("expected an IANA timezone such as UTC or Europe/Berlin") from exc
        return value

    @model_validator(mode="after")
    def _lock(self) -> BeatSettings:
        if self.lock_timeout < 2 * self.max_loop_interval:
            raise ValueError(
                f"lock_timeout ({self.lock_timeout:g}s) must be at least 2 x max_loop_interval "
                f"({self.max_loop_interval:g}s): raise lock_timeout or lower max_loop_interval"
            )
        return self
