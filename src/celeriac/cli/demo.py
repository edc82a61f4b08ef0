"""``celeriac demo``."""

from __future__ import annotations

import click
from rich.console import Console


@click.command()
@click.option("--duration", type=click.FloatRange(min=1), help="Stop after this many seconds (for scripts).")
@click.option("--broker", "demo_broker", help="Run on this broker instead of the embedded SQLite file.")
def demo(duration: float | None, demo_broker: str | None) -> None:
    """Watch the whole system work on one machine: a worker, renders with progress, retries, queues."""
    from ..demo.run import Demo

    raise SystemExit(Demo(demo_broker, duration, Console(soft_wrap=True)).run())
