"""Following the event log: from the oldest entry kept, from now, or from a remembered id.

A reader keeps the id of the last entry it read and asks for what came after it, so nothing
appended between two reads is missed, and a reader that remembers its position across restarts
(the dashboard's history) resumes where it stopped. Events of one batch share their entry's id;
resuming after that id skips the whole batch, which was read whole.

The log is capped, so a reader that falls behind (paused, overloaded, stopped for a while) can
find that entries it never read were trimmed. Each read therefore asks from *just before* its
position: while the entry it last read is still there, it comes back first and everything after
it is intact (the cap only drops the oldest); when it is gone, the entries between it and the
first one returned may have been dropped unread, and the reader records a :class:`Gap` rather
than carry on as if the log were whole.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from ..events import EVENT_LOG, decode_entry
from ..exceptions import BrokerError

if TYPE_CHECKING:
    from ..brokers.base import Broker

Event = dict[str, Any]

FROM_START = None   # the oldest entry the capped log still keeps
FROM_NOW = "$"      # only what is appended from now on

_STREAM_ID = re.compile(r"^(\d+)-(\d+)$")   # Redis: milliseconds-sequence
_SEQ_ID = re.compile(r"^\d+$")              # SQLite and memory: a zero-padded counter
_MAX_SEQ = 2**64 - 1


def follows(entry_id: str, previous: str) -> bool:
    """Whether no id can sort between ``previous`` and ``entry_id``: then a trim that took
    ``previous`` dropped nothing after it. False when that cannot be told (a Redis id in a later
    millisecond may or may not be the next one)."""
    m, p = _STREAM_ID.match(entry_id), _STREAM_ID.match(previous)
    if m and p:
        return m.group(1) == p.group(1) and int(m.group(2)) == int(p.group(2)) + 1
    if _SEQ_ID.match(entry_id) and _SEQ_ID.match(previous):
        return int(entry_id) == int(previous) + 1
    return False


def before(entry_id: str) -> str | None:
    """The greatest id that sorts before ``entry_id``, so a read "after" it returns ``entry_id``
    itself first if the log still holds it. None for an id of a form not known here, or the
    first possible id (nothing can have been trimmed before it)."""
    m = _STREAM_ID.match(entry_id)
    if m:
        ms, seq = int(m.group(1)), int(m.group(2))
        if seq:
            return f"{ms}-{seq - 1}"
        return f"{ms - 1}-{_MAX_SEQ}" if ms else None
    if _SEQ_ID.match(entry_id):
        value = int(entry_id)
        return f"{value - 1:0{len(entry_id)}d}" if value else None
    return None


@dataclass(frozen=True)
class Gap:
    """Entries after ``after`` and before ``until`` (log ids) were trimmed before this reader
    read them: what they said is lost. ``since`` and ``to`` are the timestamps of the last event
    read before the gap (None when not known, e.g. after a restart with nothing stored) and of
    the first event after it; ``entries`` counts the dropped entries (each one event or a
    worker's batch) when the log's ids tell it, else None."""

    after: str
    until: str
    since: float | None
    to: float | None
    entries: int | None = None

    @classmethod
    def between(cls, after: str, until: str, since: float | None, to: float | None, *, dense: bool = False) -> Gap:
        """``dense``: the log numbers its entries one by one (SQLite), so their ids count what
        was dropped; Redis ids are times, and the memory broker's counter is shared by every log."""
        entries = None
        if dense and _SEQ_ID.match(after) and _SEQ_ID.match(until):
            entries = max(0, int(until) - int(after) - 1)
        return cls(after, until, since, to, entries)


class EventReader:
    """Reads the event log in order from ``after`` (FROM_START, FROM_NOW or an entry id)."""

    def __init__(self, broker: Broker, after: str | None = FROM_START, *, count: int = 500,
                 last_time: float | None = None, on_gap: Callable[[Gap], None] | None = None) -> None:
        self.broker = broker
        self.count = count
        self._start = after
        self.position: str | None = None if after == FROM_NOW else after
        self._resolved = after != FROM_NOW
        self.last_time = last_time  # the newest event timestamp read, to date a gap's start
        self.on_gap = on_gap
        self.gaps: list[Gap] = []  # the last few found, newest last

    def _resolve(self) -> None:
        # "From now" becomes the newest id, then is followed from there: asking for "$" on every
        # read would skip whatever landed between two reads.
        if not self._resolved:
            self.position = self.broker.log_last(EVENT_LOG) or "0"
            self._resolved = True

    def read(self, timeout: float = 0.0) -> list[tuple[str, Event]]:
        """The next ``(entry id, event)`` pairs, waiting up to ``timeout`` seconds for the first.
        Raises BrokerError when the broker is away; the position is kept, so the next call resumes."""
        self._resolve()
        entries, gap = self._checked_read()
        # Caught up: wait for the next entry, then read again from just before the position, so
        # a trim while this reader waited (or was paused) past its position is still seen.
        if not entries and timeout > 0 and self.broker.log_read(EVENT_LOG, self.position, 1, timeout=timeout):
            entries, gap = self._checked_read()
        out: list[tuple[str, Event]] = []
        gap_after = self.position if gap else None
        for entry_id, data in entries:
            self.position = entry_id
            try:
                events = decode_entry(data)  # one entry may hold a pool process's whole batch
            except msgspec.DecodeError:
                events = []
            if gap_after is not None:
                stamps = [e["timestamp"] for e in events if isinstance(e.get("timestamp"), (int, float))]
                self._gap(Gap.between(gap_after, entry_id, self.last_time, min(stamps, default=None),
                                      dense=bool(getattr(self.broker, "log_ids_dense", False))))
                gap_after = None
            for one in events:
                stamp = one.get("timestamp")
                if isinstance(stamp, (int, float)) and (self.last_time is None or stamp > self.last_time):
                    self.last_time = float(stamp)
            out += [(entry_id, one) for one in events]
        return out

    def _checked_read(self) -> tuple[list[tuple[str, bytes]], bool]:
        """The entries after the position, without waiting, and whether entries before the first
        of them may have been trimmed unread: the read starts just before the position, so the
        entry at the position comes back first while the log still holds it."""
        position = self.position
        start = before(position) if position is not None else None
        if position is None or start is None:
            return self.broker.log_read(EVENT_LOG, position, self.count), False
        found = self.broker.log_read(EVENT_LOG, start, self.count + 1)
        if found and found[0][0] == position:
            return found[1:], False
        # The entry last read was trimmed: a gap only if others after it may have gone too. A
        # reader exactly a cap behind (the log's first entry is the next one) lost nothing.
        return found, bool(found) and not follows(found[0][0], position)

    def _gap(self, gap: Gap) -> None:
        self.gaps = [*self.gaps[-9:], gap]
        if self.on_gap is not None:
            self.on_gap(gap)


def follow(broker: Broker, after: str | None = FROM_START, *, max_events: int | None = None,
           deadline: float | None = None, wait: float = 0.25,
           on_error: Callable[[BrokerError], None] | None = None,
           on_gap: Callable[[Gap], None] | None = None) -> Iterator[list[Event]]:
    """Batches of events; an empty batch at least every ``wait`` seconds, so the caller can
    refresh while the cluster is quiet. Ends after ``max_events`` or at ``deadline`` (monotonic).
    With ``on_error``, a broker error is reported to it and reading resumes where it stopped;
    ``on_gap`` hears of entries the log's cap dropped before they were read."""
    reader = EventReader(broker, after, on_gap=on_gap)
    seen = 0
    while True:
        timeout = wait
        if deadline is not None:
            timeout = min(timeout, deadline - time.monotonic())
            if timeout <= 0:
                return
        try:
            events = [event for _, event in reader.read(timeout)]
        except BrokerError as exc:
            if on_error is None:
                raise
            on_error(exc)
            time.sleep(timeout)
            events = []
        if max_events is not None and seen + len(events) >= max_events:
            yield events[: max_events - seen]
            return
        seen += len(events)
        yield events
