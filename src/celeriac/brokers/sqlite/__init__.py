"""Kept so ``from celeriac.brokers.sqlite import ...`` goes on working; the code lives in
``celeriac.engines.sqlite.broker``. A package, not a module,
so git records the move of the old module as a rename and edits made to it on other branches
follow it into the engine."""

from ...engines.sqlite.broker import SQLiteBroker

__all__ = ["SQLiteBroker"]
