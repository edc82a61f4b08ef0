"""Pools: what runs the worker's tasks (see :mod:`.base` for the contract)."""

from __future__ import annotations

from .asyncio import AsyncioPool
from .base import Pool
from .prefork import PreforkPool
from .threads import SoloPool, ThreadPool

#: ``-P`` name -> pool class.
POOLS: dict[str, type[Pool]] = {
    pool.name: pool for pool in (PreforkPool, ThreadPool, SoloPool, AsyncioPool)
}

__all__ = ["POOLS", "AsyncioPool", "Pool", "PreforkPool", "SoloPool", "ThreadPool"]
