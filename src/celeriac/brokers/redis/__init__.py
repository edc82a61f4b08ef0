"""Kept so ``from celeriac.brokers.redis import ...`` goes on working; the code lives in
``celeriac.engines.redis.broker``. A package, not a module,
so git records the move of the old module as a rename and edits made to it on other branches
follow it into the engine."""

from ...engines.redis.broker import RedisBroker

__all__ = ["RedisBroker"]
