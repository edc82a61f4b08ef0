"""Celery's %-abbreviations in node and file names; the embedded default broker file per project."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from celeriac.worker.nodenames import file_name, node_name


def test_node_name_expands_celerys_abbreviations_and_the_pid():
    assert node_name("w1@%h", host="box.example.com") == "w1@box.example.com"
    assert node_name("w1@%n", host="box.example.com") == "w1@box"
    assert node_name("%n-%d", host="box.example.com") == "box-example.com@box.example.com"
    assert node_name("w%i@%h", host="box", pid=42) == "w42@box"
    assert node_name(None, host="box") == "celeriac@box"
    assert node_name("w1", host="box") == "w1@box"
    assert node_name("100%%@%h", host="box") == "100%@box"


def test_file_names_expand_for_the_node_as_celery_multi_does():
    node = "w1@box.example.com"
    assert file_name("%n.pid", node) == "w1.pid"
    assert file_name("%N.pid", node) == "w1.pid"
    assert file_name("%n%I.log", node) == "w1.log"  # the main process: %I is empty
    assert file_name("%n-%i.log", node) == "w1-0.log"
    assert file_name("/var/log/%p.log", node) == "/var/log/w1@box.example.com.log"
    assert file_name("%h/%d", node) == "box.example.com/example.com"


def _url_of(directory: Path, main: str, xdg: Path) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "proj.py").write_text(f"from celeriac import Celery\napp = Celery({main!r})\n")
    code = "import proj; print(proj.app.broker_url)"
    env = {"XDG_DATA_HOME": str(xdg), "PYTHONPATH": str(directory), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30,
                         cwd="/")
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_the_embedded_default_belongs_to_the_project(tmp_path):
    """Two projects of one user no longer share one SQLite file; one project's app gets the same
    file wherever it is imported from."""
    xdg = tmp_path / "xdg"
    shop = _url_of(tmp_path / "shop", "proj", xdg)
    blog = _url_of(tmp_path / "blog", "proj", xdg)
    assert shop != blog
    assert shop == _url_of(tmp_path / "shop", "proj", xdg)
    assert shop.startswith(f"sqlite:///{xdg}/celeriac/projects/proj-") and shop.endswith(".db")
