"""Celery's setting names that celeriac does not implement, and what celeriac does instead.

The names are those Celery's configuration reference documents (``docs/userguide/
configuration.rst``, Celery 5.6). A Django project keeps settings for many tools side by side, so
one of these must not stop it: it is accepted with a warning that names it and says what
celeriac does instead (:func:`celeriac.config.check`), while a name that is neither celeriac's
nor Celery's stays an error (a typo).
"""

from __future__ import annotations

UNIMPLEMENTED: frozenset[str] = frozenset({
    "arangodb_backend_settings", "azureblockblob_base_path", "azureblockblob_connection_timeout",
    "azureblockblob_container_name", "azureblockblob_read_timeout", "azureblockblob_retry_increment_base",
    "azureblockblob_retry_initial_backoff_sec", "azureblockblob_retry_max_attempts",
    "beat_cron_starting_deadline", "beat_executable", "beat_gid", "beat_logfile", "beat_pidfile", "beat_uid",
    "beat_umask", "broker_failover_strategy", "broker_native_delayed_delivery_queue_type",
    "broker_pool_acquire_timeout", "broker_read_url", "broker_write_url", "cache_backend",
    "cache_backend_options", "cassandra_auth_kwargs", "cassandra_auth_provider", "cassandra_entry_ttl",
    "cassandra_keyspace", "cassandra_options", "cassandra_port", "cassandra_read_consistency",
    "cassandra_secure_bundle_path", "cassandra_servers", "cassandra_table", "cassandra_write_consistency",
    "control_exchange", "control_queue_durable", "control_queue_exclusive", "control_queue_expires",
    "control_queue_ttl", "cosmosdbsql_collection_name", "cosmosdbsql_consistency_level",
    "cosmosdbsql_database_name", "cosmosdbsql_max_retry_attempts", "cosmosdbsql_max_retry_wait_time",
    "couchbase_backend_settings", "database_create_tables_at_setup", "database_engine_callback",
    "database_engine_options", "database_short_lived_sessions", "database_table_names",
    "database_table_schemas", "elasticsearch_max_retries", "elasticsearch_retry_on_timeout",
    "elasticsearch_save_meta_as_text", "elasticsearch_timeout", "event_exchange", "event_queue_durable",
    "event_queue_exclusive", "event_queue_prefix", "event_serializer", "events_executable", "events_gid",
    "events_logfile", "events_pidfile", "events_uid", "events_umask", "gcs_base_path", "gcs_bucket",
    "gcs_project", "mongodb_backend_settings", "override_backends", "redis_backend_credential_provider",
    "redis_backend_use_ssl", "redis_client_name", "result_backend_always_retry",
    "result_backend_base_sleep_between_retries_ms", "result_backend_max_retries",
    "result_backend_max_sleep_between_retries_ms", "result_backend_thread_safe",
    "result_chord_retry_interval", "s3_access_key_id", "s3_base_path", "s3_bucket", "s3_endpoint_url",
    "s3_region", "s3_secret_access_key", "security_digest", "security_key_password", "task_acks_on_failure",
    "task_acks_on_timeout", "task_allow_error_cb_on_chord_header", "task_create_missing_queue_exchange_type",
    "task_create_missing_queue_type", "task_default_delivery_mode", "task_default_queue_type",
    "worker_autoscaler", "worker_consumer", "worker_detect_quorum_queues", "worker_disable_prefetch",
    "worker_enable_prefetch_count_reduction", "worker_enable_soft_shutdown_on_idle", "worker_eta_task_limit",
    "worker_executable", "worker_gid", "worker_log_color", "worker_logfile", "worker_pidfile",
    "worker_pool_restarts", "worker_proc_alive_timeout", "worker_timer", "worker_uid", "worker_umask",
    # Accepted by Celery though its reference leaves them out (old spellings, newer additions):
    # a project may still carry them.
    "beat_enable_remote_control", "beat_remote_control_max_tick_age", "broker_host", "broker_password",
    "broker_port", "broker_transport", "broker_user", "broker_vhost", "cassandra_bundle_path",
    "database_url", "gcs_ttl", "redis_db", "redis_host", "redis_password", "redis_port", "redis_username",
    "result_chord_expires", "result_exchange", "result_exchange_type", "result_failure_expires",
    "task_repr_maxlevels", "task_retry_on_worker_lost", "worker_agent", "worker_log_datefmt",
    "worker_pool_putlocks", "worker_pool_start_method", "worker_task_log_datefmt",
})

# What celeriac does instead, by name prefix (the longest prefix that matches wins).
_INSTEAD: dict[str, str] = {
    "": "celeriac has no equivalent; the setting is ignored",
    "arangodb_": "results live in Redis or SQLite (result_backend)",
    "azureblockblob_": "results live in Redis or SQLite (result_backend)",
    "cache_": "results live in Redis or SQLite (result_backend), not in a cache backend",
    "cassandra_": "results live in Redis or SQLite (result_backend)",
    "cosmosdbsql_": "results live in Redis or SQLite (result_backend)",
    "couchbase_": "results live in Redis or SQLite (result_backend)",
    "database_": "results live in Redis or SQLite (result_backend), not in an SQLAlchemy database",
    "elasticsearch_": "results live in Redis or SQLite (result_backend)",
    "gcs_": "results live in Redis or SQLite (result_backend)",
    "mongodb_": "results live in Redis or SQLite (result_backend)",
    "s3_": "results live in Redis or SQLite (result_backend)",
    "override_backends": "results live in Redis or SQLite (result_backend)",
    "result_backend_": "the result store retries through the broker connection's own retry settings",
    "result_chord_": "celeriac has no chords yet",
    "redis_backend_": "the result store uses the broker's Redis connection settings (rediss:// for TLS)",
    "broker_read_url": "one broker_url serves reads and writes",
    "broker_write_url": "one broker_url serves reads and writes",
    "broker_failover_strategy": "one broker_url; run Redis with Sentinel or a managed failover",
    "broker_native_delayed_delivery": "delayed tasks always live in the broker",
    "broker_pool_acquire_timeout": "each thread keeps its own broker connection",
    "control_": "remote control goes through a log in the broker; there are no exchanges or queues to set",
    "event_": "events go to a capped log in the broker (event_stream_max_bytes, event_stream_maxlen)",
    "task_acks_on_": "Celery 5.7's split of task_acks_on_failure_or_timeout, which celeriac keeps as one switch",
    "task_allow_error_cb_on_chord_header": "celeriac has no chords yet",
    "task_create_missing_queue": "queues are created when first used; there are no queue types",
    "task_default_delivery_mode": "the broker's durability decides (Redis persistence, broker_sqlite_durable)",
    "task_default_queue_type": "queues are created when first used; there are no queue types",
    "security_": "sign messages with task_message_signing_key (HMAC)",
    "worker_autoscaler": "use celeriac worker --autoscale=max,min",
    "worker_consumer": "the pool processes fetch for themselves",
    "worker_timer": "delayed tasks live in the broker",
    "worker_logfile": "use celeriac worker --logfile",
    "worker_pidfile": "use celeriac worker --pidfile",
    "beat_logfile": "redirect celeriac beat's output (or use your service manager)",
    "beat_pidfile": "use your service manager to keep one beat per host (beat runs once per tick anyway)",
    "beat_cron_starting_deadline": "missed ticks follow beat_missed_policy ('once' or 'skip')",
    "worker_log_color": "worker logs are plain text",
    "worker_pool_restarts": "the pool can be resized (pool_grow/pool_shrink, --autoscale)",
    "worker_proc_alive_timeout": "pool processes are watched through their slots",
    "worker_detect_quorum_queues": "there are no RabbitMQ queue types",
    "worker_disable_prefetch": "use worker_prefetch_multiplier=1",
    "worker_enable_prefetch_count_reduction": "prefetched tasks are leased, and given back at shutdown",
    "worker_enable_soft_shutdown_on_idle": "see worker_shutdown_timeout",
    "worker_eta_task_limit": "delayed tasks live in the broker and cost the worker nothing",
    "beat_enable_remote_control": "a running beat already follows run-time entries and pauses in the broker",
    "beat_remote_control_": "a running beat already follows run-time entries and pauses in the broker",
    "broker_host": "give the whole address in broker_url",
    "broker_password": "give the whole address in broker_url",
    "broker_port": "give the whole address in broker_url",
    "broker_transport": "the broker_url's scheme chooses the broker",
    "broker_user": "give the whole address in broker_url",
    "broker_vhost": "give the whole address in broker_url",
    "redis_db": "give the whole address in broker_url / result_backend",
    "redis_host": "give the whole address in broker_url / result_backend",
    "redis_password": "give the whole address in broker_url / result_backend",
    "redis_port": "give the whole address in broker_url / result_backend",
    "redis_username": "give the whole address in broker_url / result_backend",
    "result_exchange": "results are written to the result store directly; there are no exchanges",
    "result_failure_expires": "failed results expire with result_expires",
    "task_repr_maxlevels": "argument reprs in events are cut by length, not by depth",
    "task_retry_on_worker_lost": "see task_reject_on_worker_lost (on by default)",
    "worker_agent": "celeriac has no worker agents",
    "worker_log_datefmt": "times in worker logs use logging's default format",
    "worker_task_log_datefmt": "times in worker logs use logging's default format",
    "worker_pool_putlocks": "pool processes fetch for themselves",
    "worker_pool_start_method": "pool processes are forked",
}
for _who in ("beat", "events", "worker"):
    for _what in ("executable", "gid", "uid", "umask"):
        _INSTEAD[f"{_who}_{_what}"] = "run the command under your service manager's user and umask"


def instead(name: str) -> str:
    """What celeriac does in place of the Celery setting ``name``."""
    prefix = max((p for p in _INSTEAD if name.startswith(p)), key=len)
    return _INSTEAD[prefix]
