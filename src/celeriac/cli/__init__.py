"""The command line: ``celeriac -A proj worker|call|result|purge ...``, shaped like Celery's."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click

from .. import __version__
from ..exceptions import CeleriacError
from .context import CLIContext


class Group(click.Group):
    """Turns celeriac's own errors into one ``Error: ...`` line instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CeleriacError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-A", "--app", "app_spec", envvar="CELERIAC_APP", help="The app: module, module.attr or module:attr.")
@click.option("-b", "--broker", help="Broker URL (overrides the app's broker_url).")
@click.option("--result-backend", help="Result store URL (overrides result_backend).")
@click.option("--workdir", type=click.Path(file_okay=False), help="Change to this directory first.")
@click.option("--config", help="A settings module to load over the app's (app.config_from_object).")
@click.option("-q", "--quiet", is_flag=True, help="No banners (worker, beat).")
@click.option("--no-color", is_flag=True, help="No colour in output (as NO_COLOR=1 does).")
@click.option("--skip-checks", envvar="SKIP_CHECKS", is_flag=True,
              help="Accepted for Celery compatibility: celeriac runs no Django system checks at start.")
@click.version_option(__version__, "--version", prog_name="celeriac", message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx: click.Context, app_spec: str | None, broker: str | None, result_backend: str | None,
        workdir: str | None, config: str | None, quiet: bool = False, no_color: bool = False,
        skip_checks: bool = False) -> None:
    """celeriac: a distributed task queue with Celery's API and CLI."""
    import logging

    # Commands other than worker/beat speak through their output and one-line errors;
    # library warnings (publish retries) would only repeat the error. worker/beat reconfigure.
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s: %(message)s")
    if no_color:
        import os

        os.environ["NO_COLOR"] = "1"  # rich, which draws the tables and live views, reads it
    if workdir:
        import os

        os.chdir(workdir)
    ctx.obj = CLIContext(app_spec, broker, result_backend, config, quiet=quiet)


def _register() -> None:
    from . import beat, control, dashboard, demo, multi, queues, tasks, worker

    cli.add_command(worker.worker)
    cli.add_command(multi.multi)
    cli.add_command(beat.beat)
    cli.add_command(demo.demo)
    # Flower's name, so `celery -A proj flower` habits carry over, and the plain one.
    cli.add_command(dashboard.dashboard, "flower")
    cli.add_command(dashboard.dashboard, "dashboard")
    for command in tasks.COMMANDS:
        cli.add_command(command)
    for command in [*control.COMMANDS, *queues.COMMANDS]:
        cli.add_command(command)
    from .migrate import migrate_from_celery

    cli.add_command(migrate_from_celery)
    from . import info

    for command in info.COMMANDS:
        cli.add_command(command)


_register()


def main(argv: Sequence[str] | None = None) -> None:
    cli.main(args=list(argv) if argv is not None else sys.argv[1:], prog_name="celeriac")
