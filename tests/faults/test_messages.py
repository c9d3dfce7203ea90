"""Hostile task messages sent straight to the broker, to a real ``inventory worker`` process:
a pickle message to a JSON-only worker, and a signed message whose body was changed after it
was signed. Each is refused and counted, never run, and the worker goes on working.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from celery.security.certificate import Certificate
from celery.security.key import PrivateKey
from celery.security.serialization import DEFAULT_SEPARATOR, SecureSerializer
from celery.utils.serialization import b64decode, b64encode
from kombu.utils.encoding import str_to_bytes

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


def publish(app: Any, queue: str, body: Any, task: str, **options: Any) -> str:
    """One raw message to a Celery queue, routed as the app routes (its exchange and key)."""
    task_id = str(uuid.uuid4())
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
    # Every refusal is the content type; Celery reports each message more than once (observed:
    # 4 times with 2 prefork processes), so the counter counts refusals, not messages.
    assert set(settled) == {"ContentDisallowed"} and settled["ContentDisallowed"] >= 3
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
    assert set(refused) <= {"DecodeError", "SecurityError", "ContentDisallowed"}
    assert not any(s.task == "cache_policy_requests" for s in runtime.outcomes.status())
    assert worker.proc is not None and worker.proc.poll() is None

    control = publish(worker.app, "metrics", intact, GOOD_TASK, **publish_options)
    result = worker.app.AsyncResult(control)
    assert result.get(timeout=60) == {}
    assert refusals(runtime) == refused  # the intact message was not refused
