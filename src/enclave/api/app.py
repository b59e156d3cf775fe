"""The ASGI application for REST: routers, error mapping, middleware, static files."""

from __future__ import annotations

import asyncio
from importlib import resources
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from enclave import __version__
from enclave.api import (
    deps,
    errors,
    routes_accounts,
    routes_admin,
    routes_compliance,
    routes_conversations,
    routes_jobs,
    routes_messages,
    routes_metrics,
    routes_orgs,
    routes_retention,
    routes_system,
)
from enclave.api.middleware import RequestLimits
from enclave.services.context import Context

DESCRIPTION = """Enclave's REST API. Authenticate with `POST /api/v1/auth/login` and send the
token as `Authorization: Bearer <token>`. Every error is `{"error": {"code", "message"}}`;
the codes are listed in docs/errors.md."""


OPENAPI_PATH = "/api/v1/openapi.json"


class OpenApiDocument:
    """The OpenAPI document at OPENAPI_PATH. Building it takes about half a second of CPU, so it
    is built once, in a thread, on the first request; the event loop keeps serving meanwhile."""

    def __init__(self, app: FastAPI) -> None:
        self._app = app
        self._body: bytes | None = None
        self._lock = asyncio.Lock()

    async def body(self) -> bytes:
        if self._body is None:
            async with self._lock:  # concurrent first requests build it once
                if self._body is None:
                    self._body = await asyncio.to_thread(self._render)
        return self._body

    def _render(self) -> bytes:
        return bytes(JSONResponse(self._app.openapi()).body)


async def openapi_document(request: Request) -> Response:
    """The endpoint is a module function, not a method of the document: FastAPI caches facts
    about endpoints by identity, and a method would keep every app built (tests build
    thousands) alive in that cache."""
    document: OpenApiDocument = request.app.state.openapi
    return Response(await document.body(), media_type="application/json")


def create_api(ctx: Context) -> FastAPI:
    """Build the HTTP application around an already-opened service context."""
    app = FastAPI(
        title="Enclave",
        version=__version__,
        description=DESCRIPTION,
        openapi_url=None,  # served by `OpenApiDocument`, built off the event loop
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(deps.limit_ip)],
    )
    app.state.ctx = ctx
    errors.install(app)
    for module in (routes_system, routes_accounts, routes_conversations, routes_messages):
        app.include_router(module.router)
    for module in (routes_orgs, routes_admin, routes_compliance, routes_metrics):
        app.include_router(module.router)
    app.include_router(routes_retention.router)
    app.include_router(routes_jobs.router)
    app.state.openapi = OpenApiDocument(app)
    app.add_api_route(OPENAPI_PATH, openapi_document, include_in_schema=False)
    static_dir = Path(str(resources.files("enclave.web") / "static"))
    app.mount("/static", StaticFiles(directory=static_dir), name="static")
    app.add_middleware(RequestLimits, max_body_bytes=ctx.config.limits.max_body_bytes)
    return app
