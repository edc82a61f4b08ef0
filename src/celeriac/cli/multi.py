"""``celeriac multi start|stop|stopwait|restart|kill|show``: several named workers in the
background, for Makefiles and init scripts, as ``celery multi`` does.

``celeriac multi start w1 w2 -A proj -l info -c 2`` starts ``celeriac -A proj worker -n w1@<host>
--detach --pidfile=%n.pid --logfile=%n%I.log -l info -c 2`` and the same for ``w2``; a number
(``start 3``) names the nodes ``celeriac1``..``celeriac3``. Options other than the app's are
passed to every worker. ``stop`` and friends find the workers through their pid files, so give
them the same ``--pidfile`` as ``start`` (the default is ``%n.pid`` in the working directory).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

import click

from ..worker import file_name, node_name
from .context import CLIContext
from .daemon import read_pid

ACTIONS = ("start", "stop", "stopwait", "restart", "kill", "show")
# Options that belong before ``worker`` (they are the command line's, not the worker's).
_GLOBAL = {"-A": "-A", "--app": "-A", "-b": "-b", "--broker": "-b", "--result-backend": "--result-backend",
           "--workdir": "--workdir"}
_FILES = {"--pidfile": "pidfile", "--logfile": "logfile", "-f": "logfile"}


@dataclass
class Plan:
    nodes: list[str]
    global_args: list[str] = field(default_factory=list)
    worker_args: list[str] = field(default_factory=list)
    pidfile: str = "%n.pid"
    logfile: str = "%n%I.log"

    def command(self, node: str) -> list[str]:
        return [sys.executable, "-m", "celeriac", *self.global_args, "worker", "-n", node, "--detach",
                f"--pidfile={self.pidfile}", f"--logfile={self.logfile}", *self.worker_args]

    def pidfile_of(self, node: str) -> str:
        return os.path.abspath(file_name(self.pidfile, node))

    def logfile_of(self, node: str) -> str:
        return os.path.abspath(file_name(self.logfile, node))


def plan(args: list[str], app_spec: str | None) -> Plan:
    names: list[str] = []
    rest = list(args)
    while rest and not rest[0].startswith("-"):
        names.append(rest.pop(0))
    if not names:
        raise click.UsageError("name the nodes: celeriac multi start w1 w2 ... (or a number: start 3)")
    if len(names) == 1 and names[0].isdigit():
        names = [f"celeriac{i}" for i in range(1, int(names[0]) + 1)]
    result = Plan(nodes=[node_name(n) for n in names])
    if app_spec:
        result.global_args += ["-A", app_spec]
    while rest:
        arg = rest.pop(0)
        key, eq, value = arg.partition("=")
        if key in _GLOBAL or key in _FILES:
            if not eq:
                if not rest:
                    raise click.UsageError(f"{key} needs a value")
                value = rest.pop(0)
            if key in _GLOBAL:
                result.global_args += [_GLOBAL[key], value]
            else:
                setattr(result, _FILES[key], value)
        elif key in ("-n", "--hostname", "-D", "--detach"):
            raise click.UsageError(f"{key} is set by multi itself (name the nodes instead)")
        else:
            result.worker_args.append(arg)
    return result


def _start(p: Plan, node: str, timeout: float = 30.0) -> bool:
    pidfile = p.pidfile_of(node)
    running = read_pid(pidfile)
    if running is not None:
        click.echo(f"> {node}: already running (pid {running})")
        return True
    out = subprocess.run(p.command(node), stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if out.returncode != 0:
        click.echo(f"> {node}: FAILED {(out.stderr or out.stdout).strip().splitlines()[-1:]}")
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if read_pid(pidfile) is not None:
            click.echo(f"> {node}: OK (pid {read_pid(pidfile)})")
            return True
        time.sleep(0.1)
    click.echo(f"> {node}: FAILED (no pid file {pidfile} after {timeout:g} s; see {p.logfile_of(node)})")
    return False


def _signal(p: Plan, node: str, signum: int, wait: float | None) -> bool:
    pidfile = p.pidfile_of(node)
    pid = read_pid(pidfile)
    if pid is None:
        click.echo(f"> {node}: not running (no live pid in {pidfile})")
        return True
    os.kill(pid, signum)
    if wait is None:
        click.echo(f"> {node}: {signal.Signals(signum).name} sent (pid {pid})")
        return True
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if not _alive(pid):
            click.echo(f"> {node}: stopped (pid {pid})")
            return True
        time.sleep(0.1)
    click.echo(f"> {node}: still running after {wait:g} s (pid {pid})")
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A detached worker is not our child, but a zombie of one that is would count as alive.
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except (OSError, IndexError):
        return True


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("action", type=click.Choice(ACTIONS))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("--wait", "wait_seconds", type=float, default=60.0, show_default=True,
              help="How long stopwait/restart wait for each worker to stop.")
@click.pass_obj
def multi(obj: CLIContext, action: str, args: tuple[str, ...], wait_seconds: float) -> None:
    """Start or stop several workers in the background: ``celeriac multi start w1 w2 -A proj``."""
    p = plan(list(args), obj.app_spec)
    if obj.config:  # each node loads the same settings module
        p.global_args += ["--config", obj.config]
    ok = True
    for node in p.nodes:
        if action == "show":
            click.echo(" ".join(p.command(node)))
        elif action == "start":
            ok &= _start(p, node)
        elif action == "stop":
            ok &= _signal(p, node, signal.SIGTERM, None)
        elif action == "kill":
            ok &= _signal(p, node, signal.SIGKILL, None)
        elif action == "stopwait":
            ok &= _signal(p, node, signal.SIGTERM, wait_seconds)
        elif action == "restart":
            ok &= _signal(p, node, signal.SIGTERM, wait_seconds) and _start(p, node)
    if not ok:
        raise SystemExit(1)
