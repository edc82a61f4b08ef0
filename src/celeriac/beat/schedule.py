"""The schedule as the whole cluster sees it, and the API to change it while beat runs.

    from celeriac.beat import Schedule

    schedule = Schedule(app)
    schedule.add("report", "shop.tasks.report", crontab(hour=7, minute=0), options={"queue": "low"})
    schedule.pause("cleanup-old-carts")
    schedule.run_now("close-abandoned-reading-sessions").get(timeout=60)

Entries declared in code (``beat_schedule``, ``add_periodic_task``) come first; entries added at
run time are kept in the broker and replace a code entry of the same name until removed. Every
change bumps a version key that running schedulers poll each loop, so they see it within
``beat_max_loop_interval`` (one second by default).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

from ..brokers.base import Broker
from ..exceptions import ConfigurationError
from ..schedules import zone
from .entry import Entry, code_entries, default_missed, parse
from .store import BeatStore, LastRun, logger

if TYPE_CHECKING:
    from ..app import Celery
    from ..result import AsyncResult


def app_zone(app: Celery) -> tzinfo:
    """The zone crontab entries are read in: ``timezone``, else UTC (local time when
    ``enable_utc`` is off)."""
    return zone(app.conf.timezone, bool(app.conf.enable_utc))


class Schedule:
    """Read and change the cluster's periodic entries. Changes are kept in the broker."""

    def __init__(self, app: Celery, broker: Broker | None = None) -> None:
        self.app = app
        self._broker = broker
        self._code: dict[str, Entry] | None = None

    @property
    def broker(self) -> Broker:
        return self._broker if self._broker is not None else self.app.broker

    @property
    def store(self) -> BeatStore:
        return BeatStore(self.broker, self.app.signing_key)

    @property
    def tz(self) -> tzinfo:
        return app_zone(self.app)

    def code_entries(self) -> dict[str, Entry]:
        """Entries declared in code; checked once (a bad one raises ConfigurationError)."""
        if self._code is None:
            self._code = code_entries(self.app)
        return self._code

    # -- reading --------------------------------------------------------------------------
    def entries(self) -> dict[str, Entry]:
        """Every entry, run-time ones over code ones of the same name, with ``paused`` set."""
        return self.merge(self.store.runtime_entries(), self.store.paused())

    def merge(self, runtime: dict[str, bytes], paused: set[str]) -> dict[str, Entry]:
        entries = dict(self.code_entries())
        default = default_missed(self.app)
        for name, raw in sorted(runtime.items()):
            try:
                entries[name] = Entry.from_json(name, raw, default)
            except (ConfigurationError, ValueError, KeyError, TypeError) as exc:
                # One bad stored entry must not stop the others; the log says which and why.
                logger.error("beat: ignoring stored entry %r: %s", name, exc)
        return {name: _with_paused(entry, name in paused) for name, entry in entries.items()}

    def get(self, name: str) -> Entry:
        entries = self.entries()
        if name not in entries:
            raise _unknown(name, entries)
        return entries[name]

    def last_run(self, name: str) -> LastRun | None:
        """The latest tick some scheduler handled for ``name``, if any."""
        return self.store.last(name)

    def next_runs(self, name: str, n: int = 3, after: float | None = None) -> list[datetime]:
        """The next ``n`` runs of ``name`` (in the entry's zone), after ``after`` or the broker's now."""
        entry = self.get(name)
        return entry.schedule.next_runs(n, self.broker.now() if after is None else after, self.tz)

    # -- changing -------------------------------------------------------------------------
    def add(self, name: str, task: str, schedule: Any, args: Sequence[Any] = (),
            kwargs: dict[str, Any] | None = None, options: dict[str, Any] | None = None,
            missed: str | None = None) -> Entry:
        """Add (or replace) an entry at run time. ``schedule`` as in beat_schedule: seconds, a
        timedelta, ``crontab(...)``. Its first run is its next tick from now."""
        spec: dict[str, Any] = {"task": task, "schedule": schedule, "args": list(args),
                                "kwargs": dict(kwargs or {}), "options": dict(options or {})}
        if missed is not None:
            spec["missed"] = missed
        entry = parse(name, spec, default_missed(self.app), source="runtime")
        store = self.store
        store.set_entry(name, entry.to_json())
        store.bump()
        return entry

    def remove(self, name: str) -> None:
        """Remove an entry added at run time (a code entry it replaced comes back). Code entries
        cannot be removed here, since the next deploy would bring them back: pause them."""
        store = self.store
        if store.delete_entry(name):
            store.clear_paused(name)
            store.forget_last(name)
            store.bump()
            return
        if name in self.code_entries():
            raise ConfigurationError(f"beat entry {name!r} is declared in code (beat_schedule); "
                                     "remove it there, or pause it")
        raise _unknown(name, self.entries())

    def pause(self, name: str) -> None:
        """Stop sending ``name`` until resumed. Its ticks while paused are not caught up."""
        self.get(name)
        store = self.store
        store.set_paused(name, self.broker.now())
        store.bump()

    def resume(self, name: str) -> None:
        """Send ``name`` again from its next tick."""
        self.get(name)
        store = self.store
        # Forget the last tick, so the paused stretch is not taken for runs missed while down.
        store.forget_last(name)
        store.clear_paused(name)
        store.bump()

    def run_now(self, name: str) -> AsyncResult[Any]:
        """Send ``name``'s task now, from this process, with its args and options. The schedule
        is not moved: the next tick still runs. Works whether or not beat runs, paused or not."""
        entry = self.get(name)
        return send(self.app, entry, tick=None)


def send(app: Celery, entry: Entry, tick: float | None) -> AsyncResult[Any]:
    """Send one run of ``entry``. Headers say which entry and tick sent it (``tick`` None: by hand)."""
    options = dict(entry.options)
    headers = dict(options.pop("headers", None) or {})
    headers["periodic_task_name"] = entry.name  # the header django-celery-beat sets, for tools that read it
    headers["periodic_task_tick"] = tick
    return app.send_task(entry.task, list(entry.args), dict(entry.kwargs), headers=headers, **options)


def _unknown(name: str, entries: dict[str, Entry]) -> ConfigurationError:
    close = difflib.get_close_matches(name, sorted(entries), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigurationError(f"no beat entry named {name!r}{hint}")


def _with_paused(entry: Entry, paused: bool) -> Entry:
    if entry.paused == paused:
        return entry
    from dataclasses import replace

    return replace(entry, paused=paused)
