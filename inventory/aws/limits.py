"""IAM quotas of an account."""

from __future__ import annotations

from typing import Any

ACTIONS = ("iam:GetAccountSummary",)


def get_account_summary(client: Any) -> dict[str, int]:
    """IAM GetAccountSummary: the SummaryMap of usage and quotas."""
    return dict(client.get_account_summary()["SummaryMap"])


def transform_role_limit(summary: dict[str, int], account_id: str) -> dict[str, Any]:
    """Roles used against the roles quota of one account."""
    roles, quota = summary["Roles"], summary["RolesQuota"]
    return {
        "arn": f"arn:aws:iam::{account_id}:root",
        "kind": "iam_role_limit",
        "account_id": account_id,
        "roles": roles,
        "quota": quota,
        "ratio": round(roles / quota, 6) if quota else None,
    }
