"""Account security on live sockets: revoked sessions' sockets close at once (another device
signing out everywhere else, an admin), and an account that must enrol in MFA is refused."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import World
from tests.realtime.conftest import Live

API = "/api/v1"


async def _open(live: Live, token: str) -> ClientConnection:
    ws = await connect(live.url.replace("http://", "ws://") + "/api/v1/ws", compression=None)
    await ws.send(json.dumps({"type": "hello", "token": token, "cursors": {}}))
    return ws


async def _drain(ws: ClientConnection) -> None:
    while True:
        await ws.recv()


async def _closed_with(ws: ClientConnection) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(_drain(ws), 10)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def test_signing_out_elsewhere_and_admin_revocation_close_sockets(
    world: World, client: httpx.AsyncClient, live: Live
) -> None:
    ada = await world.person("ada", role="admin")
    bob = await world.person("bob")
    laptop = await world.login("bob")
    phone = await world.login("bob")

    here, there = await _open(live, bob.token), await _open(live, laptop)
    assert json.loads(await here.recv())["type"] == "ready"
    assert json.loads(await there.recv())["type"] == "ready"
    resp = await client.delete(f"{API}/users/me/sessions", headers=bob.headers)
    assert resp.json() == {"revoked": 2}  # the laptop and the phone
    assert (await _closed_with(there))[0] == 4010
    await here.ping()  # this device's socket stays open

    phone_ws = await _open(live, phone)
    assert (await _closed_with(phone_ws))[0] == 4001  # its session is gone already
    resp = await client.post(f"{API}/users/{bob.id}/sessions/revoke", headers=ada.headers)
    assert resp.json() == {"revoked": 1}
    assert (await _closed_with(here))[0] == 4010


async def test_a_socket_is_refused_until_required_mfa_is_enrolled(
    world: World, client: httpx.AsyncClient, live: Live
) -> None:
    owner = await world.owner()
    bob = await world.person("bob")
    resp = await client.patch(
        f"{API}/org/settings", json={"require_mfa": True}, headers=owner.headers
    )
    assert resp.status_code == 200
    ws = await _open(live, bob.token)
    assert await _closed_with(ws) == (4003, "mfa_enrollment_required")
