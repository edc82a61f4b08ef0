"""Kept so ``from celeriac.backends.sqlite import ...`` goes on working; the code lives in
``celeriac.engines.sqlite.results``. A package, not a module,
so git records the move of the old module as a rename and edits made to it on other branches
follow it into the engine."""

from ...engines.sqlite.results import SQLiteBackend

__all__ = ["SQLiteBackend"]
