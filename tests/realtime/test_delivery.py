"""Live delivery and lossless resume through real WebSockets."""

from __future__ import annotations

import asyncio

import httpx

from tests.conftest import Person, World
from tests.realtime.conftest import Live, collect, messages_in


async def _dm(client: httpx.AsyncClient, a: Person, b: Person) -> str:
    resp = await client.post(
        "/api/v1/conversations", json={"kind": "dm", "members": [b.id]}, headers=a.headers
    )
    assert resp.status_code in (200, 201), resp.text
    return str(resp.json()["id"])


async def _send(client: httpx.AsyncClient, who: Person, conv: str, text: str) -> int:
    resp = await client.post(
        f"/api/v1/conversations/{conv}/messages",
        json={"client_msg_id": text.replace(" ", "-"), "text": text},
        headers=who.headers,
    )
    assert resp.status_code == 201, resp.text
    return int(resp.json()["seq"])


async def test_message_reaches_the_other_member_live(
    world: World, client: httpx.AsyncClient, live: Live
) -> None:
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await _dm(client, alice, bob)
    async with live.stream(bob.token, {conv: 1}) as stream:
        await stream.wait_synced()
        await _send(client, alice, conv, "hello bob")
        items = await collect(stream, lambda xs: bool(messages_in(xs, conv)))
    assert messages_in(items, conv) == ["hello bob"]


async def test_resume_after_disconnect_gets_every_missed_event_once_in_order(
    world: World, client: httpx.AsyncClient, live: Live
) -> None:
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await _dm(client, alice, bob)
    async with live.stream(bob.token) as first:
        await first.wait_synced()
        await _send(client, alice, conv, "before 0")
        await collect(first, lambda xs: bool(messages_in(xs, conv)))
        cursors = dict(first.cursors)
    # Bob is offline while Alice writes.
    missed = [f"missed {i}" for i in range(120)]
    for text in missed:
        await _send(client, alice, conv, text)
    async with live.stream(bob.token, cursors) as second:
        got = await collect(second, lambda xs: len(messages_in(xs, conv)) >= len(missed))
        await second.wait_synced()
        await _send(client, alice, conv, "live again")
        more = await collect(second, lambda xs: bool(messages_in(xs, conv)))
    assert messages_in(got, conv) == missed
    assert messages_in(more, conv) == ["live again"]


async def test_ws_send_is_idempotent_and_acknowledged_with_seq(
    world: World, client: httpx.AsyncClient, live: Live
) -> None:
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await _dm(client, alice, bob)
    async with live.stream(alice.token) as stream:
        await stream.wait_synced()
        first = await stream.send(conv, "once only", client_msg_id="k-1")
        again = await stream.send(conv, "once only", client_msg_id="k-1")
    assert first.created and not again.created
    assert first.message_id == again.message_id and first.seq == again.seq
    page = await client.get(f"/api/v1/conversations/{conv}/messages", headers=bob.headers)
    assert [m["text"] for m in page.json()["messages"]] == ["once only"]


async def test_concurrent_senders_and_repeated_reconnects_lose_and_double_nothing(
    world: World, client: httpx.AsyncClient, live: Live
) -> None:
    alice, bob, carol = (
        await world.person("alice"),
        await world.person("bob"),
        await world.person("carol"),
    )
    resp = await client.post(
        "/api/v1/conversations",
        json={"kind": "group", "members": [bob.id, carol.id]},
        headers=alice.headers,
    )
    conv = resp.json()["id"]
    per_sender = 60
    senders = [alice, carol]

    async def pump(who: Person) -> None:
        for i in range(per_sender):
            await _send(client, who, conv, f"{who.username} {i}")

    seen: list[str] = []
    cursors: dict[str, int] = {conv: 0}  # Bob has seen nothing of the group yet
    pumping = asyncio.gather(*(pump(p) for p in senders))
    # Bob connects, reads a little, drops, and comes back with his cursors, over and over.
    for _ in range(6):
        async with live.stream(bob.token, cursors) as stream:
            chunk = await collect(stream, lambda xs: len(xs) >= 15 or pumping.done(), timeout=20)
            seen += messages_in(chunk, conv)
            cursors = dict(stream.cursors)
    await pumping
    async with live.stream(bob.token, cursors) as stream:
        total = per_sender * len(senders)
        rest = await collect(stream, lambda xs: len(seen) + len(messages_in(xs, conv)) >= total)
        seen += messages_in(rest, conv)
    assert len(seen) == len(set(seen)) == per_sender * len(senders)
    for who in senders:  # each sender's messages arrive in the order they were sent
        mine = [t for t in seen if t.startswith(who.username + " ")]
        assert mine == [f"{who.username} {i}" for i in range(per_sender)]
