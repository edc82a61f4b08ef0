"""The result-store contract.

A result store keeps, per task id, one *meta* record: ``status`` (a state), ``result`` (the
return value, or for custom states like PROGRESS the user's meta dict), and for failures
``exc_type``, ``exc_module``, ``exc_message`` and ``traceback`` stored as data. Plus
``date_done``, ``retries``, ``worker``, ``name`` and, with ``result_extended``, ``args`` and
``kwargs``. Records expire after ``expires`` seconds (None: never).

The base class owns behaviour (encoding, waiting with a deadline, the PENDING default);
implementations own four primitives: write, read, delete, and a blocking wait that is woken by
a notification when a task reaches a ready state, never by a polling loop in the caller.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from .. import message, states

Meta = dict[str, Any]


def pending_meta(task_id: str) -> Meta:
    return {"task_id": task_id, "status": states.PENDING, "result": None}


class ResultBackend(abc.ABC):
    schemes: tuple[str, ...] = ()

    def __init__(self, url: str, *, expires: float | None = 86400.0) -> None:
        self.url = url
        self.expires = expires

    # -- primitives -------------------------------------------------------------------------
    @abc.abstractmethod
    def write(self, records: Sequence[tuple[str, bytes, bool]]) -> None:
        """Store ``(task_id, encoded meta, ready)`` records, replacing earlier ones, each expiring
        after ``self.expires``. For each ready record, wake every :meth:`wait_ready` on its id.
        Batches in one round trip where the store allows."""

    @abc.abstractmethod
    def read(self, task_id: str) -> bytes | None:
        """The encoded meta of ``task_id``, or None when unknown or expired."""

    def read_many(self, task_ids: Sequence[str]) -> list[bytes | None]:
        return [self.read(task_id) for task_id in task_ids]

    @abc.abstractmethod
    def delete(self, task_id: str) -> None:
        """Forget ``task_id``'s record."""

    @abc.abstractmethod
    def wait_ready(self, task_id: str, timeout: float) -> bool:
        """Block until ``task_id`` has been written in a ready state, or ``timeout`` passes.

        Returns True when woken (including when the ready record already existed before the
        call), False on timeout. May return True spuriously; callers re-read."""

    def close(self) -> None:
        """Release connections."""

    # -- behaviour --------------------------------------------------------------------------
    @staticmethod
    def make_meta(task_id: str, state: str, result: Any = None, **fields: Any) -> Meta:
        meta: Meta = {"task_id": task_id, "status": state, "result": result}
        if state in states.READY_STATES:
            meta["date_done"] = datetime.now(UTC).isoformat()
        meta.update({k: v for k, v in fields.items() if v is not None})
        return meta

    def store(self, task_id: str, state: str, result: Any = None, **fields: Any) -> None:
        """Store one state (encoding errors raise EncodeError before anything is written)."""
        meta = self.make_meta(task_id, state, result, **fields)
        self.write([(task_id, message.dumps(meta), state in states.READY_STATES)])

    def get_meta(self, task_id: str) -> Meta:
        data = self.read(task_id)
        return pending_meta(task_id) if data is None else message.loads(data)

    def get_many(self, task_ids: Sequence[str]) -> list[Meta]:
        return [pending_meta(tid) if data is None else message.loads(data)
                for tid, data in zip(task_ids, self.read_many(task_ids), strict=True)]

    def wait_for(self, task_id: str, timeout: float | None = None) -> Meta | None:
        """The meta of ``task_id`` once it is ready, or None if ``timeout`` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = 5.0 if deadline is None else deadline - time.monotonic()
            # Waiting first costs nothing when the task is already done (the notification is
            # still there) and saves a read when it is not. Capped so a lost notification
            # (store restarted) costs seconds, not forever.
            data = self.wait_and_read(task_id, min(max(remaining, 0.0), 5.0))
            meta = pending_meta(task_id) if data is None else message.loads(data)
            if meta["status"] in states.READY_STATES:
                return meta
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def wait_and_read(self, task_id: str, timeout: float) -> bytes | None:
        """:meth:`wait_ready` then :meth:`read`; stores that can do both in one round trip do."""
        if timeout > 0:
            self.wait_ready(task_id, timeout)
        return self.read(task_id)

    def forget(self, task_id: str) -> None:
        self.delete(task_id)

    def __repr__(self) -> str:
        from ..brokers.base import redact_url

        return f"<{type(self).__name__} {redact_url(self.url)}>"
