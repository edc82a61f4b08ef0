"""Authentication, cross-site request refusal and security headers, as one ASGI middleware.

- With ``--basic_auth`` or ``--auth_token`` every route needs credentials (HTTP Basic, or
  ``Authorization: Bearer <token>``) except ``/healthcheck`` and ``/metrics`` (open in Flower too,
  and scraped by Prometheus), and ``/api/*`` when ``FLOWER_UNAUTHENTICATED_API`` is set, as in
  Flower. Without either it serves only loopback (:meth:`Settings.check`).
- Without auth (loopback only), a request whose ``Host`` is not a loopback name is refused (403):
  otherwise a web page could rebind its own domain name to 127.0.0.1 and, being same-origin to
  the browser, read and steer the cluster through the user's browser (DNS rebinding).
- A state-changing request a browser sends from another site is refused (403): a browser adds
  saved Basic credentials to any request to this origin, so without this a page elsewhere could
  revoke tasks. Scripts (curl, requests) send neither ``Origin`` nor ``Sec-Fetch-Site`` and pass.
- Every response gets a strict Content-Security-Policy (no inline script, nothing from other
  origins), ``nosniff`` and ``frame-ancestors 'none'``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from .settings import Settings, is_loopback

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
           (b"referrer-policy", b"same-origin"), (b"x-frame-options", b"DENY")]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Security:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        prefix = settings.url_prefix
        self.open_paths = {f"{prefix}/healthcheck", f"{prefix}/metrics"}
        self.api_prefix = f"{prefix}/api/"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        path = str(scope.get("path", ""))
        if self.settings.auth:
            if not self._open(path) and not self._authenticated(headers):
                await _reply(send, 401, b"Unauthorized", [(b"www-authenticate", b'Basic realm="celeriac"')])
                return
        elif not _loopback_host(headers.get("host", "")):
            await _reply(send, 403, b"Host not allowed: without auth this dashboard answers only to loopback names",
                         [])
            return
        if scope.get("method", "GET") not in SAFE_METHODS and _cross_site(headers):
            await _reply(send, 403, b"Cross-site request refused", [])
            return

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS]
            await send(message)

        await self.app(scope, receive, secured)

    def _open(self, path: str) -> bool:
        return path in self.open_paths or (self.settings.unauthenticated_api and path.startswith(self.api_prefix))

    def _authenticated(self, headers: dict[str, str]) -> bool:
        scheme, _, credentials = headers.get("authorization", "").partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer":
            token = credentials.strip()
            return any(hmac.compare_digest(token.encode(), t.encode()) for t in self.settings.auth_tokens)
        if scheme == "basic":
            try:
                user, _, password = base64.b64decode(credentials.strip(), validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return False
            expected = self.settings.basic_auth.get(user)
            return expected is not None and hmac.compare_digest(password.encode(), expected.encode())
        return False


def _loopback_host(host: str) -> bool:
    if not host:
        return True  # HTTP/1.0 without Host: nothing a browser would send
    name = host.rsplit("]", 1)[0].lstrip("[") if host.startswith("[") else host.rsplit(":", 1)[0]
    return name == "localhost" or name.endswith(".localhost") or is_loopback(name)


def _cross_site(headers: dict[str, str]) -> bool:
    if headers.get("sec-fetch-site", "") == "cross-site":
        return True
    origin = headers.get("origin")
    if origin is None:
        return False
    return origin == "null" or urlsplit(origin).netloc != headers.get("host", "")


async def _reply(send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()), *extra, *HEADERS]})
    await send({"type": "http.response.body", "body": body})
