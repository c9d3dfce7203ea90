"""What a fetcher module declares beside its get_* and transform_*: events, targeted reads, ARNs.

A fetcher module (``aws/sqs.py``...) lists a kind (``collect_*``), reads back one resource an
event named (``refresh_*``, sharing the listing's calls and error handling) and says which
CloudTrail write events touch the kind and which part of a resource each changes
(:class:`EventRules`). ``inventory/registry.py`` binds those to a :class:`ResourceKind` entry.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from inventory.aws.listing import SERIAL, DetailReads, Listing

# Aspects: which part of a resource an event changed, i.e. which call reads it back.
CREATE, DELETE, RESOURCE, ATTACHED, GROUPS = "create", "delete", "resource", "attached", "groups"
POLICY, TAGS = "policy", "tags"
#: An inline policy: the aspect is this prefix + the policy's name (``requestParameters``).
INLINE = "inline:"


class NotAChange(ValueError):
    """A message that names no cached resource change (malformed, failed call, other event)."""


@dataclass(frozen=True)
class Target:
    """The resource one event names: how events name it, and where its partition is."""

    name: str
    region: str
    #: The account the resource's own identifier names (a queue URL, a topic ARN), if any.
    owner: str | None = None
    #: The name a rename gives it (UpdateUser/UpdateGroup ``newUserName``...), if any.
    renamed_to: str | None = None


#: (event name, requestParameters, responseElements, the event's region, its account) -> Target.
#: Raises NotAChange (or KeyError/TypeError) when the event does not name such a resource.
Locate = Callable[[str, Mapping[str, Any], Mapping[str, Any], str, str], Target]

#: The targeted read: (client, account_id, region, name, aspects, cached record) -> the record
#: as AWS has it now, or None when AWS confirms the resource is gone.
Refresh = Callable[[Any, str, str, str, Collection[str], "dict[str, Any] | None"], Any]

#: The ARN a resource named as events name it has: (name, account_id, region) -> ARN.
ArnFor = Callable[[str, str, str], str]


@dataclass(frozen=True)
class EventRules:
    """The CloudTrail write events that change a kind: ``aspects`` maps each event name to the
    part it changes (INLINE: + the inline policy's name); ``locate`` finds the resource."""

    source: str
    aspects: Mapping[str, str]
    locate: Locate


class SharedDocuments:
    """Documents every account shares (AWS managed policies): who lists them, what to fetch.

    ``lead()`` is True for the one sync per sweep that lists the shared catalogue (standalone,
    always). ``need(arn, version, updated)`` is True when that version, updated then, is not
    cached and this sync won the claim to fetch it; the task marks what it stored, or releases
    its claims when it fails.
    """

    def lead(self) -> bool:
        return True

    def need(self, arn: str, version: str, updated: str | None) -> bool:
        return True


@dataclass
class CollectContext:
    """What a collector gets: a client of its service in the account and region, the pool
    its per-resource detail reads share there, and its sync's settings section as a dict
    (``Sync.settings``), if it has one."""

    client: Any
    account_id: str
    region: str
    shared: SharedDocuments = field(default_factory=SharedDocuments)
    reads: DetailReads = SERIAL
    options: Mapping[str, Any] = field(default_factory=dict)


#: A full listing of one sync in one account and region: one Listing per kind it writes.
Collect = Callable[[CollectContext], "dict[str, Listing]"]

#: One listing of every account and region at once (an AWS Config aggregator):
#: (client, aggregator name, its region, accounts, regions, resource types)
#: -> {(account, region): {kind: Listing}}.
Aggregate = Callable[..., "dict[tuple[str, str], dict[str, Listing]]"]


def single(kind: str, collect: Callable[[Any, str, str], Listing]) -> Collect:
    """A sync of one kind from a ``collect_*(client, account_id, region)`` function."""

    def run(ctx: CollectContext) -> dict[str, Listing]:
        return {kind: collect(ctx.client, ctx.account_id, ctx.region)}

    run.__name__ = run.__qualname__ = getattr(collect, "__name__", "collect")
    return run


def detailed(kind: str, collect: Callable[[Any, str, str, DetailReads], Listing]) -> Collect:
    """A sync of one kind from a ``collect_*(client, account_id, region, reads)`` function
    that reads each listed resource's details on the context's pool."""

    def run(ctx: CollectContext) -> dict[str, Listing]:
        return {kind: collect(ctx.client, ctx.account_id, ctx.region, ctx.reads)}

    run.__name__ = run.__qualname__ = getattr(collect, "__name__", "collect")
    return run
