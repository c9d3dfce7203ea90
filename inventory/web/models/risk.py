"""Models of risk findings and "who can do this?" (``handlers/risk.py``)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import Field

from inventory.analysis.catalogue import catalogue
from inventory.analysis.findings import CATEGORIES, SEVERITIES
from inventory.web.api import Item, OneOf, QueryModel, ResponseModel, problem
from inventory.web.params import Arn, ArnParam, Choice, Integer, OptionalAccount, Param

FINDINGS_MAX_LIMIT = 1000
ACCESS_MAX_LIMIT = 1000
ACTION = re.compile(r"[a-zA-Z0-9-]{1,64}:[a-zA-Z0-9]{1,128}", re.ASCII)
SERVICE = re.compile(r"[a-z0-9-]{1,64}", re.ASCII)
DECISIONS = ("allowed", "conditional")


class IamAction(Param):
    """An action AWS defines (any letter case), as the catalogue spells it."""

    def parse(self, value: str) -> str:
        found = catalogue().get(value) if ACTION.fullmatch(value) else None
        if found is None:
            raise problem("must be an IAM action AWS defines, e.g. s3:GetObject")
        return found.name

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "pattern": f"^{ACTION.pattern}$", "maxLength": 193}


class ServicePrefix(Param):
    """A service prefix the catalogue has actions of."""

    def parse(self, value: str) -> str:
        if not SERVICE.fullmatch(value) or not catalogue().service_actions(value):
            raise problem("must be an AWS service prefix, e.g. s3")
        return value

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "pattern": f"^{SERVICE.pattern}$", "maxLength": 64}


class FindingsQuery(QueryModel):
    account: OptionalAccount = None
    """Only this account's"""
    severity: Annotated[str | None, Choice(SEVERITIES)] = None
    """Only findings of this severity"""
    kind: Annotated[str | None, Choice(tuple(CATEGORIES))] = None
    """Only this kind (category) of finding"""
    arn: Annotated[str | None, Arn()] = None
    """Only this principal's, policy's or resource's"""
    limit: Annotated[int, Integer(1, FINDINGS_MAX_LIMIT)] = 200
    """Page size"""
    offset: Annotated[int, Integer(0, 10_000_000)] = 0
    """Findings to skip"""


class FindingRow(Item):
    """One finding of a subject (a principal, a policy or a resource)"""

    arn: str
    """The subject's ARN"""
    subject_kind: str | None = None
    name: str | None = None
    account_id: str | None = None
    id: str
    """Unique within the subject: category, source and key"""
    category: Annotated[str, OneOf(tuple(CATEGORIES))]
    severity: Annotated[str, OneOf(SEVERITIES)]
    title: str
    source: str
    """The document or check it comes from"""
    detail: Any = None


class FindingsPage(ResponseModel):
    """One page of findings, worst first, the total and the counts by severity"""

    findings: list[FindingRow]
    total: int = Field(ge=0)
    counts: dict[str, int]
    offset: int
    limit: int


class AccessQuery(QueryModel):
    action: Annotated[str, IamAction()]
    """An IAM action, e.g. s3:GetObject"""
    resource: ArnParam
    """The resource's ARN (a pattern such as arn:aws:s3:::bucket/* asks about every object)"""
    limit: Annotated[int, Integer(1, ACCESS_MAX_LIMIT)] = 200
    """Principals listed at most (the counts cover all)"""


class AllowedPrincipal(Item):
    arn: str
    kind: str
    name: str
    account_id: str
    decision: Annotated[str, OneOf(DECISIONS)]
    reasons: list[str]


class OtherGrant(Item):
    """A grantee that is no principal of the organisation: the public, a service, an account"""

    principal: str
    type: str
    level: str


class WhoCan(ResponseModel):
    """Allowed and conditional principals with the reasons, and other grantees"""

    action: str
    resource: str
    resource_account: str | None
    resource_kind: str | None
    allowed: int = Field(ge=0)
    conditional: int = Field(ge=0)
    principals: list[AllowedPrincipal]
    truncated: bool
    other_grants: list[OtherGrant]
    evaluated_statements: int = Field(ge=0)
    principals_indexed: int = Field(ge=0)


class PrincipalAccessQuery(QueryModel):
    arn: ArnParam
    """A role's or user's ARN"""
    service: Annotated[str, ServicePrefix()]
    """A service prefix, e.g. s3"""


class ActionGrant(Item):
    action: str
    access_level: str | None
    resources: list[str]
    """Resource patterns its policies allow the action on"""
    denied: list[str]
    """Resource patterns an unconditional Deny removes"""
    conditional: bool


class PrincipalAccess(ResponseModel):
    """The actions its policies allow, with the resources"""

    arn: str
    service: str
    actions: list[ActionGrant]


class ServiceQuery(QueryModel):
    service: Annotated[str, ServicePrefix()]
    """A service prefix, e.g. s3"""


class ServiceActions(ResponseModel):
    """The service's action names"""

    service: str
    actions: list[str]
