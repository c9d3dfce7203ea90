"""What differs between the brokers we support (Redis, RabbitMQ, Amazon SQS), in one place.

Celery and kombu hide most of it; left here are the transport options each broker takes and a
broker-neutral reading of queue lengths for the exporter (kombu's passive ``queue_declare``:
LLEN for Redis, the AMQP declare-ok count for RabbitMQ, ApproximateNumberOfMessages for SQS).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import amqp

if TYPE_CHECKING:
    from kombu import Connection, Queue

    from inventory.settings import Settings

REDIS, AMQP, SQS, MEMORY = "redis", "amqp", "sqs", "memory"
_KINDS = {"redis": REDIS, "rediss": REDIS, "amqp": AMQP, "amqps": AMQP, "sqs": SQS}
#: AMQP's reply code for a queue that does not exist (a passive declare of it).
NOT_FOUND = 404


def broker_kind(url: str) -> str:
    """``redis``, ``amqp``, ``sqs`` or ``memory`` for a broker URL."""
    return _KINDS.get(urllib.parse.urlsplit(url).scheme, MEMORY)


def has_visibility_timeout(settings: Settings) -> bool:
    """Whether an unacknowledged message comes back after ``celery.visibility_timeout``.

    RabbitMQ redelivers when the consumer's connection closes, so no timeout applies there.
    """
    return broker_kind(settings.celery.broker_url) in (REDIS, SQS)


def transport_options(settings: Settings) -> dict[str, Any]:
    """``broker_transport_options`` for the configured broker."""
    c = settings.celery
    kind = broker_kind(c.broker_url)
    if kind == REDIS:
        return {
            "visibility_timeout": c.visibility_timeout,
            # kombu scans for expired unacked messages every interval x throttle seconds.
            "unacked_restore_interval": min(10, c.unacked_restore_seconds),
            "unacked_restore_throttle": max(1, c.unacked_restore_seconds // 10),
        }
    if kind == SQS:
        return {
            "region": c.sqs.region or settings.active_region,
            "queue_name_prefix": c.sqs.queue_name_prefix,
            "visibility_timeout": c.visibility_timeout,
            "wait_time_seconds": c.sqs.wait_time_seconds,
            "polling_interval": c.sqs.polling_interval,
            "is_secure": c.sqs.is_secure,
        }
    return {}


def sends_events(settings: Settings) -> bool:
    """Whether workers can publish task events: SQS has no topic exchange to carry them."""
    return broker_kind(settings.celery.broker_url) != SQS


class BrokerQueues:
    """Messages waiting in each queue, read through kombu for any broker.

    ``connect`` opens a fresh kombu connection (the Celery app's ``connection_for_read``), so
    the broker's URL, TLS and transport options are the workers' own. One connection per
    reading: the exporter is scraped every few seconds at most, and nothing is left open
    between scrapes. A queue no worker declared yet holds no messages: it reads 0.
    """

    def __init__(self, connect: Callable[[], Connection], queues: Sequence[Queue]) -> None:
        self.connect = connect
        self.queues = list(queues)

    @property
    def names(self) -> list[str]:
        return [q.name for q in self.queues]

    def lengths(self) -> dict[str, int]:
        """Queue name -> messages ready (reserved, unacknowledged messages are not counted)."""
        result: dict[str, int] = {}
        with self.connect() as connection:
            connection.ensure_connection(max_retries=1, timeout=5)
            channel = connection.channel()
            try:
                for queue in self.queues:
                    try:
                        _, count, _ = channel.queue_declare(queue=queue.name, passive=True)
                    except (*connection.channel_errors, amqp.ChannelError) as exc:
                        # py-amqp says 404; kombu's virtual transports say "404".
                        if str(getattr(exc, "reply_code", "")) != str(NOT_FOUND):
                            raise
                        count = 0
                        # AMQP closes a channel on a failed declare: go on with a new one.
                        channel = connection.channel()
                    result[queue.name] = int(count)
            finally:
                channel.close()
        return result


def broker_queues(settings: Settings) -> BrokerQueues:
    """Queue lengths of the configured broker, for every queue the workers consume."""
    from inventory.celery_app import QUEUES, create_app

    app = create_app(settings)
    queues = [app.amqp.queues[name] for name in QUEUES]
    return BrokerQueues(app.connection_for_read, queues)
