"""What each pool process is running, in memory shared with the supervisor.

A child writes its current task into its slot before running it and clears it after; the
supervisor reads slots to enforce hard time limits, to know which task died with a child, and
to answer ``inspect active``. No message crosses a process boundary per task: writing a slot
is a few bytes into an anonymous shared mapping.

Layout of one slot: seq (u64, odd while being written), started (f64, CLOCK_MONOTONIC, which
is system-wide on Linux), hard limit (f64, 0 = none), payload length (u32, 0 = idle), payload
(JSON, at most PAYLOAD bytes).
"""

from __future__ import annotations

import mmap
import struct
import time
from dataclasses import dataclass
from typing import Any

import msgspec

SLOT_SIZE = 4096
HEADER = struct.Struct("<QddI")
PAYLOAD = SLOT_SIZE - HEADER.size

_encode = msgspec.json.encode
_decode = msgspec.json.decode


@dataclass(frozen=True, slots=True)
class Running:
    started: float      # time.monotonic() when the task began
    hard_limit: float   # seconds, 0.0 for none
    info: dict[str, Any]


class Slots:
    def __init__(self, count: int) -> None:
        self.count = count
        self._map = mmap.mmap(-1, SLOT_SIZE * max(count, 1))

    def grow(self, count: int) -> None:
        """Slots are fixed at start; a pool that grows past them gets a new mapping before the
        new children are forked (existing children keep theirs)."""
        if count > self.count:
            fresh = mmap.mmap(-1, SLOT_SIZE * count)
            fresh[: len(self._map)] = self._map[:]
            self._map, self.count = fresh, count

    def begin(self, index: int, info: dict[str, Any], hard_limit: float | None) -> None:
        payload = _encode(info)[:PAYLOAD]
        offset = index * SLOT_SIZE
        seq = struct.unpack_from("<Q", self._map, offset)[0]
        struct.pack_into("<Q", self._map, offset, seq + 1)
        self._map[offset + HEADER.size: offset + HEADER.size + len(payload)] = payload
        HEADER.pack_into(self._map, offset, seq + 2, time.monotonic(), hard_limit or 0.0, len(payload))

    def end(self, index: int) -> None:
        offset = index * SLOT_SIZE
        seq = struct.unpack_from("<Q", self._map, offset)[0]
        HEADER.pack_into(self._map, offset, seq + 2, 0.0, 0.0, 0)

    def clear(self, index: int) -> None:
        self.end(index)

    def read(self, index: int) -> Running | None:
        offset = index * SLOT_SIZE
        for _ in range(100):
            seq, started, hard_limit, length = HEADER.unpack_from(self._map, offset)
            if seq % 2:
                continue
            payload = self._map[offset + HEADER.size: offset + HEADER.size + length] if length else b""
            if struct.unpack_from("<Q", self._map, offset)[0] != seq:
                continue
            if not length:
                return None
            try:
                return Running(started, hard_limit, _decode(payload))
            except msgspec.DecodeError:
                return None
        return None
