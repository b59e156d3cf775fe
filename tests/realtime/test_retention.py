"""Retention and live clients: connected clients are told which messages to drop, and a client
resuming from a cursor older than the purge is told to resync instead of missing events."""

from __future__ import annotations

import httpx

from enclave.services import audit
from enclave.services.context import Context
from enclave.services.retention import run as retention_run
from tests.api.helpers import API, new_conv, people, send
from tests.conftest import World
from tests.realtime.conftest import Live, collect

DAY = 86_400_000


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000_000

    def now_ms(self) -> int:
        return self.now


async def test_connected_clients_drop_what_was_purged(
    world: World, client: httpx.AsyncClient, ctx: Context, live: Live
) -> None:
    clock = FakeClock()
    ctx.clock = clock
    alice, bob = await people(world, "alice", "bob")
    owner = await world.owner()
    dm = await new_conv(client, alice, "dm", [bob.id])
    old = [await send(client, alice, dm, f"old {i}") for i in range(3)]
    last = int(old[-1]["seq"])
    clock.now += 100 * DAY
    bob.token = await world.login(bob.username)
    owner.headers = {"Authorization": f"Bearer {await world.login(owner.username)}"}
    resp = await client.put(
        f"{API}/org/retention", json={"default_days": 30}, headers=owner.headers
    )
    assert resp.status_code == 200, resp.text

    def purged(items: list[object]) -> bool:
        return any(getattr(i, "type", "") == "messages.purged" for i in items)

    async with live.stream(bob.token, {dm: last}) as stream:
        (receipt,) = await retention_run.run(ctx, audit.Actor())
        assert receipt.totals.messages == 3
        items = await collect(stream, purged)
    event = next(i for i in items if i.type == "messages.purged")
    assert event.conversation_id == dm and event.seq == last + 1
    assert sorted(event.data["message_ids"]) == sorted(m["id"] for m in old)
    assert event.data["up_to_seq"] == last

    # A device that was away since before the purge cannot replay what is gone: it is told to
    # resync (reload from REST) at the cut, then gets the purge event; nothing is skipped.
    async with live.stream(bob.token, {dm: 1}) as stream:
        items = await collect(stream, purged)
    kinds = [(i.type, i.seq) for i in items if i.conversation_id == dm]
    assert kinds == [("resync", None), ("messages.purged", last + 1)]
    history = await client.get(
        f"{API}/conversations/{dm}/messages",
        headers={"Authorization": f"Bearer {bob.token}"},
    )
    assert history.json()["messages"] == []
