"""What the failover tests (Sentinel, Cluster) share: make the replica hold every write before
the kill, time how long until work resumes, and count what the kill cost."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from celeriac.testing import WorkerProcess, wait_until
from conftest import read_marks


def replicated(port: int, timeout: float = 10.0) -> None:
    """Wait until the master on ``port`` has a replica with every write so far (WAIT), so the
    kill tests failover handling, not the asynchronous replication window."""
    import redis

    client = redis.Redis(port=port, socket_timeout=timeout + 1)
    try:
        assert client.execute_command("WAIT", 1, int(timeout * 1000)) == 1
    finally:
        client.close()


def time_until_work_resumes(started: float, deadline: float) -> float:
    """Send a task and read its result, again and again, until one round trip works."""
    import coreapp

    while time.monotonic() < deadline:
        try:
            if coreapp.add.delay(2, 3).get(timeout=3) == 5:
                return time.monotonic() - started
        except Exception:  # the master is gone, or a probe went to it just before the kill
            time.sleep(0.1)
    raise AssertionError("work did not resume within the deadline")


@dataclass
class Cost:
    """What a kill cost the tasks sent before it: the tags that never started, the ones that
    started more than once, and the results the store does not hold as SUCCESS."""

    tasks: int
    lost: set[str]
    duplicates: list[str]
    missing_results: list[str]

    def summary(self) -> str:
        return (f"lost tasks {len(self.lost)} of {self.tasks}, duplicated {len(self.duplicates)} "
                f"{self.duplicates[:10]}, results missing {len(self.missing_results)}")


def cost_of_the_kill(marks: Path, tags: set[str], results: Iterable[Any], timeout: float) -> Cost:
    """Wait (up to ``timeout``) until every tagged task finished, then count from the ledger the
    tasks write (``started`` and ``finished`` marks) and from the result store."""
    import coreapp

    wait_until(lambda: tags <= {line.split()[0] for line in read_marks(marks, "finished")}, timeout,
               message="every task sent before the kill ran")
    started = Counter(line.split()[0] for line in read_marks(marks, "started") if line.split()[0] in tags)
    return Cost(len(tags), tags - set(started), sorted(tag for tag, n in started.items() if n > 1),
                [r.id for r in results if coreapp.app.backend.get_meta(r.id)["status"] != "SUCCESS"])


def assert_workers_came_through(workers: Iterable[WorkerProcess]) -> None:
    """Every worker still runs and logged no crash: they followed the new master by themselves."""
    for worker in workers:
        assert worker.proc is not None and worker.proc.poll() is None
        log = worker.log()
        assert "crashed" not in log and "Traceback" not in log, log[-3000:]
