"""The spoke role's permissions, from the registry: docs/aws-permissions.md's generated block.

Every kind declares the AWS read actions its listing and targeted read need; the tasks that are
not kinds (the role quota, the enabled regions) declare theirs in their aws/ module. A test
checks that the document holds exactly this rendering, so the policy operators copy can never
lack an action a new kind added.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from inventory.aws import limits, regions
from inventory.registry import KINDS

BEGIN = "<!-- generated: spoke policy (inventory permissions -o docs/aws-permissions.md) -->"
END = "<!-- end of generated spoke policy -->"
EXTRA_ACTIONS = (*limits.ACTIONS, *regions.ACTIONS)


def spoke_actions() -> dict[str, list[str]]:
    """Every read action a spoke account must allow, by service (sorted, no duplicates)."""
    by_service: dict[str, set[str]] = {}
    for action in [*(a for k in KINDS for a in k.actions), *EXTRA_ACTIONS]:
        by_service.setdefault(action.split(":", 1)[0], set()).add(action)
    return {service: sorted(actions) for service, actions in sorted(by_service.items())}


def spoke_policy() -> dict[str, object]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": service.capitalize(), "Effect": "Allow", "Action": actions, "Resource": "*"}
            for service, actions in spoke_actions().items()
        ],
    }


def render_block() -> str:
    return f"{BEGIN}\n```json\n{json.dumps(spoke_policy(), indent=2)}\n```\n{END}"


def render(document: str) -> str:
    """The document with its generated block replaced by the current rendering."""
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    if not pattern.search(document):
        raise ValueError(f"no generated block ({BEGIN}) in the document")
    return pattern.sub(lambda _: render_block(), document)


def update(path: Path) -> bool:
    """Rewrite the file's generated block; True when it changed."""
    before = path.read_text()
    after = render(before)
    if after != before:
        path.write_text(after)
    return after != before
