"""Build the aiohttp application and serve it on a bound socket until asked to stop."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl

from aiohttp import web
from aiohttp import web_response as aiohttp_web_response

from enclave.api.app import create_api
from enclave.api.middleware import API_PREFIX, NO_STORE, SECURITY_HEADERS
from enclave.http.access_log import RedactingAccessLogger
from enclave.http.bridge import asgi_handler
from enclave.http.client_ip import parse_networks
from enclave.realtime.hub import Hub
from enclave.services.context import Context
from enclave.services.runtime import Node
from enclave.ws.endpoint import make_handler

log = logging.getLogger(__name__)

HUB_KEY = web.AppKey("hub", Hub)

# aiohttp names itself and the Python version in a `Server` header on every response. Answers
# that reach the application drop the header (`_add_security_headers`); the answers aiohttp's
# HTTP parser gives on its own (a malformed request line) never reach a hook, so the default
# aiohttp falls back to is emptied here, the one place Enclave configures aiohttp.
setattr(aiohttp_web_response, "SERVER_SOFTWARE", "")  # noqa: B010 (not exported)
HSTS = "max-age=31536000"


async def _add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """The security headers on responses aiohttp answers itself (the WebSocket path's 400 to a
    plain GET), which the REST app's middleware never sees — not on a 101 upgrade, which renders
    nothing; Strict-Transport-Security on every response sent over TLS, never over plain HTTP.
    No `Server` banner: aiohttp names itself and the Python version on every response, which
    tells an attacker which advisories to try."""
    response.headers.popall("Server", None)
    if response.status != 101:  # a WebSocket upgrade renders nothing; its headers stay small
        for name, value in SECURITY_HEADERS:
            response.headers.setdefault(name.decode("latin-1"), value.decode("latin-1"))
        if request.path.startswith(API_PREFIX):
            response.headers["Cache-Control"] = NO_STORE[1].decode("latin-1")
    if request.secure:
        response.headers.setdefault("Strict-Transport-Security", HSTS)


def build_web_app(ctx: Context, hub: Hub) -> web.Application:
    """`/api/v1/ws` on aiohttp's WebSocket; every other path through the REST app."""
    app = web.Application(client_max_size=ctx.config.limits.max_body_bytes)
    app[HUB_KEY] = hub
    app.router.add_get("/api/v1/ws", make_handler(ctx, hub))
    proxies = parse_networks(ctx.config.server.trusted_proxies)
    app.router.add_route("*", "/{tail:.*}", asgi_handler(create_api(ctx), proxies))
    app.on_response_prepare.append(_add_security_headers)
    return app


async def serve(
    ctx: Context,
    sock: socket.socket,
    stop: asyncio.Event,
    ssl_context: ssl.SSLContext | None = None,
    started: asyncio.Event | None = None,
) -> None:
    """Serve HTTP and WebSocket on `sock` (HTTPS and WSS with `ssl_context`) until `stop` is
    set; then close connections cleanly. `started` is set once the socket accepts connections."""
    hub = Hub(ctx)
    # The node's background work: the hub's, the job workers and periodic jobs, in one task
    # group (services.runtime); the retention schedule is one of the periodic jobs.
    node = Node(ctx, residents=[hub])
    await node.start()
    app = build_web_app(ctx, hub)
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log=logging.getLogger("enclave.access") if ctx.config.server.access_log else None,
        access_log_class=RedactingAccessLogger,
        shutdown_timeout=3.0,
    )
    await runner.setup()
    site = web.SockSite(runner, sock, backlog=4096, ssl_context=ssl_context)
    await site.start()
    if started is not None:
        started.set()
    try:
        await stop.wait()
    finally:
        await site.stop()  # no new connections
        # The hub closes every socket with 1001 (clients resume elsewhere) and stops its work;
        # then running jobs go back to the queue, their attempts not spent.
        await node.close()
        await runner.cleanup()  # in-flight requests get up to 3 s
