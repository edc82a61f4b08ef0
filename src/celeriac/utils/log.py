"""``from celeriac.utils.log import get_task_logger``, as from ``celery.utils.log``."""

from __future__ import annotations

import logging

TASK_LOGGER = "celeriac.task"
#: Level names and numbers both ways, as Celery's ``LOG_LEVELS``.
LOG_LEVELS: dict[str | int, int | str] = {}
for _name, _number in logging.getLevelNamesMapping().items():
    LOG_LEVELS[_name] = _number
    LOG_LEVELS[_number] = logging.getLevelName(_number)
#: The root of celeriac's own loggers (Celery's ``base_logger`` is ``celery``'s).
base_logger = logging.getLogger("celeriac")


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)


def get_task_logger(name: str) -> logging.Logger:
    """A logger for task modules: named ``name`` (usually ``__name__``) but a child of
    ``celeriac.task``, as Celery makes it a child of ``celery.task``, so whatever the worker (or a
    receiver of ``after_setup_task_logger``) does to the task logger applies to it."""
    if name == TASK_LOGGER:
        raise RuntimeError(f"logger name {name!r} is reserved for celeriac's own task logger")
    logger = logging.getLogger(name)
    logger.parent = logging.getLogger(TASK_LOGGER)
    return logger


__all__ = ["LOG_LEVELS", "base_logger", "get_logger", "get_task_logger"]
