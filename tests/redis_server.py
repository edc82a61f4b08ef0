"""A redis-server of the tests' own, on a free loopback port, stopped by PID.

Tests never touch a Redis they did not start.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RedisServer:
    port: int
    proc: subprocess.Popen[bytes]
    directory: str
    args: list[str]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def halt(self) -> None:
        """Shut the server down (SIGTERM: it writes its append-only file first)."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def kill(self) -> None:
        """kill -9: no shutdown, so only what the append-only file already holds survives."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def pause(self) -> None:
        """SIGSTOP: the server holds its connections open but answers nothing (a stall)."""
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def restart(self, down_for: float = 0.0, *, hard: bool = False) -> None:
        """Start it again on the same port and data directory, ``down_for`` seconds later;
        ``hard`` stops it with kill -9 instead of a clean shutdown."""
        if hard:
            self.kill()
        else:
            self.halt()
        time.sleep(down_for)
        proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not _answers(self.port, proc):
            raise RuntimeError(f"redis-server did not come back on port {self.port}")
        self.proc = proc

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.resume()  # a paused server would ignore SIGTERM until continued
        self.halt()
        shutil.rmtree(self.directory, ignore_errors=True)


def _answers(port: int, proc: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return True
        except OSError:
            time.sleep(0.05)
    return False


def start_redis(*extra: str, appendonly: bool = True, appendfsync: str = "no") -> RedisServer:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed: run ./scripts/test (it installs it) "
                           "or apt-get install -y redis-server")
    directory = tempfile.mkdtemp(prefix="celeriac-redis-")
    for _ in range(5):
        port = free_port()
        args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", directory,
                "--save", "", "--appendonly", "yes" if appendonly else "no",
                "--appendfsync", appendfsync, "--protected-mode", "yes", "--daemonize", "no",
                "--loglevel", "warning", *extra]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if _answers(port, proc):
            return RedisServer(port, proc, directory, args)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    raise RuntimeError("could not start redis-server on a free port")
