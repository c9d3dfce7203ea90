"""Process-global state a test must leave as it found it, and a check that it did.

Tests run in random order and beside each other in one process: a test that disables a kombu
serializer, connects a Celery signal receiver, changes an environment variable or replaces a
logging handler changes what every later test sees. ``snapshot()`` reads that state; the autouse
fixture in conftest compares it after each test and fails the test that changed it, naming what
changed (then puts it back, so one leak is reported once and does not fail the tests after it).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from celery import signals
from celery.utils.dispatch import Signal
from kombu.serialization import registry


@dataclass
class Global:
    """One piece of process-global state: how to read it and how to put a reading back."""

    read: Callable[[], Any]
    restore: Callable[[Any], None]


def _signals() -> dict[str, Signal]:
    return {name: s for name, s in vars(signals).items() if isinstance(s, Signal)}


def _read_receivers() -> dict[str, tuple[Any, ...]]:
    return {name: tuple(s.receivers) for name, s in _signals().items()}


def _restore_receivers(value: dict[str, tuple[Any, ...]]) -> None:
    for name, s in _signals().items():
        s.receivers[:] = list(value[name])
        s.sender_receivers_cache.clear()


def _read_registry() -> dict[str, Any]:
    return {
        "encoders": dict(registry._encoders),
        "decoders": dict(registry._decoders),
        "disabled": set(registry._disabled_content_types),
        "default": (
            registry._default_encode,
            registry._default_content_type,
            registry._default_content_encoding,
        ),
        "type_to_name": dict(registry.type_to_name),
        "name_to_type": dict(registry.name_to_type),
    }


def _restore_registry(value: dict[str, Any]) -> None:
    registry._encoders = dict(value["encoders"])
    registry._decoders = dict(value["decoders"])
    registry._disabled_content_types = set(value["disabled"])
    (
        registry._default_encode,
        registry._default_content_type,
        registry._default_content_encoding,
    ) = value["default"]
    registry.type_to_name = dict(value["type_to_name"])
    registry.name_to_type = dict(value["name_to_type"])


#: Set and cleared by pytest itself around each test phase.
_PYTEST_VARIABLES = frozenset({"PYTEST_CURRENT_TEST"})


def _read_environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _PYTEST_VARIABLES}


def _restore_environ(value: dict[str, str]) -> None:
    for name in [n for n in os.environ if n not in _PYTEST_VARIABLES and n not in value]:
        del os.environ[name]
    os.environ.update(value)


def _loggers() -> dict[str, logging.Logger]:
    named = {
        name: logger
        for name, logger in logging.root.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    return {"": logging.getLogger(), **named}


_DEFAULT_LOGGER = (logging.NOTSET, (), True, False)


def _read_logging() -> dict[str, Any]:
    # Levels and handlers of every logger, and the global disable level. A logger first created
    # during a test (a module imported late) is not a change while it keeps the defaults.
    # Celery and kombu give each logger a NullHandler when their modules first import.
    states = {
        name: (
            logger.level,
            tuple(h for h in logger.handlers if type(h) is not logging.NullHandler),
            logger.propagate,
            logger.disabled,
        )
        for name, logger in _loggers().items()
    }
    return {
        "disable": logging.root.manager.disable,
        "loggers": {n: s for n, s in states.items() if n == "" or s != _DEFAULT_LOGGER},
    }


def _restore_logging(value: dict[str, Any]) -> None:
    logging.disable(value["disable"])
    for name, logger in _loggers().items():
        level, handlers, propagate, disabled = value["loggers"].get(name, _DEFAULT_LOGGER)
        logger.setLevel(level)
        nulls = [h for h in logger.handlers if type(h) is logging.NullHandler]
        logger.handlers[:] = [*nulls, *handlers]
        logger.propagate, logger.disabled = propagate, disabled


def _read_current_app() -> Any:
    from celery import _state

    return _state.default_app, getattr(_state._tls, "current_app", None)


def _restore_current_app(value: Any) -> None:
    from celery import _state

    _state.default_app, _state._tls.current_app = value


GLOBALS: dict[str, Global] = {
    "kombu serializer registry": Global(_read_registry, _restore_registry),
    "Celery signal receivers": Global(_read_receivers, _restore_receivers),
    "os.environ": Global(_read_environ, _restore_environ),
    "logging configuration": Global(_read_logging, _restore_logging),
    "Celery current/default app": Global(_read_current_app, _restore_current_app),
}


def snapshot() -> dict[str, Any]:
    return {name: g.read() for name, g in GLOBALS.items()}


def _changed_keys(before: Any, after: Any) -> list[str]:
    """Paths of what differs, one level into nested dicts (``loggers.botocore``)."""
    if not (isinstance(before, dict) and isinstance(after, dict)):
        return []
    found = []
    for key in sorted(before.keys() | after.keys(), key=str):
        old, new = before.get(key), after.get(key)
        if old != new:
            inner = _changed_keys(old, new)
            found += [f"{key}.{k}" for k in inner] if inner else [str(key)]
    return found


def _describe(name: str, before: Any, after: Any) -> str:
    keys = _changed_keys(before, after)
    if not keys:
        return f"{name} changed"
    shown = ", ".join(keys[:8]) + (" ..." if len(keys) > 8 else "")
    return f"{name} changed ({shown})"


def leaks(before: dict[str, Any]) -> list[str]:
    """What differs from ``before``; each difference is put back as it was."""
    found = []
    for name, g in GLOBALS.items():
        after = g.read()
        if after != before[name]:
            found.append(_describe(name, before[name], after))
            g.restore(before[name])
    return found
