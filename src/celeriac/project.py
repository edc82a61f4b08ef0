"""The embedded default broker: which project an app belongs to, and that project's SQLite file."""

from __future__ import annotations

import hashlib
import os
import re
import sys
from pathlib import Path


def default_broker_url(main: str | None = None, origin: str | None = None) -> str:
    """The embedded default: one SQLite file per project, in the XDG data directory.

    The project is the directory holding the file that created the app (``origin``; the working
    directory when the app was made interactively or by celeriac itself), or its nearest parent
    that looks like a project's root (:data:`PROJECT_MARKERS`). So a web process and its worker,
    or a client app and the worker app of one repository, meet in one file, while two projects
    of one user never share a queue (another project's worker would take tasks it cannot run,
    and a ``purge`` would drop them). The file is ``projects/<root's name>-<hash of its path>.db``."""
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    root = project_root(origin)
    label = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(root).name or main or "app").strip("._") or "app"
    digest = hashlib.sha256(root.encode()).hexdigest()[:10]
    return f"sqlite:///{base / 'celeriac' / 'projects' / f'{label}-{digest}.db'}"


#: What marks a project's root directory.
PROJECT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", "manage.py", ".git", ".hg")


def project_root(origin: str | None) -> str:
    """The project ``origin`` (a file) belongs to; see :func:`default_broker_url`."""
    start = os.path.dirname(os.path.realpath(origin)) if origin else os.path.realpath(os.getcwd())
    # Neither the home directory (a dotfiles repository) nor / is anyone's project.
    stops = {os.path.realpath(Path.home()), os.path.abspath(os.sep)}
    directory = start
    while directory not in stops:
        if any(os.path.exists(os.path.join(directory, marker)) for marker in PROJECT_MARKERS):
            return directory
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    return start


def creator_file(app: object) -> str | None:
    """The source file of the code that called ``Celery(...)`` (a subclass's ``__init__`` skipped);
    None when celeriac itself or an interactive session made the app."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_locals.get("self") is app:
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return None
    filename = frame.f_code.co_filename
    if filename.startswith("<") or os.path.dirname(os.path.realpath(filename)).startswith(_PACKAGE_DIR):
        return None
    return filename


_PACKAGE_DIR = os.path.dirname(os.path.realpath(__file__))
