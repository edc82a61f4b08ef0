"""Task states, with Celery's names and meaning."""

PENDING = "PENDING"      # unknown to the result store: not yet run, or expired, or never sent
RECEIVED = "RECEIVED"    # a worker fetched the message
STARTED = "STARTED"      # a worker began running it (stored when track_started is on)
RETRY = "RETRY"          # it failed and will run again
SUCCESS = "SUCCESS"
FAILURE = "FAILURE"
REVOKED = "REVOKED"      # revoked or expired before or while running
REJECTED = "REJECTED"    # refused by the task (Reject) and dead-lettered

READY_STATES = frozenset({SUCCESS, FAILURE, REVOKED, REJECTED})
UNREADY_STATES = frozenset({PENDING, RECEIVED, STARTED, RETRY})
EXCEPTION_STATES = frozenset({RETRY, FAILURE, REVOKED, REJECTED})
PROPAGATE_STATES = frozenset({FAILURE, REVOKED, REJECTED})

ALL_STATES = frozenset({PENDING, RECEIVED, STARTED, RETRY, SUCCESS, FAILURE, REVOKED, REJECTED})

__all__ = [
    "ALL_STATES", "EXCEPTION_STATES", "FAILURE", "PENDING", "PROPAGATE_STATES", "READY_STATES",
    "RECEIVED", "REJECTED", "RETRY", "REVOKED", "STARTED", "SUCCESS", "UNREADY_STATES",
]
