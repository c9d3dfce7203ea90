"""The regions enabled in an account."""

from __future__ import annotations

from typing import Any

#: Needed only when ``aws.regions`` is empty (sync every enabled region).
ACTIONS = ("ec2:DescribeRegions",)


def get_enabled_regions(client: Any) -> list[str]:
    """EC2 DescribeRegions (opted-in and default regions only), sorted names."""
    regions = client.describe_regions(AllRegions=False)["Regions"]
    return sorted(r["RegionName"] for r in regions)
