"""The dashboard and HTTP API (``celeriac -A proj flower`` / ``dashboard``): a FastAPI app.

The faces layer: it may import everything below it; nothing below imports it. Needs the
``dashboard`` extra (FastAPI, uvicorn, Jinja2, prometheus-client).

    service.py      what the process holds: history + indexer, metrics, Flower's worker cache
    flower_api.py   Flower's routes with Flower's shapes (shapes.py, params.py)
    metrics.py      /metrics: Flower's metric names plus queue depths and queue wait
    security.py     auth, cross-site refusal, CSP and other headers
    settings.py     Flower's options, FLOWER_* variables, the refusal to serve unauthenticated
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI

from .security import Security
from .service import Dashboard
from .settings import Settings

if TYPE_CHECKING:
    from ..app import Celery

__all__ = ["Dashboard", "Settings", "create_app", "serve"]


def create_app(app: Celery, settings: Settings | None = None, *, dashboard: Dashboard | None = None) -> FastAPI:
    """The ASGI app for ``app``'s cluster. The history indexer runs while the app is served."""
    from .flower_api import router

    settings = settings or Settings()
    dash = dashboard or Dashboard(app, settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        dash.start()
        try:
            yield
        finally:
            dash.stop()

    web = FastAPI(title="celeriac", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    web.state.dashboard = dash
    web.include_router(router(dash), prefix=settings.url_prefix)
    web.add_middleware(Security, settings=settings)
    return web


def serve(app: Celery, settings: Settings) -> None:
    """Run the dashboard until interrupted (uvicorn, one process)."""
    import uvicorn

    settings.check()
    uvicorn.run(create_app(app, settings), host=settings.address, port=settings.port, log_level="warning",
                access_log=False, server_header=False)
