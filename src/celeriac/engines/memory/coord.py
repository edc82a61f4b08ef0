"""The memory broker's coordination primitives: the clock, chords, rate slots, claims, keys,
maps and capped logs that beat, revokes and remote control build on. A mixin of ``MemoryBroker``,
which holds the store (``store.py``)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from ...brokers.base import clamp_priority
from ...exceptions import BrokerError
from .store import Message, Store


class MemoryCoordination:
    """Mixed into ``MemoryBroker``: everything here works on the store it was built for."""

    _store: Store | None

    @property
    def _st(self) -> Store:
        if self._store is None:
            raise BrokerError(f"{self!r} is closed")
        return self._store

    def now(self) -> float:
        return time.time()

    def chord_start(self, chord: str, size: int, join: bytes, *, queue: str, priority: int = 0,
                    ttl: float) -> None:
        st = self._st
        with st.cond:
            now = time.time()
            for name in [n for n, c in st.chords.items() if c[3] <= now]:
                del st.chords[name]
            st.chords[chord] = [size, join, set(), now + ttl]

    def chord_part(self, chord: str, member: str, *, queue: str, priority: int = 0,
                   records: Sequence[tuple[str, bytes, bool]] = (), backend: Any = None,
                   failed: bool = False) -> bool:
        st = self._st
        with st.cond:  # held while the result is stored, so counting and storing are one step
            if records:
                backend.write(records)
            entry = st.chords.get(chord)
            if entry is None or entry[3] <= time.time() or member in entry[2]:
                return False
            entry[2].add(member)
            if len(entry[2]) != entry[0] and not failed:
                return False
            del st.chords[chord]  # fired: closed to every later member
            st.known.add(queue)
            st.make_ready(Message(next(st.ids), queue, clamp_priority(priority), entry[1], ""))
            st.cond.notify_all()
            return True

    def chord_grow(self, chord: str, member: str, *, queue: str) -> bool:
        st = self._st
        with st.cond:
            entry = st.chords.get(chord)
            if entry is None or entry[3] <= time.time():
                return False
            added, _ = st.chords_added.setdefault(chord, ([], entry[3]))
            if member not in added:
                added.append(member)
                entry[0] += 1
            return True

    def chord_added(self, chord: str, *, queue: str) -> list[str]:
        st = self._st
        with st.cond:
            now = time.time()
            for name in [n for n, (_, expires) in st.chords_added.items() if expires <= now]:
                del st.chords_added[name]
            return list(st.chords_added.get(chord, ([], 0.0))[0])

    def rate_slot(self, key: str, interval: float) -> float:
        st = self._st
        with st.cond:
            now = time.time()
            # GCRA: the key remembers when its next slot starts; each caller takes that slot.
            slot = max(st.rates.get(key, now), now)
            st.rates[key] = slot + interval
            return slot - now

    def _live(self, st: Store, key: str) -> bytes | None:
        entry = st.kv.get(key)
        if entry is None:
            return None
        value, expires = entry
        if expires is not None and expires <= time.time():
            del st.kv[key]
            return None
        return value

    def claim(self, key: str, ttl: float) -> bool:
        st = self._st
        with st.cond:
            if self._live(st, key) is not None:
                return False
            st.kv[key] = (b"1", time.time() + ttl)
            return True

    def put(self, key: str, value: bytes, ttl: float | None = None) -> None:
        st = self._st
        with st.cond:
            st.kv[key] = (value, None if ttl is None else time.time() + ttl)

    def get(self, key: str) -> bytes | None:
        st = self._st
        with st.cond:
            return self._live(st, key)

    def delete(self, key: str) -> None:
        st = self._st
        with st.cond:
            st.kv.pop(key, None)

    def map_set(self, name: str, field: str, value: bytes) -> None:
        st = self._st
        with st.cond:
            st.maps.setdefault(name, {})[field] = value

    def map_get(self, name: str) -> dict[str, bytes]:
        st = self._st
        with st.cond:
            return dict(st.maps.get(name, {}))

    def map_delete(self, name: str, field: str) -> bool:
        st = self._st
        with st.cond:
            return st.maps.get(name, {}).pop(field, None) is not None

    def log_append(self, name: str, data: bytes, maxlen: int, ttl: float | None = None) -> str:
        return self._append(name, [data], maxlen, ttl)

    def log_append_many(self, name: str, items: Sequence[bytes], maxlen: int) -> None:
        if items:
            self._append(name, items, maxlen, None)

    def _append(self, name: str, items: Sequence[bytes], maxlen: int, ttl: float | None) -> str:
        st = self._st
        with st.cond:
            now = time.time()
            st.expire_logs(now)
            log = st.logs.setdefault(name, deque())
            for data in items:
                # Zero-padded so ids compare as strings the way they compare as numbers.
                entry_id = f"{next(st.log_ids):016d}"
                log.append((entry_id, data))
            while len(log) > maxlen:
                log.popleft()
            st.last_log_id[name] = entry_id
            if ttl is not None:
                st.log_expires[name] = now + ttl
            st.cond.notify_all()
            return entry_id

    def log_last(self, name: str) -> str | None:
        st = self._st
        with st.cond:
            log = st.logs.get(name)
            return log[-1][0] if log else None

    def log_read(self, name: str, after: str | None, count: int,
                 timeout: float = 0.0) -> list[tuple[str, bytes]]:
        st = self._st
        deadline = time.monotonic() + max(timeout, 0.0)
        with st.cond:
            if after == "$":
                after = st.last_log_id.get(name, "")
            start = after or ""
            while True:
                st.expire_logs(time.time())
                found = [(i, d) for i, d in st.logs.get(name, ()) if i > start][:count]
                remaining = deadline - time.monotonic()
                if found or remaining <= 0:
                    return found
                st.cond.wait(remaining)
