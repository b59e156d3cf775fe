"""Conversations through the REST API: DMs, groups, channels, membership, roles, archive and
read markers."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.api.helpers import API, code, new_conv, people, send
from tests.conftest import Person, World


async def create(
    client: httpx.AsyncClient, who: Person, kind: str, members: list[str], **extra: Any
) -> httpx.Response:
    body = {"kind": kind, "members": members, **extra}
    return await client.post(f"{API}/conversations", json=body, headers=who.headers)


async def get_conv(client: httpx.AsyncClient, who: Person, conv: str) -> httpx.Response:
    return await client.get(f"{API}/conversations/{conv}", headers=who.headers)


async def roles(client: httpx.AsyncClient, who: Person, conv: str) -> dict[str, str]:
    resp = await client.get(f"{API}/conversations/{conv}/members", headers=who.headers)
    assert resp.status_code == 200, resp.text
    return {m["user_id"]: m["role"] for m in resp.json()["members"]}


async def set_role(
    client: httpx.AsyncClient, who: Person, conv: str, user: Person, role: str
) -> httpx.Response:
    return await client.patch(
        f"{API}/conversations/{conv}/members/{user.id}", json={"role": role}, headers=who.headers
    )


async def remove(client: httpx.AsyncClient, who: Person, conv: str, user: Person) -> httpx.Response:
    return await client.delete(f"{API}/conversations/{conv}/members/{user.id}", headers=who.headers)


class StepClock:
    """A fake clock that moves one second per reading: every write gets its own time."""

    def __init__(self) -> None:
        self._now = 1_700_000_000_000

    def now_ms(self) -> int:
        self._now += 1000
        return self._now


# -- DMs --------------------------------------------------------------------------------------


async def test_a_pair_has_one_dm_whoever_creates_it(
    world: World, client: httpx.AsyncClient
) -> None:
    alice, bob, carol = await people(world, "alice", "bob", "carol")
    first = await create(client, alice, "dm", [bob.id])
    assert first.status_code == 201, first.text
    dm = first.json()
    assert (dm["kind"], dm["name"], dm["visibility"], dm["dm_peer_id"]) == (
        "dm",
        None,
        "private",
        bob.id,
    )

    again = await create(client, alice, "dm", [bob.id])
    assert again.status_code == 200, again.text
    assert again.json()["id"] == dm["id"]

    other_side = await create(client, bob, "dm", [alice.id])
    assert other_side.status_code == 200, other_side.text
    assert other_side.json()["id"] == dm["id"]
    assert other_side.json()["dm_peer_id"] == alice.id

    with_carol = await create(client, alice, "dm", [carol.id])
    assert with_carol.status_code == 201
    assert with_carol.json()["id"] != dm["id"]
    listed = await client.get(f"{API}/conversations", headers=alice.headers)
    assert sorted(c["dm_peer_id"] for c in listed.json()["conversations"]) == sorted(
        [bob.id, carol.id]
    )


async def test_concurrent_dm_creation_makes_one_dm(world: World, client: httpx.AsyncClient) -> None:
    alice, bob = await people(world, "alice", "bob")
    pairs = [(alice, bob), (bob, alice)] * 4
    results = await asyncio.gather(*(create(client, a, "dm", [b.id]) for a, b in pairs))
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200] * 7 + [201], [r.text for r in results]
    assert len({r.json()["id"] for r in results}) == 1
    for who in (alice, bob):
        listed = await client.get(f"{API}/conversations", headers=who.headers)
        assert len(listed.json()["conversations"]) == 1


async def test_a_dm_has_exactly_one_other_member(world: World, client: httpx.AsyncClient) -> None:
    alice, bob, carol = await people(world, "alice", "bob", "carol")
    for members in ([], [alice.id], [bob.id, carol.id]):
        assert code(await create(client, alice, "dm", members)) == (422, "invalid_members")
    named = await create(client, alice, "dm", [bob.id], name="chat")
    assert code(named) == (422, "invalid_members")
    unknown = await create(client, alice, "dm", ["a" * 26])
    assert code(unknown) == (404, "not_found")
    listed = await client.get(f"{API}/conversations", headers=alice.headers)
    assert listed.json()["conversations"] == []


# -- groups and channels ----------------------------------------------------------------------


async def test_group_creation_rules(world: World, client: httpx.AsyncClient) -> None:
    alice, bob, carol = await people(world, "alice", "bob", "carol")
    resp = await create(client, alice, "group", [bob.id, carol.id, bob.id])
    assert resp.status_code == 201, resp.text
    group = resp.json()
    assert (group["kind"], group["visibility"], group["my_role"]) == ("group", "private", "owner")
    assert await roles(client, bob, group["id"]) == {
        alice.id: "owner",
        bob.id: "member",
        carol.id: "member",
    }

    assert code(await create(client, alice, "group", [])) == (422, "invalid_members")
    assert code(await create(client, alice, "group", [alice.id])) == (422, "invalid_members")
    public = await create(client, alice, "group", [bob.id], visibility="public")
    assert code(public) == (422, "validation_error")


async def test_channel_creation_rules(world: World, client: httpx.AsyncClient) -> None:
    alice, bob = await people(world, "alice", "bob")
    assert code(await create(client, alice, "channel", [])) == (422, "validation_error")
    assert code(await create(client, alice, "channel", [], name="   ")) == (422, "invalid_text")

    public = await create(client, alice, "channel", [], name="general", topic="all hands")
    assert public.status_code == 201, public.text
    assert (public.json()["visibility"], public.json()["topic"]) == ("public", "all hands")
    assert public.json()["my_role"] == "owner"

    private = await create(client, alice, "channel", [bob.id], name="ops", visibility="private")
    assert private.status_code == 201, private.text
    assert private.json()["visibility"] == "private"


async def test_channel_names_are_unique_case_insensitively(
    world: World, client: httpx.AsyncClient
) -> None:
    alice, bob = await people(world, "alice", "bob")
    await new_conv(client, alice, "channel", [], name="General")
    assert code(await create(client, bob, "channel", [], name="general")) == (409, "name_taken")
    taken = await create(client, bob, "channel", [], name=" GENERAL ", visibility="private")
    assert code(taken) == (409, "name_taken")

    other = await new_conv(client, bob, "channel", [], name="random")
    rename = await client.patch(
        f"{API}/conversations/{other}", json={"name": "gEnErAl"}, headers=bob.headers
    )
    assert code(rename) == (409, "name_taken")
    assert (await get_conv(client, bob, other)).json()["name"] == "random"
    # Renaming a channel to a new spelling of its own name is fine.
    own = await client.patch(
        f"{API}/conversations/{other}", json={"name": "Random"}, headers=bob.headers
    )
    assert own.status_code == 200, own.text
    assert own.json()["name"] == "Random"


# -- the conversation list --------------------------------------------------------------------


async def test_list_shows_counts_last_message_and_dm_peer(
    world: World, client: httpx.AsyncClient
) -> None:
    world.ctx.clock = StepClock()
    alice, bob = await people(world, "alice", "bob")
    dm = await new_conv(client, bob, "dm", [alice.id])
    channel = await new_conv(client, alice, "channel", [bob.id], name="team")
    quiet = await new_conv(client, alice, "group", [bob.id])
    for i in range(5):  # many events, but none recent: it must not sort first
        await client.patch(
            f"{API}/conversations/{quiet}", json={"topic": f"t{i}"}, headers=alice.headers
        )
    await send(client, bob, channel, "morning")
    await send(client, bob, channel, "hey @alice look")
    await send(client, bob, dm, "psst")
    await send(client, alice, dm, "yes?")  # one's own messages are never unread

    listed = await client.get(f"{API}/conversations", headers=alice.headers)
    assert listed.status_code == 200
    by_id = {c["id"]: c for c in listed.json()["conversations"]}
    assert [c["id"] for c in listed.json()["conversations"]] == [dm, channel, quiet]
    assert (by_id[dm]["unread_count"], by_id[dm]["mention_count"]) == (1, 0)
    assert by_id[dm]["last_message"]["text"] == "yes?"
    assert by_id[dm]["dm_peer_id"] == bob.id
    assert (by_id[channel]["unread_count"], by_id[channel]["mention_count"]) == (2, 1)
    assert by_id[channel]["last_message"]["text"] == "hey @alice look"
    assert by_id[channel]["dm_peer_id"] is None

    bobs = {
        c["id"]: c
        for c in (await client.get(f"{API}/conversations", headers=bob.headers)).json()[
            "conversations"
        ]
    }
    assert bobs[dm]["dm_peer_id"] == alice.id
    assert bobs[dm]["unread_count"] == 1
    assert bobs[channel]["unread_count"] == 0
    assert (bobs[quiet]["unread_count"], bobs[quiet]["last_message"]) == (0, None)

    await send(client, alice, channel, "back to work")
    listed = await client.get(f"{API}/conversations", headers=alice.headers)
    assert [c["id"] for c in listed.json()["conversations"]] == [channel, dm, quiet]


# -- browsing, joining, leaving ---------------------------------------------------------------


async def test_browse_public_channels_and_join(world: World, client: httpx.AsyncClient) -> None:
    alice, bob = await people(world, "alice", "bob")
    beta = await new_conv(client, alice, "channel", [], name="beta")
    alpha = await new_conv(client, alice, "channel", [], name="Alpha")
    secret = await new_conv(client, alice, "channel", [], name="secret", visibility="private")
    await new_conv(client, alice, "group", [bob.id], name="not a channel")

    browse = await client.get(f"{API}/channels", headers=bob.headers)
    assert browse.status_code == 200
    assert [(c["id"], c["joined"]) for c in browse.json()["channels"]] == [
        (alpha, False),
        (beta, False),
    ]
    page = await client.get(f"{API}/channels", params={"after": "alpha"}, headers=bob.headers)
    assert [c["id"] for c in page.json()["channels"]] == [beta]

    joined = await client.post(f"{API}/conversations/{beta}/join", headers=bob.headers)
    assert joined.status_code == 200, joined.text
    assert joined.json()["my_role"] == "member"
    again = await client.post(f"{API}/conversations/{beta}/join", headers=bob.headers)
    assert again.status_code == 200
    assert (await roles(client, bob, beta)) == {alice.id: "owner", bob.id: "member"}
    browse = await client.get(f"{API}/channels", headers=bob.headers)
    assert [(c["id"], c["joined"]) for c in browse.json()["channels"]] == [
        (alpha, False),
        (beta, True),
    ]

    private = await client.post(f"{API}/conversations/{secret}/join", headers=bob.headers)
    assert code(private) == (404, "not_found")
    assert bob.id not in await roles(client, alice, secret)


async def test_leave(world: World, client: httpx.AsyncClient) -> None:
    alice, bob = await people(world, "alice", "bob")
    channel = await new_conv(client, alice, "channel", [bob.id], name="lobby")
    group = await new_conv(client, alice, "group", [bob.id])
    dm = await new_conv(client, alice, "dm", [bob.id])

    for conv in (channel, group):
        resp = await client.post(f"{API}/conversations/{conv}/leave", headers=bob.headers)
        assert resp.status_code == 204, resp.text
        assert bob.id not in await roles(client, alice, conv)
    # A public channel stays visible to a former member; a group does not.
    after_channel = await get_conv(client, bob, channel)
    assert after_channel.status_code == 200
    assert after_channel.json()["my_role"] is None
    assert code(await get_conv(client, bob, group)) == (404, "not_found")
    listed = await client.get(f"{API}/conversations", headers=bob.headers)
    assert [c["id"] for c in listed.json()["conversations"]] == [dm]

    leave_dm = await client.post(f"{API}/conversations/{dm}/leave", headers=bob.headers)
    assert code(leave_dm) == (403, "forbidden")
    again = await client.post(f"{API}/conversations/{channel}/leave", headers=bob.headers)
    assert code(again) == (403, "forbidden")


async def test_last_owner_cannot_leave_while_others_remain(
    world: World, client: httpx.AsyncClient
) -> None:
    alice, bob = await people(world, "alice", "bob")
    group = await new_conv(client, alice, "group", [bob.id])
    blocked = await client.post(f"{API}/conversations/{group}/leave", headers=alice.headers)
    assert code(blocked) == (409, "last_owner")
    assert alice.id in await roles(client, bob, group)

    assert (await set_role(client, alice, group, bob, "owner")).status_code == 200
    left = await client.post(f"{API}/conversations/{group}/leave", headers=alice.headers)
    assert left.status_code == 204
    assert await roles(client, bob, group) == {bob.id: "owner"}

    solo = await new_conv(client, alice, "channel", [], name="solo")
    alone = await client.post(f"{API}/conversations/{solo}/leave", headers=alice.headers)
    assert alone.status_code == 204


# -- members and roles ------------------------------------------------------------------------


async def test_add_and_remove_members(world: World, client: httpx.AsyncClient) -> None:
    alice, bob, carol = await people(world, "alice", "bob", "carol")
    conv = await new_conv(client, alice, "channel", [bob.id], name="crew", visibility="private")

    added = await client.post(
        f"{API}/conversations/{conv}/members", json={"user_ids": [carol.id]}, headers=bob.headers
    )
    assert added.status_code == 200, added.text
    assert [(m["user_id"], m["role"]) for m in added.json()["members"]] == [(carol.id, "member")]
    again = await client.post(
        f"{API}/conversations/{conv}/members",
        json={"user_ids": [carol.id, bob.id]},
        headers=alice.headers,
    )
    assert again.status_code == 200
    assert again.json()["members"] == []
    assert (await get_conv(client, carol, conv)).status_code == 200

    assert code(await remove(client, bob, conv, carol)) == (403, "forbidden")
    assert carol.id in await roles(client, alice, conv)
    assert (await set_role(client, alice, conv, bob, "moderator")).status_code == 200
    removed = await remove(client, bob, conv, carol)
    assert removed.status_code == 204, removed.text
    assert carol.id not in await roles(client, alice, conv)
    assert code(await get_conv(client, carol, conv)) == (404, "not_found")
    assert code(await remove(client, bob, conv, carol)) == (404, "not_found")


async def test_only_owners_remove_owners(world: World, client: httpx.AsyncClient) -> None:
    alice, bob, dave = await people(world, "alice", "bob", "dave")
    conv = await new_conv(client, alice, "group", [bob.id, dave.id])
    assert (await set_role(client, alice, conv, bob, "moderator")).status_code == 200
    assert (await set_role(client, alice, conv, dave, "owner")).status_code == 200

    assert code(await remove(client, bob, conv, dave)) == (403, "forbidden")
    assert code(await remove(client, bob, conv, alice)) == (403, "forbidden")
    assert (await roles(client, alice, conv))[dave.id] == "owner"
    assert (await remove(client, alice, conv, dave)).status_code == 204
    assert await roles(client, alice, conv) == {alice.id: "owner", bob.id: "moderator"}


async def test_only_owners_change_roles_and_the_last_owner_stays(
    world: World, client: httpx.AsyncClient
) -> None:
    alice, bob, carol, dave = await people(world, "alice", "bob", "carol", "dave")
    conv = await new_conv(client, alice, "channel", [bob.id, carol.id], name="roles")
    promoted = await set_role(client, alice, conv, bob, "moderator")
    assert promoted.status_code == 200, promoted.text
    assert (promoted.json()["user_id"], promoted.json()["role"]) == (bob.id, "moderator")

    assert code(await set_role(client, bob, conv, carol, "moderator")) == (403, "forbidden")
    assert code(await set_role(client, carol, conv, carol, "owner")) == (403, "forbidden")
    assert code(await set_role(client, alice, conv, alice, "member")) == (409, "last_owner")
    assert code(await set_role(client, alice, conv, dave, "member")) == (404, "not_found")
    assert await roles(client, alice, conv) == {
        alice.id: "owner",
        bob.id: "moderator",
        carol.id: "member",
    }

    assert (await set_role(client, alice, conv, carol, "owner")).status_code == 200
    demoted = await set_role(client, carol, conv, alice, "member")
    assert demoted.status_code == 200, demoted.text
    assert (await roles(client, bob, conv))[alice.id] == "member"
    assert code(await set_role(client, alice, conv, bob, "member")) == (403, "forbidden")


# -- settings and archive ---------------------------------------------------------------------


async def test_update_name_and_topic(world: World, client: httpx.AsyncClient) -> None:
    alice, bob = await people(world, "alice", "bob")
    group = await new_conv(client, alice, "group", [bob.id])
    resp = await client.patch(
        f"{API}/conversations/{group}", json={"name": "Lunch", "topic": "noon"}, headers=bob.headers
    )
    assert resp.status_code == 200, resp.text
    fetched = (await get_conv(client, alice, group)).json()
    assert (fetched["name"], fetched["topic"]) == ("Lunch", "noon")

    channel = await new_conv(client, alice, "channel", [bob.id], name="news", topic="old")
    denied = await client.patch(
        f"{API}/conversations/{channel}", json={"topic": "hijacked"}, headers=bob.headers
    )
    assert code(denied) == (403, "forbidden")
    assert (await get_conv(client, bob, channel)).json()["topic"] == "old"

    assert (await set_role(client, alice, channel, bob, "moderator")).status_code == 200
    ok = await client.patch(
        f"{API}/conversations/{channel}", json={"topic": "fresh"}, headers=bob.headers
    )
    assert ok.status_code == 200, ok.text
    fetched = (await get_conv(client, alice, channel)).json()
    assert (fetched["name"], fetched["topic"]) == ("news", "fresh")

    dm = await new_conv(client, alice, "dm", [bob.id])
    named_dm = await client.patch(
        f"{API}/conversations/{dm}", json={"name": "us"}, headers=alice.headers
    )
    assert code(named_dm) == (403, "forbidden")


async def test_archive_makes_read_only_and_unarchive_restores(
    world: World, client: httpx.AsyncClient
) -> None:
    alice, bob = await people(world, "alice", "bob")
    conv = await new_conv(client, alice, "channel", [bob.id], name="project")
    first = await send(client, bob, conv, "before")

    denied = await client.post(f"{API}/conversations/{conv}/archive", headers=bob.headers)
    assert code(denied) == (403, "forbidden")
    archived = await client.post(f"{API}/conversations/{conv}/archive", headers=alice.headers)
    assert archived.status_code == 200, archived.text
    assert archived.json()["archived"] is True

    for who in (alice, bob):
        blocked = await client.post(
            f"{API}/conversations/{conv}/messages",
            json={"client_msg_id": f"late-{who.username}", "text": "after"},
            headers=who.headers,
        )
        assert code(blocked) == (409, "conversation_archived")
    reacting = await client.put(f"{API}/messages/{first['id']}/reactions/+1", headers=bob.headers)
    assert code(reacting) == (409, "conversation_archived")
    renaming = await client.patch(
        f"{API}/conversations/{conv}", json={"topic": "x"}, headers=alice.headers
    )
    assert code(renaming) == (409, "conversation_archived")
    history = await client.get(f"{API}/conversations/{conv}/messages", headers=bob.headers)
    assert [m["text"] for m in history.json()["messages"]] == ["before"]
    browse = await client.get(f"{API}/channels", headers=bob.headers)
    assert browse.json()["channels"] == []

    restored = await client.post(f"{API}/conversations/{conv}/unarchive", headers=alice.headers)
    assert restored.status_code == 200
    assert restored.json()["archived"] is False
    await send(client, bob, conv, "after")
    history = await client.get(f"{API}/conversations/{conv}/messages", headers=bob.headers)
    assert [m["text"] for m in history.json()["messages"]] == ["before", "after"]


# -- read markers -----------------------------------------------------------------------------


async def mark_read(client: httpx.AsyncClient, who: Person, conv: str, seq: int) -> int:
    resp = await client.post(
        f"{API}/conversations/{conv}/read", json={"seq": seq}, headers=who.headers
    )
    assert resp.status_code == 200, resp.text
    return int(resp.json()["last_read_seq"])


async def test_read_marker_moves_forward_only_and_clamps(
    world: World, client: httpx.AsyncClient
) -> None:
    alice, bob = await people(world, "alice", "bob")
    conv = await new_conv(client, bob, "group", [alice.id])
    sent = [await send(client, bob, conv, f"m{i}") for i in range(3)]
    assert (await get_conv(client, alice, conv)).json()["unread_count"] == 3

    assert await mark_read(client, alice, conv, sent[1]["seq"]) == sent[1]["seq"]
    assert (await get_conv(client, alice, conv)).json()["unread_count"] == 1
    assert await mark_read(client, alice, conv, sent[0]["seq"]) == sent[1]["seq"]
    summary = (await get_conv(client, alice, conv)).json()
    assert (summary["last_read_seq"], summary["unread_count"]) == (sent[1]["seq"], 1)

    newest = summary["last_seq"]
    assert await mark_read(client, alice, conv, 10**12) == newest
    summary = (await get_conv(client, alice, conv)).json()
    assert (summary["last_read_seq"], summary["unread_count"]) == (newest, 0)


async def test_unread_counts_agree_across_sessions(world: World, client: httpx.AsyncClient) -> None:
    alice, bob = await people(world, "alice", "bob")
    phone = {"Authorization": f"Bearer {await world.login(alice.username)}"}
    conv = await new_conv(client, bob, "channel", [alice.id], name="two-devices")
    await send(client, bob, conv, "one @alice")
    last = await send(client, bob, conv, "two")

    async def counts(headers: dict[str, str]) -> tuple[int, int, int]:
        resp = await client.get(f"{API}/conversations", headers=headers)
        (c,) = resp.json()["conversations"]
        return c["unread_count"], c["mention_count"], c["last_read_seq"]

    assert await counts(alice.headers) == await counts(phone) == (2, 1, 0)
    resp = await client.post(
        f"{API}/conversations/{conv}/read", json={"seq": last["seq"]}, headers=phone
    )
    assert resp.status_code == 200
    assert await counts(alice.headers) == await counts(phone) == (0, 0, last["seq"])


async def test_members_listing_shows_who_has_seen_what(
    world: World, client: httpx.AsyncClient
) -> None:
    alice, bob, carol = await people(world, "alice", "bob", "carol")
    conv = await new_conv(client, alice, "group", [bob.id, carol.id])
    first = await send(client, alice, conv, "first")
    second = await send(client, alice, conv, "second")
    await mark_read(client, bob, conv, first["seq"])
    await mark_read(client, carol, conv, second["seq"])

    resp = await client.get(f"{API}/conversations/{conv}/members", headers=alice.headers)
    seen = {m["user_id"]: m["last_read_seq"] for m in resp.json()["members"]}
    assert seen[bob.id] == first["seq"]
    assert seen[carol.id] == second["seq"]
    seen_by = sorted(uid for uid, s in seen.items() if s >= second["seq"])
    assert seen_by == [carol.id]
