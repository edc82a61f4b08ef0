"""``celeriac -A proj flower`` (and ``dashboard``, the same command): Flower's options, each
also read from ``FLOWER_<OPTION>`` as Flower does."""

from __future__ import annotations

import importlib.util
import os

import click

from ..exceptions import ConfigurationError
from .context import CLIContext

EXTRA = ("fastapi", "uvicorn", "jinja2", "prometheus_client")


def _missing() -> list[str]:
    return [name for name in EXTRA if importlib.util.find_spec(name) is None]


def _tokens(value: str | None) -> list[str]:
    return [t.strip() for t in (value or "").split(",") if t.strip()]


@click.command(context_settings={"show_default": True})
@click.option("--port", type=click.IntRange(1, 65535), default=5555, envvar="FLOWER_PORT", help="Port to serve on.")
@click.option("--address", default="127.0.0.1", envvar="FLOWER_ADDRESS",
              help="Address to bind. Anything but loopback needs --basic_auth or --auth_token.")
@click.option("--basic_auth", "--basic-auth", envvar="FLOWER_BASIC_AUTH", metavar="USER:PW[,USER:PW]",
              help="HTTP Basic users.")
@click.option("--auth_token", "--auth-token", envvar="FLOWER_AUTH_TOKEN", metavar="TOKEN[,TOKEN]",
              help="Bearer tokens accepted in 'Authorization: Bearer <token>'.")
@click.option("--url_prefix", "--url-prefix", default="", envvar="FLOWER_URL_PREFIX",
              help="Serve under this path (behind a reverse proxy).")
@click.option("--max_tasks", "--max-tasks", type=click.IntRange(min=1), default=100_000, envvar="FLOWER_MAX_TASKS",
              help="Tasks kept in the history; the oldest go first.")
@click.option("--max_age", "--max-age", type=click.FloatRange(min=1), envvar="FLOWER_MAX_AGE",
              help="Seconds a task stays in the history after its last event (default: no limit).")
@click.option("--db", envvar="FLOWER_DB", type=click.Path(dir_okay=False),
              help="The history file (default: one per broker under ~/.local/share/celeriac).")
@click.option("--purge_offline_workers", "--purge-offline-workers", type=click.FloatRange(min=0),
              envvar="FLOWER_PURGE_OFFLINE_WORKERS", help="Forget workers offline for this many seconds.")
@click.option("--read_only", "--read-only", is_flag=True, envvar="FLOWER_READ_ONLY",
              help="Refuse every state-changing request (revoke, apply, worker control).")
@click.option("--inspect_timeout", "--inspect-timeout", type=click.FloatRange(min=1), default=1000.0,
              envvar="FLOWER_INSPECT_TIMEOUT", help="Milliseconds to wait for workers' replies.")
@click.pass_obj
def dashboard(obj: CLIContext, port: int, address: str, basic_auth: str | None, auth_token: str | None,
              url_prefix: str, max_tasks: int, max_age: float | None, db: str | None,
              purge_offline_workers: float | None, read_only: bool, inspect_timeout: float) -> None:
    """Serve the dashboard and Flower's HTTP API (http://127.0.0.1:5555 by default)."""
    missing = _missing()
    if missing:
        raise click.ClickException(f"the dashboard needs its extra ({', '.join(missing)} missing): "
                                   "pip install 'celeriac[dashboard]'")
    from ..dashboard import serve
    from ..dashboard.settings import Settings, parse_basic_auth, parse_bool

    settings = Settings(
        port=port, address=address, basic_auth=parse_basic_auth(basic_auth), auth_tokens=_tokens(auth_token),
        url_prefix=url_prefix, max_tasks=max_tasks, max_age=max_age, db=db,
        purge_offline_workers=purge_offline_workers, read_only=read_only,
        unauthenticated_api=parse_bool(os.environ.get("FLOWER_UNAUTHENTICATED_API", ""),
                                       "FLOWER_UNAUTHENTICATED_API"),
        inspect_timeout=inspect_timeout / 1000)
    try:
        settings.check()
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from None
    app = obj.app
    from ..dashboard.settings import default_db

    settings.db = settings.db or default_db(app.broker_url)
    host = f"[{address}]" if ":" in address else address
    click.echo(f"celeriac dashboard on http://{host}:{port}{settings.url_prefix}/ (history in {settings.db})")
    try:
        serve(app, settings)
    except ConfigurationError as exc:  # the alert settings are read when the app is built
        raise click.ClickException(str(exc)) from None
