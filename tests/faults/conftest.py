"""Prints the battery's table after the run, whatever passed.

Rows may run in pytest-xdist worker processes, so outcomes travel to the controller in each
report's user properties rather than through a module global."""

from __future__ import annotations

import json
from typing import Any

from faults.check import Outcome

_OUTCOMES: list[Outcome] = []
_LOG_ROOTS: list[str] = []


def pytest_runtest_logreport(report: Any) -> None:
    if report.when != "call":
        return
    for key, value in report.user_properties:
        if key == "fault_outcome":
            _OUTCOMES.append(Outcome(**json.loads(value)))
        elif key == "fault_logs" and value not in _LOG_ROOTS:
            _LOG_ROOTS.append(value)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    from faults.battery import table

    if _OUTCOMES:
        terminalreporter.section("fault battery (quick profile)")
        terminalreporter.write_line(table(_OUTCOMES))
        for root in _LOG_ROOTS:
            terminalreporter.write_line(f"logs and ledgers: {root}")
