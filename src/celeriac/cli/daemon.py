"""Running in the background, as init scripts and ``celeriac multi`` expect: ``--detach`` and
``--pidfile``."""

from __future__ import annotations

import os
import sys

import click


def read_pid(path: str) -> int | None:
    """The pid a pid file names, if that process still runs (a stale file gives None)."""
    try:
        with open(path) as f:
            pid = int(f.read().strip() or 0)
    except (OSError, ValueError):
        return None
    if pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid  # alive, someone else's
    return pid


def write_pidfile(path: str) -> None:
    """Claim ``path`` for this process; refuse when a live process holds it (a stale one is
    replaced), as Celery does, so a second start of one node cannot run beside the first."""
    running = read_pid(path)
    if running is not None and running != os.getpid():
        raise click.ClickException(f"pidfile {path} names process {running}, which is running: "
                                   "is this worker already started?")
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(f"{os.getpid()}\n")
    os.replace(tmp, path)


def detach(logfile: str | None) -> None:
    """Become a daemon: fork twice (the caller's shell gets its prompt back and the worker can
    never regain a terminal), start a session, and send stdout/stderr to ``logfile`` (or
    /dev/null). The working directory stays, so relative paths keep their meaning."""
    if os.fork():
        os._exit(0)
    os.setsid()
    if os.fork():
        os._exit(0)
    sys.stdout.flush()
    sys.stderr.flush()
    null = os.open(os.devnull, os.O_RDWR)
    out = os.open(logfile, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644) if logfile else null
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)

