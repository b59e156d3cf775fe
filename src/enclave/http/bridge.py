"""Run one HTTP request of aiohttp through an ASGI application (HTTP only, no WebSocket).

Kept here rather than taken from a package because the adapters available drop repeated
response headers (several Set-Cookie lines), which cookie sessions need.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from aiohttp import web

from enclave.http.client_ip import Network, client_address

ASGIApp = Callable[
    [
        MutableMapping[str, Any],
        Callable[[], Awaitable[MutableMapping[str, Any]]],
        Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ],
    Awaitable[None],
]


def asgi_handler(
    app: ASGIApp, trusted_proxies: Sequence[Network] = ()
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """An aiohttp handler that serves requests with `app`. The scope's `client` is the TCP
    peer, or the address a trusted proxy forwarded (port 0 then); see `client_ip`."""

    async def handle(request: web.Request) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        sock = request.transport.get_extra_info("sockname") if request.transport else None
        client: tuple[str, int] | None = None
        if peer:
            host = client_address(
                str(peer[0]), request.headers.getall("X-Forwarded-For", []), trusted_proxies
            )
            direct = host == client_address(str(peer[0]), (), ())
            client = (peer[0], peer[1]) if direct else (host or peer[0], 0)
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": f"{request.version.major}.{request.version.minor}",
            "method": request.method,
            "scheme": request.scheme,
            "path": request.path,
            "raw_path": request.raw_path.split("?", 1)[0].encode("latin-1"),
            "query_string": request.query_string.encode("latin-1"),
            "root_path": "",
            "headers": [(k.lower(), v) for k, v in request.raw_headers],
            "client": client,
            "server": (sock[0], sock[1]) if sock else None,
            "state": {},
        }
        response: web.StreamResponse | None = None
        body_done = False

        async def receive() -> MutableMapping[str, Any]:
            nonlocal body_done
            if body_done:
                # ASGI: after the body, receive() waits for the client to go away. aiohttp
                # cancels the handler when it does, which ends this wait.
                await asyncio.get_running_loop().create_future()
                return {"type": "http.disconnect"}
            chunk = await request.content.read(65536)
            more = not request.content.at_eof()
            if not more:
                body_done = True
            return {"type": "http.request", "body": chunk, "more_body": more}

        async def send(message: MutableMapping[str, Any]) -> None:
            nonlocal response
            if message["type"] == "http.response.start":
                response = web.StreamResponse(status=message["status"])
                for name, value in message.get("headers", []):
                    response.headers.add(name.decode("latin-1"), value.decode("latin-1"))
                no_body = message["status"] in (204, 304) or request.method == "HEAD"
                if "Content-Length" not in response.headers and not no_body:
                    response.enable_chunked_encoding()
                await response.prepare(request)
            elif message["type"] == "http.response.body":
                assert response is not None, "body before start"
                await response.write(message.get("body", b""))
                if not message.get("more_body", False):
                    await response.write_eof()

        await app(scope, receive, send)
        if response is None:  # the app sent nothing: never leave the client hanging
            return web.Response(status=500, text="no response")
        return response

    return handle
