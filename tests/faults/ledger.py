"""The battery's ledger: one ``O_APPEND`` line per event, written by the process it describes.

Tasks write ``S`` when they start and ``E`` when they end, pool processes ``P`` when they are
born, beat's tick task ``T``; lines are short, and one ``write`` of fewer than ``PIPE_BUF``
bytes to an ``O_APPEND`` file is never interleaved with another, so the file survives kill -9
of any writer. Times are ``time.monotonic()`` (one clock for every process on the machine, so
the harness can compare a task's start with the moment it killed or paused a process) and
wall time for people.

    S <task id> <pid> <worker> <monotonic> <wall> <token>
    E <task id> <pid> <worker> <monotonic> <wall> <token>
    P <pid> <monotonic>
    T <tick> <pid> <monotonic>

``token`` (``<pid>.<start monotonic ns>``) names the attempt; the task returns it, so the checker
can tell which attempt's result the store kept.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

LEDGER_ENV = "FAULTS_LEDGER"


def write(line: str) -> None:
    path = os.environ.get(LEDGER_ENV)
    if not path:
        return
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def started(task_id: str, worker: str | None) -> str:
    """Record a start; return the attempt's token."""
    now = time.monotonic_ns()
    pid = os.getpid()
    token = f"{pid}.{now}"
    write(f"S {task_id} {pid} {worker or '-'} {now / 1e9:.6f} {time.time():.6f} {token}")
    return token


def ended(task_id: str, worker: str | None, token: str) -> None:
    write(f"E {task_id} {os.getpid()} {worker or '-'} {time.monotonic():.6f} {time.time():.6f} {token}")


def process_born() -> None:
    write(f"P {os.getpid()} {time.monotonic():.6f}")


def ticked(tick: str) -> None:
    write(f"T {tick} {os.getpid()} {time.monotonic():.6f}")


@dataclass
class Attempt:
    task_id: str
    pid: int
    worker: str
    start: float
    token: str
    end: float | None = None


@dataclass
class Ledger:
    attempts: dict[str, list[Attempt]] = field(default_factory=dict)
    births: list[tuple[int, float]] = field(default_factory=list)
    ticks: list[str] = field(default_factory=list)

    def ended_ids(self) -> set[str]:
        return {tid for tid, runs in self.attempts.items() if any(a.end is not None for a in runs)}

    def last_end(self, ids: set[str] | None = None) -> float | None:
        ends = [a.end for tid, runs in self.attempts.items() if ids is None or tid in ids
                for a in runs if a.end is not None]
        return max(ends) if ends else None


def read(path: str) -> Ledger:
    ledger = Ledger()
    if not os.path.exists(path):
        return ledger
    by_token: dict[str, Attempt] = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            kind = parts[0]
            if kind == "S" and len(parts) >= 7:
                attempt = Attempt(parts[1], int(parts[2]), parts[3], float(parts[4]), parts[6])
                ledger.attempts.setdefault(parts[1], []).append(attempt)
                by_token[attempt.token] = attempt
            elif kind == "E" and len(parts) >= 7:
                found = by_token.get(parts[6])
                if found is not None:
                    found.end = float(parts[4])
            elif kind == "P" and len(parts) >= 3:
                ledger.births.append((int(parts[1]), float(parts[2])))
            elif kind == "T" and len(parts) >= 2:
                ledger.ticks.append(parts[1])
    return ledger

