"""Helpers shared by every transform: dates, policy documents, tags, per-record errors."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote


class BadRecord(ValueError):
    """A raw AWS record we cannot turn into ours; it is skipped and reported."""


@dataclass(frozen=True)
class SkippedRecord:
    """A record left out of a partition, and why."""

    identifier: str
    reason: str
    arn: str | None = None


#: Epoch seconds as text: SQS answers whole seconds (moto adds a fraction).
EPOCH = re.compile(r"\d{1,12}(\.\d{1,9})?")


def iso(value: datetime | str | float | None) -> str | None:
    """A UTC ISO-8601 timestamp ending in ``Z``, one format for every kind; absent stays None.

    AWS answers datetimes (botocore parses most), ISO-8601 text (AWS Config's JSON, our own
    cached records) or epoch seconds as text (SQS's ``CreatedTimestamp``).
    """
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = _parse_time(value)
    elif not isinstance(value, datetime):
        value = datetime.fromtimestamp(float(value), UTC)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_time(text: str) -> datetime:
    try:
        if EPOCH.fullmatch(text):
            return datetime.fromtimestamp(float(text), UTC)
        return datetime.fromisoformat(text)
    except (ValueError, OverflowError) as exc:
        raise BadRecord(f"{text!r:.40} is not a timestamp") from exc


def day(value: datetime | str | None) -> str | None:
    """The UTC date only: last-used times are tracked by AWS at about this precision anyway."""
    stamp = iso(value)
    return None if stamp is None else stamp[:10]


def policy_document(value: Any, what: str) -> dict[str, Any]:
    """A policy document as a dict; IAM returns URL-encoded JSON where botocore did not decode."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        for text in (value, unquote(value)):
            try:
                parsed = json.loads(text)
            except ValueError:
                continue
            if isinstance(parsed, dict):
                return parsed
    raise BadRecord(f"{what} is not a JSON policy document")


def tags(raw: Iterable[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in raw or ()}


def transform_each(
    raws: Iterable[dict[str, Any]],
    transform: Callable[[dict[str, Any]], dict[str, Any]],
    identify: Callable[[dict[str, Any]], str],
    arn_of: Callable[[dict[str, Any]], Any] = lambda raw: raw.get("Arn"),
) -> tuple[list[dict[str, Any]], list[SkippedRecord]]:
    """Apply a transform to every raw record, skipping (and reporting) the ones that are bad.

    A skipped record keeps its ARN when it has one, so the caller can keep its cached copy.
    """
    records: list[dict[str, Any]] = []
    skipped: list[SkippedRecord] = []
    for raw in raws:
        try:
            records.append(transform(raw))
        except (BadRecord, KeyError, TypeError, AttributeError) as exc:
            reason = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            arn = _safe_call(arn_of, raw)
            skipped.append(
                SkippedRecord(
                    str(_safe_call(identify, raw) or "<unidentified>"),
                    reason,
                    arn if isinstance(arn, str) and arn.startswith("arn:") else None,
                )
            )
    return records, skipped


def _safe_call(fn: Callable[[dict[str, Any]], Any], raw: Any) -> Any:
    try:
        return fn(raw)
    except Exception:  # noqa: BLE001 - only naming the bad record for the report
        return None
