"""The alert channels against real local servers: a webhook that fails then recovers, one that
refuses, and SMTP with a login (aiosmtpd on 127.0.0.1)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from celeriac.dashboard import notify
from celeriac.dashboard.notify import Courier, Mailer, Webhook

PAYLOAD = {"text": "Task proj.add[1] failed: ValueError('x')", "kind": "task-failed", "count": 1,
           "alerts": [{"summary": "Task proj.add[1] failed", "args": "(1,)"}]}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server() -> Iterator[tuple[str, list[Any], list[int]]]:
    """A receiver answering with the codes in ``answers`` (then 204), keeping what it got."""
    got: list[Any] = []
    answers: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(answers.pop(0) if answers else 204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/hook", got, answers
    httpd.shutdown()
    httpd.server_close()


def test_a_webhook_answering_503_is_retried_with_backoff_until_it_takes_the_message(server, monkeypatch):
    url, got, answers = server
    monkeypatch.setattr(notify, "BACKOFF_FIRST", 0.05)
    answers += [503, 503]
    courier = Courier(Webhook(url, timeout=2), retries=3)
    assert courier.deliver(PAYLOAD) is True
    assert len(got) == 3 and got[-1] == PAYLOAD and courier.sent == 1


def test_a_webhook_refusing_with_400_is_not_retried(server, monkeypatch):
    url, got, answers = server
    monkeypatch.setattr(notify, "BACKOFF_FIRST", 0.05)
    answers += [400]
    assert Courier(Webhook(url, timeout=2), retries=3).deliver(PAYLOAD) is False
    assert len(got) == 1


def test_a_webhook_url_must_be_http() -> None:
    with pytest.raises(Exception, match="http:// or https://"):
        Webhook("file:///etc/passwd")


class Authenticator:
    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"alerts", b"s3cret")
        return AuthResult(success=ok)


@pytest.fixture
def smtp() -> Iterator[tuple[int, list[Any]]]:
    mails: list[Any] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            mails.append((envelope.mail_from, envelope.rcpt_tos, envelope.content.decode()))
            return "250 OK"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port, authenticator=Authenticator(),
                            auth_required=True, auth_require_tls=False)
    controller.start()
    yield port, mails
    controller.stop()


# The test's own loopback server takes a login without TLS; the client under test does not care.
NO_TLS = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


@NO_TLS
def test_smtp_logs_in_and_mails_every_recipient(smtp) -> None:
    port, mails = smtp
    mailer = Mailer(["ops@example.com", "oncall@example.com"], "celeriac@example.com", "127.0.0.1", port,
                    user="alerts", password="s3cret", timeout=5)
    mailer.send(PAYLOAD)
    [(sender, to, content)] = mails
    assert sender == "celeriac@example.com" and to == ["ops@example.com", "oncall@example.com"]
    assert "Subject: [celeriac] Task proj.add[1] failed: ValueError('x')" in content
    assert "args: (1,)" in content
