"""Who a worker is: its incarnation, and whether an earlier incarnation's process still lives.

A worker restarted by systemd, supervisor, Docker or Kubernetes comes back under the same name.
Leases are held by an *incarnation* (``"<name>#<boot id>"``), so the new process never keeps its
dead predecessor's leases alive by heartbeating. And when the predecessor ran on this same
machine, the new worker can prove it dead (its process is gone) and give its tasks back at once
instead of waiting out the lease.

"This same machine" must be exact, or a worker could release the tasks of a live namesake on
another host: the kernel's boot id plus the PID namespace, so two containers or two hosts never
pass for one. "Its process is gone": no such PID, or a PID reused by a process that started at
another moment (the start time in ``/proc/<pid>/stat`` is in clock ticks since boot).
"""

from __future__ import annotations

import os
import secrets
from functools import cache
from typing import Any


def new_incarnation(name: str) -> str:
    return f"{name}#{secrets.token_hex(4)}"


@cache
def machine_id() -> str:
    """This kernel boot and PID namespace ("" where /proc cannot tell, e.g. not Linux)."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
        return f"{boot}/{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return ""


def process_start(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks since boot; None if there is no such process (or
    only its zombie is left, waiting for a parent that has not reaped it yet)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    fields = stat[stat.rfind(b")") + 2:].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def identity() -> dict[str, Any]:
    """What a supervisor publishes about itself so a successor can judge it."""
    return {"machine": machine_id(), "pid": os.getpid(), "pid_start": process_start(os.getpid())}


def proved_dead(info: dict[str, Any]) -> bool:
    """True only when ``info`` (a registry record's) names a process of this machine that no
    longer runs. Anything uncertain (another machine, missing fields) is not proof."""
    machine = info.get("machine")
    pid = info.get("pid")
    if not machine or machine != machine_id() or not isinstance(pid, int):
        return False
    if pid == os.getpid():
        return False
    started = process_start(pid)
    return started is None or started != info.get("pid_start")
