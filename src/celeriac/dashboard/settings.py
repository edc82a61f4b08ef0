"""The dashboard's settings: Flower's option names, each also read from ``FLOWER_<OPTION>``.

Safe by default: it binds 127.0.0.1, and on any other address it refuses to start without
authentication, because whoever reaches the port can revoke tasks and shut workers down.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..brokers.base import redact_url
from ..exceptions import ConfigurationError

TRUE = frozenset({"1", "true", "yes", "on", "y", "t"})
FALSE = frozenset({"0", "false", "no", "off", "n", "f", ""})


def parse_bool(value: str, what: str) -> bool:
    text = value.strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise ConfigurationError(f"{what} must be true or false (1/0, yes/no, on/off), not {value!r}")


def parse_basic_auth(value: str | None) -> dict[str, str]:
    """``user:pw[,user2:pw2]`` -> {user: pw}, naming the entry that has no password."""
    users: dict[str, str] = {}
    for entry in (value or "").split(","):
        entry = entry.strip()
        if not entry:
            continue
        user, sep, password = entry.partition(":")
        if not sep or not user or not password:
            raise ConfigurationError(f"--basic_auth entries are user:password, not {user or entry!r}...")
        users[user] = password
    return users


def is_loopback(address: str) -> bool:
    if address in ("localhost", ""):
        return address == "localhost"
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve anywhere


def default_db(broker_url: str) -> str:
    """One history file per broker, so two clusters watched from one machine never mix."""
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "celeriac"
    digest = hashlib.sha256(redact_url(broker_url).encode()).hexdigest()[:12]
    return str(base / f"dashboard-{digest}.db")


@dataclass
class Settings:
    port: int = 5555
    address: str = "127.0.0.1"
    basic_auth: dict[str, str] = field(default_factory=dict)
    auth_tokens: list[str] = field(default_factory=list)
    url_prefix: str = ""
    max_tasks: int | None = 100_000
    max_age: float | None = None          # seconds since a task's last event
    db: str | None = None                 # the history file; default: per broker, see default_db
    purge_offline_workers: float | None = None
    read_only: bool = False
    unauthenticated_api: bool = False     # FLOWER_UNAUTHENTICATED_API: /api/* without auth
    inspect_timeout: float = 1.0

    def __post_init__(self) -> None:
        self.url_prefix = "/" + self.url_prefix.strip("/") if self.url_prefix.strip("/") else ""

    @property
    def auth(self) -> bool:
        return bool(self.basic_auth or self.auth_tokens)

    def check(self) -> None:
        """Refuse set-ups that would expose the cluster; each error says what to set."""
        if not 0 < self.port < 65536:
            raise ConfigurationError(f"--port must be between 1 and 65535, not {self.port}")
        if self.max_tasks is not None and self.max_tasks < 1:
            raise ConfigurationError(f"--max_tasks must be at least 1, not {self.max_tasks}")
        if not is_loopback(self.address) and not self.auth:
            raise ConfigurationError(
                f"refusing to serve on {self.address or 'every interface'} without authentication: set "
                "--basic_auth=user:password (FLOWER_BASIC_AUTH) or --auth_token (FLOWER_AUTH_TOKEN), "
                "or bind --address=127.0.0.1")
