"""Typing, presence, read receipts and membership changes reach exactly the right people."""

from __future__ import annotations

import asyncio
import contextlib
import json

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from enclave.domain.ids import OrgId, UserId, new_id
from enclave.domain.models import Org, OrgRole, User
from enclave.services.context import Context
from enclave.storage import accounts as account_store
from enclave_client.errors import EnclaveError
from enclave_client.stream import EventStream, StreamItem
from tests.conftest import Person, World
from tests.realtime.conftest import Live, collect


async def _group(client: httpx.AsyncClient, owner: Person, *others: Person) -> str:
    resp = await client.post(
        "/api/v1/conversations",
        json={"kind": "group", "members": [p.id for p in others]},
        headers=owner.headers,
    )
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


async def _quiet_for(stream: EventStream, seconds: float) -> list[StreamItem]:
    """Everything the stream yields within `seconds` (used to prove that nothing arrives)."""
    got: list[StreamItem] = []

    async def run() -> None:
        async for item in stream:
            got.append(item)

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(run(), seconds)
    return got


async def test_typing_reaches_members_but_not_the_typist_nor_outsiders(
    world: World, client: httpx.AsyncClient, live: Live
) -> None:
    alice, bob, eve = (
        await world.person("alice"),
        await world.person("bob"),
        await world.person("eve"),
    )
    conv = await _group(client, alice, bob)
    async with (
        live.stream(alice.token) as a,
        live.stream(bob.token) as b,
        live.stream(eve.token) as e,
    ):
        for s in (a, b, e):
            await s.wait_synced()
        await e.typing(conv)  # Eve is not a member: ignored
        await a.typing(conv)
        got = await collect(b, lambda xs: any(x.type == "typing" for x in xs))
        typing = [x for x in got if x.type == "typing"]
        assert typing[0].conversation_id == conv and typing[0].data["user_id"] == alice.id
        assert not [x for x in await _quiet_for(a, 0.3) if x.type == "typing"]
        assert not [x for x in await _quiet_for(e, 0.3) if x.type == "typing"]


async def test_a_read_only_member_types_nothing(
    world: World, client: httpx.AsyncClient, live: Live
) -> None:
    """Typing is shown only for those who may post: Bob made a reader types nothing, and types
    again once he is a member again."""
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await _group(client, alice, bob)

    async def make(role: str) -> None:
        resp = await client.patch(
            f"/api/v1/conversations/{conv}/members/{bob.id}",
            json={"role": role},
            headers=alice.headers,
        )
        assert resp.status_code == 200, resp.text

    await make("reader")
    async with live.stream(alice.token) as a, live.stream(bob.token) as b:
        for s in (a, b):
            await s.wait_synced()
        await b.typing(conv)
        assert not [x for x in await _quiet_for(a, 0.5) if x.type == "typing"]
        await make("member")
        await asyncio.sleep(2.1)  # one typing frame per 2 s per conversation counts
        await b.typing(conv)
        got = await collect(a, lambda xs: any(x.type == "typing" for x in xs))
        assert [x.data["user_id"] for x in got if x.type == "typing"] == [bob.id]


async def test_presence_follows_devices_and_stays_inside_the_org(
    world: World, client: httpx.AsyncClient, live: Live, ctx: Context
) -> None:
    alice, bob = await world.person("alice"), await world.person("bob")
    async with live.stream(bob.token) as watcher:
        await watcher.wait_synced()
        assert await watcher.watch_presence([alice.id]) == {alice.id: "offline"}
        async with live.stream(alice.token) as phone, live.stream(alice.token) as laptop:
            await phone.wait_synced()
            await laptop.wait_synced()
            await collect(watcher, lambda xs: _last_status(xs, alice.id) == "online")
            await phone.set_presence("away")
            await asyncio.sleep(0.2)  # one device away, one online: still online
            await laptop.set_presence("away")
            await collect(watcher, lambda xs: _last_status(xs, alice.id) == "away")
        await collect(watcher, lambda xs: _last_status(xs, alice.id) == "offline")

    # Someone of another organization cannot watch Alice at all.
    org = Org(id=OrgId(new_id()), name="Other", created_at=0)
    stranger = User(
        id=UserId(new_id()),
        org_id=org.id,
        username="stranger",
        display_name="S",
        role=OrgRole.MEMBER,
        is_active=True,
        must_change_password=False,
        created_at=0,
    )
    hashed = ctx.passwords.hash("correct horse battery staple")

    def insert(tx: object) -> None:
        account_store.insert_org(tx, org)  # type: ignore[arg-type]
        account_store.insert_user(tx, stranger, hashed)  # type: ignore[arg-type]

    await ctx.db.write(insert)
    token = await world.login("stranger")
    async with live.stream(token) as outsider:
        await outsider.wait_synced()
        assert await outsider.watch_presence([alice.id]) == {}
        async with live.stream(alice.token) as back:
            await back.wait_synced()
            assert not [x for x in await _quiet_for(outsider, 0.3) if x.type == "presence"]


def _last_status(items: list[StreamItem], user_id: str) -> str | None:
    found = [
        x.data["status"] for x in items if x.type == "presence" and x.data["user_id"] == user_id
    ]
    return found[-1] if found else None


async def test_read_receipts_seen_by_and_unread_agree_across_devices(
    world: World, client: httpx.AsyncClient, live: Live
) -> None:
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await _group(client, alice, bob)
    seqs = []
    for i in range(3):
        resp = await client.post(
            f"/api/v1/conversations/{conv}/messages",
            json={"client_msg_id": f"r{i}", "text": f"read me {i}"},
            headers=alice.headers,
        )
        seqs.append(resp.json()["seq"])
    second_login = await world.login("bob")
    async with (
        live.stream(alice.token) as a,
        live.stream(bob.token) as phone,
        live.stream(second_login) as laptop,
    ):
        for s in (a, phone, laptop):
            await s.wait_synced()
        assert await phone.mark_read(conv, seqs[-1]) == seqs[-1]
        for s in (a, laptop):
            got = await collect(s, lambda xs: any(x.type == "read.moved" for x in xs))
            moved = next(x for x in got if x.type == "read.moved")
            assert moved.data == {"user_id": bob.id, "seq": seqs[-1]}
    for token in (bob.token, second_login):
        summary = await client.get(
            f"/api/v1/conversations/{conv}", headers={"Authorization": f"Bearer {token}"}
        )
        assert summary.json()["unread_count"] == 0
    members = await client.get(f"/api/v1/conversations/{conv}/members", headers=alice.headers)
    seen_by = {m["user_id"]: m["last_read_seq"] for m in members.json()["members"]}
    assert seen_by[bob.id] == seqs[-1] and seen_by[alice.id] == 0


async def test_joining_starts_delivery_and_leaving_stops_it(
    world: World, client: httpx.AsyncClient, live: Live
) -> None:
    alice, bob, carol = (
        await world.person("alice"),
        await world.person("bob"),
        await world.person("carol"),
    )
    conv = await _group(client, alice, bob)
    await client.post(
        f"/api/v1/conversations/{conv}/messages",
        json={"client_msg_id": "before", "text": "before carol"},
        headers=alice.headers,
    )
    async with live.stream(carol.token) as c:
        await c.wait_synced()
        added = await client.post(
            f"/api/v1/conversations/{conv}/members",
            json={"user_ids": [carol.id]},
            headers=alice.headers,
        )
        assert added.status_code == 200
        await client.post(
            f"/api/v1/conversations/{conv}/messages",
            json={"client_msg_id": "after", "text": "welcome carol"},
            headers=alice.headers,
        )
        got = await collect(
            c,
            lambda xs: any(x.type == "message.created" for x in xs),
            keep=lambda x: x.conversation_id == conv,
        )
        assert [x.type for x in got] == ["member.joined", "message.created"]
        assert got[1].data["message"]["text"] == "welcome carol"
        removed = await client.delete(
            f"/api/v1/conversations/{conv}/members/{carol.id}", headers=alice.headers
        )
        assert removed.status_code == 204
        left = await collect(c, lambda xs: any(x.type == "member.left" for x in xs))
        assert left[-1].data["user_id"] == carol.id
        await client.post(
            f"/api/v1/conversations/{conv}/messages",
            json={"client_msg_id": "secret", "text": "carol is gone"},
            headers=alice.headers,
        )
        assert not [x for x in await _quiet_for(c, 0.4) if x.conversation_id == conv]


async def test_logout_closes_the_sessions_socket(
    world: World, client: httpx.AsyncClient, live: Live
) -> None:
    bob = await world.person("bob")
    async with live.stream(bob.token) as s:
        await s.wait_synced()
        resp = await client.post("/api/v1/auth/logout", headers=bob.headers)
        assert resp.status_code == 204
        with pytest.raises(EnclaveError):
            await collect(s, lambda xs: False, timeout=10)


async def test_a_slow_consumer_is_dropped_and_others_are_not_delayed(
    world: World, client: httpx.AsyncClient, live: Live, ctx: Context
) -> None:
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await _group(client, alice, bob)
    ws_url = live.url.replace("http://", "ws://") + "/api/v1/ws"
    async with connect(ws_url, max_size=None, compression=None) as stuck:
        await stuck.send(json.dumps({"type": "hello", "token": bob.token, "cursors": {conv: 0}}))
        await stuck.recv()  # ready
        stuck.transport.pause_reading()  # Bob's laptop stops reading
        async with live.stream(alice.token, {conv: 0}) as fast:
            await fast.wait_synced()
            text = "x" * 16000
            for i in range(400):  # ~6 MB for the stuck socket, more than any buffer allows
                await client.post(
                    f"/api/v1/conversations/{conv}/messages",
                    json={"client_msg_id": f"big{i}", "text": text},
                    headers=alice.headers,
                )
            got = await collect(
                fast, lambda xs: sum(x.type == "message.created" for x in xs) >= 400
            )
            assert sum(x.type == "message.created" for x in got) == 400
        stuck.transport.resume_reading()
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(_drain(stuck), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4008
    assert ctx.config.realtime.max_buffer_bytes < 6_000_000


async def _drain(ws: ClientConnection) -> None:
    while True:
        await ws.recv()
