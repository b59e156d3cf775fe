"""HTTP hardening, from real server processes: the security headers on every kind of response
(also those aiohttp answers without the REST app), no cookies anywhere (bearer tokens only, so
no CSRF surface), and no password, token or message text in the server's logs."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.e2e.harness import ServerProcess, bearer, start_server

pytestmark = pytest.mark.e2e

HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
}
CSP_DIRECTIVES = ("default-src 'self'", "script-src 'self'", "frame-ancestors 'none'")
MAX_BODY = 2048
# Login: one attempt per address, then 429 (the next token arrives in ~17 minutes).
LIMITED = {
    "ENCLAVE_LIMITS_LOGIN_BURST": "1",
    "ENCLAVE_LIMITS_LOGIN_PER_MINUTE": "0.001",
    "ENCLAVE_LIMITS_MAX_BODY_BYTES": str(MAX_BODY),
}
# Everything the server can log: debug level and one access-log line per request.
VERBOSE = {"ENCLAVE_SERVER_LOG_LEVEL": "debug", "ENCLAVE_SERVER_ACCESS_LOG": "true"}


def assert_hardened(resp: httpx.Response, what: str) -> None:
    for name, value in HEADERS.items():
        assert resp.headers.get_list(name) == [value], (what, resp.status_code, resp.headers)
    csp = resp.headers.get_list("content-security-policy")
    assert len(csp) == 1, (what, resp.headers)
    for directive in CSP_DIRECTIVES:
        assert directive in csp[0], (what, csp)
    assert "unsafe-inline" not in csp[0] and "unsafe-eval" not in csp[0], (what, csp)
    assert "set-cookie" not in resp.headers, (what, resp.headers)
    assert "server" not in resp.headers, (what, resp.headers)  # no banner naming the stack
    if what.split(" ", 1)[1].startswith("/api/"):  # answers may carry chat data and tokens
        assert resp.headers.get_list("cache-control") == ["no-store"], (what, resp.headers)


@pytest.fixture(scope="module")
def limited_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("hardening")
    server = start_server(tmp / "data", log_dir=tmp, env=LIMITED)
    try:
        yield server
    finally:
        server.stop()


async def test_every_kind_of_response_carries_the_security_headers(
    limited_server: ServerProcess,
) -> None:
    async with httpx.AsyncClient(base_url=limited_server.base_url, timeout=30.0) as client:
        expected: list[tuple[str, str, int, dict[str, Any]]] = [
            ("GET", "/", 200, {}),
            ("GET", "/static/app/main.js", 200, {}),
            ("GET", "/static/app/no-such-file.js", 404, {}),
            ("GET", "/api/docs", 200, {}),
            ("GET", "/api/v1/openapi.json", 200, {}),
            ("GET", "/healthz", 200, {}),
            ("GET", "/no/such/page", 404, {}),
            ("DELETE", "/healthz", 405, {}),
            ("GET", "/api/v1/conversations", 401, {}),
            ("POST", "/api/v1/auth/login", 422, {"content": b"{not json"}),
            ("POST", "/api/v1/auth/login", 413, {"content": b"x" * (MAX_BODY + 1)}),
            # aiohttp answers a plain GET on the WebSocket path itself, without the REST app.
            ("GET", "/api/v1/ws", 400, {}),
            ("POST", "/api/v1/auth/login", 401, {"json": {"username": "x", "password": "y"}}),
            ("POST", "/api/v1/auth/login", 429, {"json": {"username": "x", "password": "y"}}),
        ]
        for method, path, status, kwargs in expected:
            what = f"{method} {path}"
            headers = {"Content-Type": "application/json"} if "content" in kwargs else {}
            resp = await client.request(method, path, headers=headers, **kwargs)
            if status == 422:  # bad JSON: 400 or 422, whichever the error mapping picks
                assert resp.status_code in (400, 422), (what, resp.text)
            else:
                assert resp.status_code == status, (what, resp.text)
            assert_hardened(resp, what)

    url = limited_server.base_url.replace("http://", "ws://") + "/api/v1/ws"
    async with connect(url, compression=None) as ws:
        assert ws.response is not None
        # A 101 renders no document, so the headers that govern rendering are left off: kept
        # for the life of the socket, they cost ~2 KiB per connection (docs/performance.md S5).
        upgrade = httpx.Response(101, headers=list(ws.response.headers.raw_items()))
        assert "content-security-policy" not in upgrade.headers
        assert "set-cookie" not in upgrade.headers
        assert "server" not in upgrade.headers

    # A request the HTTP parser refuses before any application sees it.
    host, port = limited_server.base_url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"NOT A REQUEST\r\n\r\n")
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(65536), 10)
    writer.close()
    head = raw.split(b"\r\n\r\n", 1)[0].lower()
    assert head.startswith((b"http/1.0 400", b"http/1.1 400")), raw[:200]
    # aiohttp's parser answers this one itself; its Server header, if any, names nothing.
    server_lines = [line for line in head.split(b"\r\n") if line.startswith(b"server:")]
    assert all(line.strip() == b"server:" for line in server_lines), head


async def _take_over(client: httpx.AsyncClient, one_time_password: str, new: str) -> list[str]:
    """Log in with the one-time password, change it to `new`, log in again: both tokens."""
    first = await client.post(
        "/api/v1/auth/login", json={"username": "admin", "password": one_time_password}
    )
    assert first.status_code == 200, first.text
    assert "set-cookie" not in first.headers, first.headers
    token = str(first.json()["token"])
    changed = await client.post(
        "/api/v1/users/me/password",
        json={"current_password": one_time_password, "new_password": new},
        headers=bearer(token),
    )
    assert changed.status_code == 204, changed.text
    again = await client.post("/api/v1/auth/login", json={"username": "admin", "password": new})
    assert again.status_code == 200, again.text
    assert "set-cookie" not in again.headers, again.headers
    return [token, str(again.json()["token"])]


async def test_no_cookies_are_set_and_cookies_do_not_authenticate(tmp_path: Path) -> None:
    """Authentication is the Authorization header only: the server never sets a cookie, and a
    browser's ambient cookies carry no authority, so cross-site requests (CSRF) cannot act."""
    server = start_server(tmp_path / "data", log_dir=tmp_path)
    try:
        assert server.one_time_password
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30.0) as client:
            tokens = await _take_over(client, server.one_time_password, "Cookie-free " * 2)
            token = tokens[-1]
            me = await client.get("/api/v1/users/me", headers=bearer(token))
            assert me.status_code == 200, me.text
            assert "set-cookie" not in me.headers
            cookies = "; ".join(f"{name}={token}" for name in ("token", "session", "enclave"))
            for path in ("/api/v1/users/me", "/api/v1/conversations"):
                resp = await client.get(path, headers={"Cookie": cookies})
                assert resp.status_code == 401, (path, resp.text)
                assert resp.json()["error"]["code"] == "unauthenticated"
            assert not client.cookies, client.cookies
    finally:
        server.stop()


async def test_logs_carry_no_password_token_or_message_text(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", log_dir=tmp_path, env=VERBOSE)
    otp = server.one_time_password
    assert otp
    new_password = "Log-scrub " + secrets.token_urlsafe(12)
    wrong_password = "Wrong-guess-" + secrets.token_urlsafe(12)
    word = "zebracake" + secrets.token_hex(6)
    tokens: list[str] = []
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30.0) as client:
            tokens = await _take_over(client, otp, new_password)
            headers = bearer(tokens[-1])
            conv = await client.post(
                "/api/v1/conversations",
                json={"kind": "channel", "name": "log-check"},
                headers=headers,
            )
            assert conv.status_code == 201, conv.text
            conv_id = conv.json()["id"]
            sent = await client.post(
                f"/api/v1/conversations/{conv_id}/messages",
                json={"client_msg_id": "log-1", "text": f"the secret word is {word}"},
                headers=headers,
            )
            assert sent.status_code == 201, sent.text
            url = server.base_url.replace("http://", "ws://") + "/api/v1/ws"
            async with connect(url, compression=None) as ws:
                await ws.send(json.dumps({"type": "hello", "token": tokens[-1], "cursors": {}}))
                assert json.loads(await ws.recv())["type"] == "ready"
            # A client that wrongly puts its token (or a password) in the query string.
            leaked = await client.get(
                "/api/v1/conversations",
                params={"token": tokens[-1], "password": new_password, "limit": "5"},
                headers=headers,
            )
            assert leaked.status_code in (200, 422), leaked.text
            for username in ("admin", "nobody-here"):
                failed = await client.post(
                    "/api/v1/auth/login", json={"username": username, "password": wrong_password}
                )
                assert failed.status_code == 401, failed.text
    finally:
        server.stop()
    logs = server.stderr()
    assert "/api/v1/auth/login" in logs, "the access log is not on: the check would be empty"
    assert "token=[redacted]" in logs and "password=[redacted]" in logs, logs[-2000:]
    secrets_sent = {
        "one-time password": otp,
        "new password": new_password,
        "wrong password": wrong_password,
        "message word": word,
        **{f"token {i}": t for i, t in enumerate(tokens)},
    }
    for what, value in secrets_sent.items():
        assert value not in logs, f"the {what} appears in the server's log"
        # stdout prints the one-time password once, by design (the first start's banner).
        if what != "one-time password":
            assert value not in server.stdout, f"the {what} appears on the server's stdout"
