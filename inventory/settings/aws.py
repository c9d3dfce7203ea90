"""Settings of how AWS is read: access, accounts, IAM, CloudTrail, events, history, mapping."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from inventory.settings.base import (
    ROLE_NAME,
    AccountId,
    _check_region,
    _http_url,
    _Section,
)


class AwsSettings(_Section):
    """How we reach AWS: the hub credentials come from the usual boto3 chain."""

    endpoint_url: str | None = Field(
        None,
        description="Override every AWS endpoint (moto in tests and the demo); AWS_ENDPOINT_URL",
    )
    role_name: str = Field(
        "InventoryReadOnly",
        description="Role assumed in each account: arn:aws:iam::{id}:role/{name}",
    )
    assume_role: bool = Field(True, description="Assume role_name in each account")
    external_id: SecretStr | None = Field(None, description="ExternalId for AssumeRole")
    session_name: str = Field(
        "inventory", pattern=r"^[\w+=,.@-]{2,64}$", description="RoleSessionName (CloudTrail)"
    )
    regions: list[str] = Field(
        default_factory=lambda: ["us-east-1", "us-west-2"],
        description="Regions synced for regional kinds; [] = each account's enabled regions",
    )
    retry_mode: Literal["standard", "adaptive"] = Field("adaptive", description="botocore retries")
    max_attempts: int = Field(5, ge=1, le=20, description="botocore attempts per call")
    detail_reads: int = Field(
        16,
        ge=1,
        le=64,
        description="Per-resource detail reads (policy, tags, attributes) in flight per account "
        "and region, shared by its fetchers, and the read-backs in flight per event refresh; "
        "1 = one after another",
    )
    connect_timeout: float = Field(5.0, gt=0, le=120, description="Seconds to connect")
    read_timeout: float = Field(30.0, gt=0, le=900, description="Seconds to read a response")
    credential_margin_seconds: int = Field(
        300, ge=0, le=3000, description="Refresh assumed credentials this long before expiry"
    )
    session_duration_seconds: int = Field(
        3600, ge=900, le=43200, description="DurationSeconds of assumed-role sessions"
    )

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        return _http_url(value)

    @field_validator("role_name")
    @classmethod
    def _role(cls, value: str) -> str:
        if not ROLE_NAME.match(value):
            raise ValueError("expected an IAM role name (letters, digits and +=,.@_-, at most 64)")
        return value

    @field_validator("regions")
    @classmethod
    def _regions(cls, value: list[str]) -> list[str]:
        return [_check_region(r) for r in value]


class ConfigAggregator(_Section):
    """An AWS Config aggregator: one query of it serves every account and region it covers."""

    name: str | None = Field(
        None, description="ConfigurationAggregatorName; unset = query each account and region"
    )
    account_id: AccountId | None = Field(None, description="Account that holds the aggregator")
    region: str | None = Field(None, description="Region of the aggregator; active_region")

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        return None if value is None else _check_region(value)

    @model_validator(mode="after")
    def _needs_account(self) -> ConfigAggregator:
        if self.name and not self.account_id:
            raise ValueError("account_id (the account holding the aggregator) is required")
        return self


class AwsConfigSettings(_Section):
    """Which AWS Config resources are cached, and from where."""

    resource_types: list[str] = Field(
        default_factory=list,
        description="Config resource types to cache (AWS::S3::Bucket...); [] = every type "
        "the recorder records",
    )
    aggregator: ConfigAggregator = Field(default_factory=ConfigAggregator)

    @field_validator("resource_types")
    @classmethod
    def _types(cls, value: list[str]) -> list[str]:
        for resource_type in value:
            if not RESOURCE_TYPE.match(resource_type):
                raise ValueError(f"not an AWS Config resource type: {resource_type!r}")
        return value


#: AWS::Service::Resource (each part letters and digits): safe to quote in a Config query.
RESOURCE_TYPE = re.compile(r"^AWS::[A-Za-z0-9]+::[A-Za-z0-9]+$")


class StaticAccount(_Section):
    """An account listed in config."""

    id: AccountId = Field(description="12-digit account id")
    name: str = Field(min_length=1, max_length=128)
    status: Literal["ACTIVE", "SUSPENDED", "PENDING_CLOSURE"] = "ACTIVE"
    email: str | None = None
    role_name: str | None = Field(None, description="Overrides aws.role_name for this account")


class OrganizationsSource(_Section):
    """Accounts from AWS Organizations ListAccounts, through a role in the management account."""

    enabled: bool = Field(False, description="List accounts from AWS Organizations")
    management_account_id: AccountId | None = Field(
        None, description="Account whose role may call organizations:ListAccounts"
    )
    role_name: str | None = Field(None, description="Role in the management account; aws.role_name")

    @model_validator(mode="after")
    def _needs_account(self) -> OrganizationsSource:
        if self.enabled and not self.management_account_id:
            raise ValueError("management_account_id is required when organizations is enabled")
        return self


class AccountsSettings(_Section):
    """Where the account list comes from."""

    static: list[StaticAccount] = Field(
        default_factory=list, description="Accounts listed here: id, name, status, email, role_name"
    )
    organizations: OrganizationsSource = Field(default_factory=OrganizationsSource)

    @model_validator(mode="after")
    def _unique(self) -> AccountsSettings:
        ids = [a.id for a in self.static]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"account ids listed twice in static: {', '.join(dupes)}")
        return self


class IamSettings(_Section):
    """IAM caching."""

    stale_after_seconds: int = Field(
        3 * 24 * 3600,
        ge=3600,
        description="clear_old_redis_iam_cache removes IAM entries not refreshed for this long",
    )


class CloudTrailSettings(_Section):
    """Where CloudTrail error events come from, and how long they are kept."""

    source: str = Field(
        "none",
        description="'sqs' (EventBridge -> SQS queue), 'lookup_events', 'none', "
        "or 'package.module:factory' (called with settings and the AwsSessions)",
    )
    queue_url: str | None = Field(None, description="SQS queue URL for the 'sqs' source")
    queue_region: str | None = Field(None, description="Region of the queue; active_region")
    max_messages: int = Field(1000, ge=10, le=100_000, description="Messages drained per run")
    lookback_seconds: int = Field(3600, ge=60, le=90 * 24 * 3600, description="'lookup_events'")
    retention_days: int = Field(14, ge=1, le=365, description="Errors older than this are dropped")

    @model_validator(mode="after")
    def _source(self) -> CloudTrailSettings:
        if self.source not in ("none", "sqs", "lookup_events") and not re.fullmatch(
            r"[\w.]+:[\w]+", self.source
        ):
            raise ValueError(
                "source must be 'sqs', 'lookup_events', 'none' or 'package.module:factory'"
            )
        if self.source == "sqs" and not self.queue_url:
            raise ValueError("queue_url is required when source is 'sqs'")
        return self


class EventsSettings(_Section):
    """Event-driven refresh: CloudTrail IAM/S3/SQS/SNS write events from EventBridge via SQS."""

    enabled: bool = Field(False, description="Drain the queue (beat entry drain_change_events)")
    queue_url: str | None = Field(None, description="SQS queue the EventBridge rule targets")
    queue_region: str | None = Field(None, description="Region of the queue; active_region")
    max_messages: int = Field(
        5000, ge=10, le=100_000, description="Messages drained per run at most"
    )
    max_seconds: float = Field(
        40, gt=0, le=300, description="A drain stops receiving after this long (next run goes on)"
    )
    seen_ttl_seconds: int = Field(
        86400, ge=60, le=14 * 86400, description="How long event ids are remembered (duplicates)"
    )
    visibility_seconds: int = Field(
        60,
        ge=5,
        le=43200,
        description="`inventory events` hides what it received this long (redelivered after)",
    )

    @model_validator(mode="after")
    def _queue(self) -> EventsSettings:
        if self.enabled and not self.queue_url:
            raise ValueError("queue_url is required when enabled is true")
        return self


class HistorySettings(_Section):
    """The change history of every cached resource."""

    enabled: bool = Field(True, description="Record created/updated/deleted changes with diffs")
    retention_days: int = Field(
        365, ge=1, le=3650, description="Changes older than this expire from DynamoDB (TTL)"
    )
    feed_max_entries: int = Field(
        50_000, ge=100, le=10_000_000, description="Recent changes kept in the Redis feed"
    )


class CredentialMappingSettings(_Section):
    """Who may use which role: role tags plus a static mapping."""

    role_tag_keys: list[str] = Field(
        default_factory=lambda: ["inventory-groups", "consoleme-authorized"],
        description="Role tags whose values list groups/emails (separated by : , or space)",
    )
    static: dict[str, list[str]] = Field(
        default_factory=dict, description="Role ARN -> groups/emails allowed to use it"
    )

    @field_validator("static")
    @classmethod
    def _arns(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for arn in value:
            if not re.fullmatch(r"arn:aws[\w-]*:iam::\d{12}:role/.+", arn):
                raise ValueError(f"{arn!r} is not an IAM role ARN")
        return value
