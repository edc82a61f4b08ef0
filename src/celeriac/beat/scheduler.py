"""The scheduler loop: ``celeriac beat`` and ``worker -B`` run one; any number may run at once.

Each loop (at least every ``beat_max_loop_interval`` seconds, and at each entry's next tick) it:

1. reads the broker's clock, so every scheduler judges ticks by one clock;
2. reloads run-time entries and pauses when ``beat:version`` changed;
3. for each entry whose next tick has come, reads the entry's last handled tick from the broker,
   finds the latest tick due now, and claims ``beat:tick:<name>:<tick>``. The claim is the whole
   of the exactly-once guarantee: one scheduler wins it and sends, the others move on. The
   winner then records the tick as handled. A send the broker refused gives the claim back so
   the tick is tried again; a scheduler killed between its claim and its send (microseconds)
   loses that one tick, which is never sent twice. The claim expires once the next tick is due
   (plus a minute), when no scheduler can take the old tick for the latest any more.

Catch-up: ticks due while no scheduler ran (older than this scheduler's start, less a grace of
``max_interval + 1`` s) are *missed*. Per entry, ``missed='once'`` (the default, from
``beat_missed_policy``) sends one run for all of them; ``missed='skip'`` sends none and waits for
the next tick. Several missed ticks never become several runs. A new entry, a changed schedule
and a resumed entry start counting from the moment they are seen: they never catch up.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from .. import signals
from ..brokers.base import Broker
from ..exceptions import BrokerError, NotReplicated
from .entry import Entry
from .schedule import Schedule, app_zone, send
from .store import BeatStore, LastRun

if TYPE_CHECKING:
    from ..app import Celery

logger = logging.getLogger("celeriac.beat")

RELOAD_EVERY = 30.0  # seconds; a safety net should a version bump be lost
CLAIM_MARGIN = 60.0  # seconds a tick's claim outlives the tick's turn as "the latest due tick"
MAX_BACKOFF = 5.0


class Scheduler:
    """One scheduler. ``run()`` blocks until ``stop()``; ``start_thread()`` runs it beside a worker."""

    def __init__(self, app: Celery, *, broker: Broker | None = None, max_interval: float | None = None) -> None:
        self.app = app
        self._owns_broker = broker is None
        self.broker = broker if broker is not None else app.new_broker()
        self.schedule = Schedule(app, broker=self.broker)
        self.store = BeatStore(self.broker, app.signing_key)
        self.max_interval = float(max_interval if max_interval is not None else app.conf.beat_max_loop_interval)
        if self.max_interval <= 0:
            self.max_interval = 1.0
        # A tick this much older than our start was due while no scheduler ran.
        self.grace = self.max_interval + 1.0
        self.tz = app_zone(app)
        self.entries: dict[str, Entry] = {}
        self._next: dict[str, float] = {}  # broker time at which to look at each entry again
        self._version: bytes | None = None
        self._loaded_at: float | None = None  # broker time of the last reload
        self._started: float | None = None
        self._stopping = threading.Event()
        self._embedded = False
        self.schedule.code_entries()  # a bad beat_schedule fails here, before anything runs

    # -- lifecycle ------------------------------------------------------------------------
    def run(self) -> None:
        logger.info("beat: Starting...")
        signals.beat_init.send(sender=self)
        if self._embedded:  # inside a worker (-B): as in Celery, this one as well
            signals.beat_embedded_init.send(sender=self)
        backoff = 0.0
        try:
            while not self._stopping.is_set():
                try:
                    wait = self.tick()
                    if backoff:
                        logger.warning("beat: broker reachable again")
                    backoff = 0.0
                except BrokerError as exc:
                    backoff = min(MAX_BACKOFF, backoff * 2 or 0.5)
                    logger.error("beat: broker unavailable (%s); retrying in %.1fs", exc, backoff)
                    wait = backoff
                except Exception:
                    logger.exception("beat: unexpected error; retrying in 1s")
                    wait = 1.0
                self._stopping.wait(wait)
        finally:
            logger.info("beat: Stopped")
            if self._owns_broker:
                self.broker.close()

    def stop(self) -> None:
        self._stopping.set()

    def start_thread(self) -> threading.Thread:
        self._embedded = True
        thread = threading.Thread(target=self.run, name="beat", daemon=True)
        thread.start()
        return thread

    # -- one loop -------------------------------------------------------------------------
    def tick(self) -> float:
        """Handle every due entry once; return seconds to sleep before the next loop."""
        began = time.monotonic()
        now = self.broker.now()
        if self._started is None:
            self._started = now
        self._refresh(now)
        upcoming = now + self.max_interval
        for name, entry in self.entries.items():
            if entry.paused:
                continue
            due = self._next.get(name)
            if due is None or now >= due:
                try:
                    due = self._handle(entry, now)
                except BrokerError:
                    raise
                except Exception:
                    # One broken entry must not hold up the others; it is tried again shortly.
                    logger.exception("Scheduler: entry %s failed", name)
                    due = now + self.max_interval
                self._next[name] = due
            upcoming = min(upcoming, due)
        return max(0.0, upcoming - now - (time.monotonic() - began))

    def _refresh(self, now: float) -> None:
        version = self.store.version()
        if self._loaded_at is not None and version == self._version and now - self._loaded_at < RELOAD_EVERY:
            return
        entries = self.schedule.merge(self.store.runtime_entries(), self.store.paused())
        if self._loaded_at is not None and entries != self.entries:
            logger.info("beat: schedule changed: %d entries (%d paused)", len(entries),
                        sum(e.paused for e in entries.values()))
        # Look at every entry afresh: one may be new, changed, resumed.
        self._next = {name: due for name, due in self._next.items()
                      if entries.get(name) == self.entries.get(name)}
        self.entries = entries
        self._version = version
        self._loaded_at = now

    def _handle(self, entry: Entry, now: float) -> float:
        """Deal with ``entry`` at broker time ``now``; return when to look at it again."""
        schedule, tz, name = entry.schedule, self.tz, entry.name
        sig = schedule.key(tz)
        last = self.store.last(name)
        if last is None or last.sig != sig:
            # New or changed: count from now, so a new entry never fires for ticks before it existed.
            self.store.set_last(name, LastRun(tick=now, sig=sig))
            logger.debug("beat: %s: first seen; next run %s", name, _fmt(schedule.next_after(now, tz)))
            return schedule.next_after(now, tz)
        first = schedule.next_after(last.tick, tz)
        if first > now:
            return first
        latest = schedule.last_at_or_before(now, tz)
        pending = schedule.count_between(last.tick, latest, tz)
        assert self._started is not None
        late = latest < self._started - self.grace
        missed = pending if late else pending - 1
        upcoming = schedule.next_after(latest, tz)
        # The claim must outlive the moment any scheduler could still take `latest` for the
        # latest due tick, i.e. until the next tick, plus a margin for a slow loop.
        ttl = upcoming - latest + CLAIM_MARGIN
        if not self.store.claim_tick(name, latest, ttl):
            return upcoming  # another scheduler has this tick
        if late and entry.missed == "skip":
            self._record(name, LastRun(tick=latest, sig=sig))
            logger.warning("Scheduler: %s missed %s while no scheduler was running; skipping (missed='skip')",
                           name, _runs(missed))
            return upcoming
        if missed and entry.missed == "skip":  # the tick due now still runs; the older ones do not
            logger.warning("Scheduler: %s missed %s; skipping them (missed='skip')", name, _runs(missed))
        elif missed:
            logger.warning("Scheduler: %s missed %s%s; sending one now (missed='once')", name, _runs(missed),
                           " while no scheduler was running" if late else "")
        logger.info("Scheduler: Sending due task %s (%s)", name, entry.task)
        try:
            result = send(self.app, entry, tick=latest)
        except NotReplicated as exc:
            # Sent, only not confirmed by replicas: sending the tick again could run it twice.
            logger.error("Scheduler: sent %s (%s), unconfirmed: %s", name, entry.task, exc)
            self._record(name, LastRun(tick=latest, sig=sig, sent=now))
            return upcoming
        except BrokerError as exc:
            logger.error("Scheduler: sending %s (%s) failed: %s; will retry", name, entry.task, exc)
            try:
                self.store.release_tick(name, latest)
            except BrokerError:
                pass  # the claim expires on its own; this tick is then counted as missed
            return now + min(1.0, self.max_interval)
        except Exception:
            # Not the broker's fault (arguments that cannot be encoded, say): retrying each
            # second would only repeat it, so this tick is done and the next one tries again.
            logger.exception("Scheduler: could not send %s (%s)", name, entry.task)
            self._record(name, LastRun(tick=latest, sig=sig))
            return upcoming
        self._record(name, LastRun(tick=latest, sig=sig, sent=now, task_id=result.id))
        return upcoming

    def _record(self, name: str, last: LastRun) -> None:
        # A slower scheduler finishing an older tick must not move the record back.
        current = self.store.last(name)
        if current is None or current.sig != last.sig or current.tick < last.tick:
            self.store.set_last(name, last)


def _runs(n: int) -> str:
    return "1 run" if n == 1 else f"{n}{'+' if n >= 1000 else ''} runs"


def _fmt(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) + " UTC"
