"""URL passwords are masked whatever they contain, in errors, logs and `inventory config`."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from inventory.cli import main
from inventory.observability import RedactingFilter, secret_values
from inventory.redaction import mask_url, mask_url_passwords, secret_forms, url_password
from inventory.settings import ConfigError, load_settings
from tests.servers import free_port

# Passwords as an operator might write them, raw or percent-escaped.
PASSWORDS = [
    "Qz1Kx2Jw3",
    "Qz1@Kx2@Jw3",
    "Qz1:Kx2:Jw3",
    "Qz1/Kx2/Jw3",
    "Qz1%40Kx2%2FJw3",
    "Qz1#Kx2#Jw3",
    "Qz1 Kx2 Jw3",
    "@:/#%40 Qz1Kx2",
]


def fragments(password: str) -> list[str]:
    """The runs of 3+ ordinary characters in a password: none of them may appear."""
    out, run = [], ""
    for char in password + " ":
        if char.isalnum():
            run += char
        else:
            if len(run) >= 3:
                out.append(run)
            run = ""
    return out


@pytest.mark.parametrize("password", PASSWORDS)
def test_a_whole_url_is_masked_whatever_its_password_holds(password):
    url = f"redis://admin:{password}@cache.example:6379/0"
    assert mask_url(url) == "redis://admin:***@cache.example:6379/0"
    assert url_password(url) == password


@pytest.mark.parametrize("password", [p for p in PASSWORDS if " " not in p])
def test_urls_in_a_log_line_are_masked_whatever_their_password_holds(password):
    line = (
        f"connecting to rediss://:{password}@cache:6379/0 and "
        f"amqp://guest:{password}@mq/vhost, mail bob@example.com"
    )
    assert mask_url_passwords(line) == (
        "connecting to rediss://:***@cache:6379/0 and amqp://guest:***@mq/vhost, "
        "mail bob@example.com"
    )


def test_urls_without_a_password_and_other_text_are_left_alone():
    text = "see https://example.com:8443/a/b?x=1 and redis://cache:6379/0 and user@host: ok"
    assert mask_url_passwords(text) == text
    for url in ("https://example.com/a:b@c", "redis://user@cache/0", "redis://:@cache/0", "x"):
        assert mask_url(url) == url
        assert url_password(url) is None


def test_two_urls_written_together_each_lose_their_password():
    text = "brokers=redis://:one1@h1:6379/0;redis://:two2@h2:6379/0"
    assert mask_url_passwords(text) == "brokers=redis://:***@h1:6379/0;redis://:***@h2:6379/0"


@pytest.mark.parametrize("password", PASSWORDS)
def test_the_redacting_filter_hides_every_configured_password(password):
    redactor = RedactingFilter(secret_forms(f"redis://:{password}@cache:6379/2"))
    record = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "cannot reach %s (sent %r)",
        (f"redis://:{password}@cache:6379/2", password), None,
    )  # fmt: skip
    redactor.filter(record)
    message = record.getMessage()
    assert message.startswith("cannot reach redis://:***@cache:6379/2 (sent ")
    for fragment in fragments(password):
        assert fragment not in message, message


def test_secret_values_hold_every_configured_url_password_and_secret():
    settings = load_settings(
        paths=[],
        environ={
            "INVENTORY_CELERY__BROKER_URL": "redis://:broker%40pw@mq:6379/0",
            "INVENTORY_CELERY__RESULT_BACKEND": "redis://:backend-pw@mq:6379/1",
            "INVENTORY_REDIS__URL": "redis://:cache@pw@cache:6379/2",
            "INVENTORY_BEAT__REDIS_URL": "redis://:beat:pw@beat:6379/3",
            "INVENTORY_AWS__ENDPOINT_URL": "http://key:aws-pw@aws:5000",
            "INVENTORY_DYNAMODB__ENDPOINT_URL": "http://key:ddb-pw@ddb:8000",
            "INVENTORY_SENTRY__DSN": "https://public@sentry.example/1",
            "INVENTORY_AWS__EXTERNAL_ID": "external-id",
            "INVENTORY_WEB__COOKIE_SECRET": "cookie-secret",
        },
    )
    assert set(secret_values(settings)) == {
        "broker%40pw",
        "broker@pw",
        "backend-pw",
        "cache@pw",
        "beat:pw",
        "aws-pw",
        "ddb-pw",
        "https://public@sentry.example/1",
        "external-id",
        "cookie-secret",
    }


def test_secret_forms_hold_the_password_as_written_and_decoded():
    assert secret_forms("redis://:pa%40ss%2Fw0rd@cache/0") == ["pa%40ss%2Fw0rd", "pa@ss/w0rd"]
    assert secret_forms("redis://:plain@cache/0") == ["plain"]
    assert secret_forms("redis://cache/0") == []
    assert secret_forms(None) == []


# 100 KB inputs shaped to make a backtracking pattern retry from every position.
HOSTILE = {
    "letters": "a" * 100_000,
    "schemes": "redis://" * 12_500,
    "markers": "://" * 33_334,
    "colons-no-at": "redis://u:" + ":" * 100_000,
    "ats-no-colon": "redis://" + "@" * 100_000,
    "long-password": "redis://u:" + "p" * 100_000 + "@host/0",
    "scheme-and-user": "x://" + "a:" * 50_000,
    "no-whitespace-urls": "a://b:c@" * 12_500,
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_masking_100_kb_of_hostile_text_takes_linear_time(name):
    text = HOSTILE[name]
    started = time.perf_counter()
    mask_url_passwords(text)
    mask_url(text)
    elapsed = time.perf_counter() - started
    # Linear: under 0.1 s on an idle machine. The old pattern took 47 s on the first input
    # (quadratic): 2 s tells the two apart even on a busy 2-core machine.
    assert elapsed < 2.0, f"{name}: {elapsed:.2f}s"


def test_masking_a_long_url_keeps_what_is_not_the_password():
    assert mask_url_passwords(HOSTILE["long-password"]) == "redis://u:***@host/0"
    assert mask_url_passwords(HOSTILE["no-whitespace-urls"]) == "a://b:***@" * 12_500


# --- the command line ---------------------------------------------------------------------


@pytest.mark.parametrize("password", PASSWORDS)
def test_cli_config_never_prints_a_url_password(tmp_path: Path, password):
    config = tmp_path / "inventory.yaml"
    config.write_text(
        "celery:\n"
        f"  broker_url: {json.dumps(f'redis://:{password}@broker:6379/0')}\n"
        f"  result_backend: {json.dumps(f'redis://inv:{password}@backend:6379/1')}\n"
        f"redis: {{url: {json.dumps(f'rediss://:{password}@cache:6380/2')}}}\n"
    )
    result = CliRunner().invoke(main, ["--config", str(config), "config"])
    output = result.stdout + result.stderr
    for fragment in fragments(password):
        assert fragment not in output, output
    try:
        load_settings([config], {})
    except ConfigError:
        assert result.exit_code == 2  # '/' or '#' end the host part: the URL is refused
        assert "redis://:***@" in result.stderr or "redis://inv:***@" in result.stderr
        return
    assert result.exit_code == 0, output
    printed = json.loads(result.stdout)
    assert printed["celery"]["broker_url"] == "redis://:***@broker:6379/0"
    assert printed["celery"]["result_backend"] == "redis://inv:***@backend:6379/1"
    assert printed["redis"]["url"] == "rediss://:***@cache:6380/2"


def test_cli_check_masks_a_password_that_a_client_error_quotes(tmp_path: Path):
    """botocore names the endpoint URL, credentials and all, when it cannot connect."""
    closed = free_port()
    env = {
        **os.environ,
        "INVENTORY_CONFIG": "",
        "INVENTORY_AWS__ENDPOINT_URL": f"http://key:Qz1%40Kx2@127.0.0.1:{closed}/",
        "INVENTORY_AWS__MAX_ATTEMPTS": "1",
        "INVENTORY_REDIS__URL": f"redis://:Qz1@Kx2@127.0.0.1:{closed}/2",
        "INVENTORY_CELERY__BROKER_URL": f"redis://:Qz1@Kx2@127.0.0.1:{closed}/0",
        "COLUMNS": "300",  # one table row per line: a wrapped password could hide from the test
    }
    result = subprocess.run(
        [sys.executable, "-m", "inventory.cli", "check"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert f'endpoint URL: "http://key:***@127.0.0.1:{closed}/"' in result.stdout
    for fragment in ("Qz1", "Kx2"):
        assert fragment not in result.stdout + result.stderr
