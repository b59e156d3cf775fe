"""Issue 3, acceptance 1: a client is cut off (its socket closed, then the server process
restarted) while others keep sending from several tasks; on resume it holds every message
exactly once and in order, checked by counting thousands of messages."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from enclave_client.stream import EventStream
from tests.e2e.conftest import Servers
from tests.e2e.harness import send_until_stored
from tests.e2e.test_acceptance import Person, build_org

pytestmark = pytest.mark.e2e

PER_SENDER = 700


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_cut_off_and_server_restart_lose_and_double_nothing(
    database_url: str, servers: Servers
) -> None:
    port = _free_port()
    first = servers.start(database_url=database_url, port=port)
    assert first.one_time_password is not None
    base = first.base_url
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        org = await build_org(client, first.one_time_password)
        bob_token = org.bob.headers["Authorization"].removeprefix("Bearer ")
        convs = {org.group.id: org.group.created_seq, org.dm.id: org.dm.created_seq}
        plan = [
            (org.alice, org.group.id),
            (org.carol, org.group.id),
            (org.alice, org.dm.id),
            (org.carol, org.channel.id),  # Bob is in it too; his cursors start without it
        ]
        received: list[tuple[str, int, str]] = []

        async def sender(i: int, who: Person, conv: str) -> None:
            for n in range(PER_SENDER):
                await send_until_stored(client, who.headers, conv, f"t{i}-{n}", f"{i}:{n}")

        async def watch(stream: EventStream, until: int) -> None:
            async for item in stream:
                if item.type == "message.created" and item.conversation_id in convs:
                    received.append(
                        (item.conversation_id, item.seq or 0, item.data["message"]["text"])
                    )
                if len(received) >= until:
                    return

        senders = asyncio.gather(*(sender(i, w, c) for i, (w, c) in enumerate(plan)))
        total = 3 * PER_SENDER  # the group and the DM, which Bob follows

        # 1. Bob reads for a while, then his socket is closed.
        async with EventStream(base, bob_token, cursors=convs) as stream:
            await asyncio.wait_for(watch(stream, 300), 60)
            cursors = dict(stream.cursors)
        # 2. While he is away, the others keep sending.
        await asyncio.sleep(0.5)
        # 3. He comes back; then the server process is restarted under him.
        async with EventStream(base, bob_token, cursors=cursors) as stream:
            await asyncio.wait_for(watch(stream, 600), 60)
            await asyncio.to_thread(first.stop)
            await asyncio.to_thread(servers.start, database_url=database_url, port=port)
            await asyncio.wait_for(senders, 120)
            await asyncio.wait_for(watch(stream, total), 120)
            assert stream.reconnects >= 1

    assert len(received) == total
    for conv in convs:
        seqs = [s for c, s, _ in received if c == conv]
        assert seqs == sorted(set(seqs)), "out of order or doubled"
    texts = [t for _, _, t in received]
    assert len(set(texts)) == total  # exactly once
    for i in range(3):  # and each sender's messages in the order sent
        mine = [int(t.split(":")[1]) for t in texts if t.startswith(f"{i}:")]
        assert mine == list(range(PER_SENDER))
