"""What every command shares: the app, loaded once from ``-A`` with CLI overrides."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..app import Celery
from ..exceptions import ConfigurationError


@dataclass
class CLIContext:
    app_spec: str | None
    broker: str | None = None
    result_backend: str | None = None
    config: str | None = None  # --config: a settings module applied over the app's (Celery's option)
    quiet: bool = False  # the global -q: no banners
    _app: Celery | None = field(default=None, repr=False)

    @property
    def app(self) -> Celery:
        if self._app is None:
            if self.app_spec:
                from .loader import find_app

                app = find_app(self.app_spec)
            else:
                app = Celery("default")
            if self.config:
                try:
                    app.config_from_object(self.config)
                except ImportError as exc:
                    raise ConfigurationError(f"--config {self.config!r}: {exc}") from None
            if self.broker:
                app.conf.broker_url = self.broker
                app._reset_connections()
            if self.result_backend:
                app.conf.result_backend = self.result_backend
                app._reset_connections()
            self._app = app
        return self._app
