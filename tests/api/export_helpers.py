"""What the eDiscovery export tests share: a configuration whose job workers poll often, a
node running the export kind beside the test's app, and waiting for an export the way a client
does (polling its status through the API, with a bound)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from enclave.config import Config
from enclave.services import jobs
from enclave.services.context import Context
from enclave.services.exports import jobs as exports
from enclave.services.runtime import Node
from tests.api.helpers import API
from tests.conftest import Person, make_config

EXPORTS = f"{API}/compliance/exports"
FAST_JOBS: dict[str, Any] = {
    "jobs.poll_seconds": 0.05,
    "jobs.retry_base_seconds": 0.01,
    "jobs.retry_max_seconds": 0.05,
}


@pytest.fixture(name="config")
def fast_jobs_config(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Config:
    """The test's configuration, with workers that poll every 50 ms and retry at once."""
    url = request.getfixturevalue("pg_schema_url") if backend == "postgres" else ""
    return make_config(tmp_path, url, **FAST_JOBS)


async def start_node(ctx: Context, *kinds: jobs.Kind) -> Node:
    node = Node(ctx, jobs.Registry(kinds or (exports.EXPORT,)))
    await node.start()
    return node


@pytest.fixture(name="exporting")
async def export_worker(ctx: Context) -> AsyncIterator[Node]:
    """A node running export jobs beside the test's app, as `enclave serve` does."""
    node = await start_node(ctx)
    yield node
    await node.close()


async def finished(
    client: httpx.AsyncClient, who: Person, export_id: str, timeout: float = 30.0
) -> dict[str, Any]:
    """The export once it is no longer queued or running, as `GET /compliance/exports/{id}`
    shows it; fails after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        resp = await client.get(f"{EXPORTS}/{export_id}", headers=who.headers)
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        if body["status"] not in ("queued", "running"):
            return body
        if loop.time() > deadline:
            raise AssertionError(f"export {export_id} still {body['status']} after {timeout}s")
        await asyncio.sleep(0.02)
