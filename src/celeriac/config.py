"""Settings, with Celery's names.

One table (``SETTINGS``, in :mod:`.settings_table`, re-exported here) says every name celeriac
knows, its default and the type it takes.
Everything that reads configuration goes through :class:`Settings`, so an unknown or ill-typed
name fails in one place, with one line that names it and suggests the near one.

Celery settings celeriac has no use for (``broker_pool_limit`` and friends) are accepted
and ignored with one debug line, so existing configuration files load unchanged. Celery's other
settings that celeriac does not implement (``cache_backend``, ``database_engine_options``, ...:
:mod:`.celery_settings`) are accepted with a warning that says what celeriac does instead; only
a name that is neither celeriac's nor Celery's is an error.
"""

from __future__ import annotations

import difflib
import importlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from .celery_settings import UNIMPLEMENTED, instead
from .exceptions import ConfigurationError
from .settings_table import _CALLABLE, _NUMBER, ENV_FALLBACKS, ENV_URLS, OLD_NAMES, SETTINGS, Setting

logger = logging.getLogger("celeriac.config")

__all__ = ["ENV_FALLBACKS", "ENV_URLS", "OLD_NAMES", "SETTINGS", "_CALLABLE", "Setting", "Settings", "check",
           "import_object", "normalize_key", "parse_rate", "suggest"]


def suggest(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _type_names(types: tuple[type, ...]) -> str:
    names = {t.__name__ for t in types}
    if names == {"int", "float"}:
        return "a number"
    return " or ".join(sorted(names))


_warned: set[str] = set()


def _warn_unimplemented(name: str) -> None:
    """Once per process: a Django settings module is read again by every command."""
    if name not in _warned:
        _warned.add(name)
        logger.warning("setting %s is Celery's, not celeriac's: ignored (%s)", name, instead(name))


def check(name: str, value: Any) -> Any:
    """Return ``value`` if ``name`` accepts it, else raise ConfigurationError naming both."""
    spec = SETTINGS.get(name)
    if spec is None:
        if name in UNIMPLEMENTED:
            _warn_unimplemented(name)
            return value
        raise ConfigurationError(f"unknown setting {name!r}{suggest(name, SETTINGS)}")
    if spec.ignored:
        level = logging.WARNING if spec.loud and value is not None else logging.DEBUG
        logger.log(level, "setting %s has no effect in celeriac%s", name, f": {spec.doc}" if spec.doc else "")
        return value
    if value is None:
        if not spec.nullable:
            raise ConfigurationError(f"setting {name!r} cannot be None")
        return value
    if spec.types is None:
        return value
    # bool is an int in Python; a number setting given True is a mistake worth naming
    if isinstance(value, bool) and bool not in spec.types:
        raise ConfigurationError(f"setting {name!r} takes {_type_names(spec.types)}, not bool {value!r}")
    if not isinstance(value, spec.types):
        raise ConfigurationError(
            f"setting {name!r} takes {_type_names(spec.types)}, not {type(value).__name__} {value!r}"
        )
    if spec.types == _NUMBER and isinstance(value, _NUMBER) and value < 0:
        raise ConfigurationError(f"setting {name!r} cannot be negative ({value!r})")
    return value


def normalize_key(key: str, namespace: str | None = None) -> str | None:
    """Map a key as written in user config to a setting name, or None when it is not ours."""
    if namespace:
        prefix = namespace.rstrip("_") + "_"
        if key in OLD_NAMES and key.startswith(prefix):
            return OLD_NAMES[key]
        if not key.startswith(prefix):
            return None
        return key[len(prefix):].lower()
    if key in OLD_NAMES:
        return OLD_NAMES[key]
    if key.islower():
        return key
    return None


class Settings(MutableMapping[str, Any]):
    """The configuration of one app: attribute and item access, validated on every write."""

    # Each setting's type as SETTINGS states it, so ``app.conf.<name>`` type-checks and an
    # unknown name is a mypy error (tests/unit/test_settings_types.py keeps the two in step;
    # a new setting needs its line here). Ignored Celery settings take anything: Any.
    _values: dict[str, Any]
    broker_url: str | None
    broker_connection_retry_on_startup: bool | None
    broker_connection_retry: bool | None
    broker_connection_max_retries: int | None
    broker_connection_timeout: float | None
    broker_lease_seconds: float
    broker_allow_evicting_redis: bool
    broker_sqlite_durable: bool
    result_backend: str | None
    result_expires: float | None
    result_serializer: str
    result_accept_content: list[str] | tuple[str, ...] | None
    result_extended: bool
    result_persistent: Any
    task_serializer: str
    accept_content: list[str] | tuple[str, ...] | set[str]
    task_message_signing_key: str | bytes | None
    task_message_signing_max_age: float | None
    task_redact_args: list[str] | tuple[str, ...] | None
    timezone: str | None
    enable_utc: bool
    task_track_started: bool
    task_time_limit: float | None
    task_soft_time_limit: float | None
    task_acks_late: bool
    task_acks_on_failure_or_timeout: bool
    task_reject_on_worker_lost: bool
    task_max_redeliveries: int
    task_default_queue: str
    task_default_priority: int | None
    task_default_rate_limit: float | str | None
    task_routes: dict[str, Any] | list[Any] | tuple[Any, ...] | Callable[..., Any] | None
    task_queues: dict[str, Any] | list[Any] | tuple[Any, ...] | set[Any] | None
    task_create_missing_queues: bool
    task_always_eager: bool
    task_eager_propagates: bool
    task_store_eager_result: bool
    task_ignore_result: bool
    task_store_errors_even_if_ignored: bool
    task_publish_retry: bool
    task_publish_retry_policy: dict[str, Any] | None
    task_annotations: dict[str, Any] | list[Any] | tuple[Any, ...] | None
    task_send_sent_event: bool
    task_default_exchange: Any
    task_default_exchange_type: Any
    task_default_routing_key: Any
    task_queue_max_priority: Any
    task_inherit_parent_priority: bool
    task_compression: Any
    task_message_max_bytes: int
    task_protocol: Any
    task_remote_tracebacks: Any
    worker_concurrency: int | None
    worker_pool: str
    worker_autoscale_keepalive: float
    worker_async_concurrency: int
    alert_on: list[str] | tuple[str, ...]
    alert_webhook_url: str | None
    alert_webhook_timeout: float
    alert_webhook_retries: int
    alert_email_to: str | list[str] | tuple[str, ...] | None
    alert_email_from: str
    alert_smtp_host: str
    alert_smtp_port: int | None
    alert_smtp_user: str | None
    alert_smtp_password: str | None
    alert_smtp_starttls: bool
    alert_smtp_ssl: bool
    alert_smtp_timeout: float
    alert_queue_depth: int | None
    alert_queue_wait: float | None
    alert_window: float
    alert_cooldown: float
    worker_prefetch_multiplier: int
    worker_max_tasks_per_child: int | None
    worker_max_memory_per_child: int | None
    worker_shutdown_timeout: float
    worker_heartbeat_interval: float
    worker_disable_rate_limits: bool
    worker_send_task_events: bool
    worker_hijack_root_logger: bool
    worker_log_format: str | None
    worker_task_log_format: str | None
    worker_redirect_stdouts: bool
    worker_redirect_stdouts_level: str
    worker_lost_wait: Any
    worker_direct: Any
    worker_enable_remote_control: bool
    worker_cancel_long_running_tasks_on_connection_loss: Any
    worker_soft_shutdown_timeout: Any
    worker_timer_precision: Any
    worker_deduplicate_successful_tasks: Any
    worker_state_db: Any
    worker_revoke_expires: float
    worker_revokes_max: int
    event_stream_maxlen: int
    event_stream_max_bytes: int
    event_queue_expires: Any
    event_queue_ttl: Any
    beat_schedule: dict[str, Any]
    beat_missed_policy: str
    beat_max_loop_interval: float
    beat_scheduler: Any
    beat_schedule_filename: Any
    beat_sync_every: Any
    broker_transport_options: dict[str, Any] | None
    broker_pool_limit: Any
    broker_heartbeat: Any
    broker_heartbeat_checkrate: Any
    broker_use_ssl: Any
    broker_login_method: Any
    broker_channel_error_retry: Any
    result_backend_transport_options: dict[str, Any] | None
    result_compression: Any
    result_cache_max: Any
    result_chord_join_timeout: Any
    redis_max_connections: Any
    redis_socket_timeout: float | None
    redis_socket_connect_timeout: float | None
    redis_socket_keepalive: Any
    redis_retry_on_timeout: Any
    redis_backend_health_check_interval: Any
    security_key: Any
    security_certificate: Any
    security_cert_store: Any
    imports: list[str] | tuple[str, ...]
    include: list[str] | tuple[str, ...]

    def __init__(self, initial: Mapping[str, Any] | None = None) -> None:
        object.__setattr__(self, "_values", {})
        # Resolved values also live in the instance __dict__, so ``conf.task_default_queue`` on
        # the publish path is a plain attribute read. Settings that fall back to the
        # environment stay out of it until set, so a changed environment is still seen.
        for key, spec in SETTINGS.items():
            if key not in ENV_URLS:
                default = spec.default
                self.__dict__[key] = list(default) if isinstance(default, list) else \
                    dict(default) if isinstance(default, dict) else default
        if initial:
            self.update(initial)

    # Mapping protocol -------------------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        values: dict[str, Any] = self._values
        if key in ENV_URLS:
            for env in ENV_URLS[key]:
                if os.environ.get(env):
                    return os.environ[env]
            if values.get(key) is not None:
                return values[key]
            for env in ENV_FALLBACKS.get(key, ()):
                if os.environ.get(env):
                    return os.environ[env]
            return None
        if key in values:
            return values[key]
        spec = SETTINGS.get(key)
        if spec is None:
            raise KeyError(key)
        default = spec.default
        return list(default) if isinstance(default, (list, dict)) and not default else default

    def __setitem__(self, key: str, value: Any) -> None:
        self._values[key] = check(key, value)
        if key not in ENV_URLS:  # those are read through __getattr__, where the environment can win
            self.__dict__[key] = self._values[key]

    def __delitem__(self, key: str) -> None:
        del self._values[key]
        self.__dict__.pop(key, None)
        if key not in ENV_URLS:
            self.__dict__[key] = self[key]

    def __iter__(self) -> Iterator[str]:
        return iter(SETTINGS)

    def __len__(self) -> int:
        return len(SETTINGS)

    def __contains__(self, key: object) -> bool:
        return key in SETTINGS

    # Attribute access, as ``app.conf.task_default_queue`` -------------------------------
    if not TYPE_CHECKING:  # hidden from type checkers: the attributes declared above are the API
        def __getattr__(self, key: str) -> Any:
            if key.startswith("_"):
                raise AttributeError(key)
            try:
                return self[key]
            except KeyError:
                raise AttributeError(f"unknown setting {key!r}{suggest(key, SETTINGS)}") from None

        def __setattr__(self, key: str, value: Any) -> None:
            self[key] = value

    def is_set(self, key: str) -> bool:
        return key in self._values

    def changes(self) -> dict[str, Any]:
        return dict(self._values)

    def update(self, other: Any = (), /, **kwargs: Any) -> None:
        items = dict(other, **kwargs) if other else dict(kwargs)
        checked = {key: check(key, value) for key, value in items.items()}
        self._values.update(checked)  # all or nothing: one bad key leaves the rest unapplied
        self.__dict__.update({k: v for k, v in checked.items() if k not in ENV_URLS})

    def load_object(self, obj: Any, namespace: str | None = None) -> None:
        """Copy settings from a module, class, dict or ``'module:attr'`` / ``'module.attr'`` path."""
        if isinstance(obj, str):
            obj = import_object(obj)
        source = obj if isinstance(obj, Mapping) else {k: getattr(obj, k) for k in dir(obj)}
        found: dict[str, Any] = {}
        for key, value in source.items():
            if key.startswith("_"):
                continue
            name = normalize_key(key, namespace)
            # Modules and functions a settings module imports are not settings; a router is.
            if name is None or (_is_code(value) and name != "task_routes"):
                continue
            found[name] = value
        self.update(found)


def _is_code(value: Any) -> bool:
    import types

    return isinstance(value, (types.ModuleType, types.FunctionType, type, types.BuiltinFunctionType))


def import_object(path: str) -> Any:
    """Import ``'pkg.module:attr'``, ``'pkg.module.attr'`` or ``'pkg.module'``."""
    module_name, _, attr = path.partition(":")
    if not attr:
        try:
            return importlib.import_module(path)
        except ModuleNotFoundError as exc:
            if exc.name != path or "." not in path:
                raise
            module_name, _, attr = path.rpartition(".")
    module = importlib.import_module(module_name)
    target: Any = module
    for part in attr.split("."):
        target = getattr(target, part)
    return target


def parse_rate(rate: str | int | float | None) -> float | None:
    """Turn Celery's ``'10/m'`` (or a bare number per second) into seconds between two starts."""
    if rate is None or rate == "" or rate == 0:
        return None
    if isinstance(rate, (int, float)):
        return 1.0 / float(rate)
    count, _, unit = rate.partition("/")
    try:
        n = float(count)
    except ValueError:
        raise ConfigurationError(f"rate limit {rate!r} is not like '10/m'") from None
    per = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}.get(unit.strip()[:1].lower())
    if per is None:
        raise ConfigurationError(f"rate limit {rate!r} has unit {unit!r}; use s, m or h")
    if n <= 0:
        return None
    return per / n
