"""Fixtures for the seed examples' tests; the helpers are in examples_support.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .examples_support import BROKER_ENV, Example


@pytest.fixture
def broker_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh SQLite broker file, exported the way a user points celeriac at one."""
    url = f"sqlite:///{tmp_path}/broker.db"
    for name in BROKER_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CELERIAC_BROKER_URL", url)
    return url


@pytest.fixture
def run_example(broker_url: str, tmp_path: Path) -> Iterator[Callable[..., Example]]:
    """``run_example('image_service')``: the example importable in the test process and ready
    to start processes for. ``importable`` is the directory the test process imports from (the
    microservice's services import ``backend.shared`` from its top, never its worker's code).
    """
    made: list[Example] = []

    def start(name: str, importable: str = ".") -> Example:
        example = Example(name, broker_url, tmp_path, importable)
        made.append(example)
        return example

    yield start
    for example in reversed(made):
        example.close()
