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


def _url_of(source: Path, main: str, xdg: Path) -> str:
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text(f"from celeriac import Celery\napp = Celery({main!r})\n")
    code = f"import runpy; print(runpy.run_path({str(source)!r})['app'].broker_url)"
    env = {"XDG_DATA_HOME": str(xdg), "PATH": "/usr/bin:/bin", "HOME": str(xdg)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30,
                         cwd="/")
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_the_embedded_default_belongs_to_the_project(tmp_path):
    """Two projects of one user no longer share one SQLite file; the apps of one project (a web
    client and its worker in another directory) share one, wherever they run from."""
    xdg = tmp_path / "xdg"
    for project in ("shop", "blog"):
        (tmp_path / project).mkdir()
        (tmp_path / project / "pyproject.toml").write_text("")
    shop_worker = _url_of(tmp_path / "shop" / "worker" / "tasks.py", "tasks", xdg)
    shop_client = _url_of(tmp_path / "shop" / "web" / "client.py", "tasks_client", xdg)
    blog_worker = _url_of(tmp_path / "blog" / "worker" / "tasks.py", "tasks", xdg)
    assert shop_worker == shop_client
    assert shop_worker != blog_worker
    assert shop_worker.startswith(f"sqlite:///{xdg}/celeriac/projects/shop-") and shop_worker.endswith(".db")
    # Without a project marker, the directory of the file that made the app is the project.
    loose = _url_of(tmp_path / "loose" / "proj.py", "proj", xdg)
    assert loose.startswith(f"sqlite:///{xdg}/celeriac/projects/loose-")
