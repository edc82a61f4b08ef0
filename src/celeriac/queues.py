"""``celeriac.Queue``: a queue declaration for ``task_queues``, standing in for kombu's ``Queue``.

Only what means something here is kept: the name, the routing key (a route may name a routing key
instead of a queue, as on RabbitMQ) and ``x-max-priority`` (priorities are always 0-9 here, so it
is accepted and needs no set-up). kombu's own ``Queue`` objects are read the same way
(:func:`describe`), so Celery configuration works unchanged while kombu is installed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Queue:
    name: str
    exchange: Any = None
    routing_key: str | None = None
    queue_arguments: dict[str, Any] = field(default_factory=dict)
    max_priority: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"a queue needs a name, not {self.name!r}")


def describe(queue: Any) -> tuple[str, str]:
    """(name, routing key) of a queue given as a name, a ``celeriac.Queue`` or a kombu ``Queue``."""
    if isinstance(queue, str):
        return queue, queue
    name = getattr(queue, "name", None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"task_queues holds {queue!r}, which is not a queue name or a Queue")
    return name, getattr(queue, "routing_key", None) or name
