from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from redis_server import (
    ClusterSetup,
    RedisServer,
    SentinelSetup,
    start_cluster_setup,
    start_redis,
    start_sentinel_setup,
)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = start_redis()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """A clean database on the session's own redis-server."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    client.close()
    yield redis_server.url


@pytest.fixture(scope="session")
def sentinel_setup() -> Iterator[SentinelSetup]:
    """One master, one replica, three Sentinels, for the whole session (never failed over:
    a failover test starts a set-up of its own)."""
    setup = start_sentinel_setup()
    try:
        yield setup
    finally:
        setup.stop()


@pytest.fixture
def sentinel_url(sentinel_setup: SentinelSetup) -> Iterator[str]:
    """A clean database on the session's Sentinel-managed master; options in
    ``sentinel_setup.transport_options``."""
    import redis

    client = redis.Redis(port=sentinel_setup.master_port())
    client.flushdb()
    client.close()
    yield sentinel_setup.url


@pytest.fixture(scope="session")
def cluster_setup() -> Iterator[ClusterSetup]:
    """Six cluster nodes (three masters, three replicas) for the whole session (never failed
    over: a failover test starts a cluster of its own)."""
    setup = start_cluster_setup()
    try:
        yield setup
    finally:
        setup.stop()


@pytest.fixture
def cluster_url(cluster_setup: ClusterSetup) -> Iterator[str]:
    """An empty cluster (every master flushed)."""
    cluster_setup.flush()
    yield cluster_setup.url


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Remember each phase's report on the test, so fixtures can tell in teardown that it failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


# -- the fault battery's table -------------------------------------------------------------------
# Here, not in tests/faults/conftest.py: under pytest-xdist the controller process, which prints
# the summary, loads only this conftest. Rows run in worker processes, so their outcomes travel
# in each report's user properties.
_FAULT_OUTCOMES: list[object] = []
_FAULT_LOG_ROOTS: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "call":
        return
    for key, value in report.user_properties:
        if key == "fault_outcome":
            import json

            from faults.check import Outcome

            _FAULT_OUTCOMES.append(Outcome(**json.loads(str(value))))
        elif key == "fault_logs" and value not in _FAULT_LOG_ROOTS:
            _FAULT_LOG_ROOTS.append(str(value))


def pytest_terminal_summary(terminalreporter: object) -> None:
    if not _FAULT_OUTCOMES:
        return
    from faults.battery import table

    reporter: object = terminalreporter
    reporter.section("fault battery (quick profile)")  # type: ignore[attr-defined]
    reporter.write_line(table(_FAULT_OUTCOMES))  # type: ignore[attr-defined]
    for root in _FAULT_LOG_ROOTS:
        reporter.write_line(f"logs and ledgers: {root}")  # type: ignore[attr-defined]
