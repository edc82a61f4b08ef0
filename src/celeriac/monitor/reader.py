"""Following the event log: from the oldest entry kept, from now, or from a remembered id.

A reader keeps the id of the last entry it read and asks for what came after it, so nothing
appended between two reads is missed, and a reader that remembers its position across restarts
(the dashboard's history) resumes where it stopped. Events of one batch share their entry's id;
resuming after that id skips the whole batch, which was read whole.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import msgspec

from ..events import EVENT_LOG, decode_entry
from ..exceptions import BrokerError

if TYPE_CHECKING:
    from ..brokers.base import Broker

Event = dict[str, Any]

FROM_START = None   # the oldest entry the capped log still keeps
FROM_NOW = "$"      # only what is appended from now on


class EventReader:
    """Reads the event log in order from ``after`` (FROM_START, FROM_NOW or an entry id)."""

    def __init__(self, broker: Broker, after: str | None = FROM_START, *, count: int = 500) -> None:
        self.broker = broker
        self.count = count
        self._start = after
        self.position: str | None = None if after == FROM_NOW else after
        self._resolved = after != FROM_NOW

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
        out: list[tuple[str, Event]] = []
        for entry_id, data in self.broker.log_read(EVENT_LOG, self.position, self.count, timeout=timeout):
            self.position = entry_id
            try:
                events = decode_entry(data)  # one entry may hold a pool process's whole batch
            except msgspec.DecodeError:
                continue
            out += [(entry_id, one) for one in events]
        return out


def follow(broker: Broker, after: str | None = FROM_START, *, max_events: int | None = None,
           deadline: float | None = None, wait: float = 0.25,
           on_error: Callable[[BrokerError], None] | None = None) -> Iterator[list[Event]]:
    """Batches of events; an empty batch at least every ``wait`` seconds, so the caller can
    refresh while the cluster is quiet. Ends after ``max_events`` or at ``deadline`` (monotonic).
    With ``on_error``, a broker error is reported to it and reading resumes where it stopped."""
    reader = EventReader(broker, after)
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
