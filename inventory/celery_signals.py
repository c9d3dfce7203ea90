"""Celery signal receivers that give workers and beat our logs, masking, task context and Sentry.

``inventory worker`` and ``celery -A inventory.celery_app worker`` (and the same for beat) both
call :func:`connect`; Celery then sends the signals at the same points of start-up either way.
Each receiver acts only for an :class:`InventoryCelery` app: another app in the same process
is configured exactly as Celery would configure it without these receivers.
"""

from __future__ import annotations

import gc
import logging
from typing import Any

from celery import Celery, current_app, signals

from inventory.celery_app import InventoryCelery
from inventory.observability import init_sentry, setup_logging

log = logging.getLogger(__name__)


def _ours(app: Celery | None) -> InventoryCelery | None:
    return app if isinstance(app, InventoryCelery) else None


def on_setup_logging(
    loglevel: Any = None, logfile: Any = None, format: Any = None, colorize: Any = None, **_: Any
) -> None:
    """Our handler (JSON or text, context, masking) on the root logger, instead of Celery's."""
    app = current_app._get_current_object()  # the app whose worker or beat is starting
    ours = _ours(app)
    if ours is not None:
        setup_logging(ours.runtime.settings)
        return
    # Any receiver of setup_logging stops Celery configuring logs, so for an app that is not
    # ours run Celery's own set-up once more, with this receiver out of the way.
    signals.setup_logging.disconnect(dispatch_uid=_uid(on_setup_logging))
    try:
        app.log.already_setup = False
        app.log.setup_logging_subsystem(
            loglevel=loglevel, logfile=logfile, format=format, colorize=colorize
        )
    finally:
        _connect(signals.setup_logging, on_setup_logging)


def on_celeryd_init(instance: Any = None, **_: Any) -> None:
    """A worker's first moment: our logs already, so even its start-up warnings are JSON."""
    ours = _ours(getattr(instance, "app", None))
    if ours is not None:
        setup_logging(ours.runtime.settings)
        # Celery warns (e.g. about running as root) before it sets up logging; as records,
        # the warnings get our format instead of a bare multi-line text on stderr.
        logging.captureWarnings(True)


def on_worker_init(sender: Any = None, **_: Any) -> None:
    """A worker's main process: Sentry, and one line saying where it reads and writes."""
    ours = _ours(getattr(sender, "app", None))
    if ours is not None:
        _started(ours, "worker")


def freeze_start_up_heap() -> None:
    """Keep what start-up made (modules, the app, settings, botocore's models) out of the cyclic
    garbage collector's reach: a sync allocates hundreds of thousands of short-lived objects,
    and every older-generation collection they trigger would walk the whole heap again (a
    third of the collector's time in a 2,000-role first sync; bench/README.md)."""
    gc.collect()
    gc.freeze()


def on_worker_process_init(**_: Any) -> None:
    """A pool process: Sentry if it is a fresh interpreter (a forked one inherits the client),
    and its start-up heap frozen."""
    ours = _ours(current_app._get_current_object())
    if ours is not None:
        import sentry_sdk

        if not sentry_sdk.get_client().is_active():
            init_sentry(ours.runtime.settings, "worker")
        freeze_start_up_heap()


def on_beat_init(sender: Any = None, **_: Any) -> None:
    """Beat: Sentry (with cron monitoring of beat tasks), and where it keeps its schedule."""
    ours = _ours(getattr(sender, "app", None))
    if ours is not None:
        _started(ours, "beat")


def _started(app: InventoryCelery, component: str) -> None:
    settings = app.runtime.settings
    init_sentry(settings, component)
    # The URLs are logged as configured: the handler's RedactingFilter masks their passwords,
    # as it does on every line, so this line also proves the masking is in place.
    log.info(
        "inventory %s started: broker %s, result backend %s, cache %s, beat store %s",
        component,
        settings.celery.broker_url,
        settings.celery.result_backend,
        settings.redis.url,
        settings.beat_redis_url,
    )


RECEIVERS = (
    (signals.celeryd_init, on_celeryd_init),
    (signals.setup_logging, on_setup_logging),
    (signals.worker_init, on_worker_init),
    (signals.worker_process_init, on_worker_process_init),
    (signals.beat_init, on_beat_init),
)


def _uid(receiver: Any) -> str:
    return f"inventory.celery_signals.{receiver.__name__}"


def _connect(signal: Any, receiver: Any) -> None:
    signal.connect(receiver, weak=False, dispatch_uid=_uid(receiver))


def connect() -> None:
    """Connect every receiver; connecting again changes nothing (one dispatch_uid each)."""
    for signal, receiver in RECEIVERS:
        _connect(signal, receiver)


def disconnect() -> None:
    """Remove every receiver :func:`connect` added."""
    for signal, receiver in RECEIVERS:
        signal.disconnect(dispatch_uid=_uid(receiver))
