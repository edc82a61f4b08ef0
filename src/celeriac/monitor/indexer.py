"""Keeps a :class:`History` up to date from the event log, in a thread of its own.

It folds what it reads into task state (loading from the history any task the fold does not
hold, so a restart continues from what was stored) and writes the tasks each read changed, with
the log position, in one transaction. Listeners (metrics, live pages) get every event batch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..events import EVENT_LOG
from ..exceptions import BrokerError
from .history import History
from .reader import FROM_START, EventReader, Gap
from .state import TaskRecord, TaskStates, WorkerStates

if TYPE_CHECKING:
    from ..brokers.base import Broker

logger = logging.getLogger("celeriac.monitor")

Listener = Callable[[list[dict[str, Any]]], None]
#: Given tasks the history shows unfinished, those another source (the result store) knows to
#: have finished, brought up to that state.
Repair = Callable[[list[TaskRecord]], list[TaskRecord]]
REPAIR_MAX = 10_000  # unfinished tasks checked after a gap, newest first
# A reader slower than the writers finds a gap on every read: one warning and one check of the
# result store per this many seconds then, not one per read (each gap is still stored and counted).
GAP_QUIET = 10.0
_ALL = float("inf")  # repair every unfinished task: a gap whose end time is not known

PRUNE_EVERY = 10.0  # seconds between retention passes


class Indexer:
    def __init__(self, broker: Broker, history: History, *, wait: float = 0.5, keep: int = 10_000,
                 repair: Repair | None = None) -> None:
        self.broker = broker
        self.history = history
        self.wait = wait
        self.tasks = TaskStates(keep=keep, load=history.get)
        self.workers = WorkerStates()
        self.listeners: list[Listener] = []
        self.error: str | None = None
        self.changes = 0  # bumped after every batch stored, so live views know when to look again
        self.caught_up = threading.Event()  # set once a read found nothing more to fold
        self._gaps: list[Gap] = []  # found by the current read, stored with its batch
        self.repair = repair
        self._repair_until: float | None = None  # pending: unfinished tasks last seen before this
        self._next_repair = 0.0
        self._quiet_until = 0.0
        self._unlogged = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="celeriac-history", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def start_position(self) -> str | None:
        """Where to resume: the stored position, unless the log was reset under it (a new broker
        or a flushed one gives out ids from the start again, all before the stored one)."""
        cursor = self.history.cursor
        if cursor is None:
            return FROM_START
        last = self.broker.log_last(EVENT_LOG)
        if last is None or (last != cursor and not self.broker.log_read(EVENT_LOG, cursor, 1)):
            logger.info("history: the event log was reset; reading it from its start")
            return FROM_START
        return cursor

    def run(self) -> None:
        reader: EventReader | None = None
        next_prune = 0.0
        while reader is None and not self._stop.is_set():
            try:
                reader = EventReader(self.broker, self.start_position(), on_gap=self._on_gap,
                                     last_time=self.history.last_event_time())
            except BrokerError as exc:
                self.error = str(exc)
                logger.warning("history: cannot reach the broker: %s", exc)
                self._stop.wait(1.0)
        while reader is not None and not self._stop.is_set():
            try:
                self.step(reader)
                self.error = None
            except BrokerError as exc:
                self.error = str(exc)
                logger.warning("history: cannot read events: %s", exc)
                self._stop.wait(1.0)
            except Exception:  # one bad batch must not end the history for good
                logger.exception("history: could not fold a batch of events")
                self._stop.wait(1.0)
            if time.monotonic() >= next_prune:
                next_prune = time.monotonic() + PRUNE_EVERY
                try:
                    self.history.prune()
                except Exception:
                    logger.exception("history: retention pass failed")

    def _on_gap(self, gap: Gap) -> None:
        self._gaps.append(gap)
        until = _ALL if gap.to is None else gap.to
        self._repair_until = until if self._repair_until is None else max(self._repair_until, until)
        now = time.monotonic()
        if now < self._quiet_until:
            self._unlogged += 1
            return
        self._quiet_until = now + GAP_QUIET
        lost = "an unknown number of" if gap.entries is None else str(gap.entries)
        more = f" ({self._unlogged} more gaps since the last warning)" if self._unlogged else ""
        self._unlogged = 0
        logger.warning("history: the event log was trimmed past the last entry read: %s entries between %s (%s) "
                       "and %s (%s) were dropped unread, so the history is incomplete for that window%s; "
                       "raise event_stream_max_bytes / event_stream_maxlen if this recurs", lost, gap.after,
                       _when(gap.since), gap.until, _when(gap.to), more)

    def _repair(self) -> None:
        """Tasks whose final events may be among those lost: the history would show them
        unfinished for good. The result store is written before those events, so it can say."""
        pending = self._repair_until
        if self.repair is None or pending is None or time.monotonic() < self._next_repair:
            return
        self._repair_until = None
        self._next_repair = time.monotonic() + GAP_QUIET
        until = None if pending == _ALL else pending
        stale = [self.tasks.get(r.uuid) or r for r in self.history.unfinished(until, REPAIR_MAX)]
        if not stale:
            return
        try:
            fixed = self.repair(stale)
        except Exception:  # the store away: the gap is still shown, the tasks stay as they were
            logger.exception("history: could not check the result store after a gap")
            return
        if fixed:
            self.history.save(fixed)
            self.tasks.adopt(fixed)
            self.changes += 1
        logger.warning("history: after the gap, %d of %d unfinished tasks were found finished in the result store",
                       len(fixed), len(stale))

    def step(self, reader: EventReader) -> int:
        """One read: fold, store, tell listeners. Returns how many events it folded."""
        self._gaps = []
        batch = reader.read(self.wait)
        if not batch:
            if self._gaps:  # entries that held no readable event still end a gap
                self.history.save((), reader.position, gaps=self._gaps)
                self._gaps = []
            self._repair()
            self.caught_up.set()
            return 0
        events = [event for _, event in batch]
        # One query for every task of the batch the fold does not hold, instead of one each.
        missing = self.tasks.missing(events)
        if missing:
            found = self.history.get_many(missing)
            self.tasks.adopt(found)
            self.tasks.unknown = missing - {r.uuid for r in found}
        changed: dict[str, TaskRecord] = {}
        for event in events:
            record = self.tasks.apply(event)
            if record is not None:
                changed[record.uuid] = record
            else:
                self.workers.apply(event)
        for record in self.tasks.touched:
            changed[record.uuid] = record
        self.tasks.touched = []
        self.tasks.unknown = set()
        self.history.save(changed.values(), reader.position, gaps=self._gaps)
        self._gaps = []
        self._repair()
        if changed:  # worker heartbeats alone change no task a page shows
            self.changes += 1
        for listener in self.listeners:
            try:
                listener(events)
            except Exception:
                logger.exception("history: a listener failed")
        return len(events)


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "time unknown"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(stamp))
