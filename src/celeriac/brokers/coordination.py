"""The coordination part of the storage contract.

Besides its leased queues every broker offers a few small atomic primitives that the runtimes
build on instead of special cases of their own: beat's once-per-tick claims, revocations and
remote control (keys, maps, capped logs), the global rate limiter (rate slots) and canvas's
chords (a counter kept with the header's results). Each engine implements them next to its
queues (``engines/*/coord.py``) and passes the contract suite (``tests/contract``).

Chords
------
A chord's body must run exactly once, after every header task finished, even when a worker
dies in the middle (its header task is redelivered and run again) or two finish at once.
:meth:`Coordination.chord_start` stores the body's *join message* and the header size;
:meth:`Coordination.chord_part` counts one header task, by id, in one atomic step with storing
its result, and the step that counts the last distinct id enqueues the join message. Counting
ids rather than calls is what makes a re-run harmless; enqueueing inside the same step is what
makes a crash after counting unable to lose the body. As in Celery, a header task that fails (or
is revoked or dead-lettered) fails the chord at once: counted with ``failed=True`` it enqueues the
join message straight away, and once the join message went out (either way) the chord is closed:
no later member counts or fires anything.

A running header task may add a member (``Task.add_to_chord``): :meth:`Coordination.chord_grow`
raises the expected size and records the new member's id in one atomic step, before the new
task is sent. The adding task is itself not counted yet while it runs, so the count cannot
reach the old size in between. Growing is per member id, so a re-run of the adding task (its
worker died) that adds the same id again grows nothing more.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

Record = tuple[str, bytes, bool]  # (task id, encoded result meta, ready): a result store record


class Coordination(abc.ABC):
    """Atomic primitives shared by a cluster. All methods are safe to call from several processes."""

    @abc.abstractmethod
    def now(self) -> float:
        """The broker's clock, in seconds since the epoch."""

    @abc.abstractmethod
    def rate_slot(self, key: str, interval: float) -> float:
        """Reserve the next start slot for ``key`` at most once per ``interval`` seconds across
        the cluster. Returns seconds from now until the reserved slot (0.0: start now)."""

    @abc.abstractmethod
    def claim(self, key: str, ttl: float) -> bool:
        """Set ``key`` if absent, for ``ttl`` seconds. True for exactly one caller."""

    @abc.abstractmethod
    def put(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """Store ``value`` under ``key`` (replacing it), optionally expiring."""

    @abc.abstractmethod
    def get(self, key: str) -> bytes | None:
        """The value under ``key``, or None."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Drop ``key``; no error if absent."""

    @abc.abstractmethod
    def map_set(self, name: str, field: str, value: bytes) -> None:
        """Set ``field`` of the map ``name``."""

    @abc.abstractmethod
    def map_get(self, name: str) -> dict[str, bytes]:
        """Every field of the map ``name``."""

    @abc.abstractmethod
    def map_delete(self, name: str, field: str) -> bool:
        """Drop ``field`` of the map ``name``; True if it was there."""

    @abc.abstractmethod
    def log_append(self, name: str, data: bytes, maxlen: int, ttl: float | None = None) -> str:
        """Append to the capped log ``name`` and return the new entry's id. The oldest entries drop
        past about ``maxlen`` (at least ``maxlen`` are kept; Redis trims lazily). Ids are opaque:
        callers only hand them back as ``after``. With ``ttl`` the whole log disappears ``ttl``
        seconds after this append (replies to one command); without, an earlier ttl stays."""

    @abc.abstractmethod
    def log_last(self, name: str) -> str | None:
        """The id of the newest entry of log ``name`` (None when empty), so a reader can start
        "from now" and then follow ids without missing what lands between two reads."""

    def log_append_many(self, name: str, items: Sequence[bytes], maxlen: int) -> None:
        """Append several entries in order; implementations batch."""
        for data in items:
            self.log_append(name, data, maxlen)

    @abc.abstractmethod
    def log_read(self, name: str, after: str | None, count: int, timeout: float = 0.0) -> list[tuple[str, bytes]]:
        """Entries of log ``name`` after id ``after`` (``None``: from the oldest kept, ``"$"``:
        only new ones), up to ``count``, blocking up to ``timeout`` seconds for the first."""

    # -- chords ---------------------------------------------------------------------------
    @abc.abstractmethod
    def chord_start(self, chord: str, size: int, join: bytes, *, queue: str, priority: int = 0,
                    ttl: float) -> None:
        """Prepare chord ``chord`` of ``size`` header tasks: ``join`` (an encoded message) is
        enqueued to ``queue`` at ``priority`` once :meth:`chord_part` has counted ``size``
        distinct members. Everything about the chord is dropped ``ttl`` seconds later."""

    @abc.abstractmethod
    def chord_part(self, chord: str, member: str, *, queue: str, priority: int = 0,
                   records: Sequence[Record] = (), backend: Any = None, failed: bool = False) -> bool:
        """Store ``records`` in ``backend`` and count header task ``member`` into ``chord``,
        atomically when the result store lives in this same store (one script, transaction or
        lock), else results first. The call whose member completes the count enqueues the join
        message as a ready message and returns True, exactly once per chord; a member counted
        before (a re-run after its worker died) counts nothing and returns False, as does a
        chord unknown or expired. ``failed`` (the member failed, was revoked or dead-lettered)
        enqueues the join message at once, returning True, unless the chord has already fired.
        Once the join message is enqueued the chord is closed: every later call counts nothing
        and returns False. ``queue`` and ``priority`` repeat :meth:`chord_start`'s, so engines
        can address the queue's keys without reading first."""

    def chord_grow(self, chord: str, member: str, *, queue: str) -> bool:
        """Expect one more header task, ``member``, in chord ``chord``: in one atomic step the
        size that :meth:`chord_part` completes at grows by one and ``member`` is recorded for
        :meth:`chord_added`. A member added before grows nothing (True again). False, growing
        nothing, when the chord is unknown, expired or has fired: too late to join it."""
        raise NotImplementedError(f"{type(self).__name__} cannot grow a chord (Task.add_to_chord)")

    def chord_added(self, chord: str, *, queue: str) -> list[str]:
        """The members :meth:`chord_grow` added to ``chord``, in the order added; kept for the
        chord's ttl, also after it fired (the join task reads them then)."""
        raise NotImplementedError(f"{type(self).__name__} cannot grow a chord (Task.add_to_chord)")
