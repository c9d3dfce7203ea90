"""Logs (text or JSON, with task, task id, account and region on every line) and Sentry."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from inventory.settings import Settings

#: The region a task is working on (set by the sync loops).
current_region: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "inventory_region", default=None
)
CONTEXT_FIELDS = ("task", "task_id", "account_id", "region")
# The scheme starts only where a word does: tried at every letter of a long word, ``\w+``
# rescans the rest of it each time (60,000 characters took 7.5 s of the event loop).
_URL_PASSWORD = re.compile(r"(?<!\w)(?P<scheme>\w+://)(?P<user>[^:/@\s]*):(?P<password>[^@/\s]+)@")


@contextmanager
def region_context(region: str) -> Iterator[None]:
    token = current_region.set(region)
    try:
        yield
    finally:
        current_region.reset(token)


def _task_context() -> dict[str, Any]:
    from celery import current_task

    task = current_task
    if not task or not getattr(task, "request", None) or task.request.id is None:
        return {}
    request = task.request
    account = None
    if getattr(task, "per_account", False):
        account = (request.kwargs or {}).get("account_id") or (
            request.args[0] if request.args else None
        )
    return {"task": task.name, "task_id": request.id, "account_id": account}


class ContextFilter(logging.Filter):
    """Adds task, task_id, account_id and region to every record (None outside a task)."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _task_context()
        for name in CONTEXT_FIELDS:
            if not hasattr(record, name):
                setattr(record, name, context.get(name))
        if record.region is None:  # type: ignore[attr-defined]
            record.region = current_region.get()
        return True


class RedactingFilter(logging.Filter):
    """Masks passwords in URLs and every configured secret value in log messages."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        text = _URL_PASSWORD.sub(r"\g<scheme>\g<user>:***@", text)
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redact(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if redacted != message or record.args:
            record.msg, record.args = redacted, None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            payload[name] = getattr(record, name, None)
        if record.exc_info:
            payload["exception"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


TEXT_FORMAT = (
    "%(asctime)s %(levelname)s %(name)s [task=%(task)s id=%(task_id)s account=%(account_id)s "
    "region=%(region)s] %(message)s"
)


def secret_values(settings: Settings) -> list[str]:
    """Every secret the settings hold, so no log line can carry one."""
    values = []
    if settings.sentry.dsn:
        values.append(settings.sentry.dsn.get_secret_value())
    if settings.aws.external_id:
        values.append(settings.aws.external_id.get_secret_value())
    for url in (settings.celery.broker_url, settings.celery.result_backend, settings.redis.url):
        match = _URL_PASSWORD.search(url or "")
        if match:
            values.append(match.group("password"))
    return values


def setup_logging(settings: Settings, stream: Any = None) -> None:
    """Configure the root logger once for this process (Celery is told not to)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactingFilter(secret_values(settings)))
    if settings.logging.format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(settings.logging.level)
    for noisy in ("botocore", "urllib3", "boto3", "pynamodb"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    from celery import signals

    # Keep Celery from replacing this configuration in workers and beat.
    signals.setup_logging.connect(_keep_logging, weak=False, dispatch_uid="inventory-logging")


def _keep_logging(**kwargs: Any) -> None:
    """Connected to Celery's setup_logging: its presence stops Celery configuring logs."""


def init_sentry(settings: Settings, component: str) -> bool:
    """Initialise sentry-sdk when a DSN is configured; returns whether it was."""
    if settings.sentry.dsn is None:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.tornado import TornadoIntegration

    redactor = RedactingFilter(secret_values(settings))

    def scrub(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        return json.loads(redactor.redact(json.dumps(event, default=str)))

    sentry_sdk.init(
        dsn=settings.sentry.dsn.get_secret_value(),
        environment=settings.sentry.environment,
        traces_sample_rate=settings.sentry.traces_sample_rate,
        send_default_pii=False,
        integrations=[CeleryIntegration(monitor_beat_tasks=True), TornadoIntegration()],
        before_send=scrub,  # type: ignore[arg-type]
    )
    sentry_sdk.set_tag("component", component)
    return True
