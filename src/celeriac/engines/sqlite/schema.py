"""The SQLite broker's tables.

``messages`` holds ready and leased messages (``consumer`` NULL means ready). Its ids are
``AUTOINCREMENT`` for two reasons: they are the FIFO order within a priority, and they are part
of a delivery's tag. Plain rowids are reused after the highest row is deleted, which would let a
newer message sort before an older one and let a stale tag match a different message.

A lease is judged by one clock, ``time.time()`` of the process asking: the same machine's clock
for every process sharing the file. A leased row expires when both its own ``lease_until`` (set
at fetch) and its worker's heartbeat (``incarnations.expires``) are in the past, so a heartbeat
extends every lease of the worker without touching the message rows.
"""

from __future__ import annotations

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        queue TEXT NOT NULL,
        priority INTEGER NOT NULL,
        body BLOB NOT NULL,
        key TEXT NOT NULL DEFAULT '',
        redeliveries INTEGER NOT NULL DEFAULT 0,
        handouts INTEGER NOT NULL DEFAULT 0,
        consumer TEXT,
        worker TEXT,
        lease_until REAL
    )""",
    """CREATE INDEX IF NOT EXISTS messages_ready
        ON messages (queue, priority DESC, id) WHERE consumer IS NULL""",
    """CREATE INDEX IF NOT EXISTS messages_held
        ON messages (worker, queue) WHERE consumer IS NOT NULL""",
    """CREATE INDEX IF NOT EXISTS messages_leases
        ON messages (lease_until) WHERE consumer IS NOT NULL""",
    """CREATE TABLE IF NOT EXISTS delayed (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        queue TEXT NOT NULL,
        priority INTEGER NOT NULL,
        body BLOB NOT NULL,
        key TEXT NOT NULL DEFAULT '',
        redeliveries INTEGER NOT NULL DEFAULT 0,
        due REAL NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS delayed_due ON delayed (queue, due)",
    "CREATE INDEX IF NOT EXISTS delayed_key ON delayed (queue, key)",
    """CREATE TABLE IF NOT EXISTS dead_letters (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        queue TEXT NOT NULL,
        priority INTEGER NOT NULL,
        body BLOB NOT NULL,
        key TEXT NOT NULL DEFAULT '',
        reason TEXT NOT NULL,
        time REAL NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS dead_letters_queue ON dead_letters (queue, id)",
    "CREATE TABLE IF NOT EXISTS queues (name TEXT PRIMARY KEY) WITHOUT ROWID",
    # One row per worker incarnation ("name#boot"). ``running``: tags of the deliveries it last
    # reported started, newline-separated (only those are charged when it dies); ``recovered``:
    # its lease lapsed and its messages were taken back. (Replaces the ``workers`` table of
    # earlier versions, which keyed leases by name; that table is left unused in old files.)
    """CREATE TABLE IF NOT EXISTS incarnations (
        name TEXT PRIMARY KEY,
        info BLOB NOT NULL,
        last_seen REAL NOT NULL,
        expires REAL NOT NULL,
        queues TEXT NOT NULL,
        running TEXT NOT NULL DEFAULT '',
        recovered INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID""",
    "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL, expires REAL)",
    "CREATE INDEX IF NOT EXISTS kv_expires ON kv (expires) WHERE expires IS NOT NULL",
    """CREATE TABLE IF NOT EXISTS maps (
        name TEXT NOT NULL, field TEXT NOT NULL, value BLOB NOT NULL, PRIMARY KEY (name, field)
    ) WITHOUT ROWID""",
    # seq counts per log, so trimming to maxlen is one range delete on the primary key.
    """CREATE TABLE IF NOT EXISTS logs (
        name TEXT NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (name, seq)
    ) WITHOUT ROWID""",
    # A log with a ttl (replies to one command) vanishes whole at ``expires``.
    "CREATE TABLE IF NOT EXISTS log_expiry (name TEXT PRIMARY KEY, expires REAL NOT NULL) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS log_expiry_expires ON log_expiry (expires)",
    "CREATE TABLE IF NOT EXISTS rate_slots (key TEXT PRIMARY KEY, tat REAL NOT NULL) WITHOUT ROWID",
    # A chord waiting for its header: the join message to enqueue once ``size`` distinct
    # members are counted in chord_members (a re-run member is a duplicate key, counted once).
    """CREATE TABLE IF NOT EXISTS chords (
        id TEXT PRIMARY KEY, size INTEGER NOT NULL, join_body BLOB NOT NULL, expires REAL NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS chord_members (
        chord TEXT NOT NULL, member TEXT NOT NULL, PRIMARY KEY (chord, member)
    ) WITHOUT ROWID""",
    # Members added to a running chord (Task.add_to_chord), in order; kept after it fired, until
    # ``expires``, for the join task to read.
    """CREATE TABLE IF NOT EXISTS chord_added (
        chord TEXT NOT NULL, member TEXT NOT NULL, seq INTEGER NOT NULL, expires REAL NOT NULL,
        PRIMARY KEY (chord, member)
    ) WITHOUT ROWID""",
)

# Columns of a message row as the broker reads them back.
ROW = "id, queue, priority, body, key, redeliveries, handouts, consumer"
