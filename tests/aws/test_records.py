"""Timestamps: every form AWS answers becomes the one ISO-8601 format every record uses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from inventory.aws.records import BadRecord, iso

STAMP = "2023-11-14T22:13:20Z"


@pytest.mark.parametrize(
    "value",
    [
        datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC),  # botocore's parsed timestamps
        datetime(2023, 11, 15, 7, 13, 20, tzinfo=timezone(timedelta(hours=9))),
        datetime(2023, 11, 14, 22, 13, 20),  # naive: AWS's timestamps are UTC
        "1700000000",  # SQS CreatedTimestamp: epoch seconds as text
        1700000000,
        "2023-11-14T22:13:20Z",  # our own cached records
        "2023-11-14T22:13:20+00:00",
        "2023-11-14T17:13:20-05:00",
    ],
)
def test_every_form_of_one_instant_is_the_same_iso_8601_text(value: object) -> None:
    assert iso(value) == STAMP  # type: ignore[arg-type]


def test_fractions_of_a_second_are_kept_in_the_same_format() -> None:
    assert iso("2023-11-14T22:13:20.250Z") == "2023-11-14T22:13:20.250000Z"
    assert iso("1700000000.25") == "2023-11-14T22:13:20.250000Z"  # moto's CreatedTimestamp
    assert iso(datetime(2023, 11, 14, 22, 13, 20, 250000, tzinfo=UTC)) == (
        "2023-11-14T22:13:20.250000Z"
    )


@pytest.mark.parametrize("value", [None, ""])
def test_absent_timestamp_stays_none(value: str | None) -> None:
    assert iso(value) is None


@pytest.mark.parametrize("value", ["yesterday", "2023-13-45T00:00:00Z", "9" * 30])
def test_text_that_is_not_a_timestamp_is_a_bad_record(value: str) -> None:
    with pytest.raises(BadRecord, match="not a timestamp"):
        iso(value)
