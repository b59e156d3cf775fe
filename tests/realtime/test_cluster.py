"""Two nodes on one PostgreSQL schema and a private Redis: a node that loses Redis keeps serving,
and when Redis is back the clients of every node catch up from the database, even in a
conversation where nothing else happens."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from enclave.app import create_app, open_context
from enclave.bus.redis.bus import RedisBus
from enclave.config import Config
from enclave.services.context import Context
from enclave_client.stream import EventStream
from tests.bus.test_contract import until
from tests.conftest import World, make_config
from tests.realtime.conftest import collect, messages_in, serving
from tests.realtime.test_signals import _quiet_for
from tests.redis_server import RedisServer


@pytest.fixture
def cluster_config(tmp_path: Path, pg_schema_url: str, private_redis: RedisServer) -> Config:
    # A short timeout: the test waits for the nodes to notice that Redis is gone.
    return make_config(
        tmp_path,
        pg_schema_url,
        **{"redis.url": private_redis.url, "redis.prefix": "c:", "redis.timeout_seconds": 0.5},
    )


@contextlib.asynccontextmanager
async def node(config: Config) -> AsyncIterator[tuple[Context, str]]:
    async with open_context(config) as ctx, serving(ctx) as url:
        yield ctx, url


def _bus(ctx: Context) -> RedisBus:
    assert isinstance(ctx.bus, RedisBus)
    return ctx.bus


async def test_a_node_without_redis_keeps_serving_and_clients_catch_up_when_it_returns(
    cluster_config: Config, private_redis: RedisServer
) -> None:
    async with (
        node(cluster_config) as (ctx_a, url_a),
        node(cluster_config) as (ctx_b, url_b),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(ctx_a)), base_url="http://a"
        ) as client,
    ):
        world = World(ctx_a, client)
        alice, bob = await world.person("alice"), await world.person("bob")
        resp = await client.post(
            "/api/v1/conversations", json={"kind": "dm", "members": [bob.id]}, headers=alice.headers
        )
        conv = resp.json()["id"]

        async def send(text: str) -> None:
            resp = await client.post(
                f"/api/v1/conversations/{conv}/messages",
                json={"client_msg_id": text.replace(" ", "-"), "text": text},
                headers=alice.headers,
            )
            assert resp.status_code == 201, resp.text

        async with (
            EventStream(url_a, alice.token) as on_a,
            EventStream(url_b, bob.token) as on_b,
        ):
            await on_a.wait_synced()
            await on_b.wait_synced()
            await send("before")
            for stream in (on_a, on_b):
                await collect(stream, lambda xs: messages_in(xs, conv) == ["before"])

            private_redis.kill()
            await until(lambda: not _bus(ctx_a).connected and not _bus(ctx_b).connected, 10)
            # Node a keeps serving: logins (rate limits and lockouts fall back to its memory),
            # writes, and live delivery to its own clients.
            await world.login("alice")
            await send("while redis is away")
            got = await collect(on_a, lambda xs: bool(messages_in(xs, conv)))
            assert messages_in(got, conv) == ["while redis is away"]
            assert not messages_in(await _quiet_for(on_b, 0.3), conv)

            private_redis.start()
            # Nothing else happens in the conversation: node b must catch bob up by itself.
            got = await collect(on_b, lambda xs: bool(messages_in(xs, conv)), timeout=20)
            assert messages_in(got, conv) == ["while redis is away"]
            await send("after")
            got = await collect(on_b, lambda xs: bool(messages_in(xs, conv)))
            assert messages_in(got, conv) == ["after"]
