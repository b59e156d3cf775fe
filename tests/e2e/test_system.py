"""Probes, self-hosted API docs and the OpenAPI document, from a real server process."""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Iterator
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from tests.e2e.harness import ServerProcess, start_server

pytestmark = pytest.mark.e2e

_ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
_ABSOLUTE_URL = re.compile(r"""(?:https?:)?//[^\s"'<>)]+""", re.IGNORECASE)


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for these read-only checks; none of them changes any data."""
    tmp = tmp_path_factory.mktemp("system")
    server = start_server(tmp / "data", log_dir=tmp)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def client(shared_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared_server.base_url, timeout=10.0) as c:
        yield c


def test_health_probes_answer(client: httpx.Client) -> None:
    for path in ("/healthz", "/readyz"):
        resp = client.get(path)
        assert resp.status_code == 200, f"{path}: {resp.status_code} {resp.text}"
        assert resp.json() == {"status": "ok"}


def test_api_docs_load_only_same_origin_assets(
    client: httpx.Client, shared_server: ServerProcess
) -> None:
    page = client.get("/api/docs")
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "swagger-ui" in html
    outside = _ABSOLUTE_URL.findall(html)
    assert not outside, f"the docs page references other hosts: {outside}"

    assets = [urljoin(shared_server.base_url + "/api/docs", a) for a in _ASSET.findall(html)]
    assert any("/static/vendor/swagger-ui/" in a and a.endswith(".js") for a in assets), assets
    assert any("/static/vendor/swagger-ui/" in a and a.endswith(".css") for a in assets), assets
    for url in assets:
        assert urlsplit(url).netloc == urlsplit(shared_server.base_url).netloc, url
        try:
            resp = client.get(url, timeout=5.0)
        except httpx.TransportError as exc:
            pytest.fail(f"{url}: the response never completed: {exc!r}")
        assert resp.status_code == 200, f"{url}: {resp.status_code}"
        assert len(resp.content) > 0, f"{url} is empty"
        kind = resp.headers["content-type"]
        if url.endswith(".js"):
            assert "javascript" in kind, f"{url} served as {kind}"
        elif url.endswith(".css"):
            assert kind.startswith("text/css"), f"{url} served as {kind}"

    # Our own start-up script points Swagger UI at our document and nowhere else.
    (script,) = [a for a in assets if a.endswith("/static/api-docs.js")]
    code = client.get(script).text
    assert "/api/v1/openapi.json" in code
    assert not _ABSOLUTE_URL.findall(code), "api-docs.js loads from elsewhere"


def test_openapi_document(client: httpx.Client) -> None:
    resp = client.get("/api/v1/openapi.json")
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    assert str(doc["openapi"]).startswith("3.")
    assert doc["info"]["title"] == "Enclave"
    for path in ("/api/v1/auth/login", "/api/v1/conversations/{conv_id}/messages"):
        assert path in doc["paths"], f"{path} missing from the OpenAPI document"


def test_keep_alive_requests_are_not_delayed(client: httpx.Client) -> None:
    """Requests on a reused connection answer in milliseconds. Sockets without TCP_NODELAY wait
    for the client's delayed ACK (40 ms on Linux) on every response sent in two writes."""
    client.get("/healthz")  # open the connection
    took = []
    for _ in range(15):
        start = time.perf_counter()
        assert client.get("/healthz").status_code == 200
        took.append(time.perf_counter() - start)
    assert statistics.median(took) < 0.025, f"median {statistics.median(took) * 1000:.1f} ms"
