"""`GET /metrics`: Prometheus metrics, for the monitoring system only (docs/operations.md).

Who may read them:

- with `server.metrics_token` set: a caller sending `Authorization: Bearer <that token>`, from
  any address (loopback included);
- without it: only a direct connection from a loopback address that carries no proxy header
  (`X-Forwarded-For`, `Forwarded`, `X-Real-IP`). A reverse proxy on the same machine adds
  one of those, so the internet behind it is refused even when the proxy is not declared in
  `server.trusted_proxies`.

Anyone else gets exactly the answer of a path that does not exist.
"""

from __future__ import annotations

import hmac
import ipaddress

from fastapi import APIRouter, Request, Response
from starlette.exceptions import HTTPException

from enclave.api.deps import Ctx
from enclave.services import metrics

router = APIRouter()

_PROXY_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def allowed(request: Request, token: str) -> bool:
    """May this request read the metrics? (see the module's docstring)"""
    if token:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), token.encode()
        )
    if any(name in request.headers for name in _PROXY_HEADERS):
        return False
    return _is_loopback(request.client.host if request.client else None)


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(ctx: Ctx, request: Request) -> Response:
    if not allowed(request, ctx.config.server.metrics_token):
        raise HTTPException(status_code=404)  # the same bytes as an unknown path
    body, content_type = metrics.render()
    return Response(body, media_type=content_type, headers={"Cache-Control": "no-store"})
