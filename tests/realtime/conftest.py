"""A live server on a real loopback socket (port 0) inside the test's event loop, sharing the
test's service context, so REST calls through `client` publish to the same hub.

Every real-time test runs three ways: on SQLite, on PostgreSQL, and as a cluster: two nodes
(two service contexts, each with its own hub and server) sharing one PostgreSQL schema and one
Redis under the test's own prefix. In the cluster the REST `client` talks to the first node and
`live.stream` hands out connections to the second node and the first in turn, so events cross
nodes through Redis and every test has clients on different nodes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from enclave.app import open_context
from enclave.config import Config
from enclave.http.server import serve
from enclave.services.context import Context
from enclave_client.stream import EventStream, StreamItem
from tests.conftest import make_config


@pytest.fixture(params=["sqlite", "postgres", "cluster"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def config(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Config:
    if backend == "sqlite":
        return make_config(tmp_path)
    url = request.getfixturevalue("pg_schema_url")
    if backend == "postgres":
        return make_config(tmp_path, url)
    redis = {
        "redis.url": request.getfixturevalue("redis_url"),
        "redis.prefix": request.getfixturevalue("redis_prefix"),
    }
    return make_config(tmp_path, url, **redis)


@dataclass
class Live:
    urls: list[str]
    """One per node; in a cluster the first is a node other than the REST client's."""
    _turn: itertools.cycle[str] = field(init=False)

    def __post_init__(self) -> None:
        self._turn = itertools.cycle(self.urls)

    @property
    def url(self) -> str:
        return self.urls[0]

    def stream(self, token: str, cursors: dict[str, int] | None = None) -> EventStream:
        """A stream on the next node in turn."""
        return EventStream(next(self._turn), token, cursors=cursors)


@contextlib.asynccontextmanager
async def serving(ctx: Context) -> AsyncIterator[str]:
    """Serve `ctx` on a free loopback port; yields its URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    stop = asyncio.Event()
    started = asyncio.Event()
    task = asyncio.create_task(serve(ctx, sock, stop, started=started))
    await asyncio.wait_for(started.wait(), 10)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


@pytest.fixture
async def live(ctx: Context, config: Config) -> AsyncIterator[Live]:
    async with contextlib.AsyncExitStack() as stack:
        here = await stack.enter_async_context(serving(ctx))
        if not config.uses_redis:
            yield Live([here])
            return
        other = await stack.enter_async_context(open_context(config))
        there = await stack.enter_async_context(serving(other))
        yield Live([there, here])


async def collect(
    stream: EventStream,
    until: Callable[[list[StreamItem]], bool],
    *,
    timeout: float = 20.0,
    keep: Callable[[StreamItem], bool] = lambda item: True,
) -> list[StreamItem]:
    """Read items from `stream` until `until(items)` holds; fail on timeout."""
    items: list[StreamItem] = []

    async def run() -> None:
        async for item in stream:
            if keep(item):
                items.append(item)
            if until(items):
                return

    try:
        await asyncio.wait_for(run(), timeout)
    except TimeoutError:
        kinds = [(i.type, i.conversation_id, i.seq) for i in items[-10:]]
        pytest.fail(f"stream did not reach the expected state; last items: {kinds}")
    return items


def messages_in(items: list[StreamItem], conv: str) -> list[str]:
    return [
        str(i.data["message"]["text"])
        for i in items
        if i.type == "message.created" and i.conversation_id == conv
    ]
