"""``report``, ``shell`` and ``list bindings``: Celery's commands for looking at an app."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from .. import __version__
from ..utils.report import report as report_text
from .context import CLIContext

if TYPE_CHECKING:
    from ..app import Celery


@click.command()
@click.pass_obj
def report(obj: CLIContext) -> None:
    """Print versions, platform and the app's changed settings (secrets hidden), for bug reports."""
    click.echo(report_text(obj.app))


def shell_namespace(app: Celery, with_tasks: bool = True) -> dict[str, Any]:
    """What ``celeriac shell`` starts with: the app, canvas and every task under its short name."""
    import celeriac

    namespace: dict[str, Any] = {
        "app": app, "celery": app, "Task": celeriac.Task, "chain": celeriac.chain, "chord": celeriac.chord,
        "group": celeriac.group, "chunks": celeriac.chunks, "xmap": celeriac.xmap, "xstarmap": celeriac.xstarmap,
        "signature": celeriac.signature, "subtask": celeriac.signature, "AsyncResult": app.AsyncResult,
    }
    if with_tasks:
        for name, task in app.tasks.items():
            if not name.startswith("celeriac."):
                namespace[name.rsplit(".", 1)[-1]] = task
    return namespace


@click.command()
@click.option("--ipython", "kind", flag_value="ipython", help="Use IPython.")
@click.option("--python", "kind", flag_value="python", help="Use the plain Python shell.")
@click.option("-T", "--without-tasks", is_flag=True, help="Do not put the app's tasks in the namespace.")
@click.pass_obj
def shell(obj: CLIContext, kind: str | None, without_tasks: bool) -> None:
    """An interactive Python with ``app``, canvas and the app's tasks imported (IPython if
    installed, unless --python)."""
    import code

    namespace = shell_namespace(obj.app, with_tasks=not without_tasks)
    if kind != "python":
        try:
            import IPython  # type: ignore[import-not-found]
        except ImportError:
            if kind == "ipython":
                raise click.ClickException("IPython is not installed: pip install ipython") from None
        else:
            IPython.start_ipython(argv=[], user_ns=namespace)
            return
    banner = (f"celeriac {__version__} shell, Python {sys.version.split()[0]}\n"
              f"app: {obj.app.main or '__main__'}; tasks: {', '.join(sorted(k for k in namespace if k not in _BASE))}")
    code.interact(banner=banner, local=namespace, exitmsg="")


_BASE = frozenset({"app", "celery", "Task", "chain", "chord", "group", "chunks", "xmap", "xstarmap", "signature",
                   "subtask", "AsyncResult"})


@click.group("list")
def list_() -> None:
    """List what the broker routes (Celery's ``list bindings``)."""


@list_.command()
@click.pass_obj
def bindings(obj: CLIContext) -> None:
    """Each queue and the routing key that reaches it. celeriac routes by queue name, with no
    exchanges, so a queue's routing key is its name."""
    from .queues import known_queues

    names = known_queues(obj.app)
    width = max([len("Queue"), *map(len, names)])
    click.echo(f"{'Queue':<{width}}  {'Exchange':<8}  Routing Key")
    click.echo(f"{'-' * width}  {'-' * 8}  {'-' * 11}")
    for name in names:
        click.echo(f"{name:<{width}}  {'':<8}  {name}")


def _logtool() -> click.Group:
    from .logtool import logtool

    return logtool


COMMANDS = [report, shell, list_, _logtool()]
