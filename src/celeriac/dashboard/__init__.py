"""The dashboard and HTTP API (``celeriac -A proj flower`` / ``dashboard``): a FastAPI app.

The faces layer: it may import everything below it; nothing below imports it. Needs the
``dashboard`` extra (FastAPI, uvicorn, Jinja2, prometheus-client).

    service.py      what the process holds: history + indexer, metrics, Flower's worker cache
    flower_api.py   Flower's routes with Flower's shapes (shapes.py, params.py)
    v1.py           the typed v1 API (OpenAPI at /openapi.json, listed at /docs)
    pages.py        server-rendered pages (templates/, static/) kept live by server-sent events
    overview.py     what the overview page gathers; chart.py draws its chart as SVG
    actions.py      the pages' buttons (form POSTs with a CSRF token, csrf.py)
    metrics.py      /metrics: Flower's metric names plus queue depths and queue wait
    security.py     auth, cross-site refusal, CSP and other headers
    settings.py     Flower's options, FLOWER_* variables, the refusal to serve unauthenticated
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Match

from .. import __version__
from ..exceptions import BrokerError
from .security import Security
from .service import Dashboard
from .settings import Settings

if TYPE_CHECKING:
    from ..app import Celery

__all__ = ["Background", "Dashboard", "Settings", "create_app", "serve", "serve_in_background"]


def create_app(app: Celery, settings: Settings | None = None, *, dashboard: Dashboard | None = None) -> FastAPI:
    """The ASGI app for ``app``'s cluster. The history indexer runs while the app is served."""
    from fastapi.staticfiles import StaticFiles

    from . import actions, flower_api, pages, v1

    settings = settings or Settings()
    dash = dashboard or Dashboard(app, settings)
    prefix = settings.url_prefix

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        dash.start()
        try:
            yield
        finally:
            dash.stop()

    # FastAPI's own /docs pulls Swagger UI from a CDN with inline script: the CSP forbids both,
    # and closed networks have no CDN, so /docs is a page of ours rendered from the same spec.
    web = FastAPI(title="celeriac", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=f"{prefix}/openapi.json")
    web.state.dashboard = dash

    def allowed(request: Request) -> set[str]:
        methods = set()
        for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
            scope = {**request.scope, "method": method}
            if any(route.matches(scope)[0] == Match.FULL for route in web.router.routes):
                methods.add(method)
        return methods

    @web.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Several routes share a path (GET and POST /api/v1/tasks): name every method they allow.
            headers["Allow"] = ", ".join(sorted(allowed(request) | {"OPTIONS"}))
            if request.method == "OPTIONS":  # a path that exists answers OPTIONS with what it takes
                return Response(status_code=204, headers=headers)
        return await http_exception_handler(request, StarletteHTTPException(exc.status_code, exc.detail, headers))

    @web.exception_handler(BrokerError)
    async def broker_away(_: Request, exc: BrokerError) -> Response:
        # What the history holds still answers; what needs the broker says why it cannot.
        return PlainTextResponse(f"Broker unavailable: {exc}", status_code=503)

    web.include_router(flower_api.router(dash), prefix=prefix)
    web.include_router(v1.router(dash), prefix=prefix)
    web.include_router(pages.router(dash, web.openapi), prefix=prefix)
    web.include_router(actions.router(dash), prefix=prefix)
    web.mount(f"{prefix}/static", StaticFiles(directory=str(pages.HERE / "static")), name="static")
    web.add_middleware(Security, settings=settings)
    return web


def serve(app: Celery, settings: Settings) -> None:
    """Run the dashboard until interrupted (uvicorn, one process)."""
    import logging

    import uvicorn

    settings.check()
    # The CLI shows only errors, but what the history reports (the broker away, events lost to
    # the log's cap) is what an operator must see in the dashboard's own output.
    logging.getLogger("celeriac.monitor").setLevel(logging.WARNING)
    uvicorn.run(create_app(app, settings), host=settings.address, port=settings.port, log_level="warning",
                access_log=False, server_header=False)


class Background:
    """A dashboard served from a thread of this process (the demo's); :meth:`stop` ends it."""

    def __init__(self, server: Any, thread: threading.Thread) -> None:
        self.server = server
        self.thread = thread

    @property
    def started(self) -> bool:
        return bool(self.server.started)

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)


def serve_in_background(app: Celery, settings: Settings, ready_within: float = 10.0) -> Background:
    """Serve from a daemon thread; returns once it listens. Raises OSError when the port is taken."""
    import uvicorn

    settings.check()
    config = uvicorn.Config(create_app(app, settings), host=settings.address, port=settings.port,
                            log_level="critical", access_log=False, server_header=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="celeriac-dashboard", daemon=True)
    thread.start()
    deadline = time.monotonic() + ready_within
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    if not server.started:
        server.should_exit = True
        thread.join(5)
        raise OSError(f"the dashboard could not listen on {settings.address}:{settings.port}")
    return Background(server, thread)

