"""Finding the app named by ``-A``, as Celery does: ``proj``, ``proj.celery_app``, ``proj:app``."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

from ..app import Celery


def _app_in(module: Any) -> Celery | None:
    for attr in ("app", "celery", "celery_app"):
        candidate = getattr(module, attr, None)
        if isinstance(candidate, Celery):
            return candidate
    found = [v for v in vars(module).values() if isinstance(v, Celery)]
    return found[0] if len(found) == 1 else None


def _import(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            return None  # the module itself is missing (not one of its imports)
        raise


def find_app(spec: str) -> Celery:
    """Import the app for ``spec``; a clear one-line error when it cannot be found."""
    ref = getattr(spec, "app", None)
    if isinstance(ref, Celery):
        return ref
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module_name, _, attr = spec.partition(":")
    if attr:
        module = _import(module_name)
        if module is None:
            raise click.ClickException(f"Unable to load the app: module {module_name!r} was not found")
        target = getattr(module, attr, None)
        if isinstance(target, Celery):
            return target
        raise click.ClickException(f"Unable to load the app: {module_name!r} has no Celery app named {attr!r}")
    module = _import(spec)
    if module is not None:
        app = _app_in(module)
        if app is None:
            # A package: Celery looks in proj.celery too.
            sub = _import(f"{spec}.celery") if hasattr(module, "__path__") else None
            app = _app_in(sub) if sub is not None else None
        if app is not None:
            return app
        raise click.ClickException(f"Unable to load the app: module {spec!r} has no Celery app "
                                   f"(name it 'app' or pass -A {spec}:name)")
    parent, _, attr = spec.rpartition(".")
    if parent:
        module = _import(parent)
        if module is not None and isinstance(getattr(module, attr, None), Celery):
            return getattr(module, attr)  # type: ignore[no-any-return]
    raise click.ClickException(f"Unable to load the app: module {spec!r} was not found "
                               f"(is the working directory right? it is {os.getcwd()})")
