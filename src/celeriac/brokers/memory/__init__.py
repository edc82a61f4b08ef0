"""Kept so ``from celeriac.brokers.memory import ...`` goes on working; the code lives in
``celeriac.engines.memory.broker``. A package, not a module,
so git records the move of the old module as a rename and edits made to it on other branches
follow it into the engine."""

from ...engines.memory.broker import MemoryBroker

__all__ = ["MemoryBroker"]
