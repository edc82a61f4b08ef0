"""Worker logging, in the shapes Celery users grep for, with Celery's logging signals.

A receiver of ``setup_logging`` takes logging over entirely. Otherwise, with
``worker_hijack_root_logger`` on (the default), the root logger's handlers are replaced by
ours; with it off, handlers the user already put on the root logger stay and ours is not
added (only the level is set), as in Celery.
"""

from __future__ import annotations

import logging
import sys

from .. import signals

FORMAT = "[%(asctime)s: %(levelname)s/%(processName)s] %(message)s"


def setup(level: str | int = "WARNING", fmt: str | None = None, logfile: str | None = None,
          hijack: bool = True) -> None:
    if isinstance(level, str):
        level = level.upper()
        if level not in logging.getLevelNamesMapping():
            import click

            raise click.BadParameter(f"unknown log level {level!r} (use debug, info, warning, error)")
    fmt = fmt or FORMAT
    if signals.setup_logging.receivers:
        signals.setup_logging.send(sender=None, loglevel=level, logfile=logfile, format=fmt, colorize=False)
        return
    root = logging.getLogger()
    if hijack:
        for old in list(root.handlers):
            root.removeHandler(old)
    if hijack or not root.handlers:
        handler: logging.Handler = logging.FileHandler(logfile) if logfile else logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(fmt))
        root.addHandler(handler)
    root.setLevel(level)
    for signal, logger in ((signals.after_setup_logger, root),
                           (signals.after_setup_task_logger, logging.getLogger("celeriac.task"))):
        if signal.receivers:
            signal.send(sender=None, logger=logger, loglevel=level, logfile=logfile, format=fmt, colorize=False)
