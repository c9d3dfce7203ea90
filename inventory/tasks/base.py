"""The one base task: outcome bookkeeping per task and account, and retries for transient faults."""

from __future__ import annotations

import logging
import random
import time
from typing import Any

import redis
from celery import Task, states
from celery.exceptions import Reject

from inventory.aws.errors import error_code, is_retryable
from inventory.cache.store import PartitionResult
from inventory.metrics import FAILED, OK, RETRY
from inventory.runtime import Runtime
from inventory.signing import SEAL, SealError, check_seal

log = logging.getLogger(__name__)

#: The queues: beat-driven fan-outs, AWS calls, maintenance, metrics. Each task names its own
#: (``routing_queue=`` in its decorator): the one place its routing is declared.
FANOUT, AWS, MAINTENANCE, METRICS = "fanout", "aws", "maintenance", "metrics"
QUEUES = (FANOUT, AWS, MAINTENANCE, METRICS)
RETRY_BASE_SECONDS = 5.0
RETRY_CAP_SECONDS = 300.0
MAX_RETRIES = 5
# Fan-outs only read the account list and send messages.
FANOUT_SOFT_LIMIT, FANOUT_HARD_LIMIT = 60, 90
_REDIS_TRANSIENT = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)


def retry_countdown(
    retries: int, base: float = RETRY_BASE_SECONDS, cap: float = RETRY_CAP_SECONDS
) -> float:
    """Exponential backoff with full jitter, capped."""
    return random.uniform(0, min(cap, base * 2**retries))


def should_retry(exc: BaseException) -> bool:
    """Only throttling and transient faults (AWS, network, Redis) are retried."""
    declared = getattr(exc, "retryable", None)
    if isinstance(declared, bool):
        return declared
    return is_retryable(exc) or isinstance(exc, _REDIS_TRANSIENT)


def describe(exc: BaseException) -> str:
    code = error_code(exc)
    text = f"{type(exc).__name__}: {exc}"
    return f"{code}: {text}" if code else text


class InventoryTask(Task):
    """Acks late, time-limited, records outcomes, retries transient faults with backoff."""

    abstract = True
    acks_late = True
    reject_on_worker_lost = True
    soft_time_limit = 600
    time_limit = 660
    max_retries = MAX_RETRIES
    #: Per-account tasks take ``account_id`` as their first argument.
    per_account = False
    #: Tasks that call AWS (or prune what listings return) run only in ``active_region``.
    active_only = False
    #: Kinds such a task writes: elsewhere it follows them from the replicated tables instead.
    replicates: tuple[str, ...] = ()
    #: The queue its messages go to (QUEUES), declared with the task (``routing_queue=``);
    #: create_app routes by it (Celery's own ``queue`` attribute is deprecated).
    routing_queue: str | None = None

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.runtime  # type: ignore[attr-defined]
        return runtime

    def account_of(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
        if not self.per_account:
            return None
        return kwargs.get("account_id") or (args[0] if args else None)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        seal = self._unseal(kwargs)
        kwargs.pop(SEAL, None)
        try:
            result = self._call(*args, **kwargs)
        except Reject as rejected:
            if not rejected.requeue:
                self._mark_run(seal)
            raise
        except BaseException:
            self._mark_run(seal)  # failed for good, or its retry was sent as a new message
            raise
        self._mark_run(seal)
        return result

    def _unseal(self, kwargs: dict[str, Any]) -> dict[str, Any] | None:
        """With signing on, a delivered message runs only if its seal is valid and unused."""
        request = self.request
        if request.is_eager or request.called_directly:
            return None  # run in this process: no message was delivered
        if not self.runtime.settings.celery.signing.enabled:
            return None
        try:
            seal = check_seal(kwargs, self.name, self.request.id, time.time())
            if self.runtime.messages.already_run(seal["nonce"]):
                raise SealError("Replayed", f"{self.name} message {self.request.id} already ran")
        except SealError as exc:
            log.warning("refused a signed message: %s", exc)
            self.runtime.messages.refused(exc.reason)
            raise Reject(str(exc), requeue=False) from None
        return seal

    def _mark_run(self, seal: dict[str, Any] | None) -> None:
        if seal is not None:
            self.runtime.messages.mark_run(seal["nonce"], seal["expires"], time.time())

    def _call(self, *args: Any, **kwargs: Any) -> Any:
        account_id = self.account_of(args, kwargs)
        short = self.name.removeprefix("inventory.")
        # The one place a task decides by region: see inventory/replica.py.
        secondary = self.active_only and not self.runtime.settings.is_active_region
        if secondary:
            short = f"{short}.replica"
        try:
            if secondary:
                result = self.run_secondary(account_id)
            else:
                result = super().__call__(*args, **kwargs)
        except Exception as exc:
            retry = should_retry(exc) and self.request.retries < self.max_retries
            self._record(short, account_id, RETRY if retry else FAILED, describe(exc))
            if retry and not self.request.is_eager:
                log.warning("%s %s: transient failure, retrying: %s", short, account_id, exc)
                # Capped by celery.retry_backoff_max, which the visibility timeout is checked
                # against: a longer delay would have the broker deliver the message twice.
                c = self.runtime.settings.celery
                countdown = retry_countdown(
                    self.request.retries, base=c.retry_backoff_base, cap=c.retry_backoff_max
                )
                try:
                    raise self.retry(exc=exc, countdown=countdown) from exc
                except Reject as rejected:
                    # Celery drops the message when it cannot send the retry (the broker is
                    # down too): put it back instead. It runs again once the broker answers,
                    # or after the visibility timeout if even the requeue cannot reach it.
                    log.warning("%s %s: retry not sent, requeueing: %s", short, account_id, exc)
                    raise Reject(rejected.reason, requeue=True) from exc
            raise
        self._record(short, account_id, OK)
        return result

    # --- web refresh claims (issue 14): a run that has ended lets the web queue another ---
    def after_return(
        self,
        status: str,
        retval: Any,
        task_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        einfo: Any,
    ) -> None:
        """Free the web's refresh claim of a per-account run that ended (not one retried)."""
        if self.per_account and status in states.READY_STATES:
            claims = self.runtime.refresh_claims
            claims.release_quietly(self.name, self.account_of(args, kwargs), task_id)

    def run_secondary(self, account_id: str | None) -> dict[str, Any]:
        """In a secondary region: follow the active region's writes; never call AWS."""
        settings = self.runtime.settings
        base = {"region": settings.deployment_region, "active_region": settings.active_region}
        if not self.replicates:
            return base | {"skipped": "runs in the active region only"}
        return base | {"followed": self.runtime.replica.follow(self.replicates, account_id)}

    def _record(
        self, task: str, account_id: str | None, outcome: str, error: str | None = None
    ) -> None:
        try:
            self.runtime.outcomes.record(task, account_id, outcome, time.time(), error)
        except _REDIS_TRANSIENT:
            # Redis being down is already the task's problem; don't hide the original error.
            log.exception("could not record %s outcome for %s", outcome, task)


def log_result(result: PartitionResult) -> None:
    """One line per stored partition (task, account and region come from the log context)."""
    log.info(
        "stored %s: listed=%d created=%d updated=%d removed=%d complete=%s dynamo_writes=%d",
        result.kind,
        result.listed,
        result.created,
        result.updated,
        result.removed,
        result.complete,
        result.dynamo_writes,
    )
