"""``create_app(settings)``: the Celery app with safe delivery, queues and the beat schedule.

``celery -A inventory.celery_app:app`` also works: ``app`` is built on first access from
``INVENTORY_CONFIG`` and the environment, never at import.
"""

from __future__ import annotations

import ssl
from typing import Any

from celery import Celery
from celery.loaders.app import AppLoader
from kombu import Exchange, Queue

from inventory.brokers import has_visibility_timeout, sends_events, transport_options
from inventory.runtime import Runtime
from inventory.schedule import CONSOLEME_ALIASES, beat_schedule
from inventory.settings import ConfigError, Settings, load_settings
from inventory.signing import SigningAMQP, secure_worker, signer

# The queues; each task declares its own (``routing_queue=`` in its decorator).
from inventory.tasks.base import AWS, FANOUT, MAINTENANCE, METRICS, QUEUES

__all__ = ["AWS", "FANOUT", "MAINTENANCE", "METRICS", "QUEUES", "create_app"]


class InventoryLoader(AppLoader):
    """Celery's loader, securing a worker process as it starts (however it was started)."""

    def on_worker_init(self) -> None:
        secure_worker(self.app)


class InventoryCelery(Celery):
    """A Celery app that carries the process's :class:`Runtime`."""

    runtime: Runtime


def _tls(url: str | None, settings: Settings) -> dict[str, Any] | None:
    """SSL options for a rediss:// URL: the server certificate is always verified."""
    if not url or not url.startswith("rediss://"):
        return None
    tls = settings.celery.tls
    options: dict[str, Any] = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    if tls.ca_certs:
        options["ssl_ca_certs"] = tls.ca_certs
    if tls.certfile:
        options["ssl_certfile"] = tls.certfile
    if tls.keyfile:
        options["ssl_keyfile"] = tls.keyfile
    return options


def celery_config(settings: Settings) -> dict[str, Any]:
    c = settings.celery
    config = {
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
        # Each queue its own direct exchange and key: a bare Queue(q) binds every queue to the
        # default exchange ("aws") with key "aws", so one message published there reached all four.
        "task_queues": [Queue(q, Exchange(q, type="direct"), routing_key=q) for q in QUEUES],
        "task_track_started": True,
        "worker_send_task_events": sends_events(settings),
        "task_send_sent_event": sends_events(settings),
        # Redis and SQS redeliver a message not acked within visibility_timeout:
        # check_delivery_safety keeps it above the longest hard time limit plus retry delay.
        "broker_transport_options": transport_options(settings),
        "result_backend_transport_options": {"retry_policy": {"timeout": 5.0}},
        "task_annotations": {
            f"inventory.{name}": options.model_dump(exclude_none=True)
            for name, options in c.tasks.items()
        },
        "worker_consumer": "inventory.worker:InventoryConsumer",
        "worker_hijack_root_logger": False,
        "beat_schedule": beat_schedule(settings),
        "beat_scheduler": "inventory.beat:InventoryScheduler",
        "beat_max_loop_interval": settings.beat.max_loop_interval,
        "redbeat_redis_url": settings.beat_redis_url,
        "redbeat_key_prefix": settings.beat.key_prefix,
        "redbeat_lock_timeout": int(settings.beat.lock_timeout),
        "timezone": settings.beat.timezone,
        "enable_utc": True,
    }
    broker_tls = _tls(c.broker_url, settings)
    if broker_tls:
        config["broker_use_ssl"] = broker_tls
    backend_tls = _tls(c.result_backend, settings)
    if backend_tls:
        config["redis_backend_use_ssl"] = backend_tls
    beat_tls = _tls(settings.beat_redis_url, settings)
    if beat_tls:
        config["redbeat_redis_options"] = {"ssl": True, **beat_tls}
    if c.signing.enabled:
        config.update(
            task_serializer="auth",
            accept_content=["auth"],
            result_accept_content=["json"],
            security_key=c.signing.key,
            security_certificate=c.signing.certificate,
            security_cert_store=c.signing.cert_store,
            security_digest=c.signing.digest,
        )
    return config


def _hard_limit(settings: Settings, name: str, task: Any) -> float:
    """A task's hard time limit, as configured or as declared (a ConsoleMe name: its current
    task's, whose settings it takes)."""
    short = name.removeprefix("inventory.")
    options = settings.celery.tasks.get(CONSOLEME_ALIASES.get(short, short))
    configured = options.time_limit if options is not None else None
    return float(configured or task.time_limit or 0)


def _limit_problems(app: Celery, settings: Settings) -> list[str]:
    """Tasks whose soft time limit would not come before their hard one."""
    problems = []
    for name, options in settings.celery.tasks.items():
        task = app.tasks.get(f"inventory.{name}")
        soft = options.soft_time_limit or (task.soft_time_limit if task else None)
        hard = options.time_limit or (task.time_limit if task else None)
        if soft and hard and soft >= hard:
            problems.append(
                f"celery.tasks.{name}: soft_time_limit ({soft}s) must be below time_limit "
                f"({hard}s) so the task can clean up before it is killed"
            )
    return problems


def check_delivery_safety(app: Celery, settings: Settings) -> None:
    """Refuse settings under which a message could be delivered twice or a beat lock lapse."""
    problems = []
    ours = [(n, t) for n, t in app.tasks.items() if n.startswith("inventory.")]
    longest = max((_hard_limit(settings, n, t) for n, t in ours), default=0.0)
    needed = longest + settings.celery.retry_backoff_max
    if has_visibility_timeout(settings) and settings.celery.visibility_timeout <= needed:
        problems.append(
            f"celery.visibility_timeout ({settings.celery.visibility_timeout}s) must exceed the "
            f"longest hard time limit plus celery.retry_backoff_max ({longest:g}s + "
            f"{settings.celery.retry_backoff_max:g}s = {needed:g}s), or a running or delayed "
            f"task is delivered twice: raise visibility_timeout above {needed:g} or lower "
            "the time limits"
        )
    problems += _limit_problems(app, settings)
    if problems:
        raise ConfigError("unsafe Celery settings:\n  " + "\n  ".join(problems))


def create_app(settings: Settings | None = None) -> InventoryCelery:
    """Build the Celery app from settings and register every task."""
    settings = settings or load_settings()
    # Not the process's current app: a worker or beat makes its app current when it starts,
    # and tasks send through their own app, so building one changes nothing process-wide.
    app = InventoryCelery(
        "inventory", set_as_current=False, amqp=SigningAMQP, loader=InventoryLoader
    )
    app.conf.update(celery_config(settings))
    app.runtime = Runtime(settings)
    if settings.health.heartbeat_path:
        from inventory.liveness import ConsumerHeartbeat

        app.steps["consumer"].add(ConsumerHeartbeat)
    import inventory.tasks  # noqa: F401 - registers the shared tasks on this app

    app.finalize(auto=True)
    # Sent by name too (beat, the web tier, send_task): each message goes to its task's queue.
    app.conf.task_routes = {
        name: {"queue": task.routing_queue}
        for name, task in app.tasks.items()
        if getattr(task, "routing_queue", None)
    }
    check_delivery_safety(app, settings)
    if settings.celery.signing.enabled:
        app.amqp.signer = signer(settings)
        app.amqp.max_age = settings.celery.signing.max_message_age
    return app


_app: InventoryCelery | None = None


def __getattr__(name: str) -> Any:
    """``inventory.celery_app.app``, built lazily for ``celery -A``."""
    global _app
    if name == "app":
        if _app is None:
            from inventory import celery_signals

            _app = create_app()
            # The process exists to run this app (`celery -A`): it is the current one, and its
            # worker or beat gets the set-up `inventory worker` gets.
            _app.set_current()
            celery_signals.connect()
        return _app
    raise AttributeError(name)
