"""``celeriac demo``."""

from __future__ import annotations

import click
from rich.console import Console


@click.command()
@click.option("--duration", type=click.FloatRange(min=1), help="Stop after this many seconds (for scripts).")
@click.option("--broker", "demo_broker", help="Run on this broker instead of the embedded SQLite file.")
@click.option("--dashboard-port", type=click.IntRange(1, 65535), default=5555, show_default=True,
              help="Serve the dashboard here while the demo runs (the next free port if taken).")
@click.option("--no-dashboard", is_flag=True, help="Do not serve the dashboard.")
def demo(duration: float | None, demo_broker: str | None, dashboard_port: int, no_dashboard: bool) -> None:
    """Watch the whole system work on one machine: a worker, renders with progress, retries, queues."""
    from ..demo.run import Demo

    raise SystemExit(Demo(demo_broker, duration, Console(soft_wrap=True),
                          None if no_dashboard else dashboard_port).run())
