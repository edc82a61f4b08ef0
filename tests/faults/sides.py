"""The systems under test, behind one face: celeriac on Redis, celeriac on SQLite, Celery 5 on
Redis. A side starts its workers and beats through their own CLIs, sends tasks by name, reads
results back and pushes raw bytes, so every row runs unchanged on each."""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

from faults.procs import TESTS, Proc

QUEUE = "celery"


@dataclass(frozen=True)
class Lease:
    seconds: float = 2.0
    heartbeat: float = 0.5

    def describe(self, side: str) -> str:
        if side == "celery":
            return "visibility timeout 3600 s, acks before running (Celery defaults)"
        return f"lease {self.seconds:g} s, heartbeat {self.heartbeat:g} s"


class Side:
    kind = ""          # "celeriac" or "celery"
    broker = ""        # "redis" or "sqlite"

    def __init__(self, url: str, directory: Path, ledger_path: Path, lease: Lease,
                 transport: dict[str, Any] | None = None) -> None:
        self.url, self.directory, self.ledger_path, self.lease = url, directory, ledger_path, lease
        self.transport = transport
        self.env = {**os.environ, "FAULTS_BROKER_URL": url, "FAULTS_LEDGER": str(ledger_path),
                    "FAULTS_LEASE": str(lease.seconds), "FAULTS_HEARTBEAT": str(lease.heartbeat),
                    "FAULTS_TRANSPORT": json.dumps(transport or {}),
                    "PYTHONPATH": os.pathsep.join([TESTS, os.environ.get("PYTHONPATH", "")])}

    @property
    def label(self) -> str:
        return f"{self.kind} {self.broker}"

    def describe_lease(self) -> str:
        return self.lease.describe(self.kind)

    def worker(self, name: str, concurrency: int = 2, prefetch: int = 4) -> Proc:
        raise NotImplementedError

    def beat(self, index: int) -> Proc:
        raise NotImplementedError

    def send(self, name: str, args: list[Any], task_id: str, countdown: float | None = None) -> None:
        raise NotImplementedError

    def send_many(self, name: str, args: list[Any], task_ids: list[str], due: float) -> None:
        """Send ``len(task_ids)`` calls, all due at the wall time ``due``; ``task_ids`` gets their ids."""
        from datetime import datetime

        eta = datetime.fromtimestamp(due, tz=UTC)
        for i in range(len(task_ids)):
            task_ids[i] = f"burst-{i}-{uuid.uuid4().hex[:8]}"
            self.send_at(name, args, task_ids[i], eta)

    def send_at(self, name: str, args: list[Any], task_id: str, eta: Any) -> None:
        raise NotImplementedError

    def result(self, task_id: str) -> tuple[str, Any]:
        raise NotImplementedError

    def push_raw(self, payload: bytes) -> None:
        raise NotImplementedError

    def in_broker(self) -> int:
        """Messages of the queue still ready, leased or delayed."""
        raise NotImplementedError

    def held(self) -> int:
        """Messages of the queue leased to (or, on Celery, received by) workers now."""
        raise NotImplementedError

    def dead_letters(self) -> list[str]:
        return []

    def close(self) -> None:
        pass


class CeleriacSide(Side):
    kind = "celeriac"

    def __init__(self, url: str, directory: Path, ledger_path: Path, lease: Lease,
                 transport: dict[str, Any] | None = None) -> None:
        super().__init__(url, directory, ledger_path, lease, transport)
        from celeriac import Celery

        scheme = url.split(":", 1)[0]
        self.broker = "cluster" if scheme.startswith("rediscluster") else scheme
        self.app = Celery("faults-harness", broker=url)
        self.app.conf.broker_transport_options = transport

    def worker(self, name: str, concurrency: int = 2, prefetch: int = 4) -> Proc:
        cmd = [sys.executable, "-m", "celeriac", "-A", "faults.celeriac_app", "worker", "-n", name,
               "-c", str(concurrency), "--prefetch-multiplier", str(prefetch), "-l", "info"]
        return Proc(cmd, self.env, self.directory / f"worker-{name.split('@')[0]}.log")

    def beat(self, index: int) -> Proc:
        cmd = [sys.executable, "-m", "celeriac", "-A", "faults.celeriac_app", "beat", "-l", "info"]
        return Proc(cmd, self.env, self.directory / f"beat-{index}.log")

    def send(self, name: str, args: list[Any], task_id: str, countdown: float | None = None) -> None:
        self.app.send_task(name, args, task_id=task_id, countdown=countdown)

    def send_many(self, name: str, args: list[Any], task_ids: list[str], due: float) -> None:
        # One round trip; send_many makes the ids itself, so the row learns them from its results.
        results = self.app.send_many(name, [(args, {})] * len(task_ids), countdown=due - time.time())
        task_ids[:] = [r.id for r in results]

    def result(self, task_id: str) -> tuple[str, Any]:
        res = self.app.AsyncResult(task_id)
        state = res.state
        return state, res.result if state == "SUCCESS" else None

    def push_raw(self, payload: bytes) -> None:
        from celeriac.testing import push_raw

        # Only a Redis URL takes transport options (the Sentinel master's name, wait_replicas).
        push_raw(self.url, QUEUE, payload, **({"transport_options": self.transport} if self.transport else {}))

    def in_broker(self) -> int:
        stats = self.app.broker.stats([QUEUE])[0]
        return int(stats.ready_total + stats.unacked + stats.delayed)

    def held(self) -> int:
        return int(self.app.broker.stats([QUEUE])[0].unacked)

    def dead_letters(self) -> list[str]:
        return [d.reason for d in self.app.broker.dead_letters(QUEUE)]

    def close(self) -> None:
        self.app.close()


class CelerySide(Side):
    kind = "celery"
    broker = "redis"

    def __init__(self, url: str, directory: Path, ledger_path: Path, lease: Lease) -> None:
        super().__init__(url, directory, ledger_path, lease)
        from celery import Celery  # type: ignore[import-untyped]

        self.app = Celery("faults-harness", broker=url, backend=url)
        self.app.conf.broker_connection_retry_on_startup = True
        self.celery = str(Path(sys.executable).parent / "celery")

    def worker(self, name: str, concurrency: int = 2, prefetch: int = 4) -> Proc:
        cmd = [self.celery, "-A", "faults.celery_app", "worker", "-n", name, "-c", str(concurrency),
               "--prefetch-multiplier", str(prefetch), "-l", "info", "--without-mingle", "--without-gossip"]
        return Proc(cmd, self.env, self.directory / f"worker-{name.split('@')[0]}.log")

    def beat(self, index: int) -> Proc:
        cmd = [self.celery, "-A", "faults.celery_app", "beat", "-l", "info",
               "-s", str(self.directory / f"beat-{index}-schedule")]
        return Proc(cmd, self.env, self.directory / f"beat-{index}.log")

    def send(self, name: str, args: list[Any], task_id: str, countdown: float | None = None) -> None:
        self.app.send_task(name, args, task_id=task_id, countdown=countdown)

    def send_at(self, name: str, args: list[Any], task_id: str, eta: Any) -> None:
        self.app.send_task(name, args, task_id=task_id, eta=eta)

    def result(self, task_id: str) -> tuple[str, Any]:
        res = self.app.AsyncResult(task_id)
        state = res.state
        return state, res.result if state == "SUCCESS" else None

    def push_raw(self, payload: bytes) -> None:
        import redis

        client = redis.Redis.from_url(self.url)
        try:
            client.lpush(QUEUE, payload)
        finally:
            client.close()

    def in_broker(self) -> int:
        import redis

        client = redis.Redis.from_url(self.url)
        try:
            return int(client.llen(QUEUE) + client.hlen("unacked"))
        finally:
            client.close()

    def held(self) -> int:
        import redis

        client = redis.Redis.from_url(self.url)
        try:
            return int(client.hlen("unacked"))
        finally:
            client.close()

    def close(self) -> None:
        self.app.close()


def make(kind: str, url: str, directory: Path, ledger_path: Path, lease: Lease,
         transport: dict[str, Any] | None = None) -> Side:
    if kind == "celery":
        return CelerySide(url, directory, ledger_path, lease)
    return CeleriacSide(url, directory, ledger_path, lease, transport)
