"""A pdb a task can stop in, reached over TCP: ``from celeriac.contrib import rdb; rdb.set_trace()``.

Pool processes have no terminal, so the debugger listens on a port and waits for one client
(``telnet 127.0.0.1 6899`` or ``nc``). The worker's log says which port: the first free one from
``CELERY_RDB_PORT`` (or ``CELERIAC_RDB_PORT``, default 6899) upwards, on ``CELERY_RDB_HOST``
(default 127.0.0.1: only this machine can connect; anything else gives a shell-equivalent to
whoever reaches the port). ``c``/``continue`` lets the task run on and ends the session,
``q``/``exit`` ends it too. The task's time limits and lease keep running meanwhile.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import sys
from pdb import Pdb
from types import FrameType
from typing import IO, Any

logger = logging.getLogger("celeriac.rdb")

DEFAULT_PORT = 6899
CELERY_RDB_HOST = os.environ.get("CELERY_RDB_HOST") or os.environ.get("CELERIAC_RDB_HOST") or "127.0.0.1"
CELERY_RDB_PORT = int(os.environ.get("CELERY_RDB_PORT") or os.environ.get("CELERIAC_RDB_PORT") or DEFAULT_PORT)

_current: list[Rdb | None] = [None]


class Rdb(Pdb):
    """pdb whose terminal is one TCP connection, accepted when it is created."""

    def __init__(self, host: str = CELERY_RDB_HOST, port: int = CELERY_RDB_PORT, port_search_limit: int = 100,
                 port_skew: int = 0, out: IO[str] | None = None) -> None:
        self.active = True
        self.out = out
        self._saved = sys.stdin, sys.stdout
        self._sock, self.port = self._listen(host, port + port_skew, port_search_limit)
        self.host = host
        self.ident = f"Remote Debugger:{self.port}"
        self.say(f"{self.ident}: Ready to connect: telnet {host} {self.port} "
                 "(type `c` to let the task continue); waiting for a client...")
        self._client, address = self._sock.accept()
        self.remote_addr = ":".join(str(part) for part in address)
        self.say(f"{self.ident}: Now in session with {self.remote_addr}.")
        self._handle: IO[str] | None = self._client.makefile("rw")
        # print() in the task and pdb's own output both reach the client while in session.
        sys.stdin = sys.stdout = self._handle
        super().__init__(completekey="tab", stdin=self._handle, stdout=self._handle)

    @staticmethod
    def _listen(host: str, first: int, tries: int) -> tuple[socket.socket, int]:
        for port in range(first, first + tries):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError as exc:
                sock.close()
                if exc.errno in (errno.EADDRINUSE, errno.EINVAL):
                    continue
                raise
            sock.listen(1)
            return sock, port
        raise OSError(f"rdb: no free port in {first}..{first + tries - 1} on {host}; "
                      "set CELERY_RDB_PORT to a free one")

    def say(self, text: str) -> None:
        if self.out is not None:
            print(text, file=self.out, flush=True)
        else:
            logger.warning("%s", text)

    def __enter__(self) -> Rdb:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._close_session()

    def _close_session(self) -> None:
        sys.stdin, sys.stdout = self._saved
        self.stdin, self.stdout = self._saved
        if not self.active:
            return
        self.active = False
        for closable in (self._handle, self._client, self._sock):
            try:
                closable.close()  # type: ignore[union-attr]
            except (OSError, AttributeError):
                pass
        self.say(f"{self.ident}: Session with {self.remote_addr} ended.")

    def do_continue(self, arg: str) -> bool:
        self._close_session()
        self.set_continue()
        return True

    do_c = do_cont = do_continue

    def do_quit(self, arg: str) -> bool:
        self._close_session()
        # Leaving tracing off rather than raising BdbQuit into the task: the task runs on.
        sys.settrace(None)
        self.set_continue()
        return True

    do_q = do_exit = do_quit


def debugger() -> Rdb:
    """The open debugger, or a new one (which waits for a client)."""
    current = _current[0]
    if current is None or not current.active:
        current = _current[0] = Rdb()
    return current


def set_trace(frame: FrameType | None = None) -> None:
    """Stop here (or in ``frame``) and wait for a debugger client."""
    debugger().set_trace(frame if frame is not None else sys._getframe().f_back)


__all__ = ["CELERY_RDB_HOST", "CELERY_RDB_PORT", "DEFAULT_PORT", "Rdb", "debugger", "set_trace"]
