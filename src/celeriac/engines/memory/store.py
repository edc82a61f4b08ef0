"""The data of the memory broker: one :class:`Store` per URL name, shared by every
``MemoryBroker`` of the process built from that URL.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ...brokers.base import DeadLetter, Delivery

# How long a worker that stopped heartbeating stays listed (as not alive) by workers().


def store_name(url: str) -> str:
    """``memory://`` -> ``""`` (the default store), ``memory://name`` -> ``"name"``."""
    return url.partition("://")[2].strip("/")




@dataclass(slots=True)
class Message:
    id: int  # also the FIFO position: requeued and recovered messages keep theirs
    queue: str
    priority: int
    body: bytes
    key: str = ""
    redeliveries: int = 0
    handouts: int = 0
    due: float = 0.0
    consumer: str = ""
    lease_until: float = 0.0

    @property
    def tag(self) -> str:
        # The hand-out number makes a stale tag (from before a recovery) miss the new lease.
        return f"{self.id}:{self.handouts}"

    def delivery(self) -> Delivery:
        return Delivery(self.queue, self.priority, self.body, self.tag, self.redeliveries)


@dataclass(slots=True)
class WorkerEntry:
    info: bytes
    last_seen: float
    expires: float
    queues: tuple[str, ...]
    running: frozenset[str] = frozenset()  # tags of the deliveries it last reported started
    recovered: bool = False  # its lease lapsed and its messages were taken back


@dataclass
class Store:
    cond: threading.Condition = field(default_factory=threading.Condition)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    ready: dict[str, list[tuple[int, int, Message]]] = field(default_factory=dict)  # heaps
    delayed: dict[str, list[tuple[float, int, Message]]] = field(default_factory=dict)  # heaps
    leased: dict[str, Message] = field(default_factory=dict)  # by tag
    dead: dict[str, dict[str, tuple[DeadLetter, Message]]] = field(default_factory=dict)
    known: set[str] = field(default_factory=set)
    workers: dict[str, WorkerEntry] = field(default_factory=dict)
    kv: dict[str, tuple[bytes, float | None]] = field(default_factory=dict)
    maps: dict[str, dict[str, bytes]] = field(default_factory=dict)
    logs: dict[str, deque[tuple[str, bytes]]] = field(default_factory=dict)
    log_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    last_log_id: dict[str, str] = field(default_factory=dict)
    log_expires: dict[str, float] = field(default_factory=dict)
    rates: dict[str, float] = field(default_factory=dict)
    # chord id -> [size, join message, counted member ids, expires]
    chords: dict[str, list[Any]] = field(default_factory=dict)
    # chord id -> (members added by Task.add_to_chord, in order; expires), kept after it fires
    chords_added: dict[str, tuple[list[str], float]] = field(default_factory=dict)
    pulse: float = 0.0  # when any worker last heartbeated

    def make_ready(self, msg: Message) -> None:
        msg.consumer, msg.lease_until = "", 0.0
        heapq.heappush(self.ready.setdefault(msg.queue, []), (-msg.priority, msg.id, msg))

    def make_delayed(self, msg: Message, due: float) -> None:
        msg.consumer, msg.due = "", due
        heapq.heappush(self.delayed.setdefault(msg.queue, []), (due, msg.id, msg))

    def bury(self, msg: Message, reason: str, now: float) -> None:
        letter = DeadLetter(msg.queue, str(next(self.ids)), msg.body, reason, now)
        self.dead.setdefault(msg.queue, {})[letter.id] = (letter, msg)

    def expire_logs(self, now: float) -> None:
        """Drop logs whose ttl passed (logs with a ttl are few: replies to recent commands)."""
        for name in [n for n, at in self.log_expires.items() if at <= now]:
            del self.log_expires[name]
            self.logs.pop(name, None)

    def charge(self, msg: Message, cap: int, now: float, started: bool = True) -> bool:
        """Take back a leased message whose consumer died, counting one redelivery if it had
        ``started``; True if it was buried."""
        del self.leased[msg.tag]
        if not started:
            self.make_ready(msg)
            return False
        msg.redeliveries += 1
        if msg.redeliveries > cap:
            self.bury(msg, f"redelivered {msg.redeliveries} times: its worker died each time", now)
            return True
        self.make_ready(msg)
        return False


_stores: dict[str, Store] = {}
_stores_lock = threading.Lock()


def store_for(url: str) -> Store:
    with _stores_lock:
        return _stores.setdefault(store_name(url), Store())
