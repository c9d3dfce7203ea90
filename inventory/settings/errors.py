"""Operator messages for a refused configuration: one line per problem, secrets masked."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from pydantic import BaseModel, ValidationError

from inventory.redaction import MASK, mask_urls_in
from inventory.settings.base import _did_you_mean
from inventory.settings.model import Settings

SECRET_WORDS = ("password", "secret", "token", "dsn", "key")


def _is_secret(loc: tuple[Any, ...]) -> bool:
    parent = _model_at(loc[:-1]) if loc else None
    field = parent.model_fields.get(str(loc[-1])) if parent else None
    return field is not None and "SecretStr" in str(field.annotation)


def _mask(key: str, value: Any, secret: bool = False) -> str:
    if (secret or any(word in key.lower() for word in SECRET_WORDS)) and value not in (None, ""):
        return "'***'"
    text = repr(mask_urls_in(value))
    return text if len(text) <= 80 else text[:77] + "..."


def _format_errors(
    exc: ValidationError, sources: str, hidden: Collection[tuple[str, ...]] = ()
) -> str:
    """One line per problem; values at or around a ``hidden`` key path are never shown."""
    lines = [f"invalid configuration ({sources}):"]
    for error in exc.errors():
        key = ".".join(str(p) for p in error["loc"]) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            parent = _model_at(error["loc"][:-1])
            known = list(parent.model_fields) if parent else []
            message = f"unknown key{_did_you_mean(str(error['loc'][-1]), known)}"
            lines.append(f"  {key}: {message}")
            continue
        if error["type"] == "missing":
            lines.append(f"  {key}: required but missing")
            continue
        loc = tuple(str(p) for p in error["loc"])
        if any(path[: len(loc)] == loc for path in hidden):
            shown = f"'{MASK}'"  # the input is, or holds, a value read from a secret file
        else:
            shown = _mask(key, error.get("input"), _is_secret(tuple(error["loc"])))
        lines.append(f"  {key} = {shown}: {message}")
    return "\n".join(lines)


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The settings model at an error location (list indexes and dict keys skipped)."""
    model: type[BaseModel] = Settings
    skip_key = False
    for part in loc:
        if isinstance(part, int) or skip_key:
            skip_key = False
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        annotation = field.annotation
        inner = getattr(annotation, "__args__", None)
        skip_key = getattr(annotation, "__origin__", None) is dict
        candidates = [annotation, *(inner or ())]
        nxt = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
        if nxt is None:
            return None
        model = nxt
    return model
