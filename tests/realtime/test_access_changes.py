"""Access changes reach open sockets at once, not at their next reconnect: new terms of use close
them until accepted, an org role or department change is taken (and announced to the person's
own sockets), deactivation closes them, and a conversation role change or removal applies to
the very next frame. Real server sockets, on both backends."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from enclave.domain.ids import OrgId, UserId, new_id
from enclave.domain.models import Org, OrgRole, User
from enclave.realtime.connection import Connection
from enclave.realtime.hub import Hub
from enclave.services import auth
from enclave.services.context import Context
from enclave.services.runtime import Node
from enclave.storage import accounts as account_store
from enclave.storage.base import Tx
from enclave_client.errors import EnclaveError
from tests.conftest import TEST_PASSWORD, Person, World
from tests.realtime.conftest import Live, collect

API = "/api/v1"


async def open_ws(live: Live, token: str) -> ClientConnection:
    """A raw socket, past `ready` and `synced`."""
    ws = await connect(live.url.replace("http://", "ws://") + "/api/v1/ws", compression=None)
    await ws.send(json.dumps({"type": "hello", "token": token, "cursors": {}}))
    await next_frame(ws, "synced")
    return ws


async def next_frame(ws: ClientConnection, kind: str, timeout: float = 10) -> dict[str, Any]:
    """The next frame of type `kind` (others are skipped)."""

    async def run() -> dict[str, Any]:
        while True:
            frame: dict[str, Any] = json.loads(await ws.recv())
            if frame["type"] == kind:
                return frame

    return await asyncio.wait_for(run(), timeout)


async def _frames_for(ws: ClientConnection, seconds: float) -> list[dict[str, Any]]:
    """Every frame that arrives within `seconds` (to show that something does not arrive)."""
    got: list[dict[str, Any]] = []

    async def run() -> None:
        while True:
            got.append(json.loads(await ws.recv()))

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(run(), seconds)
    return got


async def closed_with(ws: ClientConnection) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(_frames_for(ws, 60), 10)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def ask(ws: ClientConnection, frame: dict[str, Any]) -> dict[str, Any]:
    """Send a frame with a req_id; its `ack`/`error`/`presence.state` answer."""
    req_id = f"r{id(frame)}"
    await ws.send(json.dumps({**frame, "req_id": req_id}))

    async def run() -> dict[str, Any]:
        while True:
            answer: dict[str, Any] = json.loads(await ws.recv())
            if answer.get("req_id") == req_id:
                return answer

    return await asyncio.wait_for(run(), 10)


async def _publish_terms(client: httpx.AsyncClient, owner: Person, version: str) -> None:
    resp = await client.put(
        f"{API}/org/terms", json={"version": version, "text": "Be kind."}, headers=owner.headers
    )
    assert resp.status_code == 200, resp.text


async def test_new_terms_close_live_sockets_until_accepted(
    world: World, client: httpx.AsyncClient, live: Live, ctx: Context
) -> None:
    owner = await world.owner()
    bob = await world.person("bob")
    owner_ws, bob_ws = await open_ws(live, owner.token), await open_ws(live, bob.token)
    async with live.stream(bob.token) as sdk:
        await sdk.wait_synced()
        await _publish_terms(client, owner, "v1")
        # Everyone of the organization, the publisher included, stops at once.
        assert await closed_with(owner_ws) == (4003, "terms_acceptance_required")
        assert await closed_with(bob_ws) == (4003, "terms_acceptance_required")
        with pytest.raises(EnclaveError) as ended:
            await collect(sdk, lambda xs: False, timeout=10)
        assert ended.value.code == "terms_acceptance_required"

    again = await connect(live.url.replace("http://", "ws://") + "/api/v1/ws", compression=None)
    await again.send(json.dumps({"type": "hello", "token": bob.token, "cursors": {}}))
    assert await closed_with(again) == (4003, "terms_acceptance_required")

    accepted = await client.post(
        f"{API}/users/me/terms/accept", json={"version": "v1"}, headers=bob.headers
    )
    assert accepted.status_code == 200, accepted.text
    back = await open_ws(live, bob.token)  # accepted: served again
    assert (await ask(back, {"type": "ping"}))["type"] == "pong"
    await back.close()


async def _stranger(world: World, ctx: Context) -> Person:
    """Someone of another organization (made in storage: operators make organizations)."""
    org = Org(id=OrgId(new_id()), name="Other", created_at=0)
    user = User(
        id=UserId(new_id()),
        org_id=org.id,
        username="stranger",
        display_name="S",
        role=OrgRole.MEMBER,
        is_active=True,
        must_change_password=False,
        created_at=0,
    )
    hashed = await ctx.cpu(ctx.passwords.hash, TEST_PASSWORD)

    def insert(tx: Tx) -> None:
        account_store.insert_org(tx, org)
        account_store.insert_user(tx, user, hashed)

    await ctx.db.write(insert)
    token = await world.login("stranger")
    return Person(user.id, "stranger", token, {"Authorization": f"Bearer {token}"})


async def test_new_terms_leave_other_organizations_alone(
    world: World, client: httpx.AsyncClient, live: Live, ctx: Context
) -> None:
    owner = await world.owner()
    bob = await world.person("bob")
    stranger = await _stranger(world, ctx)
    bob_ws, their_ws = await open_ws(live, bob.token), await open_ws(live, stranger.token)
    await _publish_terms(client, owner, "v1")
    assert await closed_with(bob_ws) == (4003, "terms_acceptance_required")
    assert (await ask(their_ws, {"type": "ping"}))["type"] == "pong"
    await their_ws.close()


async def _group(client: httpx.AsyncClient, owner: Person, *others: Person) -> str:
    resp = await client.post(
        f"{API}/conversations",
        json={"kind": "group", "members": [p.id for p in others]},
        headers=owner.headers,
    )
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


async def test_an_org_role_change_applies_to_open_sockets_at_once(
    world: World, client: httpx.AsyncClient, live: Live
) -> None:
    owner = await world.owner()
    alice, bob, carol = (
        await world.person("alice"),
        await world.person("bob"),
        await world.person("carol"),
    )
    await _group(client, alice, bob)  # bob shares a conversation with alice, not with carol
    bob_ws = await open_ws(live, bob.token)
    watched = await ask(bob_ws, {"type": "presence.subscribe", "user_ids": [alice.id, carol.id]})
    assert set(watched["statuses"]) == {alice.id, carol.id}

    resp = await client.put(
        f"{API}/users/{bob.id}/role", json={"role": "guest"}, headers=owner.headers
    )
    assert resp.status_code == 200, resp.text
    updated = await next_frame(bob_ws, "account.updated")
    assert (updated["user"]["id"], updated["user"]["role"]) == (bob.id, "guest")

    # A guest sees only the people they share a conversation with: carol's presence stops
    # reaching the socket, alice's still does (carol comes online first, so hers would be first).
    carol_ws = await open_ws(live, carol.token)
    alice_ws = await open_ws(live, alice.token)
    seen: list[str] = []
    while alice.id not in seen:
        seen.append((await next_frame(bob_ws, "presence"))["user_id"])
    assert carol.id not in seen
    again = await ask(bob_ws, {"type": "presence.subscribe", "user_ids": [carol.id]})
    assert again["statuses"] == {}

    # A department change is taken and announced too; other people's sockets hear nothing.
    dept = await client.post(f"{API}/departments", json={"name": "Ops"}, headers=owner.headers)
    assert dept.status_code == 201, dept.text
    moved = await client.put(
        f"{API}/users/{bob.id}/department",
        json={"department_id": dept.json()["id"]},
        headers=owner.headers,
    )
    assert moved.status_code == 200, moved.text
    updated = await next_frame(bob_ws, "account.updated")
    assert updated["user"]["department_id"] == dept.json()["id"]
    assert not [f for f in await _frames_for(alice_ws, 0.3) if f["type"] == "account.updated"]
    for ws in (bob_ws, carol_ws, alice_ws):
        await ws.close()


async def test_deactivation_closes_the_persons_sockets_at_once(
    world: World, client: httpx.AsyncClient, live: Live
) -> None:
    admin = await world.person("ada", role="admin")
    bob, carol = await world.person("bob"), await world.person("carol")
    bob_ws, carol_ws = await open_ws(live, bob.token), await open_ws(live, carol.token)
    resp = await client.post(f"{API}/users/{bob.id}/deactivate", headers=admin.headers)
    assert resp.status_code == 200, resp.text
    assert (await closed_with(bob_ws))[0] == 4010
    assert (await ask(carol_ws, {"type": "ping"}))["type"] == "pong"
    await carol_ws.close()


async def test_conversation_role_changes_apply_to_the_next_frame(
    world: World, client: httpx.AsyncClient, live: Live
) -> None:
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await _group(client, alice, bob)
    bob_ws = await open_ws(live, bob.token)

    def send(cmid: str) -> dict[str, Any]:
        return {"type": "send", "conversation_id": conv, "client_msg_id": cmid, "text": cmid}

    assert (await ask(bob_ws, send("m1")))["type"] == "ack"
    member = f"{API}/conversations/{conv}/members/{bob.id}"
    resp = await client.patch(member, json={"role": "reader"}, headers=alice.headers)
    assert resp.status_code == 200, resp.text
    assert (await next_frame(bob_ws, "member.role_changed"))["data"]["role"] == "reader"
    refused = await ask(bob_ws, send("m2"))
    assert (refused["type"], refused["code"]) == ("error", "read_only_member")

    resp = await client.patch(member, json={"role": "member"}, headers=alice.headers)
    assert resp.status_code == 200, resp.text
    await next_frame(bob_ws, "member.role_changed")
    assert (await ask(bob_ws, send("m3")))["type"] == "ack"

    resp = await client.delete(member, headers=alice.headers)
    assert resp.status_code == 204, resp.text
    assert (await next_frame(bob_ws, "member.left"))["data"]["user_id"] == bob.id
    refused = await ask(bob_ws, send("m4"))
    assert (refused["type"], refused["code"]) == ("error", "not_found")
    posted = await client.post(
        f"{API}/conversations/{conv}/messages",
        json={"client_msg_id": "after", "text": "bob is gone"},
        headers=alice.headers,
    )
    assert posted.status_code == 201, posted.text
    assert not [f for f in await _frames_for(bob_ws, 0.3) if f.get("conversation_id") == conv]
    await bob_ws.close()


class _Sink:
    """A connection's output that only remembers how it was closed."""

    def __init__(self) -> None:
        self.closed: tuple[int, str] | None = None
        self.done = asyncio.Event()

    def write(self, frame: bytes) -> None:
        pass

    def buffered(self) -> int:
        return 0

    def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)
        self.done.set()


async def test_a_socket_registered_while_access_changes_is_rechecked(
    world: World, client: httpx.AsyncClient, ctx: Context
) -> None:
    """The change commits between the hello's session check and the socket's registration, so
    its signal finds no connection to re-check: registration catches up."""
    owner = await world.owner()
    bob = await world.person("bob")
    hub = Hub(ctx)
    node = Node(ctx, residents=[hub])
    await node.start()
    try:
        session = await auth.authenticate(ctx, bob.token)  # the hello's check
        epoch = hub.access_epoch
        await _publish_terms(client, owner, "v1")

        def conn(name: str, sink: _Sink) -> Connection:
            return Connection(
                hub,
                name,
                session.user,
                session.token_hash,
                sink,
                max_buffer=1 << 20,
                rate_per_second=50.0,
                rate_burst=200,
            )

        late, unguarded = _Sink(), _Sink()
        hub.register(conn("unguarded", unguarded))  # what registration did before
        hub.register(conn("late", late), since=epoch)
        await asyncio.wait_for(late.done.wait(), 10)
        assert late.closed == (4003, "terms_acceptance_required")
        assert unguarded.closed is None
    finally:
        await node.close()
