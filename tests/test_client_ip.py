"""The client address behind declared proxies: X-Forwarded-For only from a trusted peer."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from enclave.http.bridge import asgi_handler
from enclave.http.client_ip import client_address, parse_networks

PROXIES = parse_networks(["10.0.0.0/8", "fd00::/8", "127.0.0.1"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        # no proxy declared, or the peer is not one: the header is ignored
        ("203.0.113.7", ["198.51.100.1"], "203.0.113.7"),
        ("203.0.113.7", [], "203.0.113.7"),
        # a trusted proxy: the right-most address that is not a trusted proxy
        ("10.1.2.3", ["198.51.100.1"], "198.51.100.1"),
        ("10.1.2.3", ["198.51.100.1, 10.9.9.9"], "198.51.100.1"),
        ("10.1.2.3", ["6.6.6.6, 198.51.100.1, 10.9.9.9"], "198.51.100.1"),  # 6.6.6.6: forged
        ("10.1.2.3", ["6.6.6.6", "198.51.100.1"], "198.51.100.1"),  # several header lines
        ("10.1.2.3", ["10.7.7.7, 10.8.8.8"], "10.7.7.7"),  # every hop trusted: the first
        ("10.1.2.3", [], "10.1.2.3"),  # no header: the proxy itself
        ("10.1.2.3", ["not-an-ip, 198.51.100.1"], "198.51.100.1"),
        ("10.1.2.3", ["198.51.100.1, garbage"], "10.1.2.3"),  # garbage right of it: stop
        ("10.1.2.3", ["198.51.100.1:4711"], "198.51.100.1"),  # with a port
        ("10.1.2.3", ["[2001:db8::1]:4711"], "2001:db8::1"),
        ("fd00::5", ["2001:db8::1"], "2001:db8::1"),
        ("::ffff:10.1.2.3", ["198.51.100.1"], "198.51.100.1"),  # v4-mapped peer
        ("127.0.0.1", ["198.51.100.1"], "198.51.100.1"),
        (None, ["198.51.100.1"], None),
    ],
)
def test_client_address(peer: str | None, forwarded: list[str], expected: str | None) -> None:
    assert client_address(peer, forwarded, PROXIES) == expected


def test_without_trusted_proxies_the_header_never_counts() -> None:
    assert client_address("127.0.0.1", ["198.51.100.1"], ()) == "127.0.0.1"
    assert client_address("10.1.2.3", ["198.51.100.1"], ()) == "10.1.2.3"


async def _echo_client(
    scope: MutableMapping[str, Any], receive: Any, send: Any
) -> None:  # a tiny ASGI app: answers with the scope's client
    host, port = scope["client"]
    body = f"{host} {port}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def _client_seen(trusted: list[str], headers: dict[str, str]) -> str:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", asgi_handler(_echo_client, parse_networks(trusted)))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with httpx.AsyncClient() as client:
            resp = await client.get(str(server.make_url("/")), headers=headers)
            return resp.text
    finally:
        await server.close()


async def test_the_bridge_sets_the_asgi_client_from_a_trusted_proxy_only() -> None:
    forged = {"X-Forwarded-For": "198.51.100.1"}
    host, port = (await _client_seen([], forged)).split()
    assert host == "127.0.0.1" and port != "0"  # no proxies declared: the TCP peer
    host, port = (await _client_seen(["10.0.0.0/8"], forged)).split()
    assert host == "127.0.0.1" and port != "0"  # the peer is not a declared proxy
    assert await _client_seen(["127.0.0.1/32"], forged) == "198.51.100.1 0"
    host, _ = (await _client_seen(["127.0.0.1/32"], {})).split()
    assert host == "127.0.0.1"
