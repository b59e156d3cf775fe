"""The web client is served at `/` under a strict CSP, and the page never leaves its own origin."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import expect

from tests.web.conftest import APP_PATH, Org, Web
from tests.web.ui import message, open_conversation, post_message, send, unique

pytestmark = [pytest.mark.web, pytest.mark.asyncio(loop_scope="session")]

SOCKET_SCHEME = {"http": "ws", "https": "wss"}
HASH_OR_NONCE = ("'sha256-", "'sha384-", "'sha512-", "'nonce-")


def off_origin(urls: list[str], base_url: str) -> list[str]:
    """The URLs that would reach anything but the server at `base_url`."""
    home = urlsplit(base_url)
    allowed = {home.scheme, SOCKET_SCHEME[home.scheme]}
    found = []
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme == "data":
            continue  # inline data: nothing is fetched
        if parts.scheme == "blob":
            parts = urlsplit(url.removeprefix("blob:"))
        if parts.scheme not in allowed or parts.netloc != home.netloc:
            found.append(url)
    return found


async def test_off_origin_recognises_other_origins() -> None:
    base = "http://127.0.0.1:8123"
    same = [f"{base}/", f"{base}/static/app/app.js", "ws://127.0.0.1:8123/ws", "data:,x"]
    other = [
        "https://127.0.0.1:8123/",
        "http://127.0.0.1:8124/",
        "http://localhost:8123/",
        "wss://127.0.0.1:8123/ws",
        "https://assets.example.org/font.css",
        "blob:https://example.com/1234",
    ]
    assert off_origin([*same, f"blob:{base}/1234"], base) == []
    assert off_origin(other, base) == other


async def test_the_app_is_served_at_root_under_a_strict_csp(org: Org) -> None:
    async with httpx.AsyncClient(base_url=org.base_url, timeout=10.0) as client:
        resp = await client.get(APP_PATH)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/html")
    scripts_in_page = re.findall(r"<script\b[^>]*>", resp.text, flags=re.IGNORECASE)
    assert scripts_in_page, "the page at / loads no script"
    inline = [tag for tag in scripts_in_page if not re.search(r"\bsrc\s*=", tag)]
    assert not inline, f"inline scripts in the page: {inline}"
    csp = resp.headers.get("content-security-policy", "")
    assert csp, f"no Content-Security-Policy on {APP_PATH}"
    directives = {
        parts[0].lower(): parts[1:] for parts in (d.split() for d in csp.split(";")) if parts
    }
    assert "default-src" in directives, csp
    scripts = directives.get("script-src", directives["default-src"])
    allowed = [t for t in scripts if t in ("'self'", "'none'") or t.startswith(HASH_OR_NONCE)]
    assert scripts == allowed, f"script-src allows more than the server's own scripts: {csp}"
    for directive, sources in directives.items():
        assert "*" not in sources, f"{directive} allows any origin: {csp}"
        outside = [s for s in sources if s.startswith(("http:", "https:", "ws:", "wss:"))]
        assert not outside, f"{directive} allows other origins {outside}: {csp}"


async def test_no_request_leaves_the_servers_origin(web: Web, org: Org) -> None:
    """A full session (log in, the list, open, send, receive) stays on the server's origin."""
    alice = await web.open(org.alice)
    page = alice.page
    await expect(page.get_by_test_id("conversation-list")).to_be_visible()
    await open_conversation(page, org.dm.id)
    await send(page, unique("hello from the browser"))
    incoming = unique("hello from the API")
    await post_message(org.base_url, org.bob, org.dm.id, incoming)
    await expect(message(page, incoming)).to_have_count(1)
    await open_conversation(page, org.group.id)
    await send(page, unique("hello group"))

    assert alice.requests, "no request was recorded"
    assert any(urlsplit(u).scheme in ("ws", "wss") for u in alice.requests), alice.requests
    outside = off_origin(alice.requests, org.base_url)
    assert not outside, f"the page left {org.base_url}: {outside}"
    blocked = [e for e in alice.console_errors if "Content Security Policy" in e]
    assert not blocked, f"the page broke its own CSP: {blocked}"
    assert not alice.page_errors, f"uncaught errors in the page: {alice.page_errors}"
