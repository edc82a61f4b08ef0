"""Worker logging, in the shapes Celery users grep for."""

from __future__ import annotations

import logging
import sys

FORMAT = "[%(asctime)s: %(levelname)s/%(processName)s] %(message)s"


def setup(level: str | int = "WARNING", fmt: str | None = None, logfile: str | None = None) -> None:
    if isinstance(level, str):
        level = level.upper()
        if level not in logging.getLevelNamesMapping():
            import click

            raise click.BadParameter(f"unknown log level {level!r} (use debug, info, warning, error)")
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler: logging.Handler = logging.FileHandler(logfile) if logfile else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(fmt or FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
