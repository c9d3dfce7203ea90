"""The one typed, validated settings object: YAML files plus ``INVENTORY_*`` environment overrides.

Load it once with :func:`load_settings`; everything else receives the object it returns.
A bad value raises :class:`ConfigError`, whose message names the key, the value and what was
expected (secret values are masked).
"""

from __future__ import annotations

import difflib
import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from inventory.redaction import mask_urls_in

CONFIG_ENV = "INVENTORY_CONFIG"
ENV_PREFIX = "INVENTORY_"
AWS_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")
ROLE_NAME = re.compile(r"^[\w+=,.@/-]{1,64}$")
SECRET_WORDS = ("password", "secret", "token", "dsn", "key")


class ConfigError(Exception):
    """Settings could not be loaded; the message is meant for the operator, one line per problem."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _redis_url(value: str) -> str:
    if not re.match(r"^(redis|rediss|unix)://", value):
        raise ValueError("expected a redis://, rediss:// or unix:// URL")
    return _check_url(value)


def _check_url(value: str) -> str:
    """A URL's host, port and (Redis) database parse; the message never repeats the value."""
    import urllib.parse

    parts = urllib.parse.urlsplit(value)
    if parts.scheme == "unix":
        if not parts.path:
            raise ValueError("a unix:// URL needs the socket's path")
        return value
    if parts.scheme == "memory":
        return value
    if parts.scheme == "sqs" and not parts.netloc:
        return value  # SQS in the region, credentials from the usual AWS chain
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the port must be a number from 1 to 65535") from None
    if port == 0:
        raise ValueError("the port must be a number from 1 to 65535")
    if not parts.hostname:
        raise ValueError("the URL names no host")
    if parts.scheme in ("redis", "rediss") and not re.fullmatch(r"/?(\d{1,5})?", parts.path):
        raise ValueError("the path of a Redis URL is its database number, e.g. /0")
    return value


def _http_url(value: str | None) -> str | None:
    if value is None:
        return None
    if not re.match(r"^https?://", value):
        raise ValueError("expected an http:// or https:// URL")
    return _check_url(value)


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


def _account_id(value: Any) -> Any:
    """Accept an unquoted 12-digit YAML number as an account id.

    Numbers with a leading zero never get here as ints: :class:`_Loader` keeps them as text.
    """
    if isinstance(value, int) and not isinstance(value, bool) and len(str(value)) == 12:
        return str(value)
    return value


class _Loader(yaml.SafeLoader):
    """YAML that keeps 0-prefixed numbers as text: ``012345670123`` is an id, not octal."""


def _int_or_text(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    text = loader.construct_scalar(node)
    if isinstance(text, str) and re.fullmatch(r"0[0-9_]+", text):
        return text
    return yaml.SafeLoader.construct_yaml_int(loader, node)


_Loader.add_constructor("tag:yaml.org,2002:int", _int_or_text)


AccountId = Annotated[str, BeforeValidator(_account_id), StringConstraints(pattern=r"^\d{12}$")]


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


class ApiToken(_Section):
    """A bearer token, stored as its SHA-256 digest, and who it stands for."""

    name: str = Field(min_length=1, max_length=128, description="Identity the token stands for")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 hex digest of the token")
    groups: list[str] = Field(default_factory=list, description="Groups of that identity")


#: ``10/m``: at most 10 a minute (as Celery writes rate limits).
RATE = r"^[1-9]\d{0,6}/[smh]$"
_RATE_SECONDS = {"s": 1, "m": 60, "h": 3600}


def parse_rate(value: str) -> tuple[int, int]:
    """``"10/m"`` -> ``(10, 60)``: requests allowed in one window of that many seconds."""
    count, _, unit = value.partition("/")
    return int(count), _RATE_SECONDS[unit]


class WebSettings(_Section):
    """The Tornado web tier."""

    host: str = Field("127.0.0.1", description="Address to listen on")
    port: int = Field(8080, ge=1, le=65535, description="Port to listen on")
    api_token_hashes: list[str] = Field(
        default_factory=list,
        description="Deprecated: unnamed SHA-256 digests of bearer tokens, each acting as "
        "'token-<first 8 hex digits>'; use api_tokens",
    )
    api_tokens: list[ApiToken] = Field(
        default_factory=list, description="Named bearer tokens with groups: {name, sha256, groups}"
    )
    user_header: str = Field(
        "X-Forwarded-User", description="Header with the user an authenticating proxy verified"
    )
    groups_header: str = Field(
        "X-Forwarded-Groups", description="Header with that user's groups (comma-separated)"
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses/CIDRs whose identity headers are believed; [] disables headers",
    )
    admin_groups: list[str] = Field(
        default_factory=lambda: ["inventory-admins"],
        description="Groups that may approve or reject policy requests",
    )
    cookie_secret: SecretStr | None = Field(
        None,
        description="Signs login cookies; random per process when null. Several web processes "
        "behind one address need the same value",
    )
    https: bool = Field(
        True,
        description="Browsers reach the web tier over HTTPS (here or at a TLS-terminating "
        "proxy): the login cookie is Secure and HSTS is sent. Off only for plain-HTTP setups "
        "such as the demo",
    )
    login_rate: str = Field(
        "10/m",
        pattern=RATE,
        description="Login attempts per client address, and logins per user name; e.g. '10/m' "
        "(s, m or h); more get a 429",
    )
    refresh_rate: str = Field(
        "30/m", pattern=RATE, description="POST /api/v1/refresh calls per identity (429)"
    )
    request_rate: str = Field(
        "30/h", pattern=RATE, description="Policy requests created per identity (429)"
    )
    max_open_requests: int = Field(
        20, ge=1, le=10_000, description="Pending policy requests one requester may have (409)"
    )
    max_body_bytes: int = Field(
        262_144, ge=1024, le=10_485_760, description="Larger request bodies are refused (413)"
    )
    max_url_bytes: int = Field(
        8192, ge=1024, le=65_536, description="Longer request targets (path and query) get a 414"
    )
    max_header_bytes: int = Field(
        16_384, ge=4096, le=262_144, description="Larger request header blocks get a 431"
    )
    search_sync_seconds: float = Field(
        1.0, gt=0, le=60, description="How often the search index applies cache changes"
    )
    search_rebuild_seconds: float = Field(
        10.0,
        ge=0,
        le=3600,
        description="Least time between background rebuilds of the search snapshots "
        "(the ARN typeahead: 6x this)",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError as exc:
                raise ValueError(f"{network!r} is not an IP address or CIDR") from exc
        return value

    @field_validator("api_token_hashes")
    @classmethod
    def _hashes(cls, value: list[str]) -> list[str]:
        for digest in value:
            if not re.fullmatch(r"[0-9a-f]{64}", digest):
                raise ValueError("expected SHA-256 hex digests (64 lowercase hex characters)")
        return value

    def deprecations(self) -> list[str]:
        """What the operator should change (the settings still work); each names the key."""
        if not self.api_token_hashes:
            return []
        return [
            "web.api_token_hashes is deprecated: move each digest to web.api_tokens as "
            "{name, sha256, groups} so that requests and approvals say who acted; until then "
            "each acts as 'token-' and the first 8 hex digits of its digest"
        ]


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

    file: str | None = Field(
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
        from inventory.schedule import SCHEDULE

        known = {entry.name for entry in SCHEDULE}
        for name in value:
            if name not in known:
                raise ValueError(f"unknown schedule entry {name!r}{_did_you_mean(name, known)}")
        return value

    @field_validator("celery")
    @classmethod
    def _known_tasks(cls, value: CelerySettings) -> CelerySettings:
        from inventory.schedule import known_task_names

        known = known_task_names()
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


def _check_region(value: str) -> str:
    if not AWS_REGION.match(value):
        raise ValueError("expected an AWS region name such as us-east-1")
    return value


def _did_you_mean(name: str, choices: set[str] | list[str]) -> str:
    close = difflib.get_close_matches(name, sorted(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    """``INVENTORY_REDIS__URL=x`` -> ``{"redis": {"url": "x"}}``; values are parsed as YAML."""
    result: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV:
            continue
        path = name[len(ENV_PREFIX) :].lower().split("__")
        # Lists, mappings and null need YAML; scalars stay strings for pydantic to coerce, so
        # an account id or bucket name made of digits is never turned into a number.
        try:
            parsed = yaml.load(raw, Loader=_Loader) if raw.strip() else None  # noqa: S506
        except yaml.YAMLError:
            parsed = raw
        value = parsed if parsed is None or isinstance(parsed, list | dict) else raw
        node = result
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return result


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{CONFIG_ENV}: cannot read {path}: {exc.strerror}") from exc
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    return data


def _is_secret(loc: tuple[Any, ...]) -> bool:
    parent = _model_at(loc[:-1]) if loc else None
    field = parent.model_fields.get(str(loc[-1])) if parent else None
    return field is not None and "SecretStr" in str(field.annotation)


def _mask(key: str, value: Any, secret: bool = False) -> str:
    if (secret or any(word in key.lower() for word in SECRET_WORDS)) and value not in (None, ""):
        return "'***'"
    text = repr(mask_urls_in(value))
    return text if len(text) <= 80 else text[:77] + "..."


def _format_errors(exc: ValidationError, sources: str) -> str:
    lines = [f"invalid configuration ({sources}):"]
    for error in exc.errors():
        key = ".".join(str(p) for p in error["loc"]) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            parent = _model_at(error["loc"][:-1])
            known = list(parent.model_fields) if parent else []
            message = f"unknown key{_did_you_mean(str(error['loc'][-1]), known)}"
            lines.append(f"  {key}: {message}")
            continue
        if error["type"] == "missing":
            lines.append(f"  {key}: required but missing")
            continue
        shown = _mask(key, error.get("input"), _is_secret(tuple(error["loc"])))
        lines.append(f"  {key} = {shown}: {message}")
    return "\n".join(lines)


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The settings model at an error location (list indexes and dict keys skipped)."""
    model: type[BaseModel] = Settings
    skip_key = False
    for part in loc:
        if isinstance(part, int) or skip_key:
            skip_key = False
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        annotation = field.annotation
        inner = getattr(annotation, "__args__", None)
        skip_key = getattr(annotation, "__origin__", None) is dict
        candidates = [annotation, *(inner or ())]
        nxt = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
        if nxt is None:
            return None
        model = nxt
    return model


def load_settings(
    paths: list[str | Path] | None = None, environ: dict[str, str] | None = None
) -> Settings:
    """Read YAML files (``INVENTORY_CONFIG``, comma-separated, later wins), apply env overrides."""
    environ = dict(os.environ if environ is None else environ)
    if paths is None:
        raw = environ.get(CONFIG_ENV, "")
        paths = [p for p in raw.split(",") if p.strip()]
    data: dict[str, Any] = {}
    for path in paths:
        data = _deep_merge(data, _read_yaml(Path(path).expanduser()))
    data = _deep_merge(data, _env_overrides(environ))
    # The usual AWS variables fill what neither file nor INVENTORY_* set.
    aws_region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    if aws_region and data.get("region") is None:
        data["region"] = aws_region
    endpoint = environ.get("AWS_ENDPOINT_URL")
    aws_section = data.get("aws")
    if endpoint and (aws_section is None or isinstance(aws_section, dict)):
        aws_section = dict(aws_section or {})
        aws_section.setdefault("endpoint_url", endpoint)
        data["aws"] = aws_section
    sources = ", ".join(str(p) for p in paths) or "defaults"
    if any(k.startswith(ENV_PREFIX) and k != CONFIG_ENV for k in environ):
        sources += " + INVENTORY_* environment"
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, sources)) from None


def reference_rows(
    model: type[BaseModel] = Settings, prefix: str = ""
) -> list[tuple[str, str, str]]:
    """(key, default, description) for every setting, nested sections flattened."""
    rows: list[tuple[str, str, str]] = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows.extend(reference_rows(annotation, f"{key}."))
            continue
        default = field.get_default(call_default_factory=True)
        shown = "null" if default is None else json.dumps(default, default=str)
        rows.append((key, shown, field.description or ""))
    return rows


def reference_markdown() -> str:
    """The configuration reference as a Markdown table (docs/configuration.md)."""
    lines = [
        "# Configuration reference",
        "",
        "Generated by `inventory config --reference`; a test fails when it is out of date.",
        "",
        f"Settings come from the YAML files named in `{CONFIG_ENV}` (comma-separated, later",
        "wins), then `INVENTORY_<SECTION>__<KEY>` environment variables (values parsed as YAML,",
        "so `INVENTORY_AWS__REGIONS='[us-east-1, eu-west-1]'` is a list). `AWS_REGION` and",
        "`AWS_ENDPOINT_URL` fill `region` and `aws.endpoint_url` when nothing else sets them.",
        "Static accounts are a list: `accounts.static: [{id, name, status, email, role_name}]`.",
        "`schedule.<entry>` takes `enabled`, `every` (seconds) and `expires` (seconds).",
        "",
        "| key | default | description |",
        "|---|---|---|",
    ]
    for key, default, description in reference_rows():
        lines.append(f"| `{key}` | `{default}` | {description} |")
    return "\n".join(lines) + "\n"
