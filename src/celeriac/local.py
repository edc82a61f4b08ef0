"""``celeriac.current_app`` and ``celeriac.current_task``: objects that stand for whatever is
current when used, as Celery's proxies do, so module-level imports of them stay right."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Proxy:
    __slots__ = ("__resolve",)

    def __init__(self, resolve: Callable[[], Any]) -> None:
        object.__setattr__(self, "_Proxy__resolve", resolve)

    def _get_current_object(self) -> Any:
        return self.__resolve()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__resolve(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.__resolve(), name, value)

    def __bool__(self) -> bool:
        return bool(self.__resolve())

    def __eq__(self, other: object) -> bool:
        return bool(self.__resolve() == other)

    def __hash__(self) -> int:
        return hash(self.__resolve())

    def __repr__(self) -> str:
        return repr(self.__resolve())


class AppProxy(Proxy):
    """Calling it returns the app itself, as ``celeriac.current_app()`` always did."""

    __slots__ = ()

    def __call__(self) -> Any:
        return self._get_current_object()
