"""The text of a bug report: versions, platform, where the stores are, the settings changed
(secrets hidden). ``celeriac report`` prints it for the caller's app, ``inspect report`` asks
each worker for its own."""

from __future__ import annotations

import platform
import re
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..brokers.base import redact_url

if TYPE_CHECKING:
    from ..app import Celery

# Setting names whose values are secrets, as Celery's report hides them.
SECRET = re.compile(r"API|TOKEN|KEY|SECRET|PASS|SIGNATURE|DATABASE", re.IGNORECASE)


def _shown(name: str, value: Any) -> str:
    if isinstance(value, str) and "://" in value:
        return redact_url(value)
    if value and SECRET.search(name):
        return "********"
    return repr(value)


def report(app: Celery) -> str:
    """What a bug report needs: versions, platform, where the stores are, settings changed."""
    lines = [
        f"software -> celeriac:{__version__} py:{platform.python_version()}",
        f"            redis-py:{_version('redis')} msgspec:{_version('msgspec')} click:{_version('click')}",
        f"platform -> system:{platform.system()} arch:{platform.architecture()[0]} "
        f"kernel version:{platform.release()} imp:{platform.python_implementation()}",
        f"app -> {app.main or '__main__'}",
        f"settings -> broker:{redact_url(app.broker_url)} results:{redact_url(app.backend_url)}",
        "",
    ]
    for name, value in sorted(app.conf.changes().items()):
        lines.append(f"{name}: {_shown(name, value)}")
    return "\n".join(lines)


def _version(distribution: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return "N/A"
