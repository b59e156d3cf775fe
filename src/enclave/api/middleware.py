"""Pure ASGI middleware: request ids, body size limit, security headers.

HSTS is not here: `enclave.http.server` adds it to every response sent over TLS, WebSocket
upgrades included, which never pass through this middleware.
"""

from __future__ import annotations

import secrets
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from enclave import codec

# The one list of security headers: this middleware adds them to every REST response, and
# `enclave.http.server` to every response aiohttp answers without the REST app (WebSocket path).
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
]


# Every answer under /api/ (REST, the OpenAPI document, errors) is marked not to be stored:
# authenticated answers carry chat data and tokens. The web client's static files may be cached.
API_PREFIX = "/api/"
NO_STORE = (b"cache-control", b"no-store")


def _error_body(code: str, message: str) -> bytes:
    return codec.dumps({"error": {"code": code, "message": message}})


class RequestLimits:
    """Rejects bodies above `max_body_bytes` with 413 (by Content-Length, or while streaming),
    gives each request an id (`X-Request-Id`), and adds the security headers."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = request_id
        limit = self.max_body_bytes
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > limit
                except ValueError:
                    too_big = True
                if too_big:
                    await self._reject(send, request_id)
                    return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, "the request body is too large")
            return message

        api = str(scope.get("path", "")).startswith(API_PREFIX)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[Any] = list(message.get("headers", []))
                if api:  # never kept by a browser or a proxy: answers may carry chat data
                    headers = [(k, v) for k, v in headers if k.lower() != b"cache-control"]
                    headers.append(NO_STORE)
                headers.extend(SECURITY_HEADERS)
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, limited_receive, send_with_headers)

    @staticmethod
    async def _reject(send: Send, request_id: str) -> None:
        body = _error_body("payload_too_large", "the request body is too large")
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-request-id", request_id.encode()),
                    NO_STORE,
                    *SECURITY_HEADERS,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
