"""Logs, Sentry and the schedule documentation, checked on real processes where it matters."""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from inventory.celery_app import create_app
from inventory.cli import main
from inventory.demo.seed import Seeder, demo_account
from inventory.observability import RedactingFilter, setup_logging
from inventory.schedule import UnregisteredTask, render_schedule_docs
from inventory.settings import load_settings
from inventory.tasks.accounts import store_account_mapping

ROOT = Path(__file__).resolve().parent.parent


def test_schedule_docs_are_up_to_date():
    settings = load_settings(paths=[], environ={})
    committed = (ROOT / "docs" / "schedule.md").read_text()
    assert committed == render_schedule_docs(create_app(settings), settings), (
        "run: inventory schedule docs -o docs/schedule.md"
    )


def test_schedule_docs_refuse_an_entry_without_a_registered_task(monkeypatch, tmp_path):
    settings = load_settings(paths=[], environ={})
    app = create_app(settings)
    app.tasks.pop("inventory.get_iam_role_limit")
    with pytest.raises(UnregisteredTask, match="get_iam_role_limit"):
        render_schedule_docs(app, settings)

    import inventory.schedule as schedule

    bogus = schedule.ScheduleEntry("ghost", "inventory.ghost", 60.0)
    monkeypatch.setattr(schedule, "SCHEDULE", (*schedule.SCHEDULE, bogus))
    result = CliRunner().invoke(main, ["schedule", "docs"], env={"INVENTORY_CONFIG": ""})
    assert result.exit_code == 1
    assert "schedule entry 'ghost' names 'inventory.ghost'" in result.output


def test_schedule_docs_check_flags_a_stale_file(tmp_path):
    stale = tmp_path / "schedule.md"
    stale.write_text("old\n")
    runner = CliRunner()
    assert runner.invoke(main, ["schedule", "docs", "--check", "-o", str(stale)]).exit_code == 1
    assert runner.invoke(main, ["schedule", "docs", "-o", str(stale)]).exit_code == 0
    assert runner.invoke(main, ["schedule", "docs", "--check", "-o", str(stale)]).exit_code == 0


def test_redaction_masks_url_passwords_and_configured_secrets():
    redactor = RedactingFilter(["dsn-secret-value-123"])
    record = logging.LogRecord(
        "x",
        logging.INFO,
        __file__,
        1,
        "broker %s dsn %s",
        ("rediss://:hunter2@cache:6379/0", "https://dsn-secret-value-123@s.io/1"),
        None,
    )
    redactor.filter(record)
    assert record.getMessage() == "broker rediss://:***@cache:6379/0 dsn https://***@s.io/1"


@pytest.fixture
def restore_logging():
    """Put back the root handlers and the levels setup_logging changes."""
    from inventory.observability import NOISY_LOGGERS

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    noisy = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    for name, noisy_level in noisy.items():
        logging.getLogger(name).setLevel(noisy_level)


def test_json_logs_carry_context_and_never_secrets(restore_logging):
    settings = load_settings(
        paths=[],
        environ={
            "INVENTORY_LOGGING__FORMAT": "json",
            "INVENTORY_AWS__EXTERNAL_ID": "ext-id-do-not-log",
        },
    )
    stream = io.StringIO()
    setup_logging(settings, stream)
    logging.getLogger("inventory.test").warning("assuming with %s", "ext-id-do-not-log")
    line = json.loads(stream.getvalue().strip())
    assert line["message"] == "assuming with ***"
    assert {k: line[k] for k in ("level", "logger", "task", "task_id", "account_id", "region")} == {
        "level": "WARNING",
        "logger": "inventory.test",
        "task": None,
        "task_id": None,
        "account_id": None,
        "region": None,
    }


@pytest.mark.slow
def test_worker_json_log_lines_name_task_id_account_and_region(
    env, runtime, moto_server, start_worker
):
    seeder = Seeder(moto_server.url)
    seeder.organisation()
    dev = seeder.create_account(demo_account("dev", 0))
    store_account_mapping(runtime)
    worker = start_worker(env | {"INVENTORY_LOGGING__FORMAT": "json"})

    result = worker.app.send_task("inventory.cache_sqs_queues_for_account", args=[dev.id])
    result.get(timeout=60)
    time.sleep(0.5)

    lines = [json.loads(x) for x in worker.log().splitlines() if x.startswith("{")]
    stored = [x for x in lines if x["message"].startswith("stored sqs_queue")]
    assert {x["region"] for x in stored} == {"us-east-1", "us-west-2"}
    assert {(x["task"], x["task_id"], x["account_id"]) for x in stored} == {
        ("inventory.cache_sqs_queues_for_account", result.id, dev.id)
    }


class Sink:
    """A local HTTP endpoint standing in for Sentry: it records every envelope posted to it."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if self.headers.get("Content-Encoding") == "gzip":
                    import gzip

                    body = gzip.decompress(body)
                sink.bodies.append(body)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def dsn(self) -> str:
        return f"http://publickey@127.0.0.1:{self.server.server_address[1]}/1"

    def text(self) -> str:
        return b"\n".join(self.bodies).decode(errors="replace")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.slow
def test_worker_reports_task_failures_to_sentry_only_with_a_dsn(env, runtime, start_worker):
    sink = Sink()
    try:
        failing = {"INVENTORY_CLOUDTRAIL__SOURCE": "tests.plugins.cloudtrail_source:broken"}
        quiet = start_worker(env | failing)
        quiet.app.send_task("inventory.cache_cloudtrail_errors_by_arn").get(
            timeout=60, propagate=False
        )
        quiet.stop()
        assert sink.bodies == []

        loud = start_worker(env | failing | {"INVENTORY_SENTRY__DSN": sink.dsn})
        loud.app.send_task("inventory.cache_cloudtrail_errors_by_arn").get(
            timeout=60, propagate=False
        )
        deadline = time.monotonic() + 30
        while "cloudtrail plugin exploded" not in sink.text() and time.monotonic() < deadline:
            time.sleep(0.2)
        text = sink.text()
        assert "cloudtrail plugin exploded" in text
        assert "RuntimeError" in text
        assert '"component":"worker"' in text.replace(" ", "")
    finally:
        sink.close()
