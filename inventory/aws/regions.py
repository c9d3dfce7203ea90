"""The regions enabled in an account."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

#: Needed only when ``aws.regions`` is empty (sync every enabled region).
ACTIONS = ("ec2:DescribeRegions",)

#: How long an account's enabled regions are taken as known: every regional sync of a sweep
#: asks for the same answer, and a region newly enabled is synced within this long.
ENABLED_REGIONS_SECONDS = 900.0


def get_enabled_regions(client: Any) -> list[str]:
    """EC2 DescribeRegions (opted-in and default regions only), sorted names."""
    regions = client.describe_regions(AllRegions=False)["Regions"]
    return sorted(r["RegionName"] for r in regions)


class EnabledRegions:
    """Each account's enabled regions, asked for once per ``seconds`` (a failed ask is not kept)."""

    def __init__(
        self, seconds: float = ENABLED_REGIONS_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.seconds = seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._known: dict[str, tuple[list[str], float]] = {}

    def get(self, account_id: str, client: Callable[[], Any]) -> list[str]:
        """The account's enabled regions; ``client()`` makes the EC2 client when they are asked."""
        now = self.clock()
        with self._lock:
            known = self._known.get(account_id)
        if known is not None and now - known[1] < self.seconds:
            return list(known[0])
        regions = get_enabled_regions(client())
        with self._lock:
            self._known[account_id] = (regions, now)
        return list(regions)
