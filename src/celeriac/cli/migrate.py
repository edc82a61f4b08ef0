"""``celeriac migrate-from-celery``: move the tasks waiting in a Celery Redis broker into celeriac."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from .context import CLIContext
from .control import _split

if TYPE_CHECKING:
    from ..migration.mover import QueueReport
    from ..migration.source import CelerySource


def _describe(report: QueueReport, dry_run: bool) -> list[str]:
    verb = "would move" if dry_run else "moved"
    priorities = ", ".join(f"{p}: {n}" for p, n in sorted(report.by_priority.items()))
    lines = [f"{report.queue}: {report.ready} ready, {report.unacked} unacked in Celery; {verb} {report.moved}"
             + (f" (priority {priorities})" if priorities else "")
             + (f", {report.delayed} with an eta ahead" if report.delayed else "")
             + (f", {report.expired} already expired (celeriac will record them REVOKED)" if report.expired else "")]
    if report.already_moved:
        lines.append(f"  {report.already_moved} moved by an earlier run and back in Celery: removed, not copied")
    if report.taken:
        lines.append(f"  {report.taken} taken by a Celery worker meanwhile: left to Celery")
    for why, count in report.refused.most_common():
        lines.append(f"  {count} left in Celery: {why}")
    return lines


@click.command("migrate-from-celery")
@click.option("--from", "source_url", required=True, metavar="URL",
              help="The Celery broker: redis://[:password@]host:port/db (kombu's Redis transport).")
@click.option("-Q", "--queues", help="Comma-separated queues (default: every queue Celery declared).")
@click.option("--dry-run", is_flag=True, help="Print what would move per queue; change nothing.")
@click.option("--accept-pickle", is_flag=True,
              help="Move pickled messages too (unpickling runs code from the broker).")
@click.option("--force", is_flag=True, help="Run even though clients still consume from the Celery broker.")
@click.pass_obj
def migrate_from_celery(obj: CLIContext, source_url: str, queues: str | None, dry_run: bool,
                        accept_pickle: bool, force: bool) -> None:
    """Move the tasks waiting in a Celery 5 Redis broker (ready, unacked, ETA) into celeriac.

    Stop every Celery worker (and Flower) first: a live worker still holds its prefetched and
    ETA tasks. Each message is copied into celeriac with its task id, then removed from Celery;
    an interrupted run is finished by running it again, without duplicates.
    """
    if not source_url.startswith(("redis://", "rediss://", "unix://")):
        raise click.BadParameter("only a Redis broker (redis://, rediss://, unix://) can be read",
                                 param_hint="--from")
    try:
        from ..migration.mover import Mover
        from ..migration.source import CelerySource, _without_password
    except ImportError:  # redis-py is an extra
        raise click.ClickException("migrate-from-celery needs redis-py: pip install 'celeriac[redis]'") from None
    source = CelerySource(source_url)
    try:
        _check_consumers(source, dry_run, force)
        mover = Mover(source, obj.app, accept_pickle=accept_pickle)
        chosen = _split(queues) or None

        def show(report: QueueReport) -> None:
            for line in _describe(report, dry_run):
                click.echo(line)

        if dry_run:
            reports = mover.plan(chosen)
            for report in reports:
                show(report)
        else:
            reports = mover.run(chosen, done=show)
        if not reports:
            click.echo("no Celery queues found (none declared, nothing unacked); name them with -Q")
        if dry_run:
            target = _without_password(obj.app.broker.url)
            click.echo(f"dry run: nothing changed. Run again without --dry-run to move into {target}.")
    finally:
        source.close()


def _check_consumers(source: CelerySource, dry_run: bool, force: bool) -> None:
    consumers = source.consumers()
    if consumers is None:
        click.echo("warning: cannot list the Celery Redis's clients (CLIENT LIST refused); "
                   "make sure every Celery worker is stopped", err=True)
        return
    if not consumers:
        return
    shown = "; ".join(f"{c.get('addr')} {c.get('name') or ''} ({c.get('cmd')})".replace("  ", " ")
                      for c in consumers[:5])
    text = (f"{len(consumers)} client(s) still consume from {source.url} (Celery workers, Flower): {shown}. "
            "Stop them first: a live Celery worker holds its prefetched and ETA tasks")
    if dry_run or force:
        click.echo(f"warning: {text}.", err=True)
        return
    raise click.ClickException(f"{text}; or pass --force.")
