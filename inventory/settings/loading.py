"""Loading: YAML files, secret files, ``INVENTORY_*`` environment overrides; then validation."""

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
from inventory.settings.secret_files import (
    FILE_SUFFIX,
    SECRETS_DIR_ENV,
    KeyPath,
    dir_secrets,
    env_file_secrets,
    is_file_variable,
    key_path,
)

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


def _is_override(name: str) -> bool:
    """Whether a variable sets a value directly (not a file, not where the config lives)."""
    return (
        name.startswith(ENV_PREFIX)
        and name not in (CONFIG_ENV, SECRETS_DIR_ENV)
        and not is_file_variable(name, ENV_PREFIX)
    )


def _env_value(raw: str) -> Any:
    """An environment value: lists, mappings and null parsed as YAML, scalars kept as text."""
    # Scalars stay strings for pydantic to coerce, so an account id or bucket name made of
    # digits is never turned into a number.
    try:
        parsed = yaml.load(raw, Loader=_Loader) if raw.strip() else None  # noqa: S506
    except yaml.YAMLError:
        parsed = raw
    return parsed if parsed is None or isinstance(parsed, list | dict) else raw


def _env_overrides(environ: dict[str, str]) -> dict[KeyPath, Any]:
    """``INVENTORY_REDIS__URL=x`` -> ``{("redis", "url"): "x"}``; values are parsed as YAML."""
    return {
        key_path(name[len(ENV_PREFIX) :]): _env_value(raw)
        for name, raw in environ.items()
        if _is_override(name)
    }


def _check_exclusive(environ: dict[str, str]) -> None:
    """A key is set by ``INVENTORY_<KEY>`` or by ``INVENTORY_<KEY>_FILE``, never by both."""
    direct = {key_path(name[len(ENV_PREFIX) :]): name for name in environ if _is_override(name)}
    for name in sorted(environ):
        if not is_file_variable(name, ENV_PREFIX):
            continue
        other = direct.get(key_path(name[len(ENV_PREFIX) : -len(FILE_SUFFIX)]))
        if other is not None:
            raise ConfigError(f"{other} and {name} are both set: set one of them")


def _nest(values: dict[KeyPath, Any]) -> dict[str, Any]:
    """``{("redis", "url"): x}`` -> ``{"redis": {"url": x}}``; a mapping first, then its keys.

    Shorter paths go first so that ``INVENTORY_AWS='{...}'`` plus ``INVENTORY_AWS__REGIONS``
    merge the same way whatever the order of the environment.
    """
    result: dict[str, Any] = {}
    for path in sorted(values, key=lambda p: (len(p), p)):
        node = result
        for depth, part in enumerate(path[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                whole = ".".join(path[: depth + 1])
                raise ConfigError(
                    f"{whole}: set both as a whole and key by key ({'.'.join(path)}); "
                    "set one or the other"
                )
        node[path[-1]] = values[path]
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


def _fill_from_aws_env(data: dict[str, Any], environ: dict[str, str]) -> None:
    """The usual AWS variables fill what neither file nor INVENTORY_* set."""
    aws_region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    if aws_region and data.get("region") is None:
        data["region"] = aws_region
    endpoint = environ.get("AWS_ENDPOINT_URL")
    aws_section = data.get("aws")
    if endpoint and (aws_section is None or isinstance(aws_section, dict)):
        aws_section = dict(aws_section or {})
        aws_section.setdefault("endpoint_url", endpoint)
        data["aws"] = aws_section


def _sources(paths: list[str | Path], environ: dict[str, str]) -> str:
    """Where the settings came from, for the first line of an error."""
    sources = ", ".join(str(p) for p in paths) or "defaults"
    if environ.get(SECRETS_DIR_ENV, "").strip():
        sources += f" + secret files in {environ[SECRETS_DIR_ENV].strip()}"
    if any(k.startswith(ENV_PREFIX) and k not in (CONFIG_ENV, SECRETS_DIR_ENV) for k in environ):
        sources += " + INVENTORY_* environment"
    return sources


def load_settings(
    paths: list[str | Path] | None = None, environ: dict[str, str] | None = None
) -> Settings:
    """Read YAML files (``INVENTORY_CONFIG``, comma-separated, later wins), apply env overrides.

    Later layers win: the files in order, then the secrets directory, then ``INVENTORY_*``
    variables (``INVENTORY_<KEY>`` or ``INVENTORY_<KEY>_FILE``, not both).
    """
    environ = dict(os.environ if environ is None else environ)
    if paths is None:
        raw = environ.get(CONFIG_ENV, "")
        paths = [p for p in raw.split(",") if p.strip()]
    data: dict[str, Any] = {}
    for path in paths:
        data = _deep_merge(data, _read_yaml(Path(path).expanduser()))
    _check_exclusive(environ)
    from_dir = dir_secrets(environ)
    from_env = _env_overrides(environ)
    from_files = env_file_secrets(environ, ENV_PREFIX)
    data = _deep_merge(data, _nest(from_dir))
    data = _deep_merge(data, _nest({**from_env, **from_files}))
    _fill_from_aws_env(data, environ)
    # Values read from files are secrets by intent: an error shows none of them.
    hidden = set(from_files) | (set(from_dir) - set(from_env))
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, _sources(paths, environ), hidden)) from None
