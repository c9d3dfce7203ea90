"""Secrets read from files, as Docker and Kubernetes mount them: ``*_FILE`` variables, a directory.

``INVENTORY_CELERY__BROKER_URL_FILE=/run/secrets/broker`` sets ``celery.broker_url`` to that
file's text; ``INVENTORY_SECRETS_DIR=/run/secrets`` sets one key per file, named like the
variable without its prefix (``celery__broker_url``). The text is taken as written, never
parsed as YAML: a generated password that starts with ``[``, ``{`` or ``#`` stays a string.
"""

from __future__ import annotations

import stat
from pathlib import Path

from inventory.settings.base import ConfigError

SECRETS_DIR_ENV = "INVENTORY_SECRETS_DIR"
FILE_SUFFIX = "_FILE"
#: Secrets are short; a cap keeps a path mistyped as /dev/zero or a log file from being read.
MAX_SECRET_BYTES = 65_536

#: A setting's place in the settings tree: ``("celery", "broker_url")``.
KeyPath = tuple[str, ...]


def key_path(name: str) -> KeyPath:
    """``CELERY__BROKER_URL`` (an env name without prefix, or a file name) -> its key path."""
    return tuple(name.lower().split("__"))


def read_secret(path: Path, source: str) -> str:
    """The text of one secret file without trailing newlines; errors name the source and path.

    No message ever holds the file's content.
    """
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise ConfigError(f"{source}: cannot read {path}: Is a directory")
        # A FIFO or a device would block or never end: a mounted secret is a regular file.
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{source}: cannot read {path}: not a regular file")
        with path.open("rb") as handle:
            data = handle.read(MAX_SECRET_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_SECRET_BYTES:
        raise ConfigError(f"{source}: {path} is larger than {MAX_SECRET_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: {path} is not UTF-8 text") from None
    # `echo secret > file` and `kubectl create secret --from-file` leave a newline behind.
    text = text.rstrip("\r\n")
    if not text:
        raise ConfigError(f"{source}: {path} is empty")
    return text


def is_file_variable(name: str, prefix: str) -> bool:
    """Whether an environment variable names a secret file (``INVENTORY_<KEY>_FILE``)."""
    return name.startswith(prefix) and name.upper().endswith(FILE_SUFFIX)


def env_file_secrets(environ: dict[str, str], prefix: str) -> dict[KeyPath, str]:
    """The values of every ``INVENTORY_<KEY>_FILE`` variable, read from the files they name."""
    values: dict[KeyPath, str] = {}
    for name, raw in sorted(environ.items()):
        if not is_file_variable(name, prefix):
            continue
        if not raw.strip():
            raise ConfigError(f"{name}: names no file")
        path = Path(raw.strip()).expanduser()
        values[key_path(name[len(prefix) : -len(FILE_SUFFIX)])] = read_secret(path, name)
    return values


def dir_secrets(environ: dict[str, str]) -> dict[KeyPath, str]:
    """One value per file in ``INVENTORY_SECRETS_DIR``, keyed by the file's name."""
    raw = environ.get(SECRETS_DIR_ENV, "").strip()
    if not raw:
        return {}
    directory = Path(raw).expanduser()
    try:
        entries = sorted(directory.iterdir())
    except OSError as exc:
        raise ConfigError(
            f"{SECRETS_DIR_ENV}: cannot read {directory}: {exc.strerror or exc}"
        ) from None
    # Kubernetes mounts its bookkeeping as ..data and ..<timestamp> next to the secrets.
    return {
        key_path(entry.name): read_secret(entry, SECRETS_DIR_ENV)
        for entry in entries
        if not entry.name.startswith(".")
    }
