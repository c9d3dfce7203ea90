"""Hostile task messages sent straight to the broker, to a real ``inventory worker`` process:
a pickle message to a JSON-only worker, a signed message whose body was changed after it was
signed, and validly signed messages replayed, renamed in their headers, expired or without a
seal. Each is refused and counted, never run, and the worker goes on working.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from celery.security.certificate import Certificate
from celery.security.key import PrivateKey
from celery.security.serialization import DEFAULT_SEPARATOR, SecureSerializer
from celery.utils.serialization import b64decode, b64encode
from kombu.utils.encoding import str_to_bytes

from inventory.signing import SEAL
from tests.test_operations import signing_env, wait_for

GOOD_TASK = "inventory.report_celery_last_success_metrics"
HOSTILE_TASK = "inventory.cache_policy_requests"
EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


class Payload:
    """Unpickling this creates ``marker``: proof that a pickle was loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.marker, "w"))


def headers(task: str, task_id: str) -> dict[str, Any]:
    """Celery message protocol 2 headers for one task call."""
    return {
        "lang": "py",
        "task": task,
        "id": task_id,
        "root_id": task_id,
        "parent_id": None,
        "group": None,
        "shadow": None,
        "eta": None,
        "expires": None,
        "retries": 0,
        "timelimit": [None, None],
        "argsrepr": "()",
        "kwargsrepr": "{}",
        "origin": "faults-test",
        "ignore_result": False,
    }


def publish(
    app: Any, queue: str, body: Any, task: str, task_id: str | None = None, **options: Any
) -> str:
    """One raw message to a Celery queue, routed as the app routes (its exchange and key)."""
    task_id = task_id or str(uuid.uuid4())
    target = app.amqp.queues[queue]
    with app.connection_for_write() as connection:
        connection.Producer().publish(
            body,
            exchange=target.exchange,
            routing_key=target.routing_key,
            headers=headers(task, task_id),
            correlation_id=task_id,
            declare=[target],
            **options,
        )
    return task_id


def settle(runtime, quiet: float = 2.0) -> dict[str, int]:
    """The refusal counts once they stopped changing for ``quiet`` seconds."""
    import time

    last, since = refusals(runtime), time.monotonic()
    while time.monotonic() - since < quiet:
        time.sleep(0.2)
        now = refusals(runtime)
        if now != last:
            last, since = now, time.monotonic()
    return last


def refusals(runtime) -> dict[str, int]:
    return {k: int(v) for k, v in runtime.redis.hgetall(runtime.keys.rejected_messages()).items()}


def test_pickle_message_to_a_json_worker_is_refused_counted_and_never_loaded(
    env, runtime, start_worker, tmp_path
):
    worker = start_worker(env)
    marker = tmp_path / "unpickled"
    for _ in range(3):
        publish(worker.app, "metrics", Payload(marker), GOOD_TASK, serializer="pickle")
    wait_for(lambda: sum(refusals(runtime).values()) >= 3, 30, "three refusals")
    settled = settle(runtime)
    # One refusal per message: each queue has its own exchange, so a message published to a
    # queue's exchange reaches that queue only (it once reached all four, counted 4 times).
    assert settled == {"ContentDisallowed": 3}
    assert worker.app.connection_for_write().default_channel.client.llen("metrics") == 0
    assert not marker.exists()
    assert worker.proc is not None and worker.proc.poll() is None
    # The same worker then runs a good task.
    assert worker.app.send_task(GOOD_TASK, queue="metrics").get(timeout=60) == {}
    assert "Traceback" not in worker.log().split("ContentDisallowed")[-1]
    # A pickle is never even sent to the worker by a process of ours: JSON only.
    assert worker.app.conf.accept_content == ["json"]


def test_signed_message_with_a_changed_body_is_refused_counted_and_never_run(
    env, runtime, start_worker, tmp_path
):
    signing, key, cert = signing_env(tmp_path)
    worker = start_worker(env | signing)
    signer = SecureSerializer(
        PrivateKey(key.read_text()), Certificate(cert.read_text()), None, "sha256"
    )

    # A valid signature of one body, sent with another (different arguments).
    signed = b64decode(signer.serialize([[], {}, EMBED]))
    fields = signed.split(DEFAULT_SEPARATOR, 4)
    fields[4] = json.dumps([["123456789012"], {"evil": True}, EMBED]).encode()
    tampered = b64encode(DEFAULT_SEPARATOR.join(fields))
    # The signature kept, the signer's id cut: also refused.
    nobody = str_to_bytes(b64encode(b"nobody"))
    unknown_signer = b64encode(DEFAULT_SEPARATOR.join([nobody, *fields[1:4], signed.split(
        DEFAULT_SEPARATOR, 4)[4]]))  # fmt: skip
    # The intact message, as a control: the worker runs it.
    intact = b64encode(signed)

    publish_options = {"content_type": "application/data", "content_encoding": "utf-8"}
    publish(worker.app, "maintenance", tampered, HOSTILE_TASK, **publish_options)
    publish(worker.app, "maintenance", unknown_signer, HOSTILE_TASK, **publish_options)
    wait_for(lambda: sum(refusals(runtime).values()) >= 2, 30, "two refusals")
    refused = settle(runtime)
    # The signature check fails as the body is decoded: one refusal per message.
    assert refused == {"DecodeError": 2}
    assert not any(s.task == "cache_policy_requests" for s in runtime.outcomes.status())
    assert worker.proc is not None and worker.proc.poll() is None

    # Signed by the trusted key and sealed for the task and id it is delivered as: it runs.
    control_id = str(uuid.uuid4())
    sealed = signer.serialize([[], {SEAL: seal(GOOD_TASK, control_id)}, EMBED])
    publish(worker.app, "metrics", sealed, GOOD_TASK, control_id, **publish_options)
    assert worker.app.AsyncResult(control_id).get(timeout=60) == {}
    # The unsealed one (a body Celery's own auth serializer would sign) does not.
    publish(worker.app, "metrics", intact, GOOD_TASK, **publish_options)
    wait_for(lambda: refusals(runtime).get("Unsealed") == 1, 30, "the unsealed refusal")


def seal(task: str, task_id: str, expires_in: float = 600) -> dict[str, Any]:
    return {
        "task": task,
        "id": task_id,
        "nonce": uuid.uuid4().hex,
        "expires": time.time() + expires_in,
    }


def test_signed_message_replayed_renamed_or_expired_is_refused_counted_and_never_run(
    env, runtime, start_worker, tmp_path
):
    signing, key, cert = signing_env(tmp_path)
    worker = start_worker(env | signing)
    signer = SecureSerializer(
        PrivateKey(key.read_text()), Certificate(cert.read_text()), None, "sha256"
    )
    options = {"content_type": "application/data", "content_encoding": "utf-8"}

    # Exactly the bytes the app sends for a task (sealed and signed): run once, then replayed.
    task_id = str(uuid.uuid4())
    body = worker.app.amqp.as_task_v2(task_id, GOOD_TASK).body
    publish(worker.app, "metrics", body, GOOD_TASK, task_id, **options)
    assert worker.app.AsyncResult(task_id).get(timeout=60) == {}
    runs = runtime.outcomes.status()
    publish(worker.app, "metrics", body, GOOD_TASK, task_id, **options)  # replayed
    wait_for(lambda: refusals(runtime).get("Replayed") == 1, 30, "the replay refusal")

    # A body sealed for the harmless task, delivered under another task's name in the headers.
    renamed_id = str(uuid.uuid4())
    renamed = signer.serialize([[], {SEAL: seal(GOOD_TASK, renamed_id)}, EMBED])
    publish(worker.app, "maintenance", renamed, HOSTILE_TASK, renamed_id, **options)
    wait_for(lambda: refusals(runtime).get("SealMismatch") == 1, 30, "the rename refusal")
    # The same seal under another task id (a copy sent as a new task) is refused too.
    publish(worker.app, "metrics", body, GOOD_TASK, str(uuid.uuid4()), **options)
    wait_for(lambda: refusals(runtime).get("SealMismatch") == 2, 30, "the id refusal")

    # A seal whose time is up.
    old_id = str(uuid.uuid4())
    old = signer.serialize([[], {SEAL: seal(GOOD_TASK, old_id, expires_in=-1)}, EMBED])
    publish(worker.app, "metrics", old, GOOD_TASK, old_id, **options)
    wait_for(lambda: refusals(runtime).get("SealExpired") == 1, 30, "the expiry refusal")

    assert settle(runtime) == {"Replayed": 1, "SealMismatch": 2, "SealExpired": 1}
    assert not any(s.task == "cache_policy_requests" for s in runtime.outcomes.status())
    # The replayed, copied and expired metrics messages did not run again.
    ok = [s for s in runtime.outcomes.status() if s.task == "report_celery_last_success_metrics"]
    assert [s.last_success for s in ok] == [
        s.last_success for s in runs if s.task == "report_celery_last_success_metrics"
    ]
    assert worker.proc is not None and worker.proc.poll() is None
