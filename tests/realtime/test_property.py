"""Property: whatever the interleaving of concurrent sends, edits, recalls, reactions and
reconnects from random cursors, every member's live view ends equal to the database, each
connection receives exactly the seqs after its cursor in order, and outsiders receive nothing."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enclave_client.stream import EventStream, StreamItem
from tests.conftest import Person, World
from tests.realtime.conftest import Live

EMOJI = ["👍", "🎉", "ok"]

op = st.one_of(
    st.tuples(st.just("send"), st.integers(0, 2), st.text(min_size=1, max_size=20)),
    st.tuples(
        st.just("edit"), st.integers(0, 2), st.integers(0, 30), st.text(min_size=1, max_size=20)
    ),
    st.tuples(st.just("recall"), st.integers(0, 2), st.integers(0, 30)),
    st.tuples(
        st.just("react"),
        st.integers(0, 2),
        st.integers(0, 30),
        st.sampled_from(EMOJI),
        st.booleans(),
    ),
    st.tuples(st.just("reconnect"), st.integers(0, 1), st.integers(0, 40)),
)


@dataclass
class View:
    """A member's picture of the conversation, built only from stream events."""

    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    applied: int = 0

    def apply(self, item: StreamItem) -> None:
        assert item.seq is not None
        if item.seq <= self.applied:  # replayed after a reconnect from an older cursor
            return
        assert item.seq == self.applied + 1, f"gap: {self.applied} -> {item.seq}"
        self.applied = item.seq
        d = item.data
        match item.type:
            case "message.created" | "message.edited":
                m = d["message"]
                old = self.messages.get(m["id"], {"reactions": {}})
                self.messages[m["id"]] = {
                    "text": m["text"],
                    "recalled": m["recalled"],
                    "reactions": old["reactions"],
                }
            case "message.recalled":
                self.messages[d["message_id"]].update(text=None, recalled=True)
            case "reaction.added":
                self.messages[d["message_id"]]["reactions"].setdefault(d["emoji"], set()).add(
                    d["user_id"]
                )
            case "reaction.removed":
                users = self.messages[d["message_id"]]["reactions"].get(d["emoji"], set())
                users.discard(d["user_id"])
                if not users:
                    self.messages[d["message_id"]]["reactions"].pop(d["emoji"], None)


@dataclass
class Member:
    person: Person
    live: Live
    conv: str
    view: View = field(default_factory=View)
    stream: EventStream | None = None
    task: asyncio.Task[None] | None = None
    received: list[list[int]] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)

    async def connect(self, cursor: int) -> None:
        await self.disconnect()
        # In a cluster each (re)connection goes to the next node.
        self.stream = self.live.stream(self.person.token, {self.conv: cursor})
        await self.stream.__aenter__()
        seqs: list[int] = []
        self.received.append(seqs)
        self.starts.append(cursor)

        async def pump(stream: EventStream) -> None:
            async for item in stream:
                if item.conversation_id == self.conv and item.seq is not None:
                    seqs.append(item.seq)
                    self.view.apply(item)

        self.task = asyncio.create_task(pump(self.stream))
        await self.stream.wait_synced()

    async def disconnect(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        if self.stream is not None:
            await self.stream.close()
        self.stream = self.task = None


@pytest.fixture
async def cast(world: World) -> list[Person]:
    return [await world.person(n) for n in ("ann", "ben", "cat", "dan")]


_counter = itertools.count()


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(st.lists(op, min_size=1, max_size=4), min_size=3, max_size=10))
async def test_every_view_converges_to_the_database(
    ops: list[list[tuple[Any, ...]]], cast: list[Person], client: httpx.AsyncClient, live: Live
) -> None:
    ann, ben, cat, dan = cast
    resp = await client.post(
        "/api/v1/conversations",
        json={"kind": "group", "members": [ben.id, cat.id]},
        headers=ann.headers,
    )
    conv = resp.json()["id"]
    people = [ann, ben, cat]
    watchers = [Member(ben, live, conv), Member(cat, live, conv)]
    outsider = Member(dan, live, conv)
    for m in (*watchers, outsider):
        await m.connect(0)
    sent: list[str] = []

    async def run(step: tuple[Any, ...]) -> None:
        kind = step[0]
        who = people[step[1]]
        if kind == "send":
            r = await client.post(
                f"/api/v1/conversations/{conv}/messages",
                json={
                    "client_msg_id": f"p{next(_counter)}",
                    "text": step[2].replace("\x00", "") or ".",
                },
                headers=who.headers,
            )
            if r.status_code == 201:
                sent.append(r.json()["id"])
            else:
                assert r.status_code == 422, r.text  # text the rules refuse (blank, control chars)
        elif kind == "reconnect":
            member = watchers[step[1]]
            await member.connect(min(step[2], member.view.applied))
        elif sent:
            target = sent[step[2] % len(sent)]
            if kind == "edit":
                r = await client.patch(
                    f"/api/v1/messages/{target}", json={"text": step[3] or "."}, headers=who.headers
                )
            elif kind == "recall":
                r = await client.delete(f"/api/v1/messages/{target}", headers=who.headers)
            else:
                method = client.put if step[4] else client.delete
                r = await method(
                    f"/api/v1/messages/{target}/reactions/{step[3]}", headers=who.headers
                )
            assert r.status_code in (200, 403, 409, 422), r.text

    for batch in ops:  # the steps of a batch run concurrently
        await asyncio.gather(*(run(step) for step in batch))

    last_seq = (await client.get(f"/api/v1/conversations/{conv}", headers=ann.headers)).json()[
        "last_seq"
    ]
    for member in watchers:
        for _ in range(500):
            if member.view.applied >= last_seq:
                break
            await asyncio.sleep(0.01)
        assert member.view.applied == last_seq
    await asyncio.sleep(0.05)
    for m in (*watchers, outsider):
        await m.disconnect()

    truth = await _database_view(client, conv, ann)
    for member in watchers:
        assert member.view.messages == truth
        for start, seqs in zip(member.starts, member.received, strict=True):
            assert seqs == list(range(start + 1, start + 1 + len(seqs)))  # exactly once, in order
    assert outsider.received == [[]]  # never a single event of a conversation he is not in


async def _database_view(client: httpx.AsyncClient, conv: str, who: Person) -> dict[str, Any]:
    page = await client.get(
        f"/api/v1/conversations/{conv}/messages?after_seq=0&limit=1000", headers=who.headers
    )
    return {
        m["id"]: {
            "text": m["text"],
            "recalled": m["recalled"],
            "reactions": {r["emoji"]: set(r["user_ids"]) for r in m["reactions"]},
        }
        for m in page.json()["messages"]
    }
