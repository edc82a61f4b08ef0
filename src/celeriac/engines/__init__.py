"""Storage engines: one package per engine (``redis``, ``sqlite``, ``memory``), each opening
its broker and result store from one place, and the one table of URL schemes.

An engine package's ``__init__`` exposes ``open_broker(url, **options)`` and
``open_results(url, **options)`` and imports its client library only inside them, so
``import celeriac`` never imports redis. ``brokers.from_url`` and ``backends.from_url`` are
this module's two entry points under their public names.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ..exceptions import ConfigurationError

if TYPE_CHECKING:
    from ..backends.base import ResultBackend
    from ..brokers.base import Broker

# URL scheme -> engine package. Redis Sentinel and Cluster are modes of the Redis engine, not an engine.
SCHEMES: dict[str, str] = {
    "redis": "redis",
    "rediss": "redis",
    "unix": "redis",
    "sentinel": "redis",
    "rediscluster": "redis",
    "redisclusters": "redis",
    "sqlite": "sqlite",
    "memory": "memory",
}

# What to install when an engine's client library is missing.
_EXTRAS = {"redis": "pip install 'celeriac[redis]'"}


def scheme_of(url: str) -> str:
    return url.partition("://")[0].lower()


def engine_name(url: str) -> str | None:
    """The engine serving ``url`` (``"redis"``, ``"sqlite"``, ``"memory"``), None if unknown."""
    return SCHEMES.get(scheme_of(url))


def _engine(url: str, what: str) -> ModuleType:
    name = engine_name(url)
    if name is None:
        known = ", ".join(f"{scheme}://" for scheme in SCHEMES)
        raise ConfigurationError(f"{what} URL {url!r}: unknown scheme {scheme_of(url)!r} (use one of {known})")
    return importlib.import_module(f"{__name__}.{name}")


def _missing(url: str, what: str, exc: ImportError) -> ConfigurationError:
    hint = _EXTRAS.get(engine_name(url) or "", "")
    return ConfigurationError(f"{what} {scheme_of(url)}:// needs a library that is not installed: {hint} ({exc})")


def open_broker(url: str, **options: Any) -> Broker:
    """The broker for ``url``, built by its engine."""
    engine = _engine(url, "broker")
    try:
        broker: Broker = engine.open_broker(url, **options)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise _missing(url, "broker", exc) from None
    return broker


def open_results(url: str, **options: Any) -> ResultBackend:
    """The result store for ``url``, built by its engine."""
    engine = _engine(url, "result backend")
    try:
        results: ResultBackend = engine.open_results(url, **options)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise _missing(url, "result backend", exc) from None
    return results
