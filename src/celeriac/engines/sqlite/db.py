"""SQLite plumbing shared by the SQLite broker and the SQLite result store.

- :func:`sqlite_path` turns a ``sqlite://`` URL into an absolute file path.
- :class:`Database` owns one connection per process, opened lazily: workers fork, and SQLite
  forbids using a connection in a child it was opened in the parent of (closing it included), so a
  changed ``os.getpid()`` means a fresh connection and the inherited one is left untouched.
  Threads of one process share the connection under a lock.
- Every transaction runs through :meth:`Database.run`: writes start with ``BEGIN IMMEDIATE`` so
  the write lock is taken before anything is read (no two processes can read the same ready row
  and both lease it), and ``SQLITE_BUSY`` is retried (``busy_timeout`` plus a backoff loop) so it
  never reaches the caller; only a lock held for :data:`GIVE_UP_AFTER` seconds becomes a
  :class:`BrokerError`. Disk full becomes :class:`BrokerFull` after the transaction rolled back.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from ...exceptions import BrokerError, BrokerFull, ConfigurationError

T = TypeVar("T")

BUSY_TIMEOUT = 5.0  # seconds SQLite itself waits for a lock before reporting SQLITE_BUSY
GIVE_UP_AFTER = 60.0  # seconds of SQLITE_BUSY after which a lock is treated as stuck

_BUSY_CODES = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)

class _ForkGate:
    """Keeps os.fork() out of the moments any thread of this process is inside SQLite.

    SQLite has process-wide mutexes (its allocator, the unix VFS's inode list). A worker's
    supervisor forks pool processes while its other threads (delayed-task promoter, remote
    control, beat) talk to SQLite; a fork landing while one of them holds such a mutex leaves
    the child with a mutex nobody will ever release, and the child hangs on its first query.
    Threads enter and leave freely; fork waits until none is inside, and holds new ones off.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._inside = 0
        self._forking = False

    def enter(self) -> None:
        with self._cond:
            while self._forking:
                self._cond.wait()
            self._inside += 1

    def leave(self) -> None:
        with self._cond:
            self._inside -= 1
            if not self._inside:
                self._cond.notify_all()

    def before_fork(self) -> None:
        with self._cond:
            self._forking = True
            while self._inside:
                self._cond.wait()

    def after_fork_in_parent(self) -> None:
        with self._cond:
            self._forking = False
            self._cond.notify_all()

    def after_fork_in_child(self) -> None:
        self.__init__()  # type: ignore[misc]  # only this thread exists in the child


_gate = _ForkGate()
os.register_at_fork(before=_gate.before_fork, after_in_parent=_gate.after_fork_in_parent,
                    after_in_child=_gate.after_fork_in_child)

# Connections inherited through fork(). Closing them in the child could checkpoint or delete the
# parent's WAL; dropping them would close them on garbage collection. So they are kept, unused.
_inherited: list[sqlite3.Connection] = []


def placeholders(items: Sequence[object]) -> str:
    """The ``?, ?, ...`` placeholders of an ``IN (...)`` over ``items``."""
    return ",".join("?" * len(items))


def sqlite_path(url: str) -> str:
    """The absolute database path of ``url``.

    ``sqlite:///rel/path.db`` is relative to the current directory and ``sqlite:////abs/path.db``
    absolute (as in SQLAlchemy). Because many people write ``sqlite://`` + ``/abs/path.db`` meaning
    an absolute path, a three-slash path whose first directory is missing here but exists at the
    root (``sqlite:///tmp/q.db``, ``sqlite:///home/me/q.db``) is taken as absolute.
    ``sqlite://localhost/abs`` and ``~`` work too. The path is resolved once, here, so processes
    that change directory later still agree. Missing directories are created on first use.
    """
    scheme, sep, rest = url.partition("://")
    if scheme.lower() != "sqlite" or not sep:
        raise ConfigurationError(f"{url!r} is not a sqlite:// URL")
    if "?" in rest:
        raise ConfigurationError(f"sqlite URL {url!r}: options in the URL are not supported")
    host, slash, path = rest.partition("/")
    if host not in ("", "localhost"):
        raise ConfigurationError(f"sqlite URL {url!r}: SQLite files are local; write sqlite:////abs/path.db")
    if host == "localhost":
        path = "/" + path
    if not slash or path in ("", ":memory:"):
        raise ConfigurationError(
            f"sqlite URL {url!r} names no file: an in-memory SQLite database cannot be shared "
            "between processes (use memory:// for a single process, or sqlite:///path.db)")
    path = os.path.expanduser(path)
    first, sep, _ = path.partition("/")
    if not os.path.isabs(path) and sep and not os.path.exists(first) and os.path.isdir("/" + first):
        path = "/" + path
    return os.path.abspath(path)


def _errorcode(exc: BaseException) -> int:
    return getattr(exc, "sqlite_errorcode", 0) & 0xFF  # the primary code, without extended bits


class Database:
    """One SQLite file: a lazily opened per-process connection and retried transactions."""

    def __init__(self, path: str, schema: Sequence[str], *, durable: bool = False,
                 what: str = "SQLite database") -> None:
        self.path = path
        self.durable = durable
        self.what = what
        self.journal_mode = ""
        # Commits through this object: PRAGMA data_version ignores the connection's own writes,
        # and threads of this process share the connection.
        self.local_writes = 0
        self._schema = schema
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._closed = False

    # -- connection -----------------------------------------------------------------------
    def _after_fork(self) -> None:
        if self._pid != os.getpid():
            if self._conn is not None:
                _inherited.append(self._conn)
            self._conn = None
            self._lock = threading.RLock()  # the parent's may have been held by another thread
            self._pid = os.getpid()

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise BrokerError(f"{self.what} {self.path} is closed")
        if self._conn is None:
            self._conn = self._open()
        return self._conn

    def _open(self) -> sqlite3.Connection:
        try:
            # The default URL points into ~/.local/share, which may not exist yet.
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(f"{self.what} {self.path}: cannot create its directory ({exc})") from None
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None,
                               check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
            self.journal_mode = str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
            # NORMAL in WAL mode survives a crash of any process; FULL also survives power loss.
            conn.execute(f"PRAGMA synchronous = {'FULL' if self.durable else 'NORMAL'}")
            conn.execute("BEGIN IMMEDIATE")
            for statement in self._schema:
                conn.execute(statement)
            conn.execute("COMMIT")
        except BaseException:
            conn.close()
            raise
        return conn

    def close(self) -> None:
        self._after_fork()
        _gate.enter()
        try:
            with self._lock:
                self._closed = True
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None
        finally:
            _gate.leave()

    # -- transactions ---------------------------------------------------------------------
    def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in a ``BEGIN IMMEDIATE`` transaction; all of it commits or none of it."""
        return self._run(fn, "BEGIN IMMEDIATE")

    def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in a read transaction (one consistent snapshot)."""
        return self._run(fn, "BEGIN")

    def data_version(self) -> tuple[int, int]:
        """Changes whenever anyone, this process included, committed since the last call."""
        def version(conn: sqlite3.Connection) -> int:
            return int(conn.execute("PRAGMA data_version").fetchone()[0])

        return self._run(version, None), self.local_writes

    def _run(self, fn: Callable[[sqlite3.Connection], T], begin: str | None) -> T:
        delay = 0.001
        deadline = 0.0
        while True:
            try:
                return self._attempt(fn, begin)
            except sqlite3.DatabaseError as exc:
                if _errorcode(exc) not in _BUSY_CODES:
                    raise self._translate(exc) from exc
                now = time.monotonic()
                deadline = deadline or now + GIVE_UP_AFTER
                if now >= deadline:
                    raise BrokerError(f"{self.what} {self.path} stayed locked for {GIVE_UP_AFTER:g} s: "
                                      f"another process holds its write lock ({exc})") from exc
            # Sleep outside the lock so this process's other threads are not held up too.
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def _attempt(self, fn: Callable[[sqlite3.Connection], T], begin: str | None) -> T:
        self._after_fork()
        _gate.enter()
        try:
            return self._attempt_inside(fn, begin)
        finally:
            _gate.leave()

    def _attempt_inside(self, fn: Callable[[sqlite3.Connection], T], begin: str | None) -> T:
        with self._lock:
            conn = self._connection()
            if begin is None:
                return fn(conn)
            conn.execute(begin)
            try:
                result = fn(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass  # SQLite already rolled back (it may, on a full disk)
                raise
            if begin != "BEGIN":
                self.local_writes += 1
            return result

    def _translate(self, exc: sqlite3.DatabaseError) -> BrokerError:
        code = _errorcode(exc)
        if code == sqlite3.SQLITE_FULL:
            return BrokerFull(f"{self.what} {self.path}: the database or disk is full, nothing was "
                              "written; free disk space and try again")
        if code == sqlite3.SQLITE_CANTOPEN:
            return BrokerError(f"{self.what} {self.path}: cannot open the file ({exc})")
        return BrokerError(f"{self.what} {self.path}: {exc}")
