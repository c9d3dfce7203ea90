"""Models of policy requests: the list, a new request, a review (``handlers/requests.py``)."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from pydantic import Field, ValidationInfo, field_validator

from inventory.cache.requests import STATUSES
from inventory.web.api import BodyModel, Item, OneOf, QueryModel, ResponseModel, Wire, problem
from inventory.web.params import Choice, Integer, OptionalAccount, Text

ARN = re.compile(r"arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:(\d{12})?:[^\s\x00-\x1f\x7f]+", re.ASCII)
REQUEST_ID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
MAX_ARN, MAX_TEXT, MAX_NAME = 2048, 2000, 256
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
#: IAM's own limits, in characters other than whitespace, for the inline policies of a role, user
#: or group (all of them together) and for a managed policy:
#: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html
IAM_POLICY_LIMITS = {"role": 10_240, "user": 2_048, "group": 5_120, "policy": 6_144}
#: Any other resource's document: the largest IAM allows (a role's).
POLICY_LIMIT = 10_240


class RequestsQuery(QueryModel):
    status: Annotated[str, Choice(STATUSES, fold_case=True)] = ""
    """Status"""
    account: OptionalAccount = None
    """12-digit account id"""
    arn: Annotated[str | None, Text(MAX_ARN)] = None
    """The resource a request is for"""
    requester: Annotated[str | None, Text(MAX_NAME)] = None
    """Who asked"""
    limit: Annotated[int, Integer(1, MAX_LIMIT)] = DEFAULT_LIMIT
    """Requests per page"""
    offset: Annotated[int, Integer(0, 10**9)] = 0
    """Requests to skip"""


class PolicyRequest(Item):
    """The request"""

    arn: str
    kind: str
    id: str
    resource_arn: str
    account_id: str = Field(pattern=r"^\d{12}$")
    requester: str
    justification: str
    status: Annotated[str, OneOf(STATUSES)]
    policy_document: dict[str, Any]
    policy_diff: dict[str, Any] | list[Any] | None = None
    reviewer: str | None
    review_comment: str | None = None
    created_at: float
    updated_at: float


class RequestPage(ResponseModel):
    """One page of requests"""

    requests: list[PolicyRequest]
    total: int = Field(ge=0)
    limit: int
    offset: int


# --- bodies ----------------------------------------------------------------------------------


class RequestArn(Wire):
    """The ARN of the resource a request is for (its account, if it names one, in group 1)."""

    missing = f"must be an ARN (arn:aws...) of at most {MAX_ARN} characters"

    def parse(self, value: Any) -> str:
        match = ARN.fullmatch(value.strip()) if isinstance(value, str) else None
        if match is None or len(match.group(0)) > MAX_ARN:
            raise problem(self.missing)
        return match.group(0)

    def schema(self) -> dict[str, Any]:
        pattern = r"^\s*arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:(\d{12})?:\S+"
        return {"type": "string", "pattern": pattern, "maxLength": MAX_ARN}


class Prose(Wire):
    """Free text of 1 to ``MAX_TEXT`` characters, stripped."""

    missing = f"must be 1 to {MAX_TEXT} characters"

    def parse(self, value: Any) -> str:
        if not isinstance(value, str) or not (1 <= len(value.strip()) <= MAX_TEXT):
            raise problem(self.missing)
        return value.strip()

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "pattern": r"\S", "maxLength": MAX_TEXT}


class PolicyDocument(Wire):
    """A policy document: a JSON object (or a string holding one) with a ``Statement``."""

    missing = "must be a JSON object"

    def parse(self, value: Any) -> dict[str, Any]:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise problem("is a string but not valid JSON") from None
        if not isinstance(value, dict):
            raise problem(self.missing)
        statement = value.get("Statement")
        if not isinstance(statement, list | dict) or not statement:
            raise problem("must have a Statement")
        return value

    def schema(self) -> dict[str, Any]:
        return {
            "oneOf": [
                {"type": "object", "required": ["Statement"]},
                {"type": "string", "contentMediaType": "application/json"},
            ]
        }


def policy_limit(arn: str) -> tuple[int, str]:
    """(characters, what for) a policy document for this resource may have."""
    parts = arn.split(":", 5)
    if len(parts) == 6 and parts[2] == "iam":
        kind = parts[5].split("/", 1)[0]
        if kind in IAM_POLICY_LIMITS:
            return IAM_POLICY_LIMITS[kind], f"an IAM {kind}"
    return POLICY_LIMIT, "any policy"


class NewRequest(BodyModel):
    arn: Annotated[str, RequestArn()]
    """The resource's ARN"""
    justification: Annotated[str, Prose()]
    """Why the change is needed"""
    policy_document: Annotated[dict[str, Any], PolicyDocument()]
    """The policy wanted, as JSON or as a string holding it"""

    @field_validator("policy_document")
    @classmethod
    def fits_iam(cls, document: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        """Refuse a document larger than IAM would accept (whitespace is not counted)."""
        arn = info.data.get("arn")
        if arn is None:
            return document
        limit, what = policy_limit(arn)
        size = len("".join(json.dumps(document, separators=(",", ":"), ensure_ascii=False).split()))
        if size > limit:
            raise problem(
                f"has {size:,} characters other than whitespace; IAM allows {limit:,} for {what}"
            )
        return document

    def account_in_arn(self) -> str | None:
        """The account the ARN names (S3 bucket ARNs name none)."""
        found = ARN.fullmatch(self.arn)
        return found.group(1) if found else None


class Review(BodyModel):
    comment: Annotated[str | None, Prose()] = None
    """Why (optional)"""
