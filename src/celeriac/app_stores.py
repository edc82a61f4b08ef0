"""Which stores an app talks to and its connections to them: the broker's URL (the embedded
default when none is set, see ``project.py``), the result store's (the broker's own store unless
told otherwise), one connection each per process, opened on first use, and new ones for threads
that must not share. Mixed into ``app.Celery``."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from .project import default_broker_url

if TYPE_CHECKING:
    from .backends.base import ResultBackend
    from .brokers.base import Broker
    from .config import Settings


class AppStores:
    """The broker and result store of an app (``app.broker``, ``app.backend``)."""

    if TYPE_CHECKING:  # the app's, set in its __init__
        main: str | None
        origin: str | None
        conf: Settings
        _broker: Broker | None
        _backend: ResultBackend | None

    def _reset_connections(self) -> None:
        self._broker = None
        self._backend = None

    @property
    def broker_url(self) -> str:
        return str(self.conf.broker_url or default_broker_url(self.main, self.origin))

    @property
    def backend_url(self) -> str:
        # Results go to the broker's store unless told otherwise, so get() works out of the box.
        return str(self.conf.result_backend or self.broker_url)

    @property
    def broker(self) -> Broker:
        """This process's broker connection (made on first use)."""
        if self._broker is None:
            self._broker = self.new_broker()
        return self._broker

    @property
    def backend(self) -> ResultBackend:
        """This process's result store connection (made on first use)."""
        if self._backend is None:
            self._backend = self.new_backend()
        return self._backend

    def new_broker(self) -> Broker:
        """A broker connection of its own, for a thread that must not share one."""
        from .engines import open_broker as from_url

        options: dict[str, Any] = {
            "max_redeliveries": self.conf.task_max_redeliveries,
            "lease_seconds": float(self.conf.broker_lease_seconds),
        }
        if self.broker_url.startswith("sqlite"):
            options["durable"] = self.conf.broker_sqlite_durable
        return from_url(self.broker_url, **options,
                        **self._redis_options(self.broker_url, self.conf.broker_transport_options))

    def _redis_options(self, url: str, transport_options: dict[str, Any] | None) -> dict[str, Any]:
        from .engines import engine_name

        if engine_name(url) != "redis":
            return {}
        return {"socket_timeout": self.conf.redis_socket_timeout,
                "socket_connect_timeout": self.conf.redis_socket_connect_timeout,
                "transport_options": transport_options or {}}

    def new_backend(self) -> ResultBackend:
        from .engines import open_results as from_url

        expires = self.conf.result_expires
        if isinstance(expires, timedelta):
            expires = expires.total_seconds()
        if self.backend_url.startswith("sqlite"):
            return from_url(self.backend_url, expires=expires, durable=self.conf.broker_sqlite_durable)
        transport = self.conf.result_backend_transport_options
        if transport is None and not self.conf.result_backend:
            transport = self.conf.broker_transport_options  # results live in the broker's own store
        return from_url(self.backend_url, expires=expires, **self._redis_options(self.backend_url, transport))
