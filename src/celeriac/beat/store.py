"""Beat's state in the broker, through the broker contract's coordination primitives.

    map  beat:entries            name -> entry JSON       entries added at run time
    map  beat:paused             name -> {"at": t}        paused entries (code or run time)
    key  beat:version            random token             changes on every edit; schedulers poll it
    key  beat:last:<name>        {"tick", "sig", ...}     the last tick handled (sent or skipped)
    key  beat:tick:<name>:<t>    claim, expiring          who handles tick t: exactly one caller

Nothing lives in a local file, so any number of schedulers on any hosts share one schedule.

With ``task_message_signing_key`` set, run-time entries and pauses are signed for their name
(:mod:`celeriac.signing`) and unsigned or badly signed ones are refused where they are read:
writing to the broker is then not enough to make beat send a task, or to silence an entry.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import asdict, dataclass

from .. import signing
from ..brokers.base import Broker
from ..exceptions import SignatureError

logger = logging.getLogger("celeriac.beat")

ENTRIES = "beat:entries"
PAUSED = "beat:paused"
VERSION = "beat:version"


@dataclass(frozen=True, slots=True)
class LastRun:
    """The latest tick of an entry that some scheduler handled.

    ``tick`` is a moment of the schedule (or, for an entry just seen, the moment it was first
    seen: counting starts there). ``sig`` is the schedule's key; when the definition changes the
    count starts again instead of treating the old ticks as missed. ``sent`` is the broker time of
    the send (None when skipped), ``task_id`` the id sent."""

    tick: float
    sig: str
    sent: float | None = None
    task_id: str | None = None


class BeatStore:
    def __init__(self, broker: Broker, signing_key: bytes | None = None) -> None:
        self.broker = broker
        self.signing_key = signing_key
        self._refused: set[tuple[str, bytes]] = set()  # logged once each, not every reload

    def _verified(self, kind: str, stored: dict[str, bytes]) -> dict[str, bytes]:
        """The values of ``stored`` whose signature (for their name) holds; with no signing key,
        unsigned values as they are."""
        out = {}
        for name, raw in stored.items():
            try:
                out[name] = signing.verify(raw, self.signing_key, _purpose(kind, name), what=f"beat {kind}")[1]
            except SignatureError as exc:
                if (name, raw) not in self._refused:
                    if len(self._refused) > 1000:
                        self._refused.clear()
                    self._refused.add((name, raw))
                    logger.error("beat: refused stored %s %r: %s", kind, name, exc)
        return out

    def _seal(self, kind: str, name: str, data: bytes) -> bytes:
        if self.signing_key is None:
            return data
        return signing.sign(data, self.signing_key, _purpose(kind, name))

    # -- run-time edits -------------------------------------------------------------------
    def version(self) -> bytes | None:
        return self.broker.get(VERSION)

    def bump(self) -> None:
        self.broker.put(VERSION, uuid.uuid4().hex.encode())

    def runtime_entries(self) -> dict[str, bytes]:
        return self._verified("entry", self.broker.map_get(ENTRIES))

    def set_entry(self, name: str, data: bytes) -> None:
        self.broker.map_set(ENTRIES, name, self._seal("entry", name, data))

    def delete_entry(self, name: str) -> bool:
        return self.broker.map_delete(ENTRIES, name)

    def paused(self) -> set[str]:
        return set(self._verified("pause", self.broker.map_get(PAUSED)))

    def set_paused(self, name: str, at: float) -> None:
        self.broker.map_set(PAUSED, name, self._seal("pause", name, json.dumps({"at": at}).encode()))

    def clear_paused(self, name: str) -> bool:
        return self.broker.map_delete(PAUSED, name)

    # -- ticks ----------------------------------------------------------------------------
    def last(self, name: str) -> LastRun | None:
        raw = self.broker.get(f"beat:last:{name}")
        if raw is None:
            return None
        try:
            return LastRun(**json.loads(raw))
        except (ValueError, TypeError):
            logger.warning("beat: unreadable state for %s; counting its runs from now", name)
            return None

    def set_last(self, name: str, last: LastRun) -> None:
        self.broker.put(f"beat:last:{name}", json.dumps(asdict(last)).encode())

    def forget_last(self, name: str) -> None:
        self.broker.delete(f"beat:last:{name}")

    def claim_tick(self, name: str, tick: float, ttl: float) -> bool:
        return self.broker.claim(_tick_key(name, tick), ttl)

    def release_tick(self, name: str, tick: float) -> None:
        self.broker.delete(_tick_key(name, tick))


def _purpose(kind: str, name: str) -> bytes:
    # Bound to the name: a signed entry copied under another name does not verify there.
    return f"beat-{kind}:{name}".encode()


def _tick_key(name: str, tick: float) -> str:
    return f"beat:tick:{name}:{tick:.3f}"
