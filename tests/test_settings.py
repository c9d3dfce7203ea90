"""Unit tests of the settings loader: YAML files, INVENTORY_* overrides and operator errors.

Pure tests: no server fixture is requested.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from inventory.cli import main
from inventory.schedule import SCHEDULE
from inventory.settings import ConfigError, Settings, _mask, load_settings

DEFAULTS = {
    "active_region": "us-east-1",
    "region": None,
    "celery": {
        "broker_url": "redis://127.0.0.1:6379/0",
        "result_backend": "redis://127.0.0.1:6379/1",
        "worker_concurrency": 2,
        "visibility_timeout": 7200,
        "unacked_restore_seconds": 100,
        "retry_backoff_base": 5.0,
        "retry_backoff_max": 300.0,
        "tasks": {},
        "signing": {
            "enabled": False,
            "key": None,
            "certificate": None,
            "cert_store": None,
            "digest": "sha256",
            "max_message_age": 86400.0,
        },
        "tls": {"ca_certs": None, "certfile": None, "keyfile": None},
        "sqs": {
            "region": None,
            "queue_name_prefix": "inventory-",
            "wait_time_seconds": 10,
            "polling_interval": 1.0,
            "is_secure": True,
        },
    },
    "redis": {"url": "redis://127.0.0.1:6379/2", "key_prefix": "inv:", "socket_timeout": 10.0},
    "dynamodb": {
        "region": "us-east-1",
        "table_prefix": "inventory_",
        "endpoint_url": None,
        "create_tables": True,
        "item_ttl_days": 30,
        "read_capacity": 0,
        "write_capacity": 0,
        "write_concurrency": 16,
    },
    "s3": {"bucket": None, "prefix": "inventory/", "region": None, "layout": "envelope"},
    "aws": {
        "endpoint_url": None,
        "role_name": "InventoryReadOnly",
        "assume_role": True,
        "external_id": None,
        "session_name": "inventory",
        "regions": ["us-east-1", "us-west-2"],
        "retry_mode": "adaptive",
        "max_attempts": 5,
        "detail_reads": 16,
        "connect_timeout": 5.0,
        "read_timeout": 30.0,
        "credential_margin_seconds": 300,
        "session_duration_seconds": 3600,
    },
    "accounts": {
        "static": [],
        "organizations": {"enabled": False, "management_account_id": None, "role_name": None},
    },
    "iam": {"stale_after_seconds": 259200},
    "aws_config": {
        "resource_types": [],
        "aggregator": {"name": None, "account_id": None, "region": None},
    },
    "web": {
        "host": "127.0.0.1",
        "port": 8080,
        "api_token_hashes": [],
        "api_tokens": [],
        "user_header": "X-Forwarded-User",
        "groups_header": "X-Forwarded-Groups",
        "trusted_proxies": [],
        "admin_groups": ["inventory-admins"],
        "cookie_secret": None,
        "https": True,
        "login_rate": "10/m",
        "refresh_rate": "30/m",
        "request_rate": "30/h",
        "max_open_requests": 20,
        "max_body_bytes": 262144,
        "max_url_bytes": 8192,
        "max_header_bytes": 16384,
        "search_sync_seconds": 1.0,
        "search_rebuild_seconds": 10.0,
        "search_index_dir": "state/search-index",
    },
    "cloudtrail": {
        "source": "none",
        "queue_url": None,
        "queue_region": None,
        "max_messages": 1000,
        "lookback_seconds": 3600,
        "retention_days": 14,
    },
    "credential_mapping": {
        "role_tag_keys": ["inventory-groups", "consoleme-authorized"],
        "static": {},
    },
    "schedule": {},
    "beat": {
        "redis_url": None,
        "key_prefix": "inv:redbeat:",
        "max_loop_interval": 30.0,
        "lock_timeout": 150.0,
        "timezone": "UTC",
    },
    "sentry": {"dsn": None, "environment": "production", "traces_sample_rate": 0.0},
    "logging": {"format": "text", "level": "INFO"},
    "metrics": {
        "host": "127.0.0.1",
        "port": 8099,
        "stale_after_seconds": 7200.0,
        "partition_series": True,
    },
    "health": {"heartbeat_path": None, "interval_seconds": 15.0, "max_age_seconds": 120.0},
    "replication": {"overlap_seconds": 300.0},
    "events": {
        "enabled": False,
        "queue_url": None,
        "queue_region": None,
        "max_messages": 5000,
        "max_seconds": 40.0,
        "seen_ttl_seconds": 86400,
        "visibility_seconds": 60,
    },
    "history": {"enabled": True, "retention_days": 365, "feed_max_entries": 50000},
}


@pytest.fixture(autouse=True)
def _no_ambient_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Region and endpoint defaults read os.environ; keep the host's values out of these tests."""
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "INVENTORY_CONFIG"):
        monkeypatch.delenv(name, raising=False)


def write(tmp_path: Path, text: str, name: str = "inventory.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def config_error(tmp_path: Path, text: str) -> tuple[Path, str]:
    """Load one YAML file that must be rejected; the path and the ConfigError message."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        load_settings(paths=[path], environ={})
    return path, str(exc.value)


# --- loading -------------------------------------------------------------------------------


def test_defaults_load_without_file_or_environment() -> None:
    settings = load_settings(paths=[], environ={})

    assert settings.model_dump(mode="json") == DEFAULTS


def test_empty_yaml_file_gives_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "")

    assert load_settings(paths=[path], environ={}).model_dump(mode="json") == DEFAULTS


def test_yaml_file_values_apply(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
active_region: eu-west-1
region: eu-central-1
redis: {url: "redis://cache:6379/5", key_prefix: "x:"}
aws:
  role_name: Auditor
  regions: [eu-west-1]
accounts:
  static:
    - {id: "111111111111", name: prod, role_name: ProdAuditor}
""",
    )

    settings = load_settings(paths=[path], environ={})

    dumped = settings.model_dump(mode="json")
    assert dumped["active_region"] == "eu-west-1"
    assert dumped["region"] == "eu-central-1"
    assert dumped["redis"] == {
        "url": "redis://cache:6379/5",
        "key_prefix": "x:",
        "socket_timeout": 10.0,
    }
    assert dumped["aws"] == {**DEFAULTS["aws"], "role_name": "Auditor", "regions": ["eu-west-1"]}
    assert dumped["accounts"]["static"] == [
        {
            "id": "111111111111",
            "name": "prod",
            "status": "ACTIVE",
            "email": None,
            "role_name": "ProdAuditor",
        }
    ]
    # Sections the file does not mention keep their defaults.
    assert dumped["celery"] == DEFAULTS["celery"]
    assert dumped["dynamodb"] == DEFAULTS["dynamodb"]


def test_later_file_overrides_earlier_file_key_by_key(tmp_path: Path) -> None:
    first = write(
        tmp_path,
        "redis: {url: 'redis://one:6379/0', key_prefix: 'one:'}\ncelery: {worker_concurrency: 4}\n",
        "first.yaml",
    )
    second = write(tmp_path, "redis: {url: 'redis://two:6379/0'}\n", "second.yaml")

    settings = load_settings(paths=[first, second], environ={})

    assert settings.redis.model_dump() == {
        "url": "redis://two:6379/0",
        "key_prefix": "one:",
        "socket_timeout": 10.0,
    }
    assert settings.celery.worker_concurrency == 4


def test_environment_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, "redis: {url: 'redis://file:6379/0', key_prefix: 'f:'}\n")

    settings = load_settings(
        paths=[path], environ={"INVENTORY_REDIS__URL": "redis://env:6379/3", "OTHER": "ignored"}
    )

    assert settings.redis.model_dump() == {
        "url": "redis://env:6379/3",
        "key_prefix": "f:",
        "socket_timeout": 10.0,
    }


def test_environment_list_value_is_parsed_as_yaml_list() -> None:
    settings = load_settings(paths=[], environ={"INVENTORY_AWS__REGIONS": "[eu-west-1, us-east-1]"})

    assert settings.aws.regions == ["eu-west-1", "us-east-1"]


def test_environment_digit_only_value_for_string_field_stays_string() -> None:
    settings = load_settings(
        paths=[],
        environ={"INVENTORY_S3__BUCKET": "123456", "INVENTORY_AWS__EXTERNAL_ID": "000123"},
    )

    assert settings.s3.bucket == "123456"
    assert settings.aws.external_id is not None
    assert settings.aws.external_id.get_secret_value() == "000123"


def test_environment_scalars_are_coerced_by_field_type() -> None:
    settings = load_settings(
        paths=[],
        environ={
            "INVENTORY_CELERY__WORKER_CONCURRENCY": "8",
            "INVENTORY_AWS__ASSUME_ROLE": "false",
            "INVENTORY_CELERY__RESULT_BACKEND": "",
        },
    )

    assert settings.celery.model_dump(mode="json") == DEFAULTS["celery"] | {
        "result_backend": None,
        "worker_concurrency": 8,
    }
    assert settings.aws.assume_role is False


def test_config_paths_come_from_inventory_config_variable(tmp_path: Path) -> None:
    first = write(tmp_path, "redis: {key_prefix: 'a:'}\n", "a.yaml")
    second = write(tmp_path, "redis: {key_prefix: 'b:'}\n", "b.yaml")

    settings = load_settings(environ={"INVENTORY_CONFIG": f"{first},{second}"})

    assert settings.redis.key_prefix == "b:"


def test_account_id_quoted_or_leading_zero_yaml_value_is_accepted_as_string(
    tmp_path: Path,
) -> None:
    # 012345678901 is not a valid YAML 1.1 int (8 and 9 are not octal digits): a string.
    path = write(
        tmp_path,
        "accounts:\n"
        "  static:\n"
        "    - {id: 012345678901, name: a}\n"
        '    - {id: "000000000042", name: b}\n',
    )

    settings = load_settings(paths=[path], environ={})

    assert [a.id for a in settings.accounts.static] == ["012345678901", "000000000042"]


def test_account_id_unquoted_yaml_int_is_accepted_as_twelve_digit_string(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "accounts:\n"
        "  static: [{id: 123456789012, name: a}]\n"
        "  organizations: {enabled: true, management_account_id: 210987654321}\n",
    )

    settings = load_settings(paths=[path], environ={})

    assert [a.id for a in settings.accounts.static] == ["123456789012"]
    assert settings.accounts.organizations.management_account_id == "210987654321"


def test_account_id_with_octal_looking_digits_is_not_silently_changed(tmp_path: Path) -> None:
    path = write(tmp_path, "accounts: {static: [{id: 012345670123, name: a}]}\n")

    try:
        settings = load_settings(paths=[path], environ={})
    except ConfigError as exc:  # rejecting it is an acceptable fix too
        assert "accounts.static.0.id" in str(exc)
    else:
        assert [a.id for a in settings.accounts.static] == ["012345670123"]


def test_region_default_comes_from_the_environ_passed_to_load_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")

    settings = load_settings(paths=[], environ={"AWS_REGION": "ap-southeast-2"})

    assert settings.region == "ap-southeast-2"


# --- errors --------------------------------------------------------------------------------


def test_wrong_type_names_key_value_and_expectation(tmp_path: Path) -> None:
    path, message = config_error(tmp_path, 'celery: {worker_concurrency: "lots"}\n')

    assert message == (
        f"invalid configuration ({path}):\n"
        "  celery.worker_concurrency = 'lots': "
        "Input should be a valid integer, unable to parse string as an integer"
    )


def test_out_of_range_number_names_key_value_and_bound(tmp_path: Path) -> None:
    path, message = config_error(tmp_path, "celery: {worker_concurrency: 0}\n")

    assert message == (
        f"invalid configuration ({path}):\n"
        "  celery.worker_concurrency = 0: Input should be greater than or equal to 1"
    )


def test_invalid_redis_url_names_key_value_and_expected_schemes(tmp_path: Path) -> None:
    path, message = config_error(tmp_path, 'redis: {url: "http://x"}\n')

    assert message == (
        f"invalid configuration ({path}):\n"
        "  redis.url = 'http://x': expected a redis://, rediss:// or unix:// URL"
    )


def test_invalid_region_in_list_names_key_and_expected_form(tmp_path: Path) -> None:
    path, message = config_error(tmp_path, "aws: {regions: [eu-west-1, moon-base-1x]}\n")

    assert message == (
        f"invalid configuration ({path}):\n"
        "  aws.regions = ['eu-west-1', 'moon-base-1x']: "
        "expected an AWS region name such as us-east-1"
    )


def test_config_aggregator_without_its_account_names_the_key(tmp_path: Path) -> None:
    path, message = config_error(tmp_path, "aws_config: {aggregator: {name: org}}\n")

    assert message == (
        f"invalid configuration ({path}):\n"
        "  aws_config.aggregator = {'name': 'org'}: "
        "account_id (the account holding the aggregator) is required"
    )


def test_config_resource_type_that_could_break_the_query_is_refused(tmp_path: Path) -> None:
    path, message = config_error(
        tmp_path, "aws_config: {resource_types: [\"AWS::S3::Bucket') OR ('x\"]}\n"
    )

    assert message == (
        f"invalid configuration ({path}):\n"
        "  aws_config.resource_types = [\"AWS::S3::Bucket') OR ('x\"]: "
        "not an AWS Config resource type: \"AWS::S3::Bucket') OR ('x\""
    )


def test_config_settings_load_resource_types_and_aggregator(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "aws_config:\n  resource_types: [AWS::KMS::Key]\n"
        "  aggregator: {name: org, account_id: '111111111111', region: eu-west-1}\n",
    )
    settings = load_settings(paths=[path], environ={})

    assert settings.aws_config.resource_types == ["AWS::KMS::Key"]
    assert settings.aws_config.aggregator.model_dump() == {
        "name": "org",
        "account_id": "111111111111",
        "region": "eu-west-1",
    }


def test_invalid_active_region_names_key_and_value(tmp_path: Path) -> None:
    path, message = config_error(tmp_path, "active_region: US-EAST-1\n")

    assert message == (
        f"invalid configuration ({path}):\n"
        "  active_region = 'US-EAST-1': expected an AWS region name such as us-east-1"
    )


def test_short_account_id_names_list_index_path(tmp_path: Path) -> None:
    path, message = config_error(tmp_path, 'accounts: {static: [{id: "12", name: x}]}\n')

    assert message == (
        f"invalid configuration ({path}):\n"
        "  accounts.static.0.id = '12': String should match pattern '^\\d{12}$'"
    )


def test_duplicate_static_account_ids_are_rejected_naming_the_id(tmp_path: Path) -> None:
    path, message = config_error(
        tmp_path,
        "accounts:\n"
        "  static:\n"
        "    - {id: 123456789012, name: x}\n"
        "    - {id: '999999999999', name: z}\n"
        "    - {id: '123456789012', name: y}\n",
    )

    assert message == (
        f"invalid configuration ({path}):\n"
        "  accounts = {'static': [{'id': 123456789012, 'name': 'x'}, {'id': '999999999999', "
        "'name':...: account ids listed twice in static: 123456789012"
    )


def test_organizations_enabled_without_management_account_is_rejected(tmp_path: Path) -> None:
    path, message = config_error(tmp_path, "accounts: {organizations: {enabled: true}}\n")

    assert message == (
        f"invalid configuration ({path}):\n"
        "  accounts.organizations = {'enabled': True}: "
        "management_account_id is required when organizations is enabled"
    )


def test_unknown_key_suggests_closest_name(tmp_path: Path) -> None:
    path, message = config_error(tmp_path, "redsi: {url: 'redis://x'}\n")

    assert message == (
        f"invalid configuration ({path}):\n  redsi: unknown key (did you mean 'redis'?)"
    )


def test_unknown_key_without_close_match_has_no_suggestion(tmp_path: Path) -> None:
    path, message = config_error(tmp_path, "zzzzzz: 1\n")

    assert message == f"invalid configuration ({path}):\n  zzzzzz: unknown key"


def test_unknown_nested_key_suggests_closest_field_of_its_section(tmp_path: Path) -> None:
    path, message = config_error(tmp_path, "redis: {ulr: 'redis://x'}\n")

    assert message == (
        f"invalid configuration ({path}):\n  redis.ulr: unknown key (did you mean 'url'?)"
    )


def test_unknown_key_inside_list_item_suggests_field_and_reports_missing_one(
    tmp_path: Path,
) -> None:
    path, message = config_error(tmp_path, "accounts: {static: [{id: '123456789012', nme: x}]}\n")

    assert message == (
        f"invalid configuration ({path}):\n"
        "  accounts.static.0.name: required but missing\n"
        "  accounts.static.0.nme: unknown key (did you mean 'name'?)"
    )


def test_unknown_key_inside_schedule_entry_suggests_closest_field(tmp_path: Path) -> None:
    path, message = config_error(
        tmp_path, "schedule: {cache_iam_resources_across_accounts: {evry: 600}}\n"
    )

    assert message == (
        f"invalid configuration ({path}):\n"
        "  schedule.cache_iam_resources_across_accounts.evry: unknown key "
        "(did you mean 'every'?)"
    )


def test_unknown_schedule_entry_suggests_closest_entry_name(tmp_path: Path) -> None:
    path, message = config_error(
        tmp_path, "schedule: {cache_iam_resource_across_accounts: {every: 60}}\n"
    )

    assert message == (
        f"invalid configuration ({path}):\n"
        "  schedule = {'cache_iam_resource_across_accounts': {'every': 60}}: "
        "unknown schedule entry 'cache_iam_resource_across_accounts' "
        "(did you mean 'cache_iam_resources_across_accounts'?)"
    )


def test_schedule_every_below_minimum_is_rejected(tmp_path: Path) -> None:
    path, message = config_error(tmp_path, "schedule: {clear_old_redis_iam_cache: {every: 0}}\n")

    assert message == (
        f"invalid configuration ({path}):\n"
        "  schedule.clear_old_redis_iam_cache.every = 0: "
        "Input should be greater than or equal to 1"
    )


def test_every_problem_is_reported_one_per_line(tmp_path: Path) -> None:
    path, message = config_error(
        tmp_path, "redis: {url: 'http://x'}\ncelery: {worker_concurrency: 0}\n"
    )

    assert message.splitlines() == [
        f"invalid configuration ({path}):",
        "  celery.worker_concurrency = 0: Input should be greater than or equal to 1",
        "  redis.url = 'http://x': expected a redis://, rediss:// or unix:// URL",
    ]


def test_error_from_environment_names_environment_as_source() -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(paths=[], environ={"INVENTORY_CELERY__WORKER_CONCURRENCY": "lots"})

    assert str(exc.value) == (
        "invalid configuration (defaults + INVENTORY_* environment):\n"
        "  celery.worker_concurrency = 'lots': "
        "Input should be a valid integer, unable to parse string as an integer"
    )


def test_yaml_that_is_not_a_mapping_is_rejected(tmp_path: Path) -> None:
    path, message = config_error(tmp_path, "- redis\n- celery\n")

    assert message == f"{path}: expected a mapping of settings, got list"


def test_yaml_scalar_document_is_rejected(tmp_path: Path) -> None:
    path, message = config_error(tmp_path, "just text\n")

    assert message == f"{path}: expected a mapping of settings, got str"


def test_unreadable_file_path_is_reported_with_reason(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"

    with pytest.raises(ConfigError) as exc:
        load_settings(paths=[missing], environ={})

    assert str(exc.value).endswith(f"cannot read {missing}: No such file or directory")


def test_directory_as_config_path_is_reported_with_reason(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(paths=[tmp_path], environ={})

    assert str(exc.value).endswith(f"cannot read {tmp_path}: Is a directory")


def test_invalid_yaml_syntax_is_reported_with_path(tmp_path: Path) -> None:
    path, message = config_error(tmp_path, "redis: [unclosed\n")

    assert message.splitlines()[0] == f"{path}: not valid YAML: while parsing a flow sequence"


# --- secrets -------------------------------------------------------------------------------


def test_bad_value_of_secret_named_key_is_masked(tmp_path: Path) -> None:
    path, message = config_error(tmp_path, "redis: {key_prefix: 'hunter2 secret!'}\n")

    assert message == (
        f"invalid configuration ({path}):\n"
        "  redis.key_prefix = '***': String should match pattern '^[\\w:.-]{0,32}$'"
    )
    assert "hunter2" not in message


def test_bad_value_of_secretstr_field_is_masked(tmp_path: Path) -> None:
    _, message = config_error(tmp_path, "aws: {external_id: 918273645}\n")

    assert "918273645" not in message


@pytest.mark.parametrize(
    ("key", "value", "shown"),
    [
        ("aws.session_token", "abc", "'***'"),
        ("db.PASSWORD", "abc", "'***'"),
        ("client_secret", 12345, "'***'"),
        ("sentry.dsn", "https://k@sentry", "'***'"),
        ("redis.key_prefix", "x y", "'***'"),
        ("aws.session_token", None, "None"),
        ("aws.session_token", "", "''"),
        ("redis.url", "http://x", "'http://x'"),
        ("celery.worker_concurrency", 0, "0"),
        ("s3.prefix", "a" * 100, "'" + "a" * 76 + "..."),
    ],
)
def test_mask_hides_secret_named_values_and_truncates_long_ones(
    key: str, value: object, shown: str
) -> None:
    assert _mask(key, value) == shown


# --- active region -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("active_region", "region", "expected"),
    [
        ("us-east-1", None, True),
        ("eu-west-1", None, True),
        ("eu-west-1", "eu-west-1", True),
        ("us-east-1", "us-west-2", False),
        ("eu-west-1", "us-east-1", False),
    ],
)
def test_is_active_region_when_region_unset_or_equal_to_active_region(
    active_region: str, region: str | None, expected: bool
) -> None:
    settings = Settings(active_region=active_region, region=region)

    assert settings.is_active_region is expected
    assert settings.deployment_region == (region or active_region)


# --- CLI -----------------------------------------------------------------------------------


def test_cli_config_with_bad_file_exits_2_naming_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, 'redis: {url: "http://x"}\n')

    result = CliRunner().invoke(main, ["--config", str(path), "config"])

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"error: invalid configuration ({path}):\n"
        "  redis.url = 'http://x': expected a redis://, rediss:// or unix:// URL\n"
    )


def test_cli_config_prints_settings_as_json_with_external_id_masked(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "aws: {external_id: 'very-secret-external-id', role_name: Auditor}\n"
        "s3: {bucket: inventory-snapshots}\n",
    )

    result = CliRunner().invoke(main, ["--config", str(path), "config"])

    assert result.exit_code == 0, result.output
    assert "very-secret-external-id" not in result.output
    printed = json.loads(result.stdout)
    assert printed == {
        **DEFAULTS,
        "s3": {**DEFAULTS["s3"], "bucket": "inventory-snapshots"},
        "aws": {**DEFAULTS["aws"], "external_id": "**********", "role_name": "Auditor"},
    }


def test_cli_schedule_show_lists_disabled_override_as_disabled(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "schedule:\n"
        "  clear_old_redis_iam_cache: {enabled: false}\n"
        "  cache_cloud_account_mapping: {every: 120}\n",
    )

    result = CliRunner().invoke(main, ["--config", str(path), "schedule", "show"])

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == len(SCHEDULE)
    assert {
        "enabled   every     2700s  fanout       cache_iam_resources_across_accounts",
        "disabled  every    21600s  maintenance  clear_old_redis_iam_cache",
        "enabled   every      120s  maintenance  cache_cloud_account_mapping",
    } <= set(lines)


def test_unnamed_token_hashes_still_work_but_are_reported_as_deprecated() -> None:
    digest = "ab" * 32
    named = load_settings(
        paths=[],
        environ={"INVENTORY_WEB__API_TOKENS": f'[{{"name": "ci", "sha256": "{digest}"}}]'},
    )
    unnamed = load_settings(paths=[], environ={"INVENTORY_WEB__API_TOKEN_HASHES": f"[{digest}]"})
    assert named.web.deprecations() == []
    assert unnamed.web.api_token_hashes == [digest]
    assert unnamed.web.deprecations() == [
        "web.api_token_hashes is deprecated: move each digest to web.api_tokens as "
        "{name, sha256, groups} so that requests and approvals say who acted; until then "
        "each acts as 'token-' and the first 8 hex digits of its digest"
    ]


# --- brokers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["sqs://", "sqs://sqs.eu-west-1.amazonaws.com", "sqs://127.0.0.1:5000", "amqp://u:p@mq:5672//"],
)
def test_sqs_and_amqp_broker_urls_are_accepted(url: str) -> None:
    settings = load_settings(paths=[], environ={"INVENTORY_CELERY__BROKER_URL": url})
    assert settings.celery.broker_url == url


def test_sqs_visibility_timeout_above_the_sqs_limit_names_the_key() -> None:
    env = {
        "INVENTORY_CELERY__BROKER_URL": "sqs://",
        "INVENTORY_CELERY__VISIBILITY_TIMEOUT": "50000",
    }
    with pytest.raises(ConfigError) as caught:
        load_settings(paths=[], environ=env)
    assert str(caught.value).splitlines()[1] == (
        "  celery = {'broker_url': 'sqs://', 'visibility_timeout': '50000'}: visibility_timeout "
        "(50000s) is above SQS's limit of 43200s: lower it and the task time limits with it"
    )
    # The same timeout is fine on Redis, which has no such limit.
    redis_env = env | {"INVENTORY_CELERY__BROKER_URL": "redis://127.0.0.1:6379/0"}
    assert load_settings(paths=[], environ=redis_env).celery.visibility_timeout == 50000


def test_an_unknown_broker_scheme_is_refused_with_the_supported_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(paths=[], environ={"INVENTORY_CELERY__BROKER_URL": "kafka://k:9092"})
    assert "expected a redis://, rediss://, amqp://, amqps:// or sqs:// URL" in str(caught.value)
