"""The SQS queue an EventBridge rule fills with CloudTrail change events: receive and delete."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Message:
    body: str
    receipt: str


class EventQueue:
    """ReceiveMessage and DeleteMessageBatch on one queue (the hub's credentials)."""

    def __init__(self, client: Any, url: str) -> None:
        self.client = client
        self.url = url

    def receive(self, count: int, wait_seconds: int, hide_seconds: int) -> list[Message]:
        """ReceiveMessage: up to ``count`` (at most 10) messages, hidden from other consumers."""
        messages = self.client.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=max(1, min(10, count)),
            WaitTimeSeconds=wait_seconds,
            VisibilityTimeout=hide_seconds,
        ).get("Messages", [])
        return [Message(m["Body"], m["ReceiptHandle"]) for m in messages]

    def delete(self, receipts: Iterable[str]) -> None:
        """DeleteMessageBatch, 10 at a time."""
        handles = list(receipts)
        for start in range(0, len(handles), 10):
            entries = [
                {"Id": str(i), "ReceiptHandle": h}
                for i, h in enumerate(handles[start : start + 10])
            ]
            self.client.delete_message_batch(QueueUrl=self.url, Entries=entries)
