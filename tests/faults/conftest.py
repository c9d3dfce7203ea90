"""Fault-injection and bad-input tests (issue 9): every test here is marked ``faults`` and ``slow``.

They still run in CI (``scripts/test`` runs everything); ``-m "not slow"`` skips them locally.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(item.path).parents:
            item.add_marker(pytest.mark.faults)
            item.add_marker(pytest.mark.slow)
