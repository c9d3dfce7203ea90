"""Worker customisation: count messages the worker refuses (unsigned, tampered, undecodable)."""

from __future__ import annotations

import logging
from typing import Any

from celery.worker.consumer import Consumer

log = logging.getLogger(__name__)


class InventoryConsumer(Consumer):
    """Celery's consumer, counting refused messages in Redis before rejecting them."""

    def _count(self, reason: str) -> None:
        runtime = getattr(self.app, "runtime", None)
        if runtime is None:
            return
        try:
            runtime.messages.refused(reason)
        except Exception:  # noqa: BLE001 - counting must not stop the rejection
            log.exception("could not count a refused message")

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        self._count(type(exc).__name__)
        super().on_decode_error(message, exc)

    def on_invalid_task(self, body: Any, message: Any, exc: Exception) -> None:
        """Unsigned, badly signed or undecodable task messages end here (then are rejected)."""
        self._count(type(exc).__name__)
        super().on_invalid_task(body, message, exc)

    def on_unknown_task(self, body: Any, message: Any, exc: Exception) -> None:
        self._count("UnknownTask")
        super().on_unknown_task(body, message, exc)
