"""Binding a PynamoDB model to one physical on-demand table, and creating it when missing."""

from __future__ import annotations

from typing import Any, TypeVar

from pynamodb.indexes import GlobalSecondaryIndex
from pynamodb.models import Model

M = TypeVar("M", bound=Model)


def bind(
    base: type[M],
    table_name: str,
    region: str,
    host: str | None,
    indexes: dict[str, tuple[type[GlobalSecondaryIndex[Any]], dict[str, Any]]] | None = None,
) -> type[M]:
    """A subclass of ``base`` bound to ``table_name`` (on-demand billing).

    ``indexes`` maps the model's attribute name of each global secondary index to its class
    and the Meta (index name, projection) the bound copy needs.
    """
    meta = {
        "table_name": table_name,
        "region": region,
        "host": host,
        "billing_mode": "PAY_PER_REQUEST",
        "max_retry_attempts": 5,
    }
    attrs: dict[str, Any] = {"Meta": type("Meta", (), meta)}
    for attribute, (index, index_meta) in (indexes or {}).items():
        bound = type(f"{index.__name__}_bound", (index,), {"Meta": type("Meta", (), index_meta)})
        attrs[attribute] = bound()
    return type(f"{base.__name__}_bound", (base,), attrs)


def ensure_table(model: type[Model], ttl_attribute: str | None = None) -> bool:
    """Create the model's table if it is missing (with TTL on ``ttl_attribute``)."""
    if model.exists():
        return False
    model.create_table(wait=True, billing_mode="PAY_PER_REQUEST")
    if ttl_attribute:
        model._get_connection().update_time_to_live(ttl_attribute)
    return True
