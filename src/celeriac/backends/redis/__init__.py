"""Kept so ``from celeriac.backends.redis import ...`` goes on working; the code lives in
``celeriac.engines.redis.results``. A package, not a module,
so git records the move of the old module as a rename and edits made to it on other branches
follow it into the engine."""

from ...engines.redis.results import RedisBackend, done_key, meta_key

__all__ = ["RedisBackend", "done_key", "meta_key"]
