"""``create_app(settings)``: the Celery app with safe delivery, queues and the beat schedule.

``celery -A inventory.celery_app:app`` also works: ``app`` is built on first access from
``INVENTORY_CONFIG`` and the environment, never at import.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from kombu import Queue

from inventory.runtime import Runtime
from inventory.schedule import beat_schedule
from inventory.settings import Settings, load_settings

FANOUT = "fanout"
AWS = "aws"
MAINTENANCE = "maintenance"
METRICS = "metrics"
QUEUES = (FANOUT, AWS, MAINTENANCE, METRICS)

TASK_ROUTES = {
    "inventory.*_across_accounts": {"queue": FANOUT},
    "inventory.*_for_account": {"queue": AWS},
    "inventory.clear_old_redis_iam_cache": {"queue": MAINTENANCE},
    "inventory.cache_cloud_account_mapping": {"queue": MAINTENANCE},
    "inventory.cache_policies_table_details": {"queue": MAINTENANCE},
    "inventory.cache_policy_requests": {"queue": MAINTENANCE},
    "inventory.cache_credential_authorization_mapping": {"queue": MAINTENANCE},
    "inventory.get_iam_role_limit": {"queue": AWS},
    "inventory.cache_cloudtrail_errors_by_arn": {"queue": AWS},
    "inventory.report_celery_last_success_metrics": {"queue": METRICS},
}


class InventoryCelery(Celery):
    """A Celery app that carries the process's :class:`Runtime`."""

    runtime: Runtime


def celery_config(settings: Settings) -> dict[str, Any]:
    c = settings.celery
    return {
        "broker_url": c.broker_url,
        "result_backend": c.result_backend,
        "result_expires": 24 * 3600,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_concurrency": c.worker_concurrency,
        "broker_connection_retry_on_startup": True,
        "task_default_queue": AWS,
        "task_queues": [Queue(q) for q in QUEUES],
        "task_routes": TASK_ROUTES,
        "task_track_started": True,
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        # A message not acked within this is redelivered: keep it above the longest time limit.
        "broker_transport_options": {"visibility_timeout": 2 * 3600},
        "result_backend_transport_options": {"retry_policy": {"timeout": 5.0}},
        "beat_schedule": beat_schedule(settings),
        "timezone": "UTC",
        "enable_utc": True,
    }


def create_app(settings: Settings | None = None) -> InventoryCelery:
    """Build the Celery app from settings and register every task."""
    settings = settings or load_settings()
    app = InventoryCelery("inventory", set_as_current=True)
    app.conf.update(celery_config(settings))
    app.runtime = Runtime(settings)
    import inventory.tasks  # noqa: F401 - registers the shared tasks on this app

    return app


_app: InventoryCelery | None = None


def __getattr__(name: str) -> Any:
    """``inventory.celery_app.app``, built lazily for ``celery -A``."""
    global _app
    if name == "app":
        if _app is None:
            _app = create_app()
        return _app
    raise AttributeError(name)
