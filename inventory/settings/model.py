"""The root settings model: every section, cross-section checks and derived values."""

from __future__ import annotations

from pydantic import Field, field_validator

from inventory.settings.aws import (
    AccountsSettings,
    AwsConfigSettings,
    AwsSettings,
    CloudTrailSettings,
    CredentialMappingSettings,
    EventsSettings,
    HistorySettings,
    IamSettings,
)
from inventory.settings.base import _check_region, _did_you_mean, _Section
from inventory.settings.operations import (
    HealthSettings,
    LoggingSettings,
    MetricsSettings,
    ReplicationSettings,
    ScheduleOverride,
    SentrySettings,
)
from inventory.settings.services import (
    BeatSettings,
    CelerySettings,
    DynamoSettings,
    RedisSettings,
    S3Settings,
)
from inventory.settings.web import WebSettings


class Settings(_Section):
    """Everything the service reads from configuration."""

    active_region: str = Field("us-east-1", description="The one region that calls AWS")
    region: str | None = Field(
        None, description="Region this deployment runs in; AWS_REGION, else active_region"
    )
    celery: CelerySettings = Field(default_factory=CelerySettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    dynamodb: DynamoSettings = Field(default_factory=DynamoSettings)
    s3: S3Settings = Field(default_factory=S3Settings)
    aws: AwsSettings = Field(default_factory=AwsSettings)
    accounts: AccountsSettings = Field(default_factory=AccountsSettings)
    iam: IamSettings = Field(default_factory=IamSettings)
    aws_config: AwsConfigSettings = Field(default_factory=AwsConfigSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    cloudtrail: CloudTrailSettings = Field(default_factory=CloudTrailSettings)
    credential_mapping: CredentialMappingSettings = Field(default_factory=CredentialMappingSettings)
    schedule: dict[str, ScheduleOverride] = Field(
        default_factory=dict, description="Per beat entry: enabled, every or crontab, expires"
    )
    beat: BeatSettings = Field(default_factory=BeatSettings)
    sentry: SentrySettings = Field(default_factory=SentrySettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
    replication: ReplicationSettings = Field(default_factory=ReplicationSettings)
    events: EventsSettings = Field(default_factory=EventsSettings)
    history: HistorySettings = Field(default_factory=HistorySettings)

    @field_validator("active_region", "region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        return None if value is None else _check_region(value)

    @field_validator("schedule")
    @classmethod
    def _known_entries(cls, value: dict[str, ScheduleOverride]) -> dict[str, ScheduleOverride]:
        from inventory.schedule import SCHEDULE, current_names

        known = {entry.name for entry in SCHEDULE}
        value = current_names(value, "schedule entry", known)
        for name in value:
            if name not in known:
                raise ValueError(f"unknown schedule entry {name!r}{_did_you_mean(name, known)}")
        return value

    @field_validator("celery")
    @classmethod
    def _known_tasks(cls, value: CelerySettings) -> CelerySettings:
        from inventory.schedule import current_names, known_task_names

        known = known_task_names()
        if value.tasks:
            tasks = current_names(value.tasks, "celery.tasks", known)
            value = value.model_copy(update={"tasks": tasks})
        for name in value.tasks:
            if name not in known:
                raise ValueError(
                    f"unknown task {name!r} in celery.tasks{_did_you_mean(name, known)}"
                )
        return value

    @property
    def beat_redis_url(self) -> str:
        if self.beat.redis_url:
            return self.beat.redis_url
        broker = self.celery.broker_url
        return broker if broker.startswith(("redis://", "rediss://")) else self.redis.url

    @property
    def deployment_region(self) -> str:
        """The region this process runs in."""
        return self.region or self.active_region

    @property
    def is_active_region(self) -> bool:
        """Only the active region calls AWS and writes DynamoDB and S3."""
        return self.deployment_region == self.active_region

    @property
    def dynamodb_endpoint(self) -> str | None:
        return self.dynamodb.endpoint_url or self.aws.endpoint_url

    @property
    def s3_region(self) -> str:
        return self.s3.region or self.dynamodb.region
