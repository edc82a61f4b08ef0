"""The result store contract (``base.py``) and ``from_url``; the implementations live in
``celeriac.engines`` (one package per storage engine). ``from_url`` is kept here for users
and tests; celeriac itself opens stores through ``celeriac.engines``, the layer above this one."""

from __future__ import annotations

from typing import Any

from .base import Meta, ResultBackend

__all__ = ["Meta", "ResultBackend", "from_url"]


def from_url(url: str, **options: Any) -> ResultBackend:
    """Build the result store for ``url`` (same schemes as brokers)."""
    from ..engines import open_results

    return open_results(url, **options)
