"""`ready` is always the first frame after `hello`, and no cursor moves back (docs/protocol.md,
"Connecting"): a person in many conversations reconnects over and over with up-to-date cursors
while others post, on every backend and across cluster nodes."""

from __future__ import annotations

import asyncio
import json
import random
from types import SimpleNamespace
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from enclave.domain.events import EventType
from enclave.domain.ids import ConversationId
from enclave.realtime.connection import Connection
from enclave_client.stream import EventStream
from tests.conftest import Person, World
from tests.realtime.conftest import Live

CONVERSATIONS = 120
UNLISTED = 6
"""Conversations the client leaves out of some hellos (it learns their cursor from `ready`)."""
RECONNECTS = 30


async def _frame(ws: ClientConnection, timeout: float = 20.0) -> dict[str, Any]:
    return dict(json.loads(await asyncio.wait_for(ws.recv(), timeout)))


async def test_ready_comes_first_and_every_event_once_over_many_reconnects(
    world: World, client: httpx.AsyncClient, live: Live
) -> None:
    alice, bob, carol = (
        await world.person("alice"),
        await world.person("bob"),
        await world.person("carol"),
    )
    convs: list[str] = []
    for _ in range(CONVERSATIONS):
        resp = await client.post(
            "/api/v1/conversations",
            json={"kind": "group", "members": [bob.id, carol.id]},
            headers=alice.headers,
        )
        assert resp.status_code == 201, resp.text
        convs.append(str(resp.json()["id"]))
    rng = random.Random(13)
    unlisted = set(convs[:UNLISTED])
    stop = asyncio.Event()
    posted = 0

    async def post(who: Person) -> None:
        nonlocal posted
        while not stop.is_set():
            conv = rng.choice(convs)
            posted += 1
            resp = await client.post(
                f"/api/v1/conversations/{conv}/messages",
                json={"client_msg_id": f"{who.username}-{posted}", "text": f"m{posted}"},
                headers=who.headers,
            )
            assert resp.status_code == 201, resp.text
            await asyncio.sleep(0)

    cursors: dict[str, int] = {}
    start: dict[str, int] = {}
    got: dict[str, list[int]] = {c: [] for c in convs}
    urls = iter(live.urls * (RECONNECTS + 2))

    async def session(listed: dict[str, int], *, linger: int) -> None:
        """One connection: hello with `listed`, check `ready` comes first, take events in
        order until `synced` and `linger` more frames (or a quiet moment), then hang up."""
        url = next(urls).replace("http://", "ws://") + "/api/v1/ws"
        async with connect(url, compression=None) as ws:
            await ws.send(json.dumps({"type": "hello", "token": bob.token, "cursors": listed}))
            first = await _frame(ws)
            assert first["type"] == "ready", f"first frame after hello: {first['type']}"
            before = dict(cursors)
            EventStream._apply_ready(cursors, first)
            for conv, seq in before.items():
                assert cursors.get(conv, seq) >= seq, f"ready moved {conv} back"
            synced, extra = False, 0
            while not synced or extra < linger:
                try:
                    frame = await _frame(ws, 20.0 if not synced else 0.2)
                except TimeoutError:
                    assert synced, "no synced frame"
                    break
                if frame["type"] == "synced":
                    synced = True
                    continue
                if synced:
                    extra += 1
                conv, seq = frame.get("conversation_id"), frame.get("seq")
                if conv is None or seq is None:
                    continue
                assert frame["type"] != "resync", frame
                assert seq == cursors[conv] + 1, (conv, seq, cursors[conv])
                cursors[conv] = seq
                got[conv].append(seq)

    await session({}, linger=0)  # learn every conversation's cursor
    start.update(cursors)
    posters = [asyncio.ensure_future(post(p)) for p in (alice, carol, alice)]
    try:
        for i in range(RECONNECTS):
            listed = dict(cursors)
            if i % 3 == 1:  # now and then the client does not list a few of them
                for conv in unlisted:
                    listed.pop(conv, None)
            await session(listed, linger=rng.randint(0, 20))
            assert not any(p.done() for p in posters), [p.exception() for p in posters]
    finally:
        stop.set()
        await asyncio.gather(*posters)
    await session(dict(cursors), linger=0)

    assert posted > RECONNECTS
    resp = await client.get("/api/v1/conversations", headers=bob.headers)
    last = {str(c["id"]): int(c["last_seq"]) for c in resp.json()["conversations"]}
    for conv in convs:
        assert cursors[conv] == last[conv]
        if conv in unlisted:  # unlisted, it skips ahead by design; it never doubles
            assert len(got[conv]) == len(set(got[conv]))
        else:  # every event exactly once, in order
            assert got[conv] == list(range(start[conv] + 1, last[conv] + 1))


def test_ready_cursors_never_move_a_cursor_back() -> None:
    cursors = {"a": 9, "b": 4}
    EventStream._apply_ready(cursors, {"cursors": {"a": 7, "c": 2}, "resync": {"b": 1}})
    assert cursors == {"a": 9, "b": 1, "c": 2}


class _Recorder:
    """A connection's owner and output: what was written and which catch-ups were asked."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.caught_up: list[str] = []

    def catch_up(self, conn: Connection, conv: ConversationId) -> None:
        self.caught_up.append(conv)

    def unsubscribe(self, conn: Connection, conv: ConversationId) -> None:
        conn.delivered.pop(conv, None)

    def unregister(self, conn: Connection) -> None:
        pass

    def write(self, frame: bytes) -> None:
        self.written.append(frame)

    def buffered(self) -> int:
        return 0

    def close(self, code: int, reason: str) -> None:
        pass


def _event(conv: str, seq: int) -> Any:
    return SimpleNamespace(
        conversation_id=conv, seq=seq, type=EventType.MESSAGE_CREATED, data={"n": seq}
    )


def test_nothing_is_written_and_no_catch_up_starts_before_ready() -> None:
    """Live events, other frames and catch-up requests (a bus resync) that reach a resuming
    connection before `ready` wait for it, then go through the usual seq checks in order."""
    rec = _Recorder()
    user: Any = SimpleNamespace(id="u1")
    conn = Connection(rec, "c1", user, b"t", rec, max_buffer=1 << 20, rate_per_second=50.0,
                      rate_burst=200)  # fmt: skip
    a, b = ConversationId("a"), ConversationId("b")
    conn.delivered.update({a: 4, b: 1})
    conn.offer(_event(a, 5), b"a5")
    conn.send(b"typing")
    conn.offer(_event(b, 3), b"b3")  # b2 is missing: a gap
    conn.gap(a)  # the hub's resync after a bus gap
    conn.offer(_event(a, 5), b"a5")  # the same event again (a second path)
    assert rec.written == [] and rec.caught_up == []
    conn.start(b"ready")
    assert rec.written == [b"ready", b"a5", b"typing"]
    assert sorted(rec.caught_up) == [a, b]
    assert conn.delivered == {a: 5, b: 1}
