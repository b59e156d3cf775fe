"""A live server on a real loopback socket (port 0) inside the test's event loop, sharing the
test's service context, so REST calls through `client` publish to the same hub."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from enclave.http.server import serve
from enclave.services.context import Context
from enclave_client.stream import EventStream, StreamItem


@dataclass
class Live:
    url: str

    def stream(self, token: str, cursors: dict[str, int] | None = None) -> EventStream:
        return EventStream(self.url, token, cursors=cursors)


@pytest.fixture
async def live(ctx: Context) -> AsyncIterator[Live]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    stop = asyncio.Event()
    task = asyncio.create_task(serve(ctx, sock, stop))
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.01)
            continue
        writer.close()
        break
    yield Live(f"http://127.0.0.1:{port}")
    stop.set()
    await asyncio.wait_for(task, 10)


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
