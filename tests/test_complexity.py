"""Every function under inventory/ stays at cyclomatic complexity 10 or less (radon's measure)."""

from __future__ import annotations

from pathlib import Path

from radon.complexity import cc_visit

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "inventory"
#: Radon's grade B ends at 10: a function above it is split by step (docs in STYLE.md).
LIMIT = 10


def too_complex(source: str, path: str) -> list[str]:
    """``path:line name complexity`` of each function, method or class in ``source`` above
    the limit (a class's score is its methods' average, as radon gives it)."""
    return [
        f"{path}:{block.lineno} {block.fullname} {block.complexity}"
        for block in cc_visit(source)
        if block.complexity > LIMIT
    ]


def test_every_function_is_at_most_complexity_10() -> None:
    files = sorted(PACKAGE.rglob("*.py"))
    assert files, f"no Python files under {PACKAGE}"
    found = []
    for path in files:
        found += too_complex(path.read_text(), str(path.relative_to(ROOT)))
    assert not found, f"{len(found)} above complexity {LIMIT}:\n" + "\n".join(found)


def test_a_function_with_eleven_branches_is_named_with_its_place() -> None:
    branches = "".join(f"    if x == {i}:\n        return {i}\n" for i in range(10))
    source = f"import os\n\n\ndef busy(x):\n{branches}    return -1\n"
    assert too_complex(source, "inventory/busy.py") == ["inventory/busy.py:4 busy 11"]
    assert too_complex(source.replace("    if x == 9:\n        return 9\n", ""), "x.py") == []
