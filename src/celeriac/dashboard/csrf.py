"""CSRF tokens for the pages' actions: a token tied to the browser's session cookie.

A page sets a random session cookie (HttpOnly, SameSite=Strict) the first time it is shown, and
every form and the script's requests carry ``HMAC(secret, session)``. A state-changing page
request is carried out only when the token it sends matches its own cookie's. Another site can
make a browser send the cookie, never read it or the page, so it cannot know the token; the
secret is the process's, so a token from another dashboard (or a guessed cookie) never fits.
The cross-site refusal in :mod:`.security` stays in front of this, as a second wall.

The secret lives as long as the process: after a restart an open page's forms are refused (403,
saying to reload), which is cheaper than keeping a secret on disk.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.requests import Request
from starlette.responses import Response

COOKIE = "celeriac_session"
FIELD = "csrf_token"          # the form field
HEADER = "x-csrf-token"       # the header the script sends


class Csrf:
    def __init__(self, path: str = "/", secret: bytes | None = None) -> None:
        self.path = path or "/"
        self.secret = secret or secrets.token_bytes(32)

    def token(self, session: str) -> str:
        return hmac.new(self.secret, session.encode(), hashlib.sha256).hexdigest()

    def session(self, request: Request) -> tuple[str, bool]:
        """The request's session id, and whether it is new (then :meth:`remember` must set it)."""
        current = request.cookies.get(COOKIE, "")
        if 20 <= len(current) <= 100:
            return current, False
        return secrets.token_urlsafe(32), True

    def remember(self, response: Response, session: str) -> None:
        response.set_cookie(COOKIE, session, httponly=True, samesite="strict", path=self.path)

    def valid(self, request: Request, sent: str | None) -> bool:
        """Whether ``sent`` (from the form, else the header) is the token of the request's cookie."""
        session = request.cookies.get(COOKIE)
        given = sent or request.headers.get(HEADER)
        if not session or not given:
            return False
        return hmac.compare_digest(given.encode(), self.token(session).encode())

    def sign(self, text: str) -> str:
        """A tag for a notice the dashboard itself wrote, so a link made elsewhere cannot put
        words of its choosing on the dashboard's pages (``?notice=Your session expired, ...``)."""
        return hmac.new(self.secret, b"notice:" + text.encode(), hashlib.sha256).hexdigest()[:32]

    def signed(self, text: str, tag: str) -> bool:
        return hmac.compare_digest(self.sign(text).encode(), tag.encode())
