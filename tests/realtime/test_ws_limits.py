"""Limits of live sockets: a frame flood is closed with 4009 (docs/protocol.md, "Limits")."""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import World
from tests.realtime.conftest import Live


async def _open(url: str, token: str) -> ClientConnection:
    ws = await connect(url.replace("http://", "ws://") + "/api/v1/ws", compression=None)
    await ws.send(json.dumps({"type": "hello", "token": token, "cursors": {}}))
    return ws


async def _first_type(ws: ClientConnection) -> str:
    return str(json.loads(await asyncio.wait_for(ws.recv(), 10))["type"])


async def _drain(ws: ClientConnection) -> None:
    while True:
        await ws.recv()


async def _closed_with(ws: ClientConnection) -> int:
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(_drain(ws), 20)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


async def test_a_frame_flood_is_closed_with_4009(world: World, live: Live) -> None:
    alice = await world.person("alice")
    ws = await _open(live.url, alice.token)
    assert await _first_type(ws) == "ready"
    ping = json.dumps({"type": "ping", "req_id": 1})

    async def flood() -> None:
        # Far more than the burst (200) plus a burst's worth of refusals, sent at once.
        for _ in range(2000):
            await ws.send(ping)

    flooding = asyncio.ensure_future(flood())
    try:
        assert await _closed_with(ws) == 4009
    finally:
        flooding.cancel()
        with contextlib.suppress(BaseException):
            await flooding
