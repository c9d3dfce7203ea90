"""Secrets read from files: ``INVENTORY_<KEY>_FILE`` and ``INVENTORY_SECRETS_DIR``.

Pure tests: real files under tmp_path, no server fixture. Environments are passed to
``load_settings(environ=...)``; the CLI tests set variables through monkeypatch only.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import BaseModel, SecretStr

from inventory.cli import main
from inventory.observability import RedactingFilter, secret_values
from inventory.settings import ConfigError, Settings, load_settings
from inventory.settings.secret_files import MAX_SECRET_BYTES

BROKER = "redis://:Br0ker-Sekr1t@mq.example:6379/0"
DSN = "https://Dsn-Sekr1t@sentry.example/1"
COOKIE = "Cookie-Sekr1t-0123456789"
EXTERNAL_ID = "Ext-Sekr1t-42"


def secret_file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def refused(environ: dict[str, str], paths: list[Path] | None = None) -> str:
    """The ConfigError message of an environment that must be refused."""
    with pytest.raises(ConfigError) as exc:
        load_settings(paths=paths or [], environ=environ)
    return str(exc.value)


def secret_keys(model: type[BaseModel] = Settings, prefix: str = "") -> list[str]:
    """Dotted keys of every SecretStr field in the settings tree."""
    keys: list[str] = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys += secret_keys(annotation, f"{prefix}{name}.")
        elif "SecretStr" in str(annotation):
            keys.append(f"{prefix}{name}")
    return keys


# --- INVENTORY_<KEY>_FILE ------------------------------------------------------------------


def test_file_variables_set_the_four_usual_secrets_without_the_trailing_newline(
    tmp_path: Path,
) -> None:
    environ = {
        "INVENTORY_CELERY__BROKER_URL_FILE": str(secret_file(tmp_path, "b", BROKER + "\n")),
        "INVENTORY_SENTRY__DSN_FILE": str(secret_file(tmp_path, "d", DSN + "\n")),
        "INVENTORY_WEB__COOKIE_SECRET_FILE": str(secret_file(tmp_path, "c", COOKIE)),
        "INVENTORY_AWS__EXTERNAL_ID_FILE": str(secret_file(tmp_path, "e", EXTERNAL_ID + "\r\n")),
    }

    settings = load_settings(paths=[], environ=environ)

    assert settings.celery.broker_url == BROKER
    assert settings.sentry.dsn == SecretStr(DSN)
    assert settings.web.cookie_secret == SecretStr(COOKIE)
    assert settings.aws.external_id == SecretStr(EXTERNAL_ID)


def test_file_text_is_taken_as_written_not_parsed_as_yaml(tmp_path: Path) -> None:
    environ = {
        "INVENTORY_WEB__COOKIE_SECRET_FILE": str(secret_file(tmp_path, "c", "[a, b]\n\n")),
        "INVENTORY_SENTRY__DSN_FILE": str(secret_file(tmp_path, "d", "#not a comment\n")),
        "INVENTORY_AWS__EXTERNAL_ID_FILE": str(secret_file(tmp_path, "e", " 000123 \n")),
    }

    settings = load_settings(paths=[], environ=environ)

    assert settings.web.cookie_secret == SecretStr("[a, b]")
    assert settings.sentry.dsn == SecretStr("#not a comment")
    assert settings.aws.external_id == SecretStr(" 000123 ")


def test_file_text_is_converted_by_the_type_of_its_key(tmp_path: Path) -> None:
    environ = {
        "INVENTORY_CELERY__WORKER_CONCURRENCY_FILE": str(secret_file(tmp_path, "n", "8\n")),
        "INVENTORY_AWS__ASSUME_ROLE_FILE": str(secret_file(tmp_path, "a", "false\n")),
    }

    settings = load_settings(paths=[], environ=environ)

    assert settings.celery.worker_concurrency == 8
    assert settings.aws.assume_role is False


def test_missing_file_is_refused_naming_the_variable_and_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "missing"

    message = refused({"INVENTORY_SENTRY__DSN_FILE": str(missing)})

    assert message == (
        f"INVENTORY_SENTRY__DSN_FILE: cannot read {missing}: No such file or directory"
    )


def unusable_file(tmp_path: Path, kind: str) -> Path:
    """A path that cannot serve as a secret file, for the reason ``kind`` names."""
    if kind == "directory":
        return tmp_path
    if kind == "device":
        return Path("/dev/null")
    path = tmp_path / kind
    content = {"empty": b"\n\n", "not-utf8": b"caf\xe9", "too-large": b"x" * (MAX_SECRET_BYTES + 1)}
    path.write_bytes(content[kind])
    return path


@pytest.mark.parametrize(
    ("kind", "problem"),
    [
        ("directory", "cannot read {path}: Is a directory"),
        ("device", "cannot read {path}: not a regular file"),
        ("empty", "{path} is empty"),
        ("not-utf8", "{path} is not UTF-8 text"),
        ("too-large", f"{{path}} is larger than {MAX_SECRET_BYTES} bytes"),
    ],
)
def test_unusable_file_is_refused_naming_the_variable_and_the_path(
    tmp_path: Path, kind: str, problem: str
) -> None:
    path = unusable_file(tmp_path, kind)

    message = refused({"INVENTORY_WEB__COOKIE_SECRET_FILE": str(path)})

    assert message == "INVENTORY_WEB__COOKIE_SECRET_FILE: " + problem.format(path=path)


def test_file_variable_naming_no_file_is_refused() -> None:
    assert refused({"INVENTORY_WEB__COOKIE_SECRET_FILE": " "}) == (
        "INVENTORY_WEB__COOKIE_SECRET_FILE: names no file"
    )


def test_variable_and_its_file_variable_together_are_refused(tmp_path: Path) -> None:
    message = refused(
        {
            "INVENTORY_CELERY__BROKER_URL": "redis://plain:6379/0",
            "INVENTORY_CELERY__BROKER_URL_FILE": str(secret_file(tmp_path, "b", BROKER)),
        }
    )

    assert message == (
        "INVENTORY_CELERY__BROKER_URL and INVENTORY_CELERY__BROKER_URL_FILE are both set: "
        "set one of them"
    )


def test_file_variable_overrides_the_yaml_file(tmp_path: Path) -> None:
    config = secret_file(tmp_path, "inventory.yaml", "celery: {broker_url: 'redis://yaml/0'}\n")
    environ = {"INVENTORY_CELERY__BROKER_URL_FILE": str(secret_file(tmp_path, "b", BROKER))}

    assert load_settings(paths=[config], environ=environ).celery.broker_url == BROKER


def test_bad_value_read_from_a_file_is_never_echoed(tmp_path: Path) -> None:
    # The operator wrote only the password into the file: the URL check refuses it.
    environ = {"INVENTORY_REDIS__URL_FILE": str(secret_file(tmp_path, "r", "Qz1Kx2-pw\n"))}

    message = refused(environ)

    assert message == (
        "invalid configuration (defaults + INVENTORY_* environment):\n"
        "  redis.url = '***': expected a redis://, rediss:// or unix:// URL"
    )


def test_section_error_around_a_value_read_from_a_file_shows_no_value(tmp_path: Path) -> None:
    environ = {
        "INVENTORY_CLOUDTRAIL__SOURCE": "bogus source",
        "INVENTORY_CLOUDTRAIL__QUEUE_URL_FILE": str(secret_file(tmp_path, "q", "Qz1Kx2-q\n")),
    }

    message = refused(environ)

    assert message == (
        "invalid configuration (defaults + INVENTORY_* environment):\n"
        "  cloudtrail = '***': "
        "source must be 'sqs', 'lookup_events', 'none' or 'package.module:factory'"
    )


# --- INVENTORY_SECRETS_DIR -----------------------------------------------------------------


def secrets_dir(tmp_path: Path, files: dict[str, str]) -> Path:
    directory = tmp_path / "secrets"
    directory.mkdir()
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def test_secrets_dir_sets_one_key_per_file_named_like_the_variable(tmp_path: Path) -> None:
    directory = secrets_dir(
        tmp_path,
        {
            "celery__broker_url": BROKER + "\n",
            "SENTRY__DSN": DSN,
            "web__cookie_secret": COOKIE + "\n",
            "aws__external_id": EXTERNAL_ID,
        },
    )

    settings = load_settings(paths=[], environ={"INVENTORY_SECRETS_DIR": str(directory)})

    assert settings.celery.broker_url == BROKER
    assert settings.sentry.dsn == SecretStr(DSN)
    assert settings.web.cookie_secret == SecretStr(COOKIE)
    assert settings.aws.external_id == SecretStr(EXTERNAL_ID)


def test_secrets_dir_skips_kubernetes_hidden_entries(tmp_path: Path) -> None:
    directory = secrets_dir(tmp_path, {"..data_note": "x", ".hidden": "y"})
    (directory / "..2024_01_01_00_00_00.1").mkdir()
    (directory / "..2024_01_01_00_00_00.1" / "web__cookie_secret").write_text(COOKIE)
    (directory / "..data").symlink_to(directory / "..2024_01_01_00_00_00.1")
    (directory / "web__cookie_secret").symlink_to(directory / "..data" / "web__cookie_secret")

    settings = load_settings(paths=[], environ={"INVENTORY_SECRETS_DIR": str(directory)})

    assert settings.web.cookie_secret == SecretStr(COOKIE)
    assert settings.model_dump(exclude={"web"}) == Settings().model_dump(exclude={"web"})


def test_secrets_dir_file_with_unknown_name_is_refused_with_a_suggestion(tmp_path: Path) -> None:
    directory = secrets_dir(tmp_path, {"celery__broker_ulr": BROKER})

    message = refused({"INVENTORY_SECRETS_DIR": str(directory)})

    assert message == (
        f"invalid configuration (defaults + secret files in {directory}):\n"
        "  celery.broker_ulr: unknown key (did you mean 'broker_url'?)"
    )


def test_missing_secrets_dir_is_refused_naming_the_variable_and_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"

    assert refused({"INVENTORY_SECRETS_DIR": str(missing)}) == (
        f"INVENTORY_SECRETS_DIR: cannot read {missing}: No such file or directory"
    )


def test_subdirectory_in_secrets_dir_is_refused_naming_its_path(tmp_path: Path) -> None:
    directory = secrets_dir(tmp_path, {})
    (directory / "celery").mkdir()

    assert refused({"INVENTORY_SECRETS_DIR": str(directory)}) == (
        f"INVENTORY_SECRETS_DIR: cannot read {directory / 'celery'}: Is a directory"
    )


def test_bad_value_in_secrets_dir_is_never_echoed(tmp_path: Path) -> None:
    directory = secrets_dir(tmp_path, {"celery__broker_url": "http://u:Qz1Kx2@mq/0"})

    message = refused({"INVENTORY_SECRETS_DIR": str(directory)})

    assert message == (
        f"invalid configuration (defaults + secret files in {directory}):\n"
        "  celery.broker_url = '***': "
        "expected a redis://, rediss://, amqp://, amqps:// or sqs:// URL"
    )


def test_precedence_is_yaml_then_secrets_dir_then_environment(tmp_path: Path) -> None:
    config = secret_file(
        tmp_path,
        "inventory.yaml",
        "celery: {broker_url: 'redis://yaml/0', result_backend: 'redis://yaml/1'}\n"
        "redis: {url: 'redis://yaml/2'}\n",
    )
    directory = secrets_dir(
        tmp_path,
        {
            "celery__result_backend": "redis://dir/1",
            "redis__url": "redis://dir/2",
            "beat__redis_url": "redis://dir/3",
        },
    )
    environ = {
        "INVENTORY_SECRETS_DIR": str(directory),
        "INVENTORY_REDIS__URL": "redis://env/2",
        "INVENTORY_BEAT__REDIS_URL_FILE": str(secret_file(tmp_path, "beat", "redis://file/3")),
    }

    settings = load_settings(paths=[config], environ=environ)

    assert (
        settings.celery.broker_url,
        settings.celery.result_backend,
        settings.redis.url,
        settings.beat.redis_url,
    ) == ("redis://yaml/0", "redis://dir/1", "redis://env/2", "redis://file/3")


def test_value_from_a_plain_variable_over_the_secrets_dir_is_shown_in_errors(
    tmp_path: Path,
) -> None:
    """Only values read from files are hidden: the variable's own bad value is named."""
    directory = secrets_dir(tmp_path, {"redis__url": "redis://dir/2"})

    message = refused({"INVENTORY_SECRETS_DIR": str(directory), "INVENTORY_REDIS__URL": "x"})

    assert message.splitlines()[1] == (
        "  redis.url = 'x': expected a redis://, rediss:// or unix:// URL"
    )


# --- masking in output and logs -------------------------------------------------------------


def test_cli_config_masks_secrets_read_from_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = secrets_dir(tmp_path, {"web__cookie_secret": COOKIE, "sentry__dsn": DSN})
    monkeypatch.setenv("INVENTORY_CONFIG", "")
    monkeypatch.setenv("INVENTORY_SECRETS_DIR", str(directory))
    monkeypatch.setenv("INVENTORY_CELERY__BROKER_URL_FILE", str(secret_file(tmp_path, "b", BROKER)))
    monkeypatch.setenv(
        "INVENTORY_AWS__EXTERNAL_ID_FILE", str(secret_file(tmp_path, "e", EXTERNAL_ID))
    )

    result = CliRunner().invoke(main, ["config"])

    assert result.exit_code == 0, result.output
    for secret in ("Br0ker-Sekr1t", DSN, COOKIE, EXTERNAL_ID):
        assert secret not in result.output
    printed = json.loads(result.stdout)
    assert printed["celery"]["broker_url"] == "redis://:***@mq.example:6379/0"
    assert printed["sentry"]["dsn"] == "**********"
    assert printed["web"]["cookie_secret"] == "**********"
    assert printed["aws"]["external_id"] == "**********"


def test_cli_exits_2_when_a_secret_file_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "dsn"
    monkeypatch.setenv("INVENTORY_CONFIG", "")
    monkeypatch.setenv("INVENTORY_SENTRY__DSN_FILE", str(missing))

    result = CliRunner().invoke(main, ["config"])

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"error: INVENTORY_SENTRY__DSN_FILE: cannot read {missing}: No such file or directory\n"
    )


def test_every_secret_field_read_from_a_file_is_masked_in_logs(tmp_path: Path) -> None:
    keys = secret_keys()
    values = {key: f"Sekr1t-{index}-{key}" for index, key in enumerate(keys)}
    directory = secrets_dir(tmp_path, {key.replace(".", "__"): v for key, v in values.items()})
    settings = load_settings(paths=[], environ={"INVENTORY_SECRETS_DIR": str(directory)})
    record = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "values: %s", (" ".join(values.values()),), None
    )

    RedactingFilter(secret_values(settings)).filter(record)

    assert keys == ["aws.external_id", "web.cookie_secret", "sentry.dsn"]
    assert record.getMessage() == "values: *** *** ***"


def test_url_password_read_from_a_file_is_masked_in_logs(tmp_path: Path) -> None:
    environ = {"INVENTORY_CELERY__BROKER_URL_FILE": str(secret_file(tmp_path, "b", BROKER))}
    settings = load_settings(paths=[], environ=environ)
    record = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "auth failed with %s", ("Br0ker-Sekr1t",), None
    )

    RedactingFilter(secret_values(settings)).filter(record)

    assert record.getMessage() == "auth failed with ***"


def test_no_setting_name_ends_in_file_so_file_variables_are_unambiguous() -> None:
    def names(model: type[BaseModel]) -> set[str]:
        found: set[str] = set()
        for name, field in model.model_fields.items():
            found.add(name)
            for inner in (field.annotation, *getattr(field.annotation, "__args__", ())):
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    found |= names(inner)
        return found

    assert {n for n in names(Settings) if n.lower().endswith("_file")} == set()


# --- nested environment keys ----------------------------------------------------------------


def test_section_and_its_keys_from_the_environment_merge_in_any_order() -> None:
    pairs = [
        ("INVENTORY_AWS", "{role_name: Auditor, regions: [us-east-1]}"),
        ("INVENTORY_AWS__REGIONS", "[eu-west-1]"),
    ]

    forward = load_settings(paths=[], environ=dict(pairs))
    backward = load_settings(paths=[], environ=dict(reversed(pairs)))

    for settings in (forward, backward):
        assert (settings.aws.role_name, settings.aws.regions) == ("Auditor", ["eu-west-1"])


@pytest.mark.parametrize("reverse", [False, True])
def test_section_set_as_text_and_key_by_key_is_refused_naming_both(reverse: bool) -> None:
    pairs = [("INVENTORY_AWS", "x"), ("INVENTORY_AWS__ROLE_NAME", "Auditor")]

    message = refused(dict(reversed(pairs) if reverse else pairs))

    assert message == (
        "aws: set both as a whole and key by key (aws.role_name); set one or the other"
    )
