"""Models of identity, role access, freshness and refresh (``handlers/access.py``)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from inventory.web.api import QueryModel, ResponseModel
from inventory.web.params import ArnParam, Matching, UnixTime

MAX_PRINCIPAL = 256
MAX_ARN = 2048
#: An IAM role ARN, as the role access mapping keys it.
ROLE_ARN = re.compile(r"arn:aws[\w-]*:iam::\d{12}:role/\S+", re.ASCII)
#: A group name or an email (stripped, so it starts with something other than a space).
PRINCIPAL = re.compile(r"\S.*", re.ASCII)


class WhoAmI(ResponseModel):
    """The identity"""

    name: str
    groups: list[str]
    via: Literal["proxy", "token", "cookie"]
    admin: bool


class EligibleQuery(QueryModel):
    principal: Annotated[str, Matching(PRINCIPAL, "must be a group or an email", MAX_PRINCIPAL)]
    """A group name or an email"""


class EligibleRoles(ResponseModel):
    """The roles"""

    principal: str
    roles: list[str]


class PrincipalsQuery(QueryModel):
    arn: Annotated[str, Matching(ROLE_ARN, "must be an IAM role ARN", MAX_ARN)]
    """An IAM role ARN"""


class RolePrincipals(ResponseModel):
    """The principals"""

    arn: str
    principals: list[str]


class KindFreshness(ResponseModel):
    age: float | None
    refreshed_at: float | None
    interval_seconds: float
    enabled: bool
    """False: its beat entry is disabled, or the service is not set up in the account (no
    AWS Config recorder in any region). Such a kind is never stale."""
    stale: bool


class AccountFreshness(ResponseModel):
    id: str
    name: str | None
    status: str | None
    stale: bool
    kinds: dict[str, KindFreshness]


class Freshness(ResponseModel):
    """Freshness"""

    checked_at: float
    accounts: list[AccountFreshness]


class RefreshQueued(ResponseModel):
    """The task was queued, now or by an earlier request (one per task and account is queued
    or running at a time; its id is given to every asker)"""

    task_id: str
    task: str
    account_id: str
    requested_at: float
    already_queued: bool


class RefreshStatusQuery(QueryModel):
    arn: ArnParam
    """The resource's ARN"""
    since: Annotated[float, UnixTime()]
    """Unix time of the refresh request"""


class RefreshStatus(ResponseModel):
    """The partition's freshness"""

    arn: str
    since: float
    refreshed: bool
    refreshed_at: float | None
