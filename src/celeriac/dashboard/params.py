"""Flower's way of taking arguments: from the query string or a form body, booleans as
1/true/yes/on, and a 400 naming the argument when one is missing or ill-typed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar
from urllib.parse import parse_qsl

from starlette.requests import Request

from ..exceptions import ConfigurationError
from .settings import parse_bool

T = TypeVar("T")


class BadArgument(Exception):
    """Answered 400 with this message."""


class Args:
    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    @classmethod
    async def of(cls, request: Request) -> Args:
        values = dict(request.query_params)
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            body = (await request.body()).decode("utf-8", "replace")
            values.update(parse_qsl(body, keep_blank_values=True))
        return cls(values)

    def text(self, name: str, default: str | None = None, *, required: bool = False) -> str | None:
        value = self.values.get(name)
        if value is None and required:
            raise BadArgument(f"Missing argument {name}")
        return default if value is None else value

    def _typed(self, name: str, convert: Callable[[str], T], kind: str, default: T | None) -> T | None:
        value = self.values.get(name)
        if value is None or value == "":
            return default
        try:
            return convert(value)
        except (ValueError, ConfigurationError):
            raise BadArgument(f"Invalid argument {name}: {value!r} is not {kind}") from None

    def integer(self, name: str, default: int | None = None) -> int | None:
        return self._typed(name, int, "an integer", default)

    def number(self, name: str, default: float | None = None) -> float | None:
        return self._typed(name, float, "a number", default)

    def boolean(self, name: str, default: bool = False) -> bool:
        value = self._typed(name, lambda v: parse_bool(v, name), "a boolean", default)
        return bool(value)

    def minute(self, name: str) -> float | None:
        """A ``%Y-%m-%d %H:%M`` time (local, as Flower reads it) as epoch seconds."""
        return self._typed(name, lambda v: datetime.strptime(v, "%Y-%m-%d %H:%M").timestamp(),
                           "a time like 2024-01-31 13:45", None)


def no_all(value: str | None) -> str | None:
    """Flower's ``All`` means no filter."""
    return None if value in (None, "", "All") else value
