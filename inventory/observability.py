"""Logs (text or JSON, with task, task id, account and region on every line) and Sentry."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from inventory.redaction import mask_url_passwords, secret_forms
from inventory.settings import Settings

_T = TypeVar("_T")

#: The region a task is working on (set by the sync loops).
current_region: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "inventory_region", default=None
)
#: The task a helper thread works for (Celery's current task is the task's own thread's).
carried_task: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "inventory_carried_task", default=None
)
CONTEXT_FIELDS = ("task", "task_id", "account_id", "region")


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


def carry_context(fn: Callable[..., _T]) -> Callable[..., _T]:
    """``fn`` to run in another thread with this one's task (and region) on its log lines."""
    task = _task_context() or carried_task.get()
    context = contextvars.copy_context()

    def run(*args: Any) -> _T:
        def inner() -> _T:
            carried_task.set(task)
            return fn(*args)

        return context.copy().run(inner)

    return run


class ContextFilter(logging.Filter):
    """Adds task, task_id, account_id and region to every record (None outside a task)."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _task_context() or carried_task.get() or {}
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
        text = mask_url_passwords(text)
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


#: Libraries whose INFO lines would drown ours; kept at WARNING or above.
NOISY_LOGGERS = ("botocore", "urllib3", "boto3", "pynamodb")
TEXT_FORMAT = (
    "%(asctime)s %(levelname)s %(name)s [task=%(task)s id=%(task_id)s account=%(account_id)s "
    "region=%(region)s] %(message)s"
)


def secret_values(settings: Settings) -> list[str]:
    """Every secret the settings hold, so no log line can carry one."""
    values = [
        secret.get_secret_value()
        for secret in (settings.sentry.dsn, settings.aws.external_id, settings.web.cookie_secret)
        if secret is not None
    ]
    for url in (
        settings.celery.broker_url,
        settings.celery.result_backend,
        settings.redis.url,
        settings.beat_redis_url,
        settings.aws.endpoint_url,
        settings.dynamodb.endpoint_url,
    ):
        # As written and percent-decoded: a client library may log either form.
        values.extend(secret_forms(url))
    return values


def setup_logging(settings: Settings, stream: Any = None) -> logging.Handler:
    """Make the root logger write through one handler with our format, context and masking.

    Workers and beat get here from Celery's ``setup_logging`` signal (inventory/celery_signals.py)
    however they were started; ``web`` and ``metrics`` call it directly.
    """
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
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    return handler


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
