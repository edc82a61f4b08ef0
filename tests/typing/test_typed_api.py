"""The typed API cannot silently rot: mypy --strict on typed_calls.py reports exactly the errors
its ``# E:`` markers expect (wrong task arguments, unknown settings, bad crontab fields) and
nothing else (so every ``assert_type`` there holds)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from celeriac.task import Task
from celeriac.task_types import TaskOptions

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
SAMPLE = HERE / "typed_calls.py"
ERROR = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+): error: (?P<message>.*)$")


def expected_errors() -> set[tuple[int, str]]:
    expected = set()
    for number, text in enumerate(SAMPLE.read_text().splitlines(), start=1):
        for marker in text.split("# E: ")[1:]:
            expected.add((number, marker.strip()))
    return expected


def mypy_errors() -> set[tuple[int, str]]:
    # The project's mypy settings (strict, the cache in .venv) so the package's types are read
    # from the cache scripts/test filled just before.
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), "--strict",
         "--no-error-summary", "--no-pretty", "--show-error-codes", str(SAMPLE.relative_to(ROOT))],
        cwd=ROOT, capture_output=True, text=True, timeout=280,
    )
    found = set()
    for line in proc.stdout.splitlines():
        match = ERROR.match(line)
        if match:
            assert Path(match["path"]).name == SAMPLE.name, f"mypy found an error outside the sample: {line}"
            found.add((int(match["line"]), match["message"].strip()))
        elif ": note: " not in line:
            pytest.fail(f"unexpected mypy output: {line}\n{proc.stderr}")
    assert proc.returncode in (0, 1), proc.stderr
    return found


@pytest.mark.timeout(300)
def test_typed_calls_type_check_exactly_as_marked() -> None:
    expected = expected_errors()
    assert len(expected) >= 10, "the sample lost its negative cases"
    found = mypy_errors()
    assert sorted(found - expected) == [], "mypy errors the sample does not expect (a typed API got looser or wrong)"
    assert sorted(expected - found) == [], "expected errors mypy no longer reports (a typed API got looser)"


def test_task_options_type_names_every_option_the_decorator_takes() -> None:
    typed = set(TaskOptions.__optional_keys__) | {"name", "bind", "base"}
    assert typed == set(Task.OPTIONS), "Task.OPTIONS and task_types.TaskOptions must name the same options"
