"""The fault battery's quick profile: every row on celeriac Redis and SQLite (and one each on
Redis Sentinel and Redis Cluster), real worker and beat processes, a private redis-server (or
set-up) per row. Selected with ``-m faults``; the table and ``N passed, M failed`` print at the
end of the run (see docs/reliability.md)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from faults.battery import plan
from faults.rows import QUICK, ROWS, Row, run_row, slug

ROOT: list[Path] = []

# Of the Sentinel and Cluster rows (benchmarks/fault_battery.py --sides celeriac-sentinel,
# celeriac-cluster) one each runs here: the master killed under load with wait_replicas=1, the
# promise the others build on (about 30 s each, most of it the set-up and the failover).
CASES = plan(("celeriac-redis", "celeriac-sqlite"), ROWS) + [
    case for case in plan(("celeriac-sentinel", "celeriac-cluster"), ROWS)
    if case[0].name in ("sentinel master kill -9 under load, wait_replicas=1",
                        "cluster master kill -9 under load, wait_replicas=1")]


@pytest.mark.faults
@pytest.mark.timeout(400)
@pytest.mark.parametrize(("row", "kind", "broker"), CASES, ids=[f"{slug(r.name)}-{b}" for r, _, b in CASES])
def test_fault_row(row: Row, kind: str, broker: str, tmp_path_factory: pytest.TempPathFactory,
                   request: pytest.FixtureRequest) -> None:
    """Lost 0; duplicates only of tasks whose process was killed or paused (none after a broker
    stall); no result overwritten; each row's own bounds (see its docstring in rows.py)."""
    if not ROOT:
        ROOT.append(tmp_path_factory.mktemp("faults"))
    outcome = run_row(row, kind, broker, QUICK, ROOT[0])
    # Under pytest-xdist the row runs in a worker process; the report's user properties are what
    # reaches the controller, where conftest.py prints the table.
    request.node.user_properties.append(("fault_outcome", json.dumps(dataclasses.asdict(outcome), default=str)))
    request.node.user_properties.append(("fault_logs", str(ROOT[0])))
    assert outcome.error is None, f"the row could not run: {outcome.error}"
    assert outcome.passed, "; ".join(outcome.failures) + f" ({outcome.extra})"
