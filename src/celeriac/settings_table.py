"""Every setting celeriac knows: its default, the types it takes, and the other names it goes by
(Celery 3's and Django's spellings, the environment variables that override or stand in for it).

Plain data: ``config.py`` checks values against it and holds them (:class:`~.config.Settings`).
A new setting is a line in ``SETTINGS`` here and its typed line in ``Settings``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

_NUMBER = (int, float)
# isinstance() takes the abstract Callable; mypy wants a plain type in the table.
_CALLABLE = cast(type, Callable)


@dataclass(frozen=True, slots=True)
class Setting:
    default: Any
    types: tuple[type, ...] | None  # None: anything goes
    nullable: bool = True
    ignored: bool = False  # a Celery setting with no meaning here
    doc: str = ""
    loud: bool = False  # ignoring it changes what runs: warn, not debug


def _s(default: Any, *types: type, nullable: bool = True, doc: str = "") -> Setting:
    return Setting(default, types or None, nullable, False, doc)


def _ignored(doc: str = "", loud: bool = False) -> Setting:
    return Setting(None, None, True, True, doc, loud)


SETTINGS: dict[str, Setting] = {
    # Broker and results
    "broker_url": _s(None, str, doc="redis://..., sqlite:///path.db or memory://"),
    "broker_connection_retry_on_startup": _s(True, bool),
    "broker_connection_retry": _s(True, bool),
    "broker_connection_max_retries": _s(100, int),
    "broker_connection_timeout": _s(4.0, *_NUMBER),
    "broker_lease_seconds": _s(
        6.0, *_NUMBER, nullable=False,
        doc="how long a worker's claim on its tasks outlives its last heartbeat",
    ),
    "broker_allow_evicting_redis": _s(
        False, bool, nullable=False,
        doc="start even when Redis may evict keys (maxmemory-policy other than noeviction)",
    ),
    "broker_sqlite_durable": _s(False, bool, nullable=False, doc="synchronous=FULL instead of NORMAL"),
    "result_backend": _s(None, str),
    "result_expires": _s(86400, *_NUMBER, doc="seconds a result is kept; None keeps it forever"),
    "result_serializer": _s("json", str, nullable=False),
    "result_accept_content": _s(None, list, tuple),
    "result_extended": _s(False, bool, nullable=False),
    "result_persistent": _ignored("results always persist as the backend does"),
    "task_serializer": _s("json", str, nullable=False),
    "accept_content": _s(["json"], list, tuple, set, nullable=False),
    "task_message_signing_key": _s(None, str, bytes, doc="HMAC key; messages are signed and checked"),
    "task_message_signing_max_age": _s(
        86400, *_NUMBER,
        doc="seconds a signed task message is accepted after it was signed, counted from its eta "
            "when that is later; older ones are refused as replays (None: no limit)",
    ),
    "task_redact_args": _s(
        None, list, tuple,
        doc="argument names shown as '***' wherever arguments are shown: keywords, positional "
            "arguments by parameter name, dict keys at any depth",
    ),
    # Time
    "timezone": _s(None, str),
    "enable_utc": _s(True, bool, nullable=False),
    # Tasks
    "task_track_started": _s(False, bool, nullable=False),
    "task_time_limit": _s(None, *_NUMBER),
    "task_soft_time_limit": _s(None, *_NUMBER),
    "task_acks_late": _s(True, bool, nullable=False),
    "task_acks_on_failure_or_timeout": _s(
        True, bool, nullable=False,
        doc="with acks_late: off, a task that fails or hits a time limit has its message "
            "dead-lettered with the exception as reason instead of acked (FAILURE is stored either "
            "way; a lost process follows task_reject_on_worker_lost)",
    ),
    "task_reject_on_worker_lost": _s(True, bool, nullable=False),
    "task_max_redeliveries": _s(
        3, int, nullable=False,
        doc="times a message may be handed out again after its process or worker died "
            "(the poison cap); past it the message is dead-lettered",
    ),
    "task_default_queue": _s("celery", str, nullable=False),
    "task_default_priority": _s(None, int),
    "task_default_rate_limit": _s(None, str, int, float),
    "task_routes": _s(None, dict, list, tuple, _CALLABLE, doc="a dict, a function, or a list of them"),
    "task_queues": _s(None, dict, list, tuple, set),
    "task_create_missing_queues": _s(True, bool, nullable=False),
    "task_always_eager": _s(False, bool, nullable=False),
    "task_eager_propagates": _s(False, bool, nullable=False),
    "task_store_eager_result": _s(False, bool, nullable=False),
    "task_ignore_result": _s(False, bool, nullable=False),
    "task_store_errors_even_if_ignored": _s(False, bool, nullable=False),
    "task_publish_retry": _s(True, bool, nullable=False),
    "task_publish_retry_policy": _s(None, dict),
    "task_annotations": _s(None, dict, list, tuple),
    "task_send_sent_event": _s(False, bool, nullable=False, doc="write task-sent events (one more write per call)"),
    "task_default_exchange": _ignored("celeriac routes by queue name only"),
    "task_default_exchange_type": _ignored("celeriac routes by queue name only"),
    "task_default_routing_key": _ignored("celeriac routes by queue name only"),
    "task_queue_max_priority": _ignored("priorities are always 0-9"),
    "task_inherit_parent_priority": _s(False, bool, nullable=False),
    "task_compression": _ignored("messages are compact JSON"),
    "task_message_max_bytes": _s(
        16 * 1024 * 1024, int, nullable=False,
        doc="larger messages are refused by the producer and dead-lettered by workers before decoding",
    ),
    "task_protocol": _ignored("celeriac has one wire format"),
    "task_remote_tracebacks": _ignored("tracebacks are always stored"),
    # Worker
    "worker_concurrency": _s(None, int),
    "worker_pool": _s("prefork", str, nullable=False),
    "worker_autoscale_keepalive": _s(
        30.0, *_NUMBER, nullable=False,
        doc="with --autoscale, seconds a pool process may sit idle before the pool shrinks by one",
    ),
    "worker_prefetch_multiplier": _s(4, int, nullable=False),
    "worker_async_concurrency": _s(
        100, int, nullable=False,
        doc="-P asyncio: tasks each pool process runs at once in its event loop (-c sets the processes)",
    ),
    "worker_max_tasks_per_child": _s(None, int),
    "worker_max_memory_per_child": _s(None, int, doc="KiB of resident memory, as in Celery"),
    "worker_shutdown_timeout": _s(
        60.0, *_NUMBER, nullable=False,
        doc="warm shutdown waits this long for running tasks, then re-queues them",
    ),
    "worker_heartbeat_interval": _s(1.0, *_NUMBER, nullable=False),
    "worker_disable_rate_limits": _s(False, bool, nullable=False),
    "worker_send_task_events": _s(True, bool, nullable=False),
    "worker_hijack_root_logger": _s(True, bool, nullable=False),
    "worker_log_format": _s(None, str),
    "worker_task_log_format": _s(None, str),
    "worker_redirect_stdouts": _s(True, bool, nullable=False),
    "worker_redirect_stdouts_level": _s("WARNING", str, nullable=False),
    "worker_lost_wait": _ignored("the supervisor sees a lost child at once"),
    "worker_direct": _ignored(),
    "worker_enable_remote_control": _s(True, bool, nullable=False),
    "worker_cancel_long_running_tasks_on_connection_loss": _ignored(
        "leases make a reconnecting worker keep its tasks"),
    "worker_soft_shutdown_timeout": _ignored("see worker_shutdown_timeout"),
    "worker_timer_precision": _ignored("delayed tasks live in the broker"),
    "worker_deduplicate_successful_tasks": _ignored(),
    "worker_state_db": _ignored("revocations live in the broker"),
    "worker_revoke_expires": _s(
        10800.0, *_NUMBER, nullable=False,
        doc="seconds a revocation of a task that is not delayed is remembered (Celery's "
            "CELERY_WORKER_REVOKE_EXPIRES); a revoked delayed task is removed from the broker",
    ),
    "worker_revokes_max": _s(
        50000, int, nullable=False, doc="revocations kept at most; the oldest go first (CELERY_WORKER_REVOKES_MAX)",
    ),
    # Events
    "event_stream_maxlen": _s(100_000, int, nullable=False, doc="entries the event log keeps at most"),
    "event_stream_max_bytes": _s(
        64 * 1024 * 1024, int, nullable=False,
        doc="bytes the event log may use, about (the broker holds it: Redis memory, SQLite file)",
    ),
    "event_queue_expires": _ignored(),
    "event_queue_ttl": _ignored(),
    # Beat
    "beat_schedule": _s({}, dict, nullable=False),
    "beat_missed_policy": _s("once", str, nullable=False, doc="'once' or 'skip'"),
    "beat_max_loop_interval": _s(1.0, *_NUMBER, nullable=False),
    "beat_scheduler": _ignored(
        "the schedule lives in the broker (beat_schedule, or celeriac.beat.Schedule(app).add(...) at "
        "run time); a database scheduler such as django_celery_beat's is not read", loud=True),
    "beat_schedule_filename": _ignored("there is no local schedule file"),
    "beat_sync_every": _ignored("the schedule lives in the broker"),
    # Redis and transport knobs Celery users carry over
    "broker_transport_options": _s(
        None, dict,
        doc="Redis Sentinel: master_name, sentinel_kwargs, min_other_sentinels; Redis durability: "
            "wait_replicas (each enqueue waits for that many replicas, WAIT), wait_timeout (seconds, "
            "default 1; NotReplicated past it); Redis (Cluster above all): queue_shards={'queue': n} "
            "splits a hot queue over n hash tags; other keys (visibility_timeout...) are ignored: "
            "leases replace the visibility timeout"),
    "broker_pool_limit": _ignored(),
    "broker_heartbeat": _ignored(),
    "broker_heartbeat_checkrate": _ignored(),
    "broker_use_ssl": _ignored("use rediss:// in the URL"),
    "broker_login_method": _ignored(),
    "broker_channel_error_retry": _ignored(),
    "result_backend_transport_options": _s(
        None, dict, doc="Redis Sentinel for the result store: master_name, sentinel_kwargs, min_other_sentinels"),
    "result_compression": _ignored(),
    "result_cache_max": _ignored(),
    "result_chord_join_timeout": _ignored(),
    "redis_max_connections": _ignored(),
    "redis_socket_timeout": _s(
        120.0, *_NUMBER,
        doc="seconds a Redis read may take (Celery's default); blocking waits are cut shorter"),
    "redis_socket_connect_timeout": _s(5.0, *_NUMBER, doc="seconds to connect to Redis"),
    "redis_socket_keepalive": _ignored(),
    "redis_retry_on_timeout": _ignored(),
    "redis_backend_health_check_interval": _ignored(),
    "security_key": _ignored("use task_message_signing_key"),
    "security_certificate": _ignored("use task_message_signing_key"),
    "security_cert_store": _ignored("use task_message_signing_key"),
    # Alerts, sent by the dashboard process (docs/dashboard.md): which, where, and how often
    "alert_on": _s(
        ("task-failed", "task-dead-lettered", "worker-offline", "queue-depth", "queue-wait"), list, tuple,
        nullable=False, doc="kinds of alert to send: task-failed (a final failure, after retries), "
                            "task-dead-lettered, worker-offline, queue-depth, queue-wait"),
    "alert_webhook_url": _s(None, str, doc="POST each alert (or digest) here as JSON"),
    "alert_webhook_timeout": _s(5.0, *_NUMBER, nullable=False, doc="seconds one webhook attempt may take"),
    "alert_webhook_retries": _s(5, int, nullable=False, doc="attempts after the first, backing off 1, 2, 4 ... s"),
    "alert_email_to": _s(None, str, list, tuple, doc="address(es) to mail each alert (or digest) to over SMTP"),
    "alert_email_from": _s("celeriac@localhost", str, nullable=False),
    "alert_smtp_host": _s("localhost", str, nullable=False),
    "alert_smtp_port": _s(None, int, doc="default 25, 465 with alert_smtp_ssl"),
    "alert_smtp_user": _s(None, str, doc="log in with this user and alert_smtp_password"),
    "alert_smtp_password": _s(None, str),
    "alert_smtp_starttls": _s(False, bool, nullable=False, doc="upgrade the connection with STARTTLS"),
    "alert_smtp_ssl": _s(False, bool, nullable=False, doc="connect over TLS from the start (SMTPS)"),
    "alert_smtp_timeout": _s(10.0, *_NUMBER, nullable=False),
    "alert_queue_depth": _s(None, int, doc="alert when a queue holds more ready messages than this"),
    "alert_queue_wait": _s(None, *_NUMBER, doc="alert when a task waited longer than this many seconds "
                                               "between its sending and a worker taking it"),
    "alert_window": _s(60.0, *_NUMBER, nullable=False,
                       doc="seconds a storm of one kind is gathered into one digest after its first alert"),
    "alert_cooldown": _s(300.0, *_NUMBER, nullable=False,
                         doc="seconds before the same queue or worker alerts again while still in trouble"),
    # Modules
    "imports": _s((), list, tuple, nullable=False),
    "include": _s((), list, tuple, nullable=False),
}

# Celery 3 names (and their Django spellings) still found in the wild.
OLD_NAMES: dict[str, str] = {
    "BROKER_URL": "broker_url",
    "CELERY_RESULT_BACKEND": "result_backend",
    "CELERY_TASK_SERIALIZER": "task_serializer",
    "CELERY_RESULT_SERIALIZER": "result_serializer",
    "CELERY_ACCEPT_CONTENT": "accept_content",
    "CELERY_TIMEZONE": "timezone",
    "CELERY_ENABLE_UTC": "enable_utc",
    "CELERY_TASK_RESULT_EXPIRES": "result_expires",
    "CELERY_TRACK_STARTED": "task_track_started",
    "CELERY_ACKS_LATE": "task_acks_late",
    "CELERY_ALWAYS_EAGER": "task_always_eager",
    "CELERY_EAGER_PROPAGATES_EXCEPTIONS": "task_eager_propagates",
    "CELERY_IGNORE_RESULT": "task_ignore_result",
    "CELERY_DEFAULT_QUEUE": "task_default_queue",
    "CELERY_ROUTES": "task_routes",
    "CELERY_QUEUES": "task_queues",
    "CELERY_DEFAULT_RATE_LIMIT": "task_default_rate_limit",
    "CELERYD_TASK_TIME_LIMIT": "task_time_limit",
    "CELERYD_TASK_SOFT_TIME_LIMIT": "task_soft_time_limit",
    "CELERYD_CONCURRENCY": "worker_concurrency",
    "CELERYD_PREFETCH_MULTIPLIER": "worker_prefetch_multiplier",
    "CELERYD_MAX_TASKS_PER_CHILD": "worker_max_tasks_per_child",
    "CELERYD_MAX_MEMORY_PER_CHILD": "worker_max_memory_per_child",
    "CELERYBEAT_SCHEDULE": "beat_schedule",
    "CELERY_IMPORTS": "imports",
    "CELERY_INCLUDE": "include",
}

# As in Celery, CELERY_BROKER_URL (and our CELERIAC_ spelling) in the environment overrides what
# code set, so one image runs against any broker; REDIS_URL, which the seed projects export,
# is only a fallback when neither the environment nor the code names a broker.
ENV_URLS: dict[str, tuple[str, ...]] = {
    "broker_url": ("CELERIAC_BROKER_URL", "CELERY_BROKER_URL"),
    "result_backend": ("CELERIAC_RESULT_BACKEND", "CELERY_RESULT_BACKEND"),
}
ENV_FALLBACKS: dict[str, tuple[str, ...]] = {"broker_url": ("REDIS_URL",)}
