"""When periodic tasks run: ``crontab(...)`` and ``schedule(run_every)``, as Celery spells them.

Both answer the same two questions, on the broker's clock (seconds since the epoch):
``next_after(t)`` (the first run strictly after ``t``) and ``last_at_or_before(t)``. Every
scheduler in a cluster computes the same moments from the same definition, which is what lets
beat give each moment ("tick") to exactly one of them.

- ``schedule(30)`` / ``schedule(timedelta(minutes=30))`` / a bare ``1800.0`` in ``beat_schedule``:
  every N seconds, *aligned to the Unix epoch*, so 1800.0 runs at :00 and :30 of each hour and
  ``timedelta(days=1)`` at 00:00 UTC, whichever scheduler is running.
- ``crontab(minute='*/15', hour='3', day_of_week='mon-fri', ...)``: Celery's syntax (``*/15``,
  ranges, lists, wrap-around ranges, day names), read in the zone ``tz`` or, when it is None, the
  app's ``timezone`` (UTC by default). As in Celery, and unlike cron, a time must match *both*
  ``day_of_month`` and ``day_of_week`` when both are given. Parsing and iteration are croniter's.

Daylight saving time: no run is doubled and none is lost.

- An entry whose hour field is every hour (``minute='*/15'``, ``minute=0``) follows real time:
  across the spring gap it simply goes on, and in the repeated autumn hour it runs in both passes
  (an hourly job still runs every 60 minutes).
- An entry for fixed hours (``hour=2, minute=30``) runs once a day: on the spring-forward day a
  time inside the gap runs at the first moment after the gap, and on the fall-back day a repeated
  time runs in its first pass only.
"""

from __future__ import annotations

import abc
import copy
import math
import re
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, NamedTuple

from croniter import croniter
from croniter.croniter import CroniterError

from .exceptions import ConfigurationError
from .schedule_words import days as _days
from .schedule_words import every as _every
from .schedule_words import times as _times
from .timezones import zone

__all__ = ["BaseSchedule", "crontab", "schedule", "schedstate", "solar", "as_schedule", "zone"]

_DAY_NAMES = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}


class schedstate(NamedTuple):  # lower case: Celery's name
    """Celery's answer to ``is_due``: due now or not, and seconds until it is worth asking again."""

    is_due: bool
    next: float


class BaseSchedule(abc.ABC):
    """What beat needs from a schedule. Times are seconds since the epoch; ``tz`` is the app's
    zone (a schedule with its own zone ignores it).

    A bad definition does not raise where it is written (``crontab(hour=25)`` inside a settings
    dict would take a whole web app down, and could not say which entry it belongs to): it is
    kept in ``error`` and raised by :meth:`check` and by every use. Beat checks each entry when it
    loads the schedule, so the error names the entry and the field."""

    error: ConfigurationError | None = None

    def check(self) -> None:
        """Raise the ConfigurationError this schedule was defined with, if any."""
        if self.error is not None:
            raise self.error

    @abc.abstractmethod
    def next_after(self, t: float, tz: tzinfo = UTC) -> float:
        """The first run strictly after ``t``."""

    @abc.abstractmethod
    def last_at_or_before(self, t: float, tz: tzinfo = UTC) -> float:
        """The latest run at or before ``t``."""

    @abc.abstractmethod
    def key(self, tz: tzinfo = UTC) -> str:
        """A string that changes when the moments this schedule picks change."""

    @abc.abstractmethod
    def human(self) -> str:
        """The schedule in words: ``every 15 minutes``, ``at 03:00 every day``."""

    @abc.abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form, read back by :func:`from_dict`."""

    def count_between(self, after: float, until: float, tz: tzinfo = UTC, cap: int = 1000) -> int:
        """How many runs fall in ``(after, until]``, counting at most ``cap``."""
        n = 0
        t = after
        while n < cap:
            t = self.next_after(t, tz)
            if t > until:
                break
            n += 1
        return n

    def next_runs(self, n: int = 3, after: float | None = None, tz: tzinfo = UTC) -> list[datetime]:
        """The next ``n`` runs after ``after`` (default: now) as datetimes in the schedule's zone."""
        t = time.time() if after is None else after
        out = []
        for _ in range(n):
            t = self.next_after(t, tz)
            out.append(datetime.fromtimestamp(t, self.zone(tz)))
        return out

    def zone(self, tz: tzinfo = UTC) -> tzinfo:
        """The zone this schedule is read in."""
        return tz

    # -- Celery's API, for code that asks a schedule directly --------------------------------
    def is_due(self, last_run_at: datetime) -> schedstate:
        now = time.time()
        due = self.next_after(_timestamp(last_run_at), self.zone()) <= now
        upcoming = self.next_after(now, self.zone())
        return schedstate(due, max(0.0, upcoming - now))

    def remaining_estimate(self, last_run_at: datetime) -> timedelta:
        return timedelta(seconds=max(0.0, self.next_after(_timestamp(last_run_at), self.zone()) - time.time()))

    def __str__(self) -> str:
        return self.human()


def _timestamp(value: datetime | float) -> float:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    return float(value)


class schedule(BaseSchedule):  # lower case: Celery's name
    """Every ``run_every`` seconds (a number or a timedelta), aligned to the Unix epoch.

    ``relative`` is accepted for Celery's sake; alignment already makes runs fall on round
    multiples of the interval."""

    def __init__(self, run_every: float | timedelta, relative: bool = False,
                 nowfun: Callable[[], datetime] | None = None,
                 app: Any = None) -> None:
        self.relative = relative
        self.seconds = math.nan
        if isinstance(run_every, bool) or not isinstance(run_every, (int, float, timedelta)):
            self.error = ConfigurationError(f"schedule {run_every!r}: give seconds (a number) or a timedelta")
            return
        seconds = run_every.total_seconds() if isinstance(run_every, timedelta) else float(run_every)
        if not math.isfinite(seconds) or seconds <= 0:
            self.error = ConfigurationError(f"schedule {run_every!r}: the interval must be more than 0 seconds")
            return
        self.seconds = seconds

    @property
    def run_every(self) -> timedelta:
        return timedelta(seconds=self.seconds)

    def next_after(self, t: float, tz: tzinfo = UTC) -> float:
        self.check()
        k = math.floor(t / self.seconds) + 1
        tick = k * self.seconds
        # Float division can land one step off at exact multiples; correct rather than trust it.
        while tick <= t:
            k += 1
            tick = k * self.seconds
        while (k - 1) * self.seconds > t:
            k -= 1
            tick = k * self.seconds
        return tick

    def last_at_or_before(self, t: float, tz: tzinfo = UTC) -> float:
        return self.next_after(t, tz) - self.seconds

    def count_between(self, after: float, until: float, tz: tzinfo = UTC, cap: int = 1000) -> int:
        if until <= after:
            return 0
        first = self.next_after(after)
        if first > until:
            return 0
        return min(cap, round((self.last_at_or_before(until) - first) / self.seconds) + 1)

    def key(self, tz: tzinfo = UTC) -> str:
        self.check()
        return f"every {self.seconds!r}s"

    def human(self) -> str:
        self.check()
        return _every(self.seconds)

    def to_dict(self) -> dict[str, Any]:
        self.check()
        return {"every": self.seconds}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, schedule) and other.seconds == self.seconds

    def __hash__(self) -> int:
        return hash(("schedule", self.seconds))

    def __repr__(self) -> str:
        return f"<freq: {_every(self.seconds)}>" if self.error is None else f"<freq: invalid: {self.error}>"


#: What one crontab field takes, as in Celery: 5, '*/15', '1-5', 'mon-fri' or [0, 30].
CronField = int | str | Iterable[int | str]

_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")
_RANGES = {"minute": (0, 59), "hour": (0, 23), "day_of_month": (1, 31), "month_of_year": (1, 12),
           "day_of_week": (0, 6)}


def _field_text(field: str, value: Any) -> str:
    """Turn one of Celery's crontab field values (int, str, iterable of them) into cron text."""
    if isinstance(value, bool):
        raise ConfigurationError(f"crontab {field}={value!r}: give a number, a string or a list of numbers")
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, str):
        text = value.strip()
    elif isinstance(value, Iterable):
        items = list(value)
        if not items or any(isinstance(v, bool) or not isinstance(v, (int, str)) for v in items):
            raise ConfigurationError(f"crontab {field}={value!r}: a list must hold numbers")
        ordered = sorted(items, key=lambda v: (0, v, "") if isinstance(v, int) else (1, 0, v))
        text = ",".join(str(v).strip() for v in ordered)
    else:
        raise ConfigurationError(f"crontab {field}={value!r}: give a number, a string or a list of numbers")
    if not text or re.search(r"\s", text):
        raise ConfigurationError(f"crontab {field}={value!r}: not a cron field (no spaces; e.g. '*/15', '1-5')")
    if text.startswith("-"):
        raise ConfigurationError(f"crontab {field}={value!r}: negative numbers are not allowed")
    if field == "day_of_week":
        # Celery reads 'monday' as 'mon'; croniter knows only the three-letter names.
        text = re.sub(r"[A-Za-z]+", lambda m: _day_abbrev(field, value, m.group(0)), text)
    return text


def _day_abbrev(field: str, value: Any, word: str) -> str:
    short = word[:3].lower()
    if short not in _DAY_NAMES:
        raise ConfigurationError(f"crontab {field}={value!r}: {word!r} is not a day name (sun, mon, ... sat)")
    return short


class crontab(BaseSchedule):  # lower case: Celery's name
    """Runs when the wall clock of ``tz`` (default: the app's ``timezone``) matches every field."""

    def __init__(self, minute: CronField = "*", hour: CronField = "*", day_of_week: CronField = "*",
                 day_of_month: CronField = "*", month_of_year: CronField = "*", tz: str | tzinfo | None = None,
                 nowfun: Callable[[], datetime] | None = None,
                 app: Any = None) -> None:
        given = {"minute": minute, "hour": hour, "day_of_month": day_of_month,
                 "month_of_year": month_of_year, "day_of_week": day_of_week}
        self.expression = " ".join(str(given[name]) for name in _FIELDS)
        self.tz: tzinfo | None = None
        self._tz_name = tz if isinstance(tz, str) or tz is None else getattr(tz, "key", str(tz))
        try:
            self._build(given, tz, app)
        except ConfigurationError as exc:
            self.error = exc

    def _build(self, given: dict[str, Any], tz: str | tzinfo | None, app: Any) -> None:
        texts = {name: _field_text(name, value) for name, value in given.items()}
        expanded: list[list[Any]] = []
        for i, name in enumerate(_FIELDS):
            probe = ["*"] * 5
            probe[i] = texts[name]
            try:
                expanded.append(croniter.expand(" ".join(probe))[0][i])
            except CroniterError as exc:
                low, high = _RANGES[name]
                reason = "out of range" if "range" in str(exc) else "not understood"
                raise ConfigurationError(
                    f"crontab {name}={given[name]!r}: {reason} (use {low}-{high}, '*', '*/n', 'a-b' or 'a,b')"
                ) from None
        self._texts = texts
        self._expanded = expanded
        self.expression = " ".join(texts[name] for name in _FIELDS)
        self.tz = zone(tz) if tz is not None else None
        if app is not None and self.tz is None and getattr(app.conf, "timezone", None):
            self.tz = zone(app.conf.timezone)
        self._hourly = expanded[1] == ["*"]
        # Parsed once; each search starts from a shallow copy (croniter re-parses on every build).
        self._proto = croniter(self.expression, datetime(2000, 1, 1), day_or=False)
        try:
            self._walls(datetime(2000, 1, 1)).get_next(datetime)
        except CroniterError:
            raise ConfigurationError(f"crontab {self.expression!r} never matches a date") from None

    def _walls(self, start: datetime) -> croniter:
        it = copy.copy(self._proto)
        it.set_current(start, force=True)
        return it

    # Celery exposes the fields as sets of numbers.
    def _set(self, index: int) -> set[int]:
        self.check()
        low, high = _RANGES[_FIELDS[index]]
        values = self._expanded[index]
        if values == ["*"]:
            return set(range(low, high + 1))
        return {0 if (index == 4 and v == 7) else v for v in values if isinstance(v, int)}

    @property
    def minute(self) -> set[int]:
        return self._set(0)

    @property
    def hour(self) -> set[int]:
        return self._set(1)

    @property
    def day_of_month(self) -> set[int]:
        return self._set(2)

    @property
    def month_of_year(self) -> set[int]:
        return self._set(3)

    @property
    def day_of_week(self) -> set[int]:
        return self._set(4)

    def zone(self, tz: tzinfo = UTC) -> tzinfo:
        return self.tz or tz

    # -- wall clock to instants ---------------------------------------------------------------
    def _instants(self, wall: datetime, tz: tzinfo) -> tuple[float, list[float]]:
        """The moments a matching wall-clock time stands for, and the earliest of them (for a
        time skipped by a gap, where an hourly entry has none, the end of the gap)."""
        first = wall.replace(tzinfo=tz, fold=0).timestamp()
        second = wall.replace(tzinfo=tz, fold=1).timestamp()
        if first == second:
            return first, [first]
        if datetime.fromtimestamp(first, tz).replace(tzinfo=None) == wall:  # a repeated (autumn) time
            return first, [first, second] if self._hourly else [first]
        end = _gap_end(min(first, second), max(first, second), tz)
        return end, [] if self._hourly else [end]

    @staticmethod
    def _local(t: float, tz: tzinfo) -> tuple[datetime, int, float]:
        """``t``'s wall-clock time, its fold, and how far the same wall time's other pass is
        (non-zero only inside an hour the clocks repeat)."""
        local = datetime.fromtimestamp(t, tz)
        offset, other = local.utcoffset(), local.replace(fold=1 - local.fold).utcoffset()
        shift = abs((other - offset).total_seconds()) if offset is not None and other is not None else 0.0
        return local.replace(tzinfo=None), local.fold, shift

    def next_after(self, t: float, tz: tzinfo = UTC) -> float:
        self.check()
        tz = self.zone(tz)
        start, fold, shift = self._local(t, tz)
        if shift and fold == 0:
            start -= timedelta(seconds=shift)  # in the first pass of a repeated hour, earlier times come again
        it = self._walls(start)
        best: float | None = None
        # Earliest moments never go down as wall times go up, so once one passes the best
        # candidate nothing later can beat it.
        for _ in range(100_000):
            wall = it.get_next(datetime)
            earliest, moments = self._instants(wall, tz)
            if best is not None and earliest > best:
                return best
            for m in moments:
                if m > t and (best is None or m < best):
                    best = m
        raise ConfigurationError(f"crontab {self.expression!r}: no run found after {t}")  # pragma: no cover

    def last_at_or_before(self, t: float, tz: tzinfo = UTC) -> float:
        self.check()
        tz = self.zone(tz)
        start, fold, shift = self._local(t, tz)
        start += timedelta(seconds=1 + (shift if fold == 1 else 0))  # the second pass follows later times
        it = self._walls(start)
        best: float | None = None
        for _ in range(100_000):
            wall = it.get_prev(datetime)
            earliest, moments = self._instants(wall, tz)
            latest = max(moments, default=earliest)
            if best is not None and latest < best:
                return best
            for m in moments:
                if m <= t and (best is None or m > best):
                    best = m
        raise ConfigurationError(f"crontab {self.expression!r}: no run found before {t}")  # pragma: no cover

    def key(self, tz: tzinfo = UTC) -> str:
        self.check()
        return f"cron {self.expression} {getattr(self.zone(tz), 'key', None) or self.zone(tz)}"

    def to_dict(self) -> dict[str, Any]:
        self.check()
        data: dict[str, Any] = {"cron": dict(self._texts)}
        if self._tz_name:
            data["tz"] = self._tz_name
        return data

    def __eq__(self, other: object) -> bool:
        return isinstance(other, crontab) and (other.expression, other.tz) == (self.expression, self.tz)

    def __hash__(self) -> int:
        return hash(("crontab", self.expression, str(self.tz)))

    def __repr__(self) -> str:
        if self.error is not None:
            return f"<crontab: invalid: {self.error}>"
        return f"<crontab: {self.expression} (m/h/dM/MY/d)>"

    # -- in words -----------------------------------------------------------------------------
    def human(self) -> str:
        self.check()
        minutes, hours, doms, months, dows = self._expanded
        if any(v != "*" and not isinstance(v, int) for values in self._expanded for v in values):
            return f"cron '{self.expression}'"  # croniter extras such as 'L': no words for those
        when = _times(minutes, hours)
        if when is None:
            return f"cron '{self.expression}'"
        days = _days(doms, months, dows)
        if days is None:
            return f"cron '{self.expression}'"
        if not days and when.startswith("at "):
            days = " every day"
        text = when + days
        if self._tz_name:
            text += f" ({self._tz_name})"
        return text


def _gap_end(lo: float, hi: float, tz: tzinfo) -> float:
    """The first moment after the offset change between ``lo`` and ``hi`` (a spring gap)."""
    before = datetime.fromtimestamp(lo, tz).utcoffset()
    low, high = math.floor(lo), math.ceil(hi)
    while high - low > 1:
        mid = (low + high) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == before:
            low = mid
        else:
            high = mid
    return float(high)


class solar(BaseSchedule):  # lower case: Celery's name
    """Celery's sunrise/sunset schedule; not available in celeriac."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise ConfigurationError("solar schedules are not supported by celeriac; use crontab with fixed times")

    def next_after(self, t: float, tz: tzinfo = UTC) -> float:  # pragma: no cover - never built
        raise NotImplementedError

    last_at_or_before = next_after

    def key(self, tz: tzinfo = UTC) -> str:  # pragma: no cover - never built
        raise NotImplementedError

    def human(self) -> str:  # pragma: no cover - never built
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:  # pragma: no cover - never built
        raise NotImplementedError


def as_schedule(value: Any) -> BaseSchedule:
    """What ``'schedule'`` in a beat entry may be: a schedule, seconds, or a timedelta."""
    if isinstance(value, BaseSchedule):
        return value
    if isinstance(value, (int, float, timedelta)) and not isinstance(value, bool):
        made = schedule(value)
        made.check()
        return made
    raise ConfigurationError(f"{value!r} is not a schedule: give seconds, a timedelta, crontab(...) or schedule(...)")


def from_dict(data: dict[str, Any]) -> BaseSchedule:
    """Read back what :meth:`BaseSchedule.to_dict` wrote."""
    if "every" in data:
        return schedule(float(data["every"]))
    if "cron" in data:
        stored = crontab(**data["cron"], tz=data.get("tz"))
        stored.check()
        return stored
    raise ConfigurationError(f"stored schedule {data!r} is not understood")
