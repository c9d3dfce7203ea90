"""The one typed, validated settings object: YAML files plus ``INVENTORY_*`` environment overrides.

Load it once with :func:`load_settings`; everything else receives the object it returns.
A bad value raises :class:`ConfigError`, whose message names the key, the value and what was
expected (secret values are masked).

The package: ``base`` (shared checks), the section models by theme (``services``, ``aws``,
``web``, ``operations``), the root ``model``, ``loading`` (with ``secret_files`` and
``errors``) and ``reference`` (docs/configuration.md).
Every public name is re-exported here, so callers import from ``inventory.settings`` only.
"""

from __future__ import annotations

from inventory.settings.aws import (
    AccountsSettings,
    AwsConfigSettings,
    AwsSettings,
    CloudTrailSettings,
    CredentialMappingSettings,
    EventsSettings,
    HistorySettings,
    IamSettings,
    OrganizationsSource,
    StaticAccount,
)
from inventory.settings.base import AWS_REGION, ROLE_NAME, AccountId, ConfigError
from inventory.settings.errors import SECRET_WORDS, _mask
from inventory.settings.loading import CONFIG_ENV, ENV_PREFIX, load_settings
from inventory.settings.model import Settings
from inventory.settings.operations import (
    DEFAULT_METRICS_PORT,
    HealthSettings,
    LoggingSettings,
    MetricsSettings,
    ReplicationSettings,
    ScheduleOverride,
    SentrySettings,
)
from inventory.settings.reference import reference_markdown, reference_rows, secret_keys
from inventory.settings.services import (
    SQS_MAX_VISIBILITY,
    BeatSettings,
    CelerySettings,
    DynamoSettings,
    RedisSettings,
    S3Settings,
    SigningSettings,
    SqsBrokerSettings,
    TaskOptions,
    TlsSettings,
)
from inventory.settings.web import RATE, ApiToken, WebSettings, parse_rate

__all__ = [
    "AWS_REGION",
    "CONFIG_ENV",
    "DEFAULT_METRICS_PORT",
    "SQS_MAX_VISIBILITY",
    "HealthSettings",
    "SqsBrokerSettings",
    "ENV_PREFIX",
    "RATE",
    "ROLE_NAME",
    "SECRET_WORDS",
    "AccountId",
    "AccountsSettings",
    "ApiToken",
    "AwsSettings",
    "BeatSettings",
    "CelerySettings",
    "CloudTrailSettings",
    "ConfigError",
    "CredentialMappingSettings",
    "DynamoSettings",
    "EventsSettings",
    "HistorySettings",
    "AwsConfigSettings",
    "IamSettings",
    "LoggingSettings",
    "MetricsSettings",
    "OrganizationsSource",
    "RedisSettings",
    "ReplicationSettings",
    "S3Settings",
    "ScheduleOverride",
    "SentrySettings",
    "Settings",
    "SigningSettings",
    "StaticAccount",
    "TaskOptions",
    "TlsSettings",
    "WebSettings",
    "_mask",
    "load_settings",
    "parse_rate",
    "reference_markdown",
    "reference_rows",
    "secret_keys",
]
