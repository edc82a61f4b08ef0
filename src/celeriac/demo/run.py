"""Drives ``celeriac demo``: starts a worker, sends the seeds' kinds of work, shows it live."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table

from ..brokers.base import redact_url
from ..monitor import EventReader, TaskStates
from ..monitor.reader import FROM_NOW
from ..result import AsyncResult

QUEUES = ("high_priority", "normal_priority", "low_priority")


def demo_url() -> str:
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "celeriac"
    return f"sqlite:///{base / 'demo.db'}"


def fresh_demo_file() -> None:
    """Each demo starts from an empty broker: an earlier run's leftovers (a delayed cleanup, tasks
    of an interrupted run, beat's last ticks) would otherwise run and be counted in this one."""
    path = Path(demo_url().removeprefix("sqlite:///"))
    for leftover in path.parent.glob(f"{path.name}*"):
        leftover.unlink(missing_ok=True)


@dataclass
class Tally:
    """What the event stream said since the demo sent its work, folded by the library's monitor."""

    sent: int = 0
    tasks: TaskStates = field(default_factory=lambda: TaskStates(keep=100_000))

    def observe(self, event: dict[str, Any]) -> None:
        self.tasks.apply(event)

    @property
    def states(self) -> Counter[str]:
        return Counter(task.state for task in self.tasks)

    @property
    def retried(self) -> int:
        return self.tasks.counts["task-retried"]

    @property
    def runtimes(self) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        for task in self.tasks:
            if task.state == "SUCCESS":
                out.setdefault(str(task.name), []).append(float(task.runtime or 0))
        return out


class Demo:
    def __init__(self, broker: str | None, duration: float | None, console: Console,
                 dashboard_port: int | None = 5555) -> None:
        if broker is None:
            fresh_demo_file()
        self.url = broker or demo_url()
        self.duration = duration
        self.console = console
        self.dashboard_port = dashboard_port
        self.dashboard: Any = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.results: list[tuple[str, AsyncResult[Any]]] = []
        self.tally = Tally()
        self.events: EventReader | None = None
        os.environ["CELERIAC_BROKER_URL"] = self.url
        from .tasks import app

        app.conf.broker_url = self.url
        app._reset_connections()
        self.app = app

    # -- steps ----------------------------------------------------------------------------------
    def start_dashboard(self) -> None:
        """Serve the dashboard while the demo runs (on the next free port when 5555 is taken)."""
        if self.dashboard_port is None:
            return
        try:
            from ..dashboard import Settings, serve_in_background
        except ImportError:
            self.console.print("dashboard: not served (pip install 'celeriac[dashboard]' to watch it in a browser)")
            return
        db = str(Path(self.url.removeprefix("sqlite:///")).with_name("demo-dashboard.db")) \
            if self.url.startswith("sqlite:///") else None
        for port in range(self.dashboard_port, self.dashboard_port + 10):
            try:
                self.dashboard = serve_in_background(self.app, Settings(port=port, db=db))
            except OSError:
                continue
            self.console.print(f"dashboard: [cyan]http://127.0.0.1:{port}/[/]   "
                               f"Flower's API: curl http://127.0.0.1:{port}/api/tasks")
            return
        self.console.print(f"dashboard: not served (ports {self.dashboard_port}-{self.dashboard_port + 9} are taken)")

    def start_worker(self) -> None:
        self.log_file = tempfile.NamedTemporaryFile(prefix="celeriac-demo-", suffix=".log", delete=False)  # noqa: SIM115
        env = {**os.environ, "CELERIAC_BROKER_URL": self.url}
        self.worker = subprocess.Popen(
            [sys.executable, "-m", "celeriac", "-A", "celeriac.demo.tasks", "worker", "-l", "info", "-c", "4",
             "-n", "demo@%h", "-Q", ",".join(QUEUES), "-B"],
            env=env, stdout=self.log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.worker.poll() is not None:
                raise SystemExit(f"the demo worker exited: see {self.log_file.name}")
            if b" ready." in Path(self.log_file.name).read_bytes():
                return
            time.sleep(0.1)
        raise SystemExit(f"the demo worker did not start in 30 s: see {self.log_file.name}")

    def send_work(self) -> None:
        from . import tasks

        self.app.broker.purge(list(QUEUES))
        self.events = EventReader(self.app.broker, FROM_NOW)
        self.events.read()  # fixes "now" before the first send, so no event of the demo's work is missed

        def keep(label: str, result: AsyncResult[Any]) -> None:
            self.results.append((label, result))
            self.tally.sent += 1

        keep("render for a premium user", tasks.generate_image.apply_async(
            ("a lighthouse at dawn", 20.0), queue="high_priority", priority=9))
        keep("render", tasks.generate_image.apply_async(("a cat in a spacesuit", 16.0), queue="normal_priority"))
        keep("render", tasks.generate_image.apply_async(("mountains, oil paint", 12.0), queue="normal_priority"))
        for n in range(6):
            keep("email", tasks.send_email.delay(f"user{n}@example.com", fail_times=1 if n % 2 else 0))
        keep("email to a dead mailbox", tasks.send_email.delay("nobody@invalid", fail_times=10))
        for user in range(40):
            keep("chat history", tasks.save_chat_history.delay(user))
        for book in range(4):
            keep("AI summary (30/min)", tasks.summarize_book.delay(book))
        keep("cleanup (in 5 s)", tasks.cleanup_old_results.apply_async(countdown=5))

    def poll_events(self) -> None:
        if self.events is None:
            return
        for _ in range(100):  # bounded: the view must refresh even under a flood of events
            batch = self.events.read()
            if not batch:
                return
            for _, event in batch:
                self.tally.observe(event)

    def finished(self) -> bool:
        return all(result.ready() for _, result in self.results)

    # -- the view -------------------------------------------------------------------------------
    def render(self, started: float) -> Group:
        renders = Table.grid(padding=(0, 2))
        for label, result in self.results:
            if not label.startswith("render"):
                continue
            state, info = result.state, result.info
            percent = 100 if state == "SUCCESS" else (info or {}).get("progress", 0) if state == "PROGRESS" else 0
            message = (info or {}).get("message", "") if state == "PROGRESS" else state.lower()
            renders.add_row(label, ProgressBar(total=100, completed=percent, width=30), f"{percent:3d}%", message)
        depths = Table("queue", "ready", "delayed", "running", "dead", box=None, padding=(0, 2))
        for stats in self.app.control.queues(list(QUEUES)):
            depths.add_row(stats.name, str(stats.ready_total), str(stats.delayed), str(stats.unacked),
                           str(stats.dead))
        done = sum(1 for _, r in self.results if r.ready())
        tally = (f"sent {self.tally.sent}   finished {done}   succeeded {self.tally.states['SUCCESS']}   "
                 f"failed {self.tally.states['FAILURE']}   retries {self.tally.retried}")
        elapsed = time.monotonic() - started
        header = f"celeriac demo on {redact_url(self.url)}   {elapsed:5.1f}s"
        if self.duration:
            header += f" of {self.duration:g}s"
        return Group(Panel(renders, title="image renders (PROGRESS from the task)"),
                     Panel(depths, title="queues"), Panel(tally, title=header))

    def summary(self) -> str:
        states = Counter(result.state for _, result in self.results)
        lines = ["", "Summary", f"  tasks sent:       {len(self.results)}"]
        for state in ("SUCCESS", "FAILURE", "RETRY", "STARTED", "PROGRESS", "PENDING"):
            if states.get(state):
                lines.append(f"  {state.lower():<17} {states[state]}")
        lines.append(f"  retries:          {self.tally.retried}")
        periodic = len(self.tally.runtimes.get("demo.cleanup_old_results", [])) - states_of(self, "cleanup")
        lines.append(f"  periodic cleanups: {max(periodic, 0)} (sent by beat inside the worker, -B)")
        for name, runtimes in sorted(self.tally.runtimes.items()):
            lines.append(f"  {name:<28} ran {len(runtimes):3d}x, mean {sum(runtimes) / len(runtimes):.2f}s")
        unfinished = sum(1 for _, r in self.results if not r.ready())
        lines.append(f"  unfinished:       {unfinished} (still safe in the broker; a worker will run them)"
                     if unfinished else "  every task reached a final state: nothing was lost")
        lines.append(f"  worker log:       {self.log_file.name}")
        return "\n".join(lines)

    # -- run ------------------------------------------------------------------------------------
    def run(self) -> int:
        self.console.print(f"[bold]celeriac demo[/] on the embedded broker [cyan]{redact_url(self.url)}[/]")
        interrupted = False
        self.start_worker()
        self.start_dashboard()
        try:
            self.send_work()
            started = time.monotonic()
            live = self.console.is_terminal
            with Live(self.render(started), console=self.console, refresh_per_second=4,
                      transient=False) if live else _NoLive() as view:
                last_line = 0.0
                while True:
                    self.poll_events()
                    if live:
                        view.update(self.render(started))
                    elif time.monotonic() - last_line >= 2:
                        last_line = time.monotonic()
                        done = sum(1 for _, r in self.results if r.ready())
                        self.console.print(f"[{time.monotonic() - started:5.1f}s] finished {done}/{len(self.results)}"
                                           f", retries {self.tally.retried}")
                    if self.finished() or (self.duration and time.monotonic() - started >= self.duration):
                        break
                    time.sleep(0.25)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            self.stop_worker()
            if self.dashboard is not None:
                self.dashboard.stop()
        self.poll_events()
        self.console.print(self.summary())
        return 130 if interrupted else 0

    def stop_worker(self) -> None:
        if self.worker is None or self.worker.poll() is not None:
            return
        self.worker.send_signal(signal.SIGTERM)
        try:
            self.worker.wait(30)
        except subprocess.TimeoutExpired:
            self.worker.kill()
            self.worker.wait(10)
        finally:
            self.log_file.close()


def states_of(demo: Demo, prefix: str) -> int:
    """How many of the demo's own sends (not beat's) with this label prefix succeeded."""
    return sum(1 for label, r in demo.results if label.startswith(prefix) and r.state == "SUCCESS")


class _NoLive:
    def __enter__(self) -> _NoLive:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, *_: Any) -> None:
        pass
