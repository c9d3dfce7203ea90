"""Signed task messages that cannot be replayed or renamed: a seal inside the signed body.

Celery's ``auth`` serializer signs only a message's body; the task name and id travel in
headers nobody signed. So a signed body replayed runs twice, and one renamed in its headers
runs as another task. Every message we send therefore carries a seal in its (signed) keyword
arguments: the task name, the task id, a random nonce and an expiry. The task base checks it
before running (:func:`check_seal`) and remembers each nonce whose task finished until the
seal expires, so a replay is dropped while a redelivery of a message that never finished runs.

Signing needs no process-global state on the sending side: each app signs with its own key
(:class:`SigningAMQP`). Only a worker process installs Celery's verifying serializer in kombu's
registry (:func:`secure_worker`), as the consumer decodes through that registry.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from celery.app.amqp import AMQP
from celery.security import setup_security
from celery.security.certificate import Certificate, FSCertStore
from celery.security.key import PrivateKey
from celery.security.serialization import SecureSerializer
from kombu.serialization import registry

from inventory.settings import Settings

SEAL = "_inventory_seal"
#: The content type Celery's ``auth`` serializer registers; workers accept only this.
CONTENT_TYPE, CONTENT_ENCODING = "application/data", "utf-8"


class SealError(Exception):
    """A signed message whose seal is missing, expired, for another task, or already run."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def make_seal(name: str, task_id: str, now: float, max_age: float) -> dict[str, Any]:
    return {"task": name, "id": task_id, "nonce": secrets.token_hex(16), "expires": now + max_age}


class SigningAMQP(AMQP):
    """Celery's message builder, with every task body sealed and signed by this app's key."""

    signer: SecureSerializer | None = None
    max_age: float = 86400.0

    def as_task_v2(self, task_id: str, name: str, *args: Any, **kwargs: Any) -> Any:
        message = super().as_task_v2(task_id, name, *args, **kwargs)
        if self.signer is None:
            return message
        call_args, call_kwargs, embed = message.body
        now = time.time()
        sealed = {**call_kwargs, SEAL: make_seal(name, task_id, now, self.max_age)}
        signed = self.signer.serialize([list(call_args), sealed, embed])
        message.properties.update(content_type=CONTENT_TYPE, content_encoding=CONTENT_ENCODING)
        return message._replace(body=signed)


def signer(settings: Settings) -> SecureSerializer:
    """The serializer that signs with our key and verifies against the trusted certificates."""
    s = settings.celery.signing
    assert s.key and s.certificate and s.cert_store
    return SecureSerializer(
        PrivateKey(Path(s.key).read_text()),
        Certificate(Path(s.certificate).read_text()),
        FSCertStore(s.cert_store),
        s.digest,
        serializer="json",
    )


def secure_worker(app: Any) -> None:
    """In a worker process: accept only messages signed by a trusted certificate.

    This changes kombu's process-wide serializer registry (the consumer decodes through it),
    which is why it runs only when a worker starts, never when an app is created.
    """
    settings = getattr(getattr(app, "runtime", None), "settings", None)
    if settings is None or not settings.celery.signing.enabled:
        return
    setup_security(app=app)


def check_seal(
    kwargs: Mapping[str, Any], name: str, task_id: str | None, now: float
) -> dict[str, Any]:
    """The seal of a call, if it is for this task and id and still valid; else SealError."""
    seal = kwargs.get(SEAL)
    if not isinstance(seal, dict):
        raise SealError("Unsealed", f"{name} message without a seal")
    if seal.get("task") != name:
        raise SealError("SealMismatch", f"sealed for {seal.get('task')!r}, delivered as {name!r}")
    if seal.get("id") != task_id:
        raise SealError("SealMismatch", f"sealed for id {seal.get('id')!r}, delivered as {task_id}")
    expires = seal.get("expires")
    if not isinstance(expires, int | float) or expires < now:
        raise SealError("SealExpired", f"{name} message sealed until {expires}")
    if not isinstance(seal.get("nonce"), str) or not seal["nonce"]:
        raise SealError("Unsealed", f"{name} message without a nonce")
    return seal


@contextmanager
def registered(app: Any) -> Iterator[None]:
    """Kombu's registry can sign and verify with this app's key while the block runs.

    Celery's remote control (``app.control.ping``...) serializes through the registry with the
    task serializer; outside a worker, this lends it our signer and then puts back exactly what
    the registry held, so no other app in the process is affected.
    """
    amqp_signer = getattr(app.amqp, "signer", None)
    if amqp_signer is None:
        yield
        return
    saved = (
        dict(registry._encoders),
        dict(registry._decoders),
        dict(registry.type_to_name),
        dict(registry.name_to_type),
    )
    registry.register(
        "auth",
        amqp_signer.serialize,
        amqp_signer.deserialize,
        content_type=CONTENT_TYPE,
        content_encoding=CONTENT_ENCODING,
    )
    try:
        yield
    finally:
        (registry._encoders, registry._decoders, registry.type_to_name, registry.name_to_type) = (
            saved
        )
