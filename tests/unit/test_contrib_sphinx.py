"""celeriac.contrib.sphinx in a real Sphinx build: automodule lists tasks with their functions'
signatures (no ``self`` for bound tasks) and the task prefix, autotask documents one, and the
``:py:task:`` role resolves (the build runs with -n -W: an unresolved reference fails it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sphinx")  # a dev dependency: missing only outside the project's setup

APPS = Path(__file__).parent.parent / "apps"

CONF = f"""
import sys
sys.path.insert(0, {str(APPS)!r})
extensions = ["celeriac.contrib.sphinx"]
celery_task_prefix = "(job)"
"""

INDEX = """
Tasks
=====

.. automodule:: docapp
   :members: add, fetch, shared, helper

.. autotask:: docapp.add
   :no-index:

See :py:task:`docapp.fetch`.
"""


def build(tmp_path: Path, builder: str) -> Path:
    src, out = tmp_path / "src", tmp_path / builder
    src.mkdir(exist_ok=True)
    (src / "conf.py").write_text(CONF)
    (src / "index.rst").write_text(INDEX)
    done = subprocess.run([sys.executable, "-m", "sphinx", "-b", builder, "-n", "-W", "-q", str(src), str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return out


def test_tasks_are_documented_with_their_signature_and_prefix(tmp_path: Path) -> None:
    text = (build(tmp_path, "text") / "index.txt").read_text()
    assert "(job) docapp.add(x: int, y: int = 2) -> int\n\n   Add two numbers." in text
    assert "(job) docapp.fetch(url: str) -> str\n\n   Fetch a page." in text  # bind=True: no self
    assert "(job) docapp.shared(n)\n\n   A shared task." in text
    assert "\ndocapp.helper(a: int) -> int\n" in text  # a plain function keeps no prefix
    assert text.count("(job) docapp.add(") == 2  # automodule's and autotask's


def test_the_task_role_links_to_the_task(tmp_path: Path) -> None:
    html = (build(tmp_path, "html") / "index.html").read_text()
    assert 'href="#docapp.fetch"' in html
    assert 'id="docapp.fetch"' in html
