"""Celery's ``%`` abbreviations, in node names (``-n worker1@%h``) and in file names
(``--pidfile=%n.pid --logfile=%n%I.log``).

In a node name: ``%h`` the host name with its domain, ``%n`` the host name without it, ``%d`` the
domain; a name without ``@`` gets ``@<host>`` appended. celeriac adds ``%i`` (and ``%I``, ``-%i``):
this process's pid, so several workers of one host can share one ``-n`` pattern (Celery leaves
them as they are in a node name, which only makes sense in file names).

In a file name, the node the file belongs to is known: ``%p`` the whole node name, ``%n`` (and
``%N``) its part before ``@``, ``%h`` its host, ``%d`` that host's domain, and, as in Celery,
``%i`` the pool process index (0: the worker's main process) and ``%I`` the same with a dash, empty
for the main process. celeriac's pool processes log through the main process's file, so these are
always ``0`` and empty. ``%%`` is a literal ``%``.
"""

from __future__ import annotations

import os
import re
import socket

DEFAULT_NAME = "celeriac@%h"

_ABBREVIATION = re.compile(r"%(.)")


def _expand(pattern: str, keys: dict[str, str]) -> str:
    return _ABBREVIATION.sub(lambda m: "%" if m.group(1) == "%" else keys.get(m.group(1), m.group(0)), pattern)


def node_name(name: str | None, *, host: str | None = None, pid: int | None = None) -> str:
    """The worker's node name for ``-n`` (``DEFAULT_NAME`` when not given)."""
    host = host or socket.gethostname()
    short, _, domain = host.partition(".")
    name = name or DEFAULT_NAME
    if "@" not in name:
        name = f"{name}@{host}"
    process = str(pid if pid is not None else os.getpid())
    return _expand(name, {"h": host, "n": short, "d": domain, "i": process, "I": f"-{process}"})


def file_name(pattern: str, node: str, *, index: int = 0) -> str:
    """A pid or log file name for ``node`` (a full ``name@host``)."""
    short, _, host = node.partition("@")
    host = host or socket.gethostname()
    keys = {"p": node, "n": short, "N": short, "h": host, "d": host.partition(".")[2],
            "i": str(index), "I": f"-{index}" if index else ""}
    return _expand(pattern, keys)
