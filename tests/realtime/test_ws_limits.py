"""Limits of live sockets (docs/protocol.md, "Limits and close codes"): a frame flood is closed
with 4009; one send budget per person across REST and every socket; a cap on open sockets per
session and per person, over it close 4011."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from enclave.config import Config
from tests.conftest import World, make_config
from tests.realtime.conftest import Live

SEND_BURST = 12
PER_SESSION = 3
PER_USER = 5


@pytest.fixture
def config(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Config:
    """The realtime tests' backends, with a small send budget (refilling so slowly that no
    token comes back during the test) and small socket caps."""
    extra: dict[str, object] = {
        "limits.send_per_second": 0.0001,
        "limits.send_burst": SEND_BURST,
        "realtime.max_sockets_per_session": PER_SESSION,
        "realtime.max_sockets_per_user": PER_USER,
    }
    if backend == "sqlite":
        return make_config(tmp_path, **extra)
    url = request.getfixturevalue("pg_schema_url")
    if backend == "cluster":
        extra["redis.url"] = request.getfixturevalue("redis_url")
        extra["redis.prefix"] = request.getfixturevalue("redis_prefix")
    return make_config(tmp_path, url, **extra)


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


async def test_rest_and_four_sockets_share_one_send_budget(
    world: World, client: httpx.AsyncClient, live: Live
) -> None:
    alice, bob = await world.person("alice"), await world.person("bob")
    resp = await client.post(
        "/api/v1/conversations", json={"kind": "dm", "members": [bob.id]}, headers=alice.headers
    )
    conv = resp.json()["id"]
    # Four sockets of two sessions (within the caps), on both nodes of a cluster.
    tokens = [alice.token, alice.token, *[await world.login("alice")] * 2]
    sockets = [await _open(live.urls[i % len(live.urls)], t) for i, t in enumerate(tokens)]
    for ws in sockets:
        assert await _first_type(ws) == "ready"
    per_transport = SEND_BURST  # each alone would use up the whole budget

    async def over_socket(k: int, ws: ClientConnection) -> int:
        for i in range(per_transport):
            await ws.send(
                json.dumps(
                    {
                        "type": "send",
                        "req_id": i,
                        "conversation_id": conv,
                        "client_msg_id": f"ws-{k}-{i}",
                        "text": f"socket {k} message {i}",
                    }
                )
            )
        answers: dict[int, str] = {}
        while len(answers) < per_transport:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 20))
            if frame["type"] == "ack":
                answers[frame["req_id"]] = "ack"
            elif frame["type"] == "error" and frame.get("req_id") is not None:
                assert frame["code"] == "rate_limited", frame
                answers[frame["req_id"]] = "refused"
        return sum(1 for a in answers.values() if a == "ack")

    async def over_rest() -> int:
        ok = 0
        for i in range(per_transport):
            resp = await client.post(
                f"/api/v1/conversations/{conv}/messages",
                json={"client_msg_id": f"rest-{i}", "text": f"rest message {i}"},
                headers=alice.headers,
            )
            assert resp.status_code in (201, 429), resp.text
            ok += resp.status_code == 201
        return ok

    counts = await asyncio.gather(
        over_rest(), *(over_socket(k, ws) for k, ws in enumerate(sockets))
    )
    for ws in sockets:
        await ws.close()
    assert sum(counts) == SEND_BURST, counts
    page = await client.get(
        f"/api/v1/conversations/{conv}/messages", params={"limit": 200}, headers=bob.headers
    )
    assert len(page.json()["messages"]) == SEND_BURST


async def test_sockets_over_the_session_and_person_caps_are_closed_with_4011(
    world: World, live: Live
) -> None:
    alice = await world.person("alice")
    url = live.url  # the caps hold per node
    first = [await _open(url, alice.token) for _ in range(PER_SESSION)]
    for ws in first:
        assert await _first_type(ws) == "ready"
    extra = await _open(url, alice.token)
    assert await _closed_with(extra) == 4011
    # Another session of the same person has room until the person's cap.
    other = await world.login("alice")
    second = [await _open(url, other) for _ in range(PER_USER - PER_SESSION)]
    for ws in second:
        assert await _first_type(ws) == "ready"
    third = await world.login("alice")
    over = await _open(url, third)
    assert await _closed_with(over) == 4011
    # Closing one frees its place.
    await first[0].close()
    await asyncio.sleep(0)
    again = await _open(url, alice.token)
    for _ in range(50):
        frame = json.loads(await asyncio.wait_for(again.recv(), 10))
        if frame["type"] == "ready":
            break
    for ws in [*first[1:], *second, again]:
        await ws.close()
