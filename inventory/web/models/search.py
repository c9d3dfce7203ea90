"""Models of the policies table, typeahead and resource details (``handlers/search.py``)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from inventory.analysis.findings import SEVERITIES
from inventory.web import search
from inventory.web.api import Item, QueryModel, ResponseModel
from inventory.web.models.core import Record
from inventory.web.params import (
    AccountId,
    Boolean,
    Choice,
    Integer,
    OptionalAccount,
    OptionalToken,
    Text,
)

TYPEAHEAD_MAX = 100


class PoliciesQuery(QueryModel):
    q: Annotated[str | None, Text(256)] = None
    """Free text: substrings of ARN, name and tags"""
    account: OptionalAccount = None
    """12-digit account id"""
    kind: OptionalToken = None
    """Resource kind, e.g. iam_role"""
    region: OptionalToken = None
    """Region, or 'global'"""
    has_errors: Annotated[bool | None, Boolean()] = None
    """Only resources with (or without) CloudTrail errors"""
    severity: Annotated[str | None, Choice(SEVERITIES)] = None
    """Only resources whose worst finding has this severity"""
    sort: Annotated[str, Choice(tuple(search.SORT_COLUMNS))] = "name"
    """Sort column"""
    order: Annotated[str, Choice(("asc", "desc"))] = "asc"
    """Sort order"""
    offset: Annotated[int, Integer(0, 10_000_000)] = 0
    """Rows to skip"""
    limit: Annotated[int, Integer(1, search.MAX_LIMIT)] = 50
    """Rows per page"""

    def index_query(self) -> search.Query:
        """The query for the local search index."""
        return search.Query(
            text=self.q,
            account=self.account,
            kind=self.kind,
            region=self.region,
            has_errors=self.has_errors,
            severity=self.severity,
            sort=self.sort,
            descending=self.order == "desc",
            offset=self.offset,
            limit=self.limit,
        )


class Matched(ResponseModel):
    """Where a row matched the free text"""

    field: Annotated[str, Field(pattern="^(name|arn|tag|text)$")]
    """name, arn, tag (then key and value) or text (across parts)"""
    key: str | None = None
    """The tag's key"""
    value: str | None = None
    """The tag's value"""


class PageRow(Item):
    arn: str
    name: str
    kind: str
    account_id: str | None
    account_name: str | None = None
    region: str
    tags: dict[str, Any]
    errors: int
    owner: str | None = None
    template: str | None = None
    last_updated: float | None = None
    findings: int = 0
    """Risk findings of the resource (docs/findings.md)"""
    severity: str | None = None
    """Its worst finding's severity"""
    matched: Matched | None = None
    """With ``q``: where the text was found"""

    link: str | None = None
    """A page outside the service about it (an AWS Config resource: its Config console
    history)"""


class PolicyPage(ResponseModel):
    """One page of rows and the total that match"""

    total: int = Field(ge=0)
    rows: list[PageRow]
    offset: int
    limit: int


class Facets(ResponseModel):
    """The facet values"""

    kind: list[str]
    account_id: list[str]
    region: list[str]
    severity: list[str]
    """Worst finding severities among the rows"""


class ResourceTypeaheadQuery(QueryModel):
    q: Annotated[str, Text(256)]
    """Text typed so far"""
    kind: OptionalToken = None
    """Only this kind"""
    limit: Annotated[int, Integer(1, TYPEAHEAD_MAX)] = 20
    """Most results"""


class ResourceMatch(Item):
    arn: str
    name: str | None = None


class ResourceMatches(ResponseModel):
    """Matches"""

    results: list[ResourceMatch]


class ManagedPolicyQuery(QueryModel):
    account: Annotated[str, AccountId()]
    """12-digit account id"""
    q: Annotated[str, Text(128)] = ""
    """Text typed so far"""
    limit: Annotated[int, Integer(1, TYPEAHEAD_MAX)] = 20
    """Most results"""


class ManagedPolicyMatch(ResponseModel):
    arn: str
    name: str
    aws_managed: bool


class ManagedPolicyMatches(ResponseModel):
    """Matches"""

    results: list[ManagedPolicyMatch]


class ResourceDetails(ResponseModel):
    """The record and what the resource page shows with it"""

    record: Record
    kind: str
    account_id: str
    account_name: str | None
    region: str
    refreshed_at: float | None
    attached_documents: dict[str, Any]
    cloudtrail_errors: dict[str, Any] | None
    principals: list[str]
