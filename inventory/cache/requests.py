"""Policy change requests: the DynamoDB table (source of truth) behind ``/requests``."""

from __future__ import annotations

import json
import uuid
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import DoesNotExist, UpdateError
from pynamodb.models import Model

from inventory.cache.keys import POLICY_REQUEST, TABLE_POLICY_REQUESTS
from inventory.cache.tables import bind, ensure_table

PENDING, APPROVED, REJECTED, CANCELLED = "pending", "approved", "rejected", "cancelled"
STATUSES = (PENDING, APPROVED, REJECTED, CANCELLED)


class RequestConflict(Exception):
    """The request is not in the state the change expected (e.g. already approved)."""


class PolicyRequestItem(Model):
    class Meta:
        table_name = "unbound"

    request_id = UnicodeAttribute(hash_key=True)
    arn = UnicodeAttribute()
    account_id = UnicodeAttribute()
    requester = UnicodeAttribute()
    justification = UnicodeAttribute()
    status = UnicodeAttribute()
    policy_document = UnicodeAttribute()
    policy_diff = UnicodeAttribute(null=True)
    reviewer = UnicodeAttribute(null=True)
    review_comment = UnicodeAttribute(null=True)
    created_at = NumberAttribute()
    updated_at = NumberAttribute()

    def record(self) -> dict[str, Any]:
        return {
            "arn": self.request_id,  # the store's key field; the resource ARN is ``resource_arn``
            "kind": POLICY_REQUEST,
            "id": self.request_id,
            "resource_arn": self.arn,
            "account_id": self.account_id,
            "requester": self.requester,
            "justification": self.justification,
            "status": self.status,
            "policy_document": json.loads(self.policy_document),
            "policy_diff": json.loads(self.policy_diff) if self.policy_diff else None,
            "reviewer": self.reviewer,
            "review_comment": self.review_comment,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


class PolicyRequests:
    """Create, change and list requests; every write is one conditional DynamoDB call."""

    def __init__(self, table_prefix: str, region: str, host: str | None) -> None:
        self.model = bind(PolicyRequestItem, table_prefix + TABLE_POLICY_REQUESTS, region, host)

    def ensure_table(self) -> bool:
        return ensure_table(self.model)

    def create(
        self,
        arn: str,
        account_id: str,
        requester: str,
        justification: str,
        policy_document: dict[str, Any],
        now: float,
        policy_diff: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        item = self.model(
            str(uuid.uuid4()),
            arn=arn,
            account_id=account_id,
            requester=requester,
            justification=justification,
            status=PENDING,
            policy_document=json.dumps(policy_document, sort_keys=True),
            policy_diff=json.dumps(policy_diff, sort_keys=True) if policy_diff else None,
            created_at=now,
            updated_at=now,
        )
        item.save(condition=self.model.request_id.does_not_exist())
        return item.record()

    def get(self, request_id: str) -> dict[str, Any] | None:
        try:
            return self.model.get(request_id).record()
        except DoesNotExist:
            return None

    def set_status(
        self,
        request_id: str,
        status: str,
        reviewer: str,
        now: float,
        comment: str | None = None,
        expected: str = PENDING,
    ) -> dict[str, Any]:
        """Move a request from ``expected`` to ``status``; a conflict raises RequestConflict."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}")
        item = self.model(request_id)
        try:
            item.update(
                actions=[
                    self.model.status.set(status),
                    self.model.reviewer.set(reviewer),
                    (
                        self.model.review_comment.set(comment)
                        if comment
                        else self.model.review_comment.remove()
                    ),
                    self.model.updated_at.set(now),
                ],
                condition=(self.model.request_id.exists()) & (self.model.status == expected),
            )
        except UpdateError as exc:
            raise RequestConflict(f"request {request_id} is not {expected}") from exc
        return item.record()

    def all(self) -> list[dict[str, Any]]:
        """Every request, newest first (a scan: the table is small and read by one task)."""
        records = [item.record() for item in self.model.scan()]
        return sorted(records, key=lambda r: r["created_at"], reverse=True)
