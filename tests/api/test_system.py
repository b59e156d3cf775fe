"""Health probes, and a database that is down: 503 `unavailable`, never a 500 or its details."""

from __future__ import annotations

import httpx

from enclave.services.context import Context
from tests.conftest import World


async def test_readyz_answers_while_the_database_does(client: httpx.AsyncClient) -> None:
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok"}


async def test_a_database_that_is_down_answers_503_unavailable(
    world: World, ctx: Context, client: httpx.AsyncClient
) -> None:
    alice = await world.person("alice")
    await ctx.db.close()
    ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["error"]["code"] == "unavailable"
    listed = await client.get("/api/v1/conversations", headers=alice.headers)
    assert listed.status_code == 503
    assert listed.json()["error"] == {
        "code": "unavailable",
        "message": "the database is unavailable",
    }
    assert (await client.get("/healthz")).status_code == 200
