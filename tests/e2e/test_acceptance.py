"""The acceptance scenario against a real server process, on SQLite and on PostgreSQL.

The owner takes over the one-time password; a script creates three people, a DM, a group and a
channel, sends 1,000 messages from concurrent senders, reads everything back through history
paging in both directions, retries sends, then restarts the server and reads it all again.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Servers
from tests.e2e.harness import ServerProcess, bearer, error_code, login

pytestmark = pytest.mark.e2e

OWNER_PASSWORD = "the owner's own long passphrase"
PASSWORD = "correct horse battery staple"
FORWARD_PAGE = 97  # deliberately not a divisor of any conversation's size
BACKWARD_PAGE = 200  # the configured page maximum


@dataclass
class Person:
    id: str
    username: str
    headers: dict[str, str]


@dataclass
class Conversation:
    id: str
    kind: str
    created_seq: int  # the seq of its creation event; messages follow it


@dataclass
class Sender:
    """One task that sends `count` messages in order, each awaited before the next."""

    tag: str
    person: Person
    conv: Conversation
    count: int
    sent: list[dict[str, Any]] = field(default_factory=list)

    def client_msg_id(self, i: int) -> str:
        return f"{self.tag}-{i:04d}"

    def text(self, i: int) -> str:
        return f"{self.tag} says hello #{i}"


@dataclass
class Org:
    owner: Person
    alice: Person
    bob: Person
    carol: Person
    dm: Conversation
    group: Conversation
    channel: Conversation


async def take_over_owner(client: httpx.AsyncClient, one_time_password: str) -> Person:
    """The owner's first login: only the password change is allowed until it is done."""
    resp = await client.post(
        "/api/v1/auth/login", json={"username": "admin", "password": one_time_password}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["user"]["must_change_password"] is True
    owner = Person(resp.json()["user"]["id"], "admin", bearer(resp.json()["token"]))

    blocked = await client.get("/api/v1/conversations", headers=owner.headers)
    assert blocked.status_code == 403, blocked.text
    assert error_code(blocked) == "password_change_required"

    changed = await client.post(
        "/api/v1/users/me/password",
        json={"current_password": one_time_password, "new_password": OWNER_PASSWORD},
        headers=owner.headers,
    )
    assert changed.status_code == 204, changed.text
    allowed = await client.get("/api/v1/conversations", headers=owner.headers)
    assert allowed.status_code == 200, allowed.text

    again = await client.post(
        "/api/v1/auth/login", json={"username": "admin", "password": one_time_password}
    )
    assert again.status_code == 401, again.text
    assert error_code(again) == "invalid_credentials"
    owner.headers = bearer(await login(client, "admin", OWNER_PASSWORD))
    return owner


async def create_person(client: httpx.AsyncClient, owner: Person, username: str) -> Person:
    resp = await client.post(
        "/api/v1/users",
        json={"username": username, "password": PASSWORD, "display_name": username.title()},
        headers=owner.headers,
    )
    assert resp.status_code == 201, resp.text
    return Person(resp.json()["id"], username, bearer(await login(client, username, PASSWORD)))


async def create_conversation(
    client: httpx.AsyncClient, creator: Person, kind: str, members: list[Person], name: str = ""
) -> Conversation:
    body: dict[str, Any] = {"kind": kind, "members": [m.id for m in members]}
    if name:
        body["name"] = name
    resp = await client.post("/api/v1/conversations", json=body, headers=creator.headers)
    assert resp.status_code == 201, resp.text
    return Conversation(resp.json()["id"], kind, resp.json()["last_seq"])


async def build_org(client: httpx.AsyncClient, one_time_password: str) -> Org:
    owner = await take_over_owner(client, one_time_password)
    alice, bob, carol = [await create_person(client, owner, n) for n in ("alice", "bob", "carol")]
    dm = await create_conversation(client, alice, "dm", [bob])
    group = await create_conversation(client, alice, "group", [bob, carol], "launch crew")
    channel = await create_conversation(client, carol, "channel", [alice, bob], "general")
    return Org(owner, alice, bob, carol, dm, group, channel)


def plan_senders(org: Org) -> list[Sender]:
    """1,000 messages in ten concurrent tasks; every conversation has several writers at once,
    and in the group two tasks send as the same person."""
    senders = [
        Sender("dm-alice", org.alice, org.dm, 150),
        Sender("dm-bob", org.bob, org.dm, 150),
        Sender("group-alice-1", org.alice, org.group, 100),
        Sender("group-alice-2", org.alice, org.group, 100),
        Sender("group-bob", org.bob, org.group, 100),
        Sender("group-carol", org.carol, org.group, 100),
        Sender("chan-carol", org.carol, org.channel, 100),
        Sender("chan-alice", org.alice, org.channel, 100),
        Sender("chan-bob", org.bob, org.channel, 100),
    ]
    assert sum(s.count for s in senders) == 1000
    return senders


async def send(client: httpx.AsyncClient, sender: Sender, i: int) -> httpx.Response:
    return await client.post(
        f"/api/v1/conversations/{sender.conv.id}/messages",
        json={"client_msg_id": sender.client_msg_id(i), "text": sender.text(i)},
        headers=sender.person.headers,
    )


async def send_racing_copies(client: httpx.AsyncClient, sender: Sender, i: int) -> httpx.Response:
    """A client that gave up waiting and resent while the first attempt was still in flight:
    three copies at once store one message; one answers 201, the others 200 with it."""
    copies = await asyncio.gather(*(send(client, sender, i) for _ in range(3)))
    assert sorted(r.status_code for r in copies) == [200, 200, 201], [r.text for r in copies]
    assert len({r.json()["id"] for r in copies}) == 1, "racing retries stored duplicates"
    (first,) = [r for r in copies if r.status_code == 201]
    return first


async def run_sender(client: httpx.AsyncClient, sender: Sender) -> None:
    """Send in order; every 25th message is retried at once, as a client that lost the reply,
    and the first one is sent as racing copies."""
    for i in range(sender.count):
        if i == 0:
            resp = await send_racing_copies(client, sender, i)
        else:
            resp = await send(client, sender, i)
        assert resp.status_code == 201, resp.text
        message = resp.json()
        assert message["sender_id"] == sender.person.id
        assert message["client_msg_id"] == sender.client_msg_id(i)
        if sender.sent:
            assert message["seq"] > sender.sent[-1]["seq"], "a later send got an earlier seq"
        sender.sent.append(message)
        if i % 25 == 0:
            retry = await send(client, sender, i)
            assert retry.status_code == 200, retry.text
            assert (retry.json()["id"], retry.json()["seq"]) == (message["id"], message["seq"])


async def page_forward(
    client: httpx.AsyncClient, reader: Person, conv: Conversation
) -> list[dict[str, Any]]:
    """All history via after_seq paging, checking every page is ascending and follows on."""
    found: list[dict[str, Any]] = []
    after = 0
    while True:
        resp = await client.get(
            f"/api/v1/conversations/{conv.id}/messages",
            params={"after_seq": after, "limit": FORWARD_PAGE},
            headers=reader.headers,
        )
        assert resp.status_code == 200, resp.text
        page = resp.json()["messages"]
        assert len(page) <= FORWARD_PAGE
        if not page:
            return found
        seqs = [m["seq"] for m in page]
        assert seqs == sorted(set(seqs)), f"page after {after} is not strictly ascending"
        assert seqs[0] > after
        found += page
        after = seqs[-1]


async def page_backward(
    client: httpx.AsyncClient, reader: Person, conv: Conversation
) -> list[dict[str, Any]]:
    """All history via before_seq paging from the newest message back to the first."""
    pages: list[list[dict[str, Any]]] = []
    params: dict[str, int] = {"limit": BACKWARD_PAGE}
    while True:
        resp = await client.get(
            f"/api/v1/conversations/{conv.id}/messages", params=params, headers=reader.headers
        )
        assert resp.status_code == 200, resp.text
        page = resp.json()["messages"]
        if not page:
            break
        seqs = [m["seq"] for m in page]
        assert seqs == sorted(set(seqs)), f"page before {params} is not strictly ascending"
        if "before_seq" in params:
            assert seqs[-1] < params["before_seq"]
        pages.append(page)
        params = {"before_seq": seqs[0], "limit": BACKWARD_PAGE}
    return [m for page in reversed(pages) for m in page]


async def check_history(
    client: httpx.AsyncClient, reader: Person, conv: Conversation, senders: list[Sender]
) -> list[dict[str, Any]]:
    """History is complete, strictly ascending, gap-free, and keeps each sender's order."""
    mine = [s for s in senders if s.conv is conv]
    expected = {m["id"]: m for s in mine for m in s.sent}
    forward = await page_forward(client, reader, conv)
    backward = await page_backward(client, reader, conv)
    assert [m["id"] for m in backward] == [m["id"] for m in forward]

    ids = [m["id"] for m in forward]
    duplicated = [i for i, n in Counter(ids).items() if n > 1]
    assert not duplicated, f"{len(duplicated)} messages appear twice in {conv.kind} history"
    assert set(ids) == set(expected), (
        f"{conv.kind}: {len(set(expected) - set(ids))} sent messages missing from history, "
        f"{len(set(ids) - set(expected))} unexpected"
    )
    # Nothing but these messages happened after the conversation was created, so their seqs
    # are exactly the next len(expected) numbers.
    seqs = [m["seq"] for m in forward]
    assert seqs == list(range(conv.created_seq + 1, conv.created_seq + 1 + len(expected)))
    for m in forward:
        sent = expected[m["id"]]
        assert (m["seq"], m["text"], m["sender_id"]) == (
            sent["seq"],
            sent["text"],
            sent["sender_id"],
        )
    for s in mine:
        in_history = [
            m["client_msg_id"] for m in forward if m["client_msg_id"].startswith(s.tag + "-")
        ]
        assert in_history == [s.client_msg_id(i) for i in range(s.count)], f"{s.tag} out of order"

    summary = await client.get(f"/api/v1/conversations/{conv.id}", headers=reader.headers)
    assert summary.status_code == 200, summary.text
    assert summary.json()["last_seq"] == conv.created_seq + len(expected)
    return forward


async def check_all(client: httpx.AsyncClient, org: Org, senders: list[Sender]) -> int:
    """Read every conversation back as bob, a member of all three; return the message count."""
    total = 0
    for conv in (org.dm, org.group, org.channel):
        total += len(await check_history(client, org.bob, conv, senders))
    return total


async def retry_concurrently(client: httpx.AsyncClient, senders: list[Sender]) -> None:
    """Late retries of already stored messages, many at once, all answer 200 with the original."""
    rng = random.Random(1000)
    picks = [(s, i) for s in senders for i in rng.sample(range(s.count), 5)]
    replies = await asyncio.gather(*(send(client, s, i) for s, i in picks))
    for (s, i), resp in zip(picks, replies, strict=True):
        assert resp.status_code == 200, resp.text
        assert resp.json()["id"] == s.sent[i]["id"]
        assert resp.json()["seq"] == s.sent[i]["seq"]


async def test_acceptance_scenario(database_url: str, servers: Servers) -> None:
    server = servers.start(database_url=database_url)
    assert server.one_time_password, f"no one-time password in:\n{server.stdout}"
    async with httpx.AsyncClient(base_url=server.base_url, timeout=60.0) as client:
        org = await build_org(client, server.one_time_password)
        senders = plan_senders(org)
        await asyncio.gather(*(run_sender(client, s) for s in senders))
        await retry_concurrently(client, senders)
        assert await check_all(client, org, senders) == 1000

    await restart_and_check(servers, server, database_url, org, senders)


async def restart_and_check(
    servers: Servers, first: ServerProcess, database_url: str, org: Org, senders: list[Sender]
) -> None:
    """SIGTERM, start again on the same data: no new owner password, every message still there,
    and the sessions from before the restart still work."""
    await asyncio.to_thread(first.stop)
    if not database_url:
        # A clean close checkpoints SQLite's write-ahead log into the database file.
        assert not (servers.data_dir / "enclave.db-wal").exists(), "database not closed cleanly"
    second = await asyncio.to_thread(servers.start, None, database_url)
    assert second.one_time_password is None
    assert "One-time password" not in second.stdout
    assert "Enclave is set up" not in second.stdout
    async with httpx.AsyncClient(base_url=second.base_url, timeout=60.0) as client:
        me = await client.get("/api/v1/users/me", headers=org.bob.headers)
        assert me.status_code == 200, me.text
        assert await check_all(client, org, senders) == 1000
        await login(client, "admin", OWNER_PASSWORD)
    await asyncio.to_thread(second.stop)
    assert "One-time password" not in second.stdout
