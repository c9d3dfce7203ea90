"""Models of the basic resource, partition and account reads (``handlers/core.py``)."""

from __future__ import annotations

from pydantic import Field

from inventory.web.api import Item, QueryModel, ResponseModel
from inventory.web.params import ArnParam


class ByArn(QueryModel):
    arn: ArnParam
    """The resource's ARN"""


class Record(Item):
    """The record as cached"""

    arn: str
    kind: str | None = None


class PartitionRow(ResponseModel):
    kind: str
    account_id: str
    region: str
    count: int = Field(ge=0)
    refreshed_at: float | None
    complete: bool | None


class Partitions(ResponseModel):
    """The partitions"""

    partitions: list[PartitionRow]


class Account(Item):
    id: str


class Accounts(ResponseModel):
    """The accounts"""

    accounts: list[Account]


class KindInfo(ResponseModel):
    kind: str
    label: str
    regional: bool
    table: bool
    """A row of the policies table"""
    history: bool
    """Its changes are recorded"""
    synced_by: str | None
    """The sync (task stem) that lists it in each account; none for derived kinds"""


class Kinds(ResponseModel):
    """Every resource kind the registry declares"""

    kinds: list[KindInfo]
