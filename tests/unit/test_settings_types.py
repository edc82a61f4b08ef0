"""``app.conf``'s declared attribute types (what mypy checks) say what the settings table accepts."""

from __future__ import annotations

import types
import typing
from collections.abc import Callable

from celeriac.config import _CALLABLE, SETTINGS, Settings


def _accepted(annotation: object) -> tuple[set[type], bool]:
    """The runtime types an annotation admits (float admitting int, as for numbers), and None."""
    members = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    accepted: set[type] = set()
    nullable = False
    for member in members:
        if member is type(None):
            nullable = True
            continue
        origin = typing.get_origin(member) or member
        if origin is Callable:
            accepted.add(_CALLABLE)
        elif origin is float:
            accepted |= {int, float}
        else:
            assert isinstance(origin, type), member
            accepted.add(origin)
    return accepted, nullable


def test_every_setting_has_a_declared_type_and_nothing_else_does() -> None:
    declared = {name for name in typing.get_type_hints(Settings) if not name.startswith("_")}
    missing = sorted(set(SETTINGS) - declared)
    extra = sorted(declared - set(SETTINGS))
    assert not missing, f"add a line per setting to Settings in config.py: {missing}"
    assert not extra, f"Settings declares names the table does not know: {extra}"


def test_declared_types_match_what_the_table_accepts() -> None:
    hints = typing.get_type_hints(Settings)
    for name, spec in SETTINGS.items():
        annotation = hints[name]
        if spec.ignored or spec.types is None:
            assert annotation is typing.Any, f"{name}: takes anything, declare it Any"
            continue
        accepted, nullable = _accepted(annotation)
        assert accepted == set(spec.types), f"{name}: declared {annotation}, the table takes {spec.types}"
        assert nullable == spec.nullable, f"{name}: declared {annotation}, nullable={spec.nullable} in the table"
