"""What each pool process is running, in memory shared with the supervisor.

A child writes its current task into its slot before running it and clears it after; the
supervisor reads slots to enforce hard time limits, to know which task died with a child, and
to answer ``inspect active``. No message crosses a process boundary per task: writing a slot
is a few bytes into an anonymous shared mapping.

Layout of one slot: seq (u64, odd while being written), started (f64, CLOCK_MONOTONIC, which
is system-wide on Linux), hard limit (f64, 0 = none), payload length (u32), ended length (u32:
the payload of the task that last ended here, left in place, so ``inspect reserved`` can tell a
finished task whose ack the flusher has not sent yet from one still waiting), processed and
failed counters (u64 each, kept across the processes that use the slot), payload (JSON), and in the
last 4 bytes a terminate flag that the supervisor sets (an asyncio pool process clears it once
it has cancelled the task; a prefork process is replaced instead).

After the slots, a control page: generation (u64), length (u32), JSON written by the supervisor
when remote control changes something pool processes must know (rate and time limits, queues,
revocations). Pool processes compare the generation before each task, which costs nothing.

Last, the lease word: until when (CLOCK_MONOTONIC) the worker's lease is surely held, and an
epoch the supervisor bumps when a heartbeat finds the lease had lapsed. A pool process notes the
epoch when it fetches; while the time has not passed and the epoch has not moved, what it holds
is surely still its own, and it starts and finishes tasks without asking the broker. Otherwise it
asks (``Broker.holding``) before starting, and finishes through ``Broker.finish_fenced``.

After it, the broker word: a count the supervisor bumps when the broker's store is no longer the
one it was (``Broker.lineage`` changed: a restart, a failover), so it may have lost writes it had
confirmed. A pool process compares it once per fetch and, when it moved, gives back what the
broker says it holds but it does not (worker/reconcile.py).
"""

from __future__ import annotations

import mmap
import struct
import time
from dataclasses import dataclass
from typing import Any

import msgspec

SLOT_SIZE = 4096
HEADER = struct.Struct("<QddIIQQ")
FLAG = struct.Struct("<I")  # the slot's last 4 bytes: written only by the supervisor
PAYLOAD = SLOT_SIZE - HEADER.size - FLAG.size
PAGE_SIZE = 256 * 1024
PAGE_HEADER = struct.Struct("<QI")
LEASE = struct.Struct("<dQ")  # surely held until (monotonic), epoch
#: How long a reader waits out a slot write in progress: on a loaded machine the writer can be
#: preempted mid-write for milliseconds, and a read given up after a few microseconds of spinning
#: showed a running task as not running (``inspect active``, hard limits, a lost child's task).
READ_PATIENCE = 0.05
BROKER = struct.Struct("<Q")  # how many times the broker's lineage changed
U64 = struct.Struct("<Q")  # compiled once: struct's module functions look the format up per call

_encode = msgspec.json.encode
_decode = msgspec.json.decode


@dataclass(frozen=True, slots=True)
class Running:
    started: float      # time.monotonic() when the task began
    hard_limit: float   # seconds, 0.0 for none
    info: dict[str, Any]


SHOWN = ("args", "kwargs")  # the fields that may be shortened to fit a slot


def fit(info: dict[str, Any]) -> bytes:
    """``info`` encoded in at most PAYLOAD bytes, always valid JSON: the shown arguments are
    cut (by characters, until the UTF-8 bytes fit), never the fields the supervisor acts on.
    Cutting the encoded bytes instead would leave invalid JSON, and a slot that cannot be read
    is a task whose hard time limit is never enforced."""
    payload = _encode(info)
    if len(payload) <= PAYLOAD:
        return payload
    info = dict(info)
    # The longer one first: short arguments beside huge keyword arguments stay readable.
    for name in sorted(SHOWN, key=lambda n: len(str(info.get(n) or "")), reverse=True):
        text = info.get(name)
        if not isinstance(text, str):
            continue
        excess = len(payload) - PAYLOAD
        # A character is 1-4 bytes in UTF-8 and up to 6 in a JSON escape: estimate the cut from
        # this text's own bytes per character, then trim further until the whole payload fits.
        per_char = max(1.0, len(_encode(text)) / max(1, len(text)))
        keep = max(0, len(text) - int(excess / per_char) - 4)
        while True:
            info[name] = text[:keep] + "..." if keep < len(text) else text
            payload = _encode(info)
            if len(payload) <= PAYLOAD or keep == 0:
                break
            keep = keep * 9 // 10
        if len(payload) <= PAYLOAD:
            return payload
    # Only absurd ids or names get here: keep what the supervisor needs to kill and record.
    essential = {k: v for k, v in info.items() if k not in SHOWN}
    payload = _encode(essential)
    if len(payload) <= PAYLOAD:
        return payload
    return _encode({k: (v[:200] if isinstance(v, str) else v) for k, v in essential.items()})


class Slots:
    def __init__(self, count: int) -> None:
        self.count = max(count, 1)
        self._page_offset = SLOT_SIZE * self.count
        self._lease_offset = self._page_offset + PAGE_SIZE
        self._broker_offset = self._lease_offset + LEASE.size
        self._map = mmap.mmap(-1, self._broker_offset + BROKER.size)

    # -- written by a pool process --------------------------------------------------------------
    def begin(self, index: int, info: dict[str, Any], hard_limit: float | None) -> None:
        payload = fit(info)
        offset = index * SLOT_SIZE
        seq, _, _, _, _, processed, failed = HEADER.unpack_from(self._map, offset)
        U64.pack_into(self._map, offset, seq + 1)
        self._map[offset + HEADER.size: offset + HEADER.size + len(payload)] = payload
        HEADER.pack_into(self._map, offset, seq + 2, time.monotonic(), hard_limit or 0.0, len(payload), 0,
                         processed, failed)

    def end(self, index: int, failed: bool = False) -> None:
        offset = index * SLOT_SIZE
        seq, _, _, length, _, processed, failures = HEADER.unpack_from(self._map, offset)
        HEADER.pack_into(self._map, offset, seq + 2, 0.0, 0.0, 0, length, processed + 1, failures + int(failed))

    def clear(self, index: int) -> None:
        offset = index * SLOT_SIZE
        seq, _, _, _, _, processed, failures = HEADER.unpack_from(self._map, offset)
        # Even again even if the process died in the middle of begin() (seq odd): else every
        # later write would leave the slot odd, and no read would ever see its task.
        HEADER.pack_into(self._map, offset, (seq | 1) + 1, 0.0, 0.0, 0, 0, processed, failures)

    # -- read by the supervisor -----------------------------------------------------------------
    def read(self, index: int) -> Running | None:
        return self._read(index, ended=False)

    def ended(self, index: int) -> dict[str, Any] | None:
        """What :meth:`read` gave for the task that last ended in slot ``index``: it may still be
        leased until its process's flusher acks it, which is not the same as waiting to run."""
        running = self._read(index, ended=True)
        return running.info if running is not None else None

    def _read(self, index: int, ended: bool) -> Running | None:
        offset = index * SLOT_SIZE
        deadline: float | None = None
        while True:
            seq, started, hard_limit, length, ended_length, _, _ = HEADER.unpack_from(self._map, offset)
            if ended:
                length = 0 if length else ended_length
            if not seq % 2:
                payload = self._map[offset + HEADER.size: offset + HEADER.size + length] if length else b""
                if struct.unpack_from("<Q", self._map, offset)[0] == seq:
                    break
            now = time.monotonic()
            if deadline is None:
                deadline = now + READ_PATIENCE
            elif now > deadline:
                return None
            time.sleep(0)  # let the writer finish
        if not length:
            return None
        try:
            info = _decode(payload)
        except msgspec.DecodeError:
            # begin() only writes valid JSON; should a payload still be unreadable, the hard
            # limit in the header must hold all the same.
            info = {}
        return Running(started, hard_limit, info if isinstance(info, dict) else {})

    def flag_terminate(self, index: int, on: bool = True) -> None:
        """Mark the slot's process as being terminated for a revoke, so its SIGTERM handler
        dies instead of stopping warmly."""
        FLAG.pack_into(self._map, index * SLOT_SIZE + SLOT_SIZE - FLAG.size, int(on))

    def terminating(self, index: int) -> bool:
        return bool(FLAG.unpack_from(self._map, index * SLOT_SIZE + SLOT_SIZE - FLAG.size)[0])

    def totals(self) -> tuple[int, int]:
        """Tasks processed and failed by every process that used any slot."""
        processed = failed = 0
        for index in range(self.count):
            _, _, _, _, _, p, f = HEADER.unpack_from(self._map, index * SLOT_SIZE)
            processed += p
            failed += f
        return processed, failed

    # -- the lease word -------------------------------------------------------------------------
    def lease_renewed(self, held_until: float, lapsed: bool) -> None:
        """Written by the supervisor after a heartbeat. On a lapse the epoch moves before the
        time does, so a reader that sees the new time also sees the new epoch."""
        _, epoch = LEASE.unpack_from(self._map, self._lease_offset)
        if lapsed:
            struct.pack_into("<Q", self._map, self._lease_offset + 8, epoch + 1)
        struct.pack_into("<d", self._map, self._lease_offset, held_until)

    def lease_epoch(self) -> int:
        return int(U64.unpack_from(self._map, self._lease_offset + 8)[0])

    def lease_doubtful(self, epoch: int) -> bool:
        """Whether what was fetched at ``epoch`` might no longer be this worker's."""
        # One read of both, in field order: the time before the epoch, as lease_renewed needs.
        until, current = LEASE.unpack_from(self._map, self._lease_offset)
        return bool(time.monotonic() > until or current != epoch)

    # -- the broker word ------------------------------------------------------------------------
    def broker_changed(self) -> None:
        """Written by the supervisor when the broker's lineage changed."""
        BROKER.pack_into(self._map, self._broker_offset, self.broker_generation() + 1)

    def broker_generation(self) -> int:
        return int(BROKER.unpack_from(self._map, self._broker_offset)[0])

    # -- the control page -----------------------------------------------------------------------
    def publish(self, state: dict[str, Any]) -> None:
        data = _encode(state)
        if len(data) > PAGE_SIZE - PAGE_HEADER.size:
            raise ValueError("worker control state too large for the shared page")
        generation, _ = PAGE_HEADER.unpack_from(self._map, self._page_offset)
        start = self._page_offset + PAGE_HEADER.size
        self._map[start: start + len(data)] = data
        # The generation is written last: a reader that sees it sees the data.
        PAGE_HEADER.pack_into(self._map, self._page_offset, generation + 1, len(data))

    def generation(self) -> int:
        return int(U64.unpack_from(self._map, self._page_offset)[0])

    def control_state(self) -> tuple[int, dict[str, Any]]:
        generation, length = PAGE_HEADER.unpack_from(self._map, self._page_offset)
        if not length:
            return generation, {}
        start = self._page_offset + PAGE_HEADER.size
        return generation, _decode(self._map[start: start + length])
