"""Promise 2 through a stalled broker (issue 10, finding 3): a redis-server of the test's own is
paused with SIGSTOP for twice the lease while workers run; nothing may run twice. (SQLite has
no server to stall; its stall rule is covered by the contract suite.)"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

from celeriac.testing import wait_until, worker_process
from conftest import read_marks
from redis_server import start_redis


def started_tags(marks: Path) -> Counter[str]:
    return Counter(line.split()[0] for line in read_marks(marks, "started"))


def test_a_broker_stall_longer_than_the_lease_runs_nothing_twice(tmp_path, marks, app, monkeypatch):
    """Promise 2 through a stalled broker: Redis paused (SIGSTOP) for twice the lease while two
    workers run long tasks. Every task runs exactly once."""
    import coreapp

    server = start_redis()
    try:
        monkeypatch.setenv("CELERIAC_BROKER_URL", server.url)
        coreapp.app.conf.broker_url = server.url
        coreapp.app._reset_connections()
        env = {"CELERIAC_TEST_LEASE": "2", "CELERIAC_TEST_HEARTBEAT": "0.5", "CELERIAC_BROKER_URL": server.url}
        procs = [worker_process("coreapp", "-n", f"s{i}@%h", "-c", "2", broker_url=server.url, env={
            "CELERIAC_TEST_DIR": str(marks), **env}, log_path=str(tmp_path / f"s{i}.log"),
            pythonpath=[str(Path(__file__).parent.parent / "apps")]).wait_ready() for i in range(2)]
        try:
            results = [coreapp.sleep.delay(5, f"t{i}") for i in range(4)]
            wait_until(lambda: len(read_marks(marks, "started")) == 4, 20, message="all four running")
            os.kill(server.proc.pid, signal.SIGSTOP)
            time.sleep(4.5)
            os.kill(server.proc.pid, signal.SIGCONT)
            assert [r.get(timeout=40) for r in results] == [f"t{i}" for i in range(4)]
            time.sleep(3)  # anything wrongly recovered would have started again by now
        finally:
            for proc in procs:
                proc.kill()
        assert started_tags(marks) == Counter({f"t{i}": 1 for i in range(4)})
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
        server.stop()
