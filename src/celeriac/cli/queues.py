"""``queues`` and ``dead``: what the broker holds, read from the broker (no worker needed)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from .context import CLIContext
from .control import _plural, _split

if TYPE_CHECKING:
    from ..app import Celery


# -- queues and dead letters -------------------------------------------------------------------------
def known_queues(app: Celery) -> list[str]:
    """Queues that ever held a message, the app's own, and those workers consume (which may
    not have held anything yet)."""
    consumed = {q for w in app.control.workers() for q in w.get("queues", [])}
    return sorted(set(app.broker.queues()) | set(app.queues()) | consumed)


def _queue_names(app: Celery, queues: str | None) -> list[str]:
    return _split(queues) or known_queues(app)


@click.command()
@click.option("-Q", "--queues", help="Comma-separated queues (default: every known queue).")
@click.option("-j", "--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_obj
def queues(obj: CLIContext, queues: str | None, as_json: bool) -> None:
    """Depth of each queue: ready (per priority), delayed, unacked (leased to workers), dead."""
    from .events_view import console, queue_table

    stats = obj.app.control.queues(_queue_names(obj.app, queues))
    if as_json:
        click.echo(json.dumps([{"name": s.name, "ready": s.ready_total,
                                "ready_by_priority": {str(p): n for p, n in enumerate(s.ready) if n},
                                "delayed": s.delayed, "unacked": s.unacked, "dead": s.dead} for s in stats]))
        return
    console().print(queue_table(stats))


@click.group()
def dead() -> None:
    """Dead letters: messages taken out of circulation, with why (list, requeue, drop)."""


def _letters(app: Celery, names: list[str]) -> list[dict[str, Any]]:
    from ..control import describe_body

    out = []
    for name in names:
        for letter in app.control.dead_letters(name, limit=10_000):
            request = describe_body(letter.body, app)
            out.append({"queue": name, "id": letter.id, "task_id": request.get("id"), "task": request.get("name"),
                        "reason": letter.reason, "time": letter.time, "args": request.get("args"),
                        "kwargs": request.get("kwargs")})
    return out


def _chosen(app: Celery, names: list[str], ids: Sequence[str]) -> dict[str, list[str] | None]:
    """Dead-letter ids per queue for ``ids`` (dead-letter or task ids); every letter when empty."""
    if not ids:
        return {name: None for name in names}
    wanted, found = set(ids), set()
    chosen: dict[str, list[str] | None] = {}
    for letter in _letters(app, names):
        hit = {letter["id"], letter["task_id"]} & wanted
        if hit:
            found |= hit
            chosen.setdefault(letter["queue"], []).append(letter["id"])  # type: ignore[union-attr]
    missing = [i for i in ids if i not in found]
    if missing:
        raise click.ClickException(f"no dead letter {', '.join(missing)} in {', '.join(names)}")
    return chosen


@dead.command("list")
@click.option("-Q", "--queues", help="Comma-separated queues (default: every known queue).")
@click.option("-j", "--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_obj
def dead_list(obj: CLIContext, queues: str | None, as_json: bool) -> None:
    """List dead letters with their reasons."""
    from .events_view import console, dead_table

    letters = _letters(obj.app, _queue_names(obj.app, queues))
    if as_json:
        click.echo(json.dumps(letters, default=str))
    elif not letters:
        click.echo("No dead letters.")
    else:
        console().print(dead_table(letters))


@dead.command("requeue")
@click.argument("ids", nargs=-1)
@click.option("-Q", "--queues", help="Comma-separated queues (default: every known queue).")
@click.pass_obj
def dead_requeue(obj: CLIContext, ids: tuple[str, ...], queues: str | None) -> None:
    """Put dead letters (all, or these dead-letter or task ids) back in their queue."""
    app = obj.app
    total = sum(app.control.retry_dead(name, chosen)
                for name, chosen in _chosen(app, _queue_names(app, queues), ids).items())
    click.echo(f"Requeued {_plural(total, 'dead letter')}.")


@dead.command("drop")
@click.argument("ids", nargs=-1)
@click.option("-Q", "--queues", help="Comma-separated queues (default: every known queue).")
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def dead_drop(obj: CLIContext, ids: tuple[str, ...], queues: str | None, force: bool) -> None:
    """Delete dead letters (all, or these dead-letter or task ids) for good."""
    app = obj.app
    chosen = _chosen(app, _queue_names(app, queues), ids)
    if not force:
        what = f"{_plural(len(ids), 'dead letter')}" if ids else "every dead letter"
        click.confirm(f"Delete {what} from {', '.join(chosen) or 'no queue'}? There is no undo", abort=True)
    total = sum(app.control.drop_dead(name, letters) for name, letters in chosen.items())
    click.echo(f"Dropped {_plural(total, 'dead letter')}.")


COMMANDS = [queues, dead]
