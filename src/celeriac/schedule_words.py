"""Schedules in words, for ``beat --list`` and logs: "every 15 minutes", "at 03:00 every day".

Kept apart from :mod:`celeriac.schedules`, which decides when things run; this only describes.
"""

from __future__ import annotations

from typing import Any

_DAY_TITLES = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
_MONTH_TITLES = ["", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def every(seconds: float) -> str:
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return f"every {unit}" if n == 1 else f"every {n} {unit}s"
    if seconds == 1:
        return "every second"
    return f"every {seconds:g} seconds"



def _step_of(values: list[Any], size: int) -> int | None:
    """n when ``values`` is exactly 0, n, 2n, ... below ``size``."""
    if values == ["*"]:
        return 1
    if len(values) < 2 or values[0] != 0:
        return None
    step = values[1] - values[0]
    return step if list(range(0, size, step)) == values else None


def times(minutes: list[Any], hours: list[Any]) -> str | None:
    minute_step = _step_of(minutes, 60)
    if hours == ["*"]:
        if minute_step == 1:
            return "every minute"
        if minute_step:
            return f"every {minute_step} minutes"
        if len(minutes) == 1:
            return "every hour" if minutes[0] == 0 else f"every hour at :{minutes[0]:02d}"
        return None
    hour_step = _step_of(hours, 24)
    if (minute_step and minute_step > 1) or minutes == ["*"]:
        span = _span(hours)
        if span is None:
            return None
        every = "every minute" if minutes == ["*"] else f"every {minute_step} minutes"
        return f"{every} from {span[0]:02d}:00 to {span[1]:02d}:59"
    if hour_step and len(hours) > 4 and len(minutes) == 1:  # fewer times read better listed
        return f"every {hour_step} hours at :{minutes[0]:02d}"
    moments = [f"{h:02d}:{m:02d}" for h in hours for m in minutes]
    if len(moments) > 6:
        return None
    return "at " + _join(moments)


def _span(values: list[int]) -> tuple[int, int] | None:
    return (values[0], values[-1]) if values == list(range(values[0], values[-1] + 1)) else None


def days(doms: list[Any], months: list[Any], dows: list[Any]) -> str | None:
    text = ""
    if dows != ["*"]:
        days = sorted({0 if d == 7 else int(d) for d in dows})
        if days == [1, 2, 3, 4, 5]:
            text += " on Mon-Fri"
        elif days == [0, 6]:
            text += " on weekends"
        else:
            text += " on " + _join([_DAY_TITLES[d] if len(days) == 1 else _DAY_TITLES[d][:3] for d in days])
    if doms != ["*"]:
        span = _span([int(d) for d in doms])
        which = f"days {span[0]}-{span[1]}" if span and span[0] != span[1] else \
            ("day " if len(doms) == 1 else "days ") + _join([str(d) for d in doms])
        text += (" if on " if dows != ["*"] else " on ") + f"{which} of the month"
    if months != ["*"]:
        text += " in " + _join([_MONTH_TITLES[int(m)] for m in months])
    return text


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
