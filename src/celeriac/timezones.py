"""The ``timezone`` setting as a tzinfo: zone names checked with a suggestion, DST-aware."""

from __future__ import annotations

import os
from datetime import UTC, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .exceptions import ConfigurationError


def zone(name: str | tzinfo | None, enable_utc: bool = True) -> tzinfo:
    """The tzinfo for a ``timezone`` setting: a zone name, a tzinfo, or None (UTC, or the
    machine's local zone when ``enable_utc`` is off, as Celery does)."""
    if isinstance(name, tzinfo):
        return name
    if not name:
        return UTC if enable_utc else _local_zone()
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        import difflib
        import zoneinfo

        close = difflib.get_close_matches(name, sorted(zoneinfo.available_timezones()), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigurationError(f"timezone {name!r} is not a known zone{hint}") from None


def _local_zone() -> tzinfo:
    name = os.environ.get("TZ", "").lstrip(":")
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    try:
        with open("/etc/localtime", "rb") as f:
            return ZoneInfo.from_file(f, key="localtime")
    except OSError:
        return UTC
