"""Kept so ``from celeriac.backends.memory import ...`` goes on working; the code lives in
``celeriac.engines.memory.results``. A package, not a module,
so git records the move of the old module as a rename and edits made to it on other branches
follow it into the engine."""

from ...engines.memory.results import MemoryBackend

__all__ = ["MemoryBackend"]
