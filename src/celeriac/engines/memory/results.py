"""An in-process result store for users' unit tests and eager mode.

Like the memory broker, records live in a store held by this module and shared by URL name:
``memory://`` is the process-wide default, ``memory://name`` a named store. A
:class:`threading.Condition` is notified by every write of a ready record, so
:meth:`MemoryBackend.wait_ready` sleeps until then instead of polling.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from ...backends.base import ResultBackend
from .store import store_name


@dataclass
class _Store:
    cond: threading.Condition = field(default_factory=threading.Condition)
    # task id -> (encoded meta, ready, expires at or None)
    records: dict[str, tuple[bytes, bool, float | None]] = field(default_factory=dict)
    next_sweep: float = 0.0

    def live(self, task_id: str, now: float) -> tuple[bytes, bool, float | None] | None:
        record = self.records.get(task_id)
        if record is not None and record[2] is not None and record[2] <= now:
            del self.records[task_id]
            return None
        return record

    def sweep(self, now: float) -> None:
        # Expired records nobody reads again would pile up; a sweep a second keeps that bounded.
        if now < self.next_sweep:
            return
        self.next_sweep = now + 1.0
        for task_id in [t for t, (_, _, exp) in self.records.items() if exp is not None and exp <= now]:
            del self.records[task_id]


_stores: dict[str, _Store] = {}
_stores_lock = threading.Lock()


class MemoryBackend(ResultBackend):
    """Results in this process's memory, shared by URL name."""

    schemes = ("memory",)

    def __init__(self, url: str = "memory://", *, expires: float | None = 86400.0) -> None:
        super().__init__(url, expires=expires)
        with _stores_lock:
            self._store = _stores.setdefault(store_name(url), _Store())

    def flush(self) -> None:
        """Forget every record in this backend's store (for tests that reuse a store name)."""
        with self._store.cond:
            self._store.records.clear()

    def write(self, records: Sequence[tuple[str, bytes, bool]]) -> None:
        st = self._store
        with st.cond:
            now = time.time()
            expires = None if self.expires is None else now + self.expires
            for task_id, data, ready in records:
                st.records[task_id] = (data, ready, expires)
            st.sweep(now)
            if any(ready for _, _, ready in records):
                st.cond.notify_all()

    def read(self, task_id: str) -> bytes | None:
        with self._store.cond:
            record = self._store.live(task_id, time.time())
            return None if record is None else record[0]

    def delete(self, task_id: str) -> None:
        with self._store.cond:
            self._store.records.pop(task_id, None)

    def wait_ready(self, task_id: str, timeout: float) -> bool:
        st = self._store

        def ready() -> bool:
            record = st.live(task_id, time.time())
            return record is not None and record[1]

        with st.cond:
            return st.cond.wait_for(ready, max(timeout, 0.0))
