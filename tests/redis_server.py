"""A redis-server of the tests' own, on a free loopback port, stopped by PID.

Tests never touch a Redis they did not start.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RedisServer:
    port: int
    proc: subprocess.Popen[bytes]
    directory: str
    args: list[str]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def halt(self) -> None:
        """Shut the server down (SIGTERM: it writes its append-only file first)."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def kill(self) -> None:
        """kill -9: no shutdown, so only what the append-only file already holds survives."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def pause(self) -> None:
        """SIGSTOP: the server holds its connections open but answers nothing (a stall)."""
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def restart(self, down_for: float = 0.0, *, hard: bool = False) -> None:
        """Start it again on the same port and data directory, ``down_for`` seconds later;
        ``hard`` stops it with kill -9 instead of a clean shutdown."""
        if hard:
            self.kill()
        else:
            self.halt()
        time.sleep(down_for)
        proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not _answers(self.port, proc):
            raise RuntimeError(f"redis-server did not come back on port {self.port}")
        self.proc = proc

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.resume()  # a paused server would ignore SIGTERM until continued
        self.halt()
        shutil.rmtree(self.directory, ignore_errors=True)


def _answers(port: int, proc: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return True
        except OSError:
            time.sleep(0.05)
    return False


def start_redis(*extra: str, appendonly: bool = True, appendfsync: str = "no") -> RedisServer:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed: run ./scripts/test (it installs it) "
                           "or apt-get install -y redis-server")
    directory = tempfile.mkdtemp(prefix="celeriac-redis-")
    for _ in range(5):
        port = free_port()
        args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", directory,
                "--save", "", "--appendonly", "yes" if appendonly else "no",
                "--appendfsync", appendfsync, "--protected-mode", "yes", "--daemonize", "no",
                "--loglevel", "warning", *extra]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if _answers(port, proc):
            return RedisServer(port, proc, directory, args)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    raise RuntimeError("could not start redis-server on a free port")


def _info(port: int, section: str) -> dict[str, str]:
    """``INFO <section>`` of a server on loopback, as a dict ({} when it does not answer)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(f"INFO {section}\r\n".encode())
            data = b""
            while not data.endswith(b"\r\n\r\n") and len(data) < 65536:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return {}
    pairs = (line.partition(":") for line in data.decode(errors="replace").splitlines()[1:])
    return {key: value for key, sep, value in pairs if sep}


@dataclass
class SentinelSetup:
    """One master, one replica and three Sentinels of the tests' own, on loopback ports."""

    master_name: str
    servers: list[RedisServer]  # [first master, first replica]
    sentinels: list[RedisServer]
    down_after_ms: int

    @property
    def url(self) -> str:
        return ";".join(f"sentinel://127.0.0.1:{s.port}/0" for s in self.sentinels)

    @property
    def transport_options(self) -> dict[str, str]:
        return {"master_name": self.master_name}

    def master_port(self) -> int:
        """The master's port as a Sentinel that answers says it is."""
        import redis

        for sentinel in self.sentinels:
            if sentinel.proc.poll() is not None:
                continue
            client = redis.Redis(port=sentinel.port, socket_timeout=1)
            try:
                _host, port = client.sentinel_get_master_addr_by_name(self.master_name)
                return int(port)
            except redis.exceptions.RedisError:
                continue
            finally:
                client.close()
        raise RuntimeError("no Sentinel answers")

    def server(self, port: int) -> RedisServer:
        return next(s for s in self.servers if s.port == port)

    def wait_promoted(self, old_port: int, timeout: float = 30.0) -> int:
        """Wait until the Sentinels name another master than ``old_port`` and it accepts writes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            port = self.master_port()
            if port != old_port and _info(port, "replication").get("role") == "master":
                return port
            time.sleep(0.1)
        raise RuntimeError(f"the Sentinels promoted no replica within {timeout} s")

    def rejoin(self, port: int, master: int) -> None:
        """Start the dead server on ``port`` again as a replica of ``master`` (what a process
        manager does with the config the Sentinels rewrote), and wait until it replicates."""
        server = self.server(port)
        server.args = [*server.args, "--replicaof", "127.0.0.1", str(master)]
        server.restart(0.0, hard=True)
        _wait_replicating(server, timeout=30)

    def wait_settled(self, timeout: float = 30.0) -> int:
        """Wait until the Sentinels' master has the other server as a replica with its link up
        (after a failover, or a master restarted before one); return the master's port."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                port = self.master_port()
            except RuntimeError:
                port = 0
            other = next((s for s in self.servers if s.port != port), None)
            if other is not None and port and _info(port, "replication").get("role") == "master":
                replication = _info(other.port, "replication")
                if replication.get("master_port") == str(port) and replication.get("master_link_status") == "up":
                    return port
            time.sleep(0.1)
        raise RuntimeError(f"no master with a replica in sync within {timeout} s")

    def stop(self) -> None:
        for server in [*self.sentinels, *self.servers]:
            server.stop()


def _wait_replicating(replica: RedisServer, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _info(replica.port, "replication").get("master_link_status") == "up":
            return
        time.sleep(0.05)
    raise RuntimeError(f"replica on port {replica.port} did not start replicating")


def _wait_monitoring(sentinel: RedisServer, name: str, others: int, timeout: float = 15.0) -> None:
    """Wait until a Sentinel knows the replica and the other Sentinels (it can vote a failover)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = _info(sentinel.port, "sentinel")
        line = next((v for k, v in info.items() if k.startswith("master") and f"name={name}," in v), "")
        fields = dict(f.partition("=")[::2] for f in line.split(","))
        if fields.get("status") == "ok" and fields.get("slaves") == "1" and fields.get("sentinels") == str(others + 1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"Sentinel on port {sentinel.port} did not see its master, replica and peers")


def _start_sentinel(master_port: int, name: str, down_after_ms: int, failover_timeout_ms: int) -> RedisServer:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed: apt-get install -y redis-server")
    directory = tempfile.mkdtemp(prefix="celeriac-sentinel-")
    for _ in range(5):
        port = free_port()
        config = os.path.join(directory, "sentinel.conf")  # a Sentinel rewrites its own config file
        with open(config, "w") as out:
            out.write(f"port {port}\nbind 127.0.0.1\ndir {directory}\nprotected-mode no\n"
                      f"sentinel monitor {name} 127.0.0.1 {master_port} 2\n"
                      f"sentinel down-after-milliseconds {name} {down_after_ms}\n"
                      f"sentinel failover-timeout {name} {failover_timeout_ms}\n"
                      f"sentinel parallel-syncs {name} 1\n")
        args = [binary, config, "--sentinel", "--daemonize", "no", "--loglevel", "warning"]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if _answers(port, proc):
            return RedisServer(port, proc, directory, args)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    raise RuntimeError("could not start a Sentinel on a free port")


def start_sentinel_setup(*, down_after_ms: int = 1000, failover_timeout_ms: int = 3000) -> SentinelSetup:
    """A master, a replica of it and three Sentinels watching them (quorum 2), with failover
    timings small enough for tests. Everything is stopped by PID in ``stop()``."""
    name = f"celeriac-{os.getpid()}-{free_port()}"
    started: list[RedisServer] = []
    try:
        master = start_redis()
        started.append(master)
        replica = start_redis("--replicaof", "127.0.0.1", str(master.port))
        started.append(replica)
        _wait_replicating(replica)
        sentinels = []
        for _ in range(3):
            sentinels.append(_start_sentinel(master.port, name, down_after_ms, failover_timeout_ms))
            started.append(sentinels[-1])
        for sentinel in sentinels:
            _wait_monitoring(sentinel, name, others=2)
    except BaseException:
        for server in reversed(started):
            server.stop()
        raise
    return SentinelSetup(name, [master, replica], sentinels, down_after_ms)


@dataclass
class ClusterSetup:
    """Three masters and a replica of each, of the tests' own, on loopback ports."""

    servers: list[RedisServer]

    @property
    def url(self) -> str:
        return "rediscluster://" + ",".join(f"127.0.0.1:{s.port}" for s in self.servers[:3]) + "/0"

    def cpu_seconds(self) -> dict[int, float]:
        """Each node's CPU time so far (user + system), by port."""
        out = {}
        for server in self.servers:
            info = _info(server.port, "cpu")
            out[server.port] = float(info.get("used_cpu_user", 0)) + float(info.get("used_cpu_sys", 0))
        return out

    def ports(self) -> list[int]:
        return [s.port for s in self.servers]

    def server(self, port: int) -> RedisServer:
        return next(s for s in self.servers if s.port == port)

    def master_of(self, key: str) -> int:
        """The port of the master that serves ``key``'s slot now."""
        import redis

        for server in self.servers:
            if server.proc.poll() is not None:
                continue
            client = redis.Redis(port=server.port, socket_timeout=1)
            try:
                slot = int(client.execute_command("CLUSTER", "KEYSLOT", key))
                for start, end, master, *_ in client.execute_command("CLUSTER", "SLOTS"):
                    if start <= slot <= end:
                        return int(master[1])
            except redis.exceptions.RedisError:
                continue
            finally:
                client.close()
        raise RuntimeError("no cluster node answers")

    def wait_promoted(self, old_port: int, key: str, timeout: float = 30.0) -> int:
        """Wait until another node than ``old_port`` serves ``key``'s slot and accepts writes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                port = self.master_of(key)
            except RuntimeError:
                port = old_port
            if port != old_port and _info(port, "replication").get("role") == "master":
                return port
            time.sleep(0.1)
        raise RuntimeError(f"the cluster promoted no replica within {timeout} s")

    def rejoin(self, port: int) -> None:
        """Start the killed node on ``port`` again (its nodes.conf tells it the cluster it was
        in): a master whose replica took over comes back as that replica's replica."""
        server = self.server(port)
        server.restart(0.0, hard=True)
        _wait_replicating(server, timeout=30)

    def wait_settled(self, key: str, timeout: float = 30.0) -> int:
        """Wait until ``key``'s master accepts writes and has a replica with its link up (after
        a failover, or a master restarted before one); return the master's port."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                port = self.master_of(key)
            except RuntimeError:
                port = 0
            if port and _info(port, "replication").get("role") == "master" and _cluster_ok(port, 3):
                for server in self.servers:
                    replication = _info(server.port, "replication")
                    if (server.port != port and replication.get("master_port") == str(port)
                            and replication.get("master_link_status") == "up"):
                        return port
            time.sleep(0.1)
        raise RuntimeError(f"no master of {key} with a replica in sync within {timeout} s")

    def flush(self) -> None:
        """Empty every master (replicas follow)."""
        for server in self.servers:
            if server.proc.poll() is None and _info(server.port, "replication").get("role") == "master":
                with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
                    sock.sendall(b"FLUSHALL\r\n")
                    sock.recv(64)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


def _cluster_ok(port: int, masters: int) -> bool:
    info = _info(port, "cluster")
    if info.get("cluster_enabled") != "1":
        return False
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"CLUSTER INFO\r\n")
            data = sock.recv(65536).decode(errors="replace")
    except OSError:
        return False
    fields = dict(line.partition(":")[::2] for line in data.splitlines()[1:])
    return (fields.get("cluster_state", "").strip() == "ok" and fields.get("cluster_slots_ok", "").strip() == "16384"
            and fields.get("cluster_size", "").strip() == str(masters))


def start_cluster_setup(*, node_timeout_ms: int = 1000, replicas: int = 1, masters: int = 3) -> ClusterSetup:
    """Three masters with one replica each (six nodes) made into one cluster by
    ``redis-cli --cluster create``; ``node_timeout_ms`` is how long a silent master has before
    its replica takes over. Everything is stopped by PID in ``stop()``."""
    cli = shutil.which("redis-cli")
    if cli is None:
        raise RuntimeError("redis-cli is not installed: apt-get install -y redis-tools")
    started: list[RedisServer] = []
    try:
        for _ in range(masters * (1 + replicas)):
            started.append(start_redis("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                                       "--cluster-node-timeout", str(node_timeout_ms),
                                       "--cluster-replica-validity-factor", "0"))
        subprocess.run([cli, "--cluster", "create", *(f"127.0.0.1:{s.port}" for s in started),
                        "--cluster-replicas", str(replicas), "--cluster-yes"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
        deadline = time.monotonic() + 30
        while not all(_cluster_ok(s.port, masters) for s in started):
            if time.monotonic() > deadline:
                raise RuntimeError("the cluster did not become ready within 30 s")
            time.sleep(0.1)
        for server in started:  # every replica synced, so a failover has something to promote
            if _info(server.port, "replication").get("role") == "slave":
                _wait_replicating(server, 30)
    except BaseException:
        for server in reversed(started):
            server.stop()
        raise
    return ClusterSetup(started)
