"""A pool process's consumer in a forked child, started when the test says so."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any


def fork_consumer(app: Any, make: Callable[[], Any]) -> tuple[int, int]:
    """Fork a child that, once a byte arrives on the returned pipe, opens its own connections
    (as a pool process does after the fork) and runs ``make()``'s consumer until it stops. Until
    then the parent may lease messages to its consumer name. Returns (pid, the pipe's write end)."""
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid:
        os.close(go_r)
        return pid, go_w
    code = 1
    try:
        os.close(go_w)
        os.read(go_r, 1)
        app._reset_connections()
        code = make().run()
    finally:
        os._exit(code)
