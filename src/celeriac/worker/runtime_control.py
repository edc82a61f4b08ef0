"""What remote control changes at run time in a pool process: rate and time limits, revocations
(by id and by stamped header), task events on or off, and the queues consumed. The supervisor's
remote-control thread (worker/remote.py) publishes them on the shared control page after the
slots; a pool process compares the page's generation once per task and reloads only when it moved.
Mixed into ``consumer.Consumer``."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from .. import message
from ..control import REVOKED_MAP, REVOKED_STAMPS_MAP, live_revocations, live_stamp_revocations, stamps_revoked

if TYPE_CHECKING:
    from ..app import Celery
    from ..brokers.base import Broker
    from ..config import Settings
    from ..task import Task
    from .slots import Slots

logger = logging.getLogger("celeriac.worker")


class RuntimeControl:
    """A pool process's copy of what remote control may change, and the lookups that read it."""

    if TYPE_CHECKING:  # the consumer's, set in its __init__ / run()
        app: Celery
        broker: Broker
        slots: Slots | None
        signing_key: bytes | None
        queues: list[str]
        consumed: set[str]

    def _init_control(self, conf: Settings) -> None:
        """The state as configured, before remote control changed anything."""
        self.events = bool(conf.worker_send_task_events)
        self.rate_limits: dict[str, str | int | float | None] = {}
        self.time_limits: dict[str, tuple[float | None, float | None]] = {}
        self.revoked: set[str] = set()
        # header -> revoked values (revoke_by_stamped_headers); empty, it costs a task one test
        self.revoked_stamps: dict[str, list[Any]] = {}
        self._generation = -1
        self._revoked_version = -1

    def _sync_control(self) -> None:
        """Pick up remote-control changes published by the supervisor (a compare per task)."""
        if self.slots is None:
            return
        generation, state = self.slots.control_state() if self.slots.generation() != self._generation \
            else (self._generation, None)
        if state is None:
            return
        self._generation = generation
        self.rate_limits = dict(state.get("rate_limits", {}))
        self.time_limits = {k: (v[0], v[1]) for k, v in state.get("time_limits", {}).items()}
        self.events = bool(state.get("events", self.events))  # enable_events/disable_events
        if state.get("queues"):
            self.queues = list(state["queues"])
            self.consumed.update(self.queues)
        if state.get("revoked_version", 0) != self._revoked_version:
            self._revoked_version = state.get("revoked_version", 0)
            self._load_revoked()

    def _load_revoked(self) -> None:
        self.revoked = set(live_revocations(self.broker.map_get(REVOKED_MAP), time.time(),
                                            float(self.app.conf.worker_revoke_expires), self.signing_key))
        self.revoked_stamps = live_stamp_revocations(self.broker.map_get(REVOKED_STAMPS_MAP), time.time(),
                                                     self.signing_key)

    def _revoked_by_stamp(self, envelope: message.Envelope) -> bool:
        stamps = envelope.headers.get("stamps")
        hit = stamps_revoked(stamps, self.revoked_stamps) if isinstance(stamps, dict) else None
        if hit is not None:
            logger.info("Discarding revoked task %s[%s] (revoked by header: %s)", envelope.task, envelope.id, hit)
        return hit is not None

    def _revoked_meanwhile(self, task_id: str, envelope: message.Envelope | None = None) -> bool:
        self._sync_control()
        return task_id in self.revoked or bool(self.revoked_stamps and envelope is not None
                                               and self._revoked_by_stamp(envelope))

    # -- limits that remote control may change at run time --------------------------------------
    def rate_limit_for(self, task: Task[Any, Any]) -> str | int | float | None:
        if task.name in self.rate_limits:
            return self.rate_limits[task.name]
        return task.rate_limit if task.rate_limit is not None else self.app.conf.task_default_rate_limit

    def time_limits_for(self, task: Task[Any, Any]) -> tuple[float | None, float | None]:
        if task.name in self.time_limits:
            return self.time_limits[task.name]
        return (task.option("time_limit", "task_time_limit"),
                task.option("soft_time_limit", "task_soft_time_limit"))
