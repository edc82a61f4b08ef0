"""A TCP proxy of the tests' own that keeps its clients' connections across a backend restart,
as connection-pooling Redis proxies and managed endpoints do (twemproxy, Envoy, a cloud
provider's failover endpoint): a client with no command in flight when the backend went away
never sees an error; its next command goes to whatever answers on the backend's port by then.
A client whose command was in flight has its connection closed (its reply is gone).

"In flight" is judged without parsing RESP: bytes went up since the last bytes came down. On
loopback a reply arrives whole, so that is exact enough for a test. Loopback only; stopped in
``stop()``; every thread is a daemon bounded by the proxy's life.
"""

from __future__ import annotations

import selectors
import socket
import threading


class KeepAliveProxy:
    def __init__(self, backend_port: int) -> None:
        self.backend_port = backend_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._stopped = threading.Event()
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self.silent_reconnects = 0  # clients moved to a new backend connection without an error
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self) -> str:
        # RESP2, database 0, no password: a connection has no state a new backend connection
        # would lack (a RESP3 client's HELLO would be). Pooling proxies speak RESP2 to clients.
        return f"redis://127.0.0.1:{self.port}/0?protocol=2"

    def _track(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._socks.append(sock)
        return sock

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(self._track(client),), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        in_flight = False
        sel = selectors.DefaultSelector()
        sel.register(client, selectors.EVENT_READ, "client")
        try:
            while not self._stopped.is_set():
                for key, _ in sel.select(timeout=0.5):
                    if key.data == "client":
                        data = client.recv(65536)
                        if not data:
                            return
                        if upstream is None:
                            upstream = self._track(socket.create_connection(("127.0.0.1", self.backend_port), 2))
                            sel.register(upstream, selectors.EVENT_READ, "upstream")
                        upstream.sendall(data)
                        in_flight = True
                    else:
                        assert upstream is not None
                        try:
                            data = upstream.recv(65536)
                        except OSError:
                            data = b""
                        if data:
                            client.sendall(data)
                            in_flight = False
                            continue
                        sel.unregister(upstream)
                        upstream.close()
                        upstream = None
                        if in_flight:
                            return  # its reply is lost: the client must see the connection go
                        self.silent_reconnects += 1
        except OSError:
            return
        finally:
            sel.close()
            for sock in (client, upstream):
                if sock is not None:
                    try:
                        sock.close()
                    except OSError:
                        pass

    def stop(self) -> None:
        self._stopped.set()
        self._listener.close()
        with self._lock:
            socks, self._socks = self._socks, []
        for sock in socks:
            try:
                sock.close()
            except OSError:
                pass
