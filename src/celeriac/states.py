"""Task states, with Celery's names and meaning."""

PENDING = "PENDING"      # unknown to the result store: not yet run, or expired, or never sent
RECEIVED = "RECEIVED"    # a worker fetched the message
STARTED = "STARTED"      # a worker began running it (stored when track_started is on)
RETRY = "RETRY"          # it failed and will run again
SUCCESS = "SUCCESS"
FAILURE = "FAILURE"
REVOKED = "REVOKED"      # revoked or expired before or while running
REJECTED = "REJECTED"    # refused by the task (Reject) and dead-lettered
IGNORED = "IGNORED"      # the task raised Ignore: never stored, as in Celery

READY_STATES = frozenset({SUCCESS, FAILURE, REVOKED, REJECTED})
UNREADY_STATES = frozenset({PENDING, RECEIVED, STARTED, RETRY})
EXCEPTION_STATES = frozenset({RETRY, FAILURE, REVOKED, REJECTED})
PROPAGATE_STATES = frozenset({FAILURE, REVOKED, REJECTED})

ALL_STATES = frozenset({PENDING, RECEIVED, STARTED, RETRY, SUCCESS, FAILURE, REVOKED, REJECTED})

#: Celery's order of states, most final first (``None``: any state not listed): a state with a
#: lower index is the more settled one, e.g. for merging events that arrive out of order.
PRECEDENCE = [SUCCESS, FAILURE, None, REVOKED, STARTED, RECEIVED, REJECTED, RETRY, PENDING]


def precedence(state: str | None) -> int:
    """``state``'s index in :data:`PRECEDENCE` (unknown states rank where ``None`` does)."""
    try:
        return PRECEDENCE.index(state)
    except ValueError:
        return PRECEDENCE.index(None)


__all__ = [
    "ALL_STATES", "EXCEPTION_STATES", "FAILURE", "PENDING", "PROPAGATE_STATES", "READY_STATES",
    "RECEIVED", "REJECTED", "RETRY", "REVOKED", "STARTED", "SUCCESS", "UNREADY_STATES",
    "IGNORED", "PRECEDENCE", "precedence",
]
