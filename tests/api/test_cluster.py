"""Rate limits and the login lockout hold for a cluster, not per node: two nodes share one
PostgreSQL schema and one Redis, and attempts spread over both count together."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from enclave.app import create_app, open_context
from enclave.config import Config
from enclave.services.context import Context
from tests.conftest import TEST_PASSWORD, World, make_config


@pytest.fixture
def cluster_config(tmp_path: Path, pg_schema_url: str, redis_url: str, redis_prefix: str) -> Config:
    return make_config(
        tmp_path,
        pg_schema_url,
        **{
            "redis.url": redis_url,
            "redis.prefix": redis_prefix,
            # A loaded test machine must not make Redis count as lost (each node would then
            # count alone, as designed, and the exact counts below would not hold).
            "redis.timeout_seconds": 5.0,
            "auth.lockout_failures": 3,
            "limits.user_per_second": 0.001,
            "limits.user_burst": 6,
        },
    )


@contextlib.asynccontextmanager
async def two_nodes(config: Config) -> AsyncIterator[list[tuple[Context, httpx.AsyncClient]]]:
    async with contextlib.AsyncExitStack() as stack:
        nodes = []
        for name in ("a", "b"):
            ctx = await stack.enter_async_context(open_context(config))
            client = await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=create_app(ctx)), base_url=f"http://{name}"
                )
            )
            nodes.append((ctx, client))
        yield nodes


async def test_limits_and_lockouts_count_attempts_on_every_node(cluster_config: Config) -> None:
    async with two_nodes(cluster_config) as nodes:
        (ctx_a, client_a), (_, client_b) = nodes
        clients = [client_a, client_b]
        bob = await World(ctx_a, client_a).person("bob")

        # The per-user bucket (burst 6) is one for the cluster: 3 requests on each node use it up.
        codes = [
            (await clients[i % 2].get("/api/v1/users/me", headers=bob.headers)).status_code
            for i in range(8)
        ]
        assert codes == [200] * 6 + [429, 429]

        # Three wrong passwords, on alternate nodes, lock the (account, address) pair on both.
        for i in range(3):
            resp = await clients[i % 2].post(
                "/api/v1/auth/login", json={"username": "bob", "password": f"wrong {i}"}
            )
            assert resp.status_code == 401, resp.text
        for client in clients:
            resp = await client.post(
                "/api/v1/auth/login", json={"username": "bob", "password": TEST_PASSWORD}
            )
            assert resp.status_code == 429, resp.text
            assert int(resp.headers["Retry-After"]) > 1


async def test_parallel_guesses_on_two_nodes_cannot_outrun_the_lockout(
    cluster_config: Config,
) -> None:
    """Wrong passwords sent at once, half to each node: the failure counts and in-flight slots
    are shared, so the password is checked no more often than the lockout allows."""
    async with two_nodes(cluster_config) as nodes:
        ctx_a, client_a = nodes[0]
        await World(ctx_a, client_a).person("carol")
        checked = 0
        for ctx, _ in nodes:
            verify = ctx.passwords.verify

            def counting(stored: str | None, password: str, verify: object = verify) -> bool:
                nonlocal checked
                checked += 1
                return verify(stored, password)  # type: ignore[operator,no-any-return]

            ctx.passwords.verify = counting  # type: ignore[method-assign]
        wrong = 0
        for _ in range(6):  # rounds of 20 at once, half on each node
            results = await asyncio.gather(
                *(
                    nodes[i % 2][1].post(
                        "/api/v1/auth/login", json={"username": "carol", "password": f"wrong {i}"}
                    )
                    for i in range(20)
                )
            )
            codes = [r.status_code for r in results]
            assert set(codes) <= {401, 429}
            wrong += codes.count(401)
        # Per node, each would have allowed 3: together 6. Shared, 3 for the cluster.
        assert wrong == checked == 3
