"""Loading: YAML files, then ``INVENTORY_*`` environment overrides, validated into Settings."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from inventory.settings.base import ConfigError
from inventory.settings.errors import _format_errors
from inventory.settings.model import Settings

CONFIG_ENV = "INVENTORY_CONFIG"
ENV_PREFIX = "INVENTORY_"


class _Loader(yaml.SafeLoader):
    """YAML that keeps 0-prefixed numbers as text: ``012345670123`` is an id, not octal."""


def _int_or_text(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    text = loader.construct_scalar(node)
    if isinstance(text, str) and re.fullmatch(r"0[0-9_]+", text):
        return text
    return yaml.SafeLoader.construct_yaml_int(loader, node)


_Loader.add_constructor("tag:yaml.org,2002:int", _int_or_text)


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    """``INVENTORY_REDIS__URL=x`` -> ``{"redis": {"url": "x"}}``; values are parsed as YAML."""
    result: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV:
            continue
        path = name[len(ENV_PREFIX) :].lower().split("__")
        # Lists, mappings and null need YAML; scalars stay strings for pydantic to coerce, so
        # an account id or bucket name made of digits is never turned into a number.
        try:
            parsed = yaml.load(raw, Loader=_Loader) if raw.strip() else None  # noqa: S506
        except yaml.YAMLError:
            parsed = raw
        value = parsed if parsed is None or isinstance(parsed, list | dict) else raw
        node = result
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return result


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{CONFIG_ENV}: cannot read {path}: {exc.strerror}") from exc
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    return data


def load_settings(
    paths: list[str | Path] | None = None, environ: dict[str, str] | None = None
) -> Settings:
    """Read YAML files (``INVENTORY_CONFIG``, comma-separated, later wins), apply env overrides."""
    environ = dict(os.environ if environ is None else environ)
    if paths is None:
        raw = environ.get(CONFIG_ENV, "")
        paths = [p for p in raw.split(",") if p.strip()]
    data: dict[str, Any] = {}
    for path in paths:
        data = _deep_merge(data, _read_yaml(Path(path).expanduser()))
    data = _deep_merge(data, _env_overrides(environ))
    # The usual AWS variables fill what neither file nor INVENTORY_* set.
    aws_region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    if aws_region and data.get("region") is None:
        data["region"] = aws_region
    endpoint = environ.get("AWS_ENDPOINT_URL")
    aws_section = data.get("aws")
    if endpoint and (aws_section is None or isinstance(aws_section, dict)):
        aws_section = dict(aws_section or {})
        aws_section.setdefault("endpoint_url", endpoint)
        data["aws"] = aws_section
    sources = ", ".join(str(p) for p in paths) or "defaults"
    if any(k.startswith(ENV_PREFIX) and k != CONFIG_ENV for k in environ):
        sources += " + INVENTORY_* environment"
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, sources)) from None
