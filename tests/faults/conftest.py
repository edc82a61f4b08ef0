"""Prints the battery's table after the run, whatever passed."""

from __future__ import annotations

from typing import Any


def pytest_terminal_summary(terminalreporter: Any) -> None:
    from faults.battery import table
    from faults.test_faults import OUTCOMES, ROOT

    if OUTCOMES:
        terminalreporter.section("fault battery (quick profile)")
        terminalreporter.write_line(table(OUTCOMES))
        if ROOT:
            terminalreporter.write_line(f"logs and ledgers: {ROOT[0]}")
