"""Health probes and the self-hosted API documentation."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, JSONResponse

from enclave.api import schemas as s
from enclave.api.deps import Ctx
from enclave.api.errors import error_response
from enclave.domain.errors import NotFound
from enclave.services import system

router = APIRouter(tags=["system"])


@router.get("/healthz", response_model=s.Health)
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=s.Health,
    responses={503: {"model": s.ErrorBody, "description": "The database is unreachable."}},
)
async def readyz(ctx: Ctx) -> JSONResponse:
    """The database answers."""
    if not await system.database_ready(ctx):
        return error_response(503, "unavailable", "the database is unreachable")
    return JSONResponse({"status": "ok"})


@router.get("/", include_in_schema=False)
async def web_client() -> HTMLResponse:
    """The web client's page; its scripts and styles are under /static/app/."""
    index = resources.files("enclave.web") / "static" / "app" / "index.html"
    if not index.is_file():
        raise NotFound("page")
    return HTMLResponse(index.read_text("utf-8"), headers={"Cache-Control": "no-cache"})


@router.get("/api/docs", include_in_schema=False)
async def api_docs() -> HTMLResponse:
    """Swagger UI, served from vendored files (no internet needed)."""
    page = (resources.files("enclave.web") / "api-docs.html").read_text("utf-8")
    return HTMLResponse(page)
