"""Bad configuration stops start-up with a clear message: the real ``inventory`` command in its
own process, one bad YAML file per case.

Each case: exit code 2, stderr names the key and the problem, no traceback, and no secret (a
password in a URL, a DSN) is ever echoed. ``check`` is used for what the settings model
refuses; ``worker`` for what only the assembled Celery app can judge (time limits of the
registered tasks against the visibility timeout).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SECRET = "hunter2-Sekr1t"
ROOT = Path(__file__).resolve().parents[2]

# (id, YAML, key named in the message, problem named in the message)
CASES = [
    # --- wrong types ---
    (
        "int-as-word",
        "celery: {worker_concurrency: many}",
        "celery.worker_concurrency = 'many'",
        "Input should be a valid integer",
    ),
    ("int-as-list", "web: {port: [80]}", "web.port = [80]", "Input should be a valid integer"),
    (
        "int-as-float-text",
        "web: {max_body_bytes: 1e12}",
        "web.max_body_bytes",
        "Input should be a valid integer",
    ),
    (
        "list-as-string",
        "aws: {regions: us-east-1}",
        "aws.regions = 'us-east-1'",
        "Input should be a valid list",
    ),
    (
        "section-as-list",
        "redis: [a, b]",
        "redis = ['a', 'b']",
        "Input should be a valid dictionary",
    ),
    (
        "bool-as-maybe",
        "schedule: {clear_old_redis_iam_cache: {enabled: maybe}}",
        "schedule.clear_old_redis_iam_cache.enabled = 'maybe'",
        "Input should be a valid boolean",
    ),
    (
        "list-of-accounts-as-mapping",
        "accounts: {static: {id: '123456789012', name: x}}",
        "accounts.static",
        "Input should be a valid list",
    ),
    (
        "secret-as-list",
        f"sentry: {{dsn: ['https://{SECRET}@sentry.example/1']}}",
        "sentry.dsn = '***'",
        "Input should be a valid string",
    ),
    # --- unknown keys, with the closest known name ---
    (
        "unknown-task-option",
        "celery: {tasks: {cache_iam_resources_for_account: {time_limt: 10}}}",
        "celery.tasks.cache_iam_resources_for_account.time_limt",
        "unknown key (did you mean 'time_limit'?)",
    ),
    (
        "unknown-web-key",
        "web: {trusted_proxy: ['10.0.0.0/8']}",
        "web.trusted_proxy",
        "unknown key (did you mean 'trusted_proxies'?)",
    ),
    (
        "unknown-beat-key",
        "beat: {lock_timout: 300}",
        "beat.lock_timout",
        "unknown key (did you mean 'lock_timeout'?)",
    ),
    (
        "unknown-task",
        "celery: {tasks: {cache_iam_resource_for_account: {max_retries: 1}}}",
        "celery = ",
        "unknown task 'cache_iam_resource_for_account' in celery.tasks "
        "(did you mean 'cache_iam_resources_for_account'?)",
    ),
    # --- impossible schedules ---
    (
        "cron-minute-61",
        "schedule: {clear_old_redis_iam_cache: {crontab: '61 * * * *'}}",
        "schedule.clear_old_redis_iam_cache",
        "invalid crontab '61 * * * *': Invalid end range: 61 > 59",
    ),
    (
        "cron-february-31",
        "schedule: {clear_old_redis_iam_cache: {crontab: '0 0 31 2 *'}}",
        "schedule.clear_old_redis_iam_cache",
        "day_of_month '31' never occurs in month_of_year '2'",
    ),
    (
        "cron-step-0",
        "schedule: {clear_old_redis_iam_cache: {crontab: '*/0 * * * *'}}",
        "schedule.clear_old_redis_iam_cache",
        "slice step cannot be zero",
    ),
    (
        "cron-three-fields",
        "schedule: {clear_old_redis_iam_cache: {crontab: '* * *'}}",
        "schedule.clear_old_redis_iam_cache",
        "crontab needs five fields",
    ),
    (
        "every-0",
        "schedule: {cache_iam_resources_across_accounts: {every: 0}}",
        "schedule.cache_iam_resources_across_accounts.every = 0",
        "greater than or equal to 1",
    ),
    (
        "every-negative",
        "schedule: {cache_iam_resources_across_accounts: {every: -60}}",
        "schedule.cache_iam_resources_across_accounts.every = -60",
        "greater than or equal to 1",
    ),
    (
        "every-infinite",
        "schedule: {cache_iam_resources_across_accounts: {every: .inf}}",
        "schedule.cache_iam_resources_across_accounts.every = inf",
        "less than or equal to 604800",
    ),
    (
        "expires-negative",
        "schedule: {cache_iam_resources_across_accounts: {expires: -1}}",
        "schedule.cache_iam_resources_across_accounts.expires = -1",
        "greater than 0",
    ),
    (
        "every-and-crontab",
        "schedule: {cache_iam_resources_across_accounts: {every: 60, crontab: '* * * * *'}}",
        "schedule.cache_iam_resources_across_accounts",
        "set either every or crontab, not both",
    ),
    (
        "beat-lock-below-two-loops",
        "beat: {lock_timeout: 40, max_loop_interval: 30}",
        "beat = ",
        "lock_timeout (40s) must be at least 2 x max_loop_interval (30s)",
    ),
    (
        "soft-not-below-hard",
        "celery: {tasks: {cache_iam_resources_for_account: {soft_time_limit: 900, "
        "time_limit: 900}}}",
        "celery.tasks.cache_iam_resources_for_account",
        "soft_time_limit must be below time_limit",
    ),
    # --- bad URLs (a password in one is never repeated) ---
    (
        "cache-url-http-with-password",
        f"redis: {{url: 'http://user:{SECRET}@cache.example/0'}}",
        "redis.url = 'http://user:***@cache.example/0'",
        "expected a redis://, rediss:// or unix:// URL",
    ),
    (
        "cache-url-port-out-of-range",
        f"redis: {{url: 'redis://:{SECRET}@cache.example:99999/0'}}",
        "redis.url = 'redis://:***@cache.example:99999/0'",
        "the port must be a number from 1 to 65535",
    ),
    (
        "broker-port-not-a-number",
        f"celery: {{broker_url: 'redis://u:{SECRET}@broker.example:six/0'}}",
        "celery.broker_url = 'redis://u:***@broker.example:six/0'",
        "the port must be a number from 1 to 65535",
    ),
    (
        "broker-without-host",
        f"celery: {{broker_url: 'amqp://guest:{SECRET}@'}}",
        "celery.broker_url = 'amqp://guest:***@'",
        "the URL names no host",
    ),
    (
        "backend-db-not-a-number",
        f"celery: {{result_backend: 'redis://:{SECRET}@backend.example:6379/one'}}",
        "celery.result_backend = 'redis://:***@backend.example:6379/one'",
        "the path of a Redis URL is its database number",
    ),
    (
        "beat-url-without-host",
        f"beat: {{redis_url: 'redis://:{SECRET}@:6379/0'}}",
        "beat.redis_url = 'redis://:***@:6379/0'",
        "the URL names no host",
    ),
    (
        "aws-endpoint-not-a-url",
        "aws: {endpoint_url: 'moto on port 5000'}",
        "aws.endpoint_url = 'moto on port 5000'",
        "expected an http:// or https:// URL",
    ),
    (
        "dynamodb-endpoint-ftp",
        "dynamodb: {endpoint_url: 'ftp://dynamo.example'}",
        "dynamodb.endpoint_url = 'ftp://dynamo.example'",
        "expected an http:// or https:// URL",
    ),
    (
        "trusted-proxy-not-a-cidr",
        "web: {trusted_proxies: ['10.0.0.0/33']}",
        "web.trusted_proxies",
        "'10.0.0.0/33' is not an IP address or CIDR",
    ),
    (
        "token-hash-is-a-token",
        f"web: {{api_token_hashes: ['{SECRET}']}}",
        "web.api_token_hashes = '***'",
        "expected SHA-256 hex digests",
    ),
]

# Only the assembled Celery app knows every task's hard time limit.
UNSAFE_CELERY = [
    (
        "visibility-below-limit-plus-backoff",
        "celery: {visibility_timeout: 600}",
        "celery.visibility_timeout (600s) must exceed the longest hard time limit plus "
        "celery.retry_backoff_max (960s + 300s = 1260s)",
    ),
    (
        "task-limit-raised-past-visibility",
        "celery: {tasks: {cache_iam_resources_for_account: {time_limit: 8000}}}",
        "celery.visibility_timeout (7200s) must exceed the longest hard time limit plus "
        "celery.retry_backoff_max (8000s + 300s = 8300s)",
    ),
    (
        "backoff-raised-past-visibility",
        "celery: {visibility_timeout: 1500, retry_backoff_max: 3600}",
        "celery.visibility_timeout (1500s) must exceed the longest hard time limit plus "
        "celery.retry_backoff_max (960s + 3600s = 4560s)",
    ),
    (
        "soft-limit-above-default-hard",
        "celery: {tasks: {cache_iam_resources_for_account: {soft_time_limit: 1000}}}",
        "celery.tasks.cache_iam_resources_for_account: soft_time_limit (1000s) must be below "
        "time_limit (960s)",
    ),
]


def run_cli(tmp_path: Path, yaml_text: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m inventory.cli -c FILE ARGS`` with nothing from the test's environment."""
    config = tmp_path / "inventory.yaml"
    config.write_text(yaml_text + "\n")
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        # Unreachable on purpose: a config that passed would fail its probes, not hang.
        "INVENTORY_REDIS__URL": "redis://127.0.0.1:1/2",
    }
    if "redis" in yaml_text:
        del env["INVENTORY_REDIS__URL"]
    return subprocess.run(
        [sys.executable, "-m", "inventory.cli", "-c", str(config), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=ROOT,
    )


def assert_refused(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    for text in expected:
        assert text in result.stderr, (text, result.stderr)
    assert "Traceback" not in output
    assert 'File "' not in output
    assert SECRET not in output


@pytest.mark.parametrize(
    ("yaml_text", "key", "problem"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_config_stops_check_with_exit_2_naming_key_and_problem(
    tmp_path, yaml_text, key, problem
):
    result = run_cli(tmp_path, yaml_text, "check")
    assert_refused(result, "invalid configuration (", key, problem)
    # Nothing was probed: the table of checks is never printed for a refused config.
    assert "redis cache" not in result.stdout


@pytest.mark.parametrize(
    ("yaml_text", "problem"), [c[1:] for c in UNSAFE_CELERY], ids=[c[0] for c in UNSAFE_CELERY]
)
def test_unsafe_celery_timing_stops_the_worker_before_it_starts(tmp_path, yaml_text, problem):
    result = run_cli(tmp_path, yaml_text, "worker")
    assert_refused(result, "error: unsafe Celery settings:", problem)
    assert "celery@" not in result.stdout + result.stderr  # the worker banner never appeared
    # `check` refuses the same settings the same way (it used to call them valid).
    checked = run_cli(tmp_path, yaml_text, "check")
    assert_refused(checked, "error: unsafe Celery settings:", problem)


def test_several_problems_are_all_reported_at_once(tmp_path):
    yaml_text = (
        "celery: {worker_concurrency: 0}\n"
        "schedule: {clear_old_redis_iam_cache: {crontab: '61 * * * *'}}\n"
        "web: {port: 70000}\n"
        f"redis: {{url: 'redis://:{SECRET}@cache.example:0/0'}}"
    )
    result = run_cli(tmp_path, yaml_text, "check")
    assert_refused(
        result,
        "celery.worker_concurrency = 0",
        "invalid crontab '61 * * * *'",
        "web.port = 70000",
        "redis.url = 'redis://:***@cache.example:0/0'",
    )
    assert len(result.stderr.strip().splitlines()) == 5


def test_a_valid_config_of_the_same_shape_is_accepted(tmp_path):
    """The harness tells good from bad: close neighbours of the bad cases load (exit 0)."""
    yaml_text = (
        "schedule: {clear_old_redis_iam_cache: {crontab: '59 23 29 2 *'}}\n"
        "celery: {visibility_timeout: 1261, tasks: {cache_iam_resources_for_account: "
        "{soft_time_limit: 959}}}\n"
        "beat: {lock_timeout: 60, max_loop_interval: 30}\n"
        f"redis: {{url: 'redis://:{SECRET}@cache.example:65535/15'}}"
    )
    result = run_cli(tmp_path, yaml_text, "config")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    # The checks of the worker pass too; it is stopped before it connects by an unreachable
    # broker being none of this test's business, so only the Celery app is built here.
    check = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from inventory.settings import load_settings; "
            "from inventory.celery_app import create_app; "
            "create_app(load_settings([sys.argv[1]], {}))",
            str(tmp_path / "inventory.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert check.returncode == 0, check.stderr
