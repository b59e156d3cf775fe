"""Conversations, channels, membership and read markers through the SDK."""

from __future__ import annotations

import time

import pytest

from enclave.services.context import Context
from enclave_client import Conflict, Forbidden, NotFound, ValidationFailed
from tests.sdk.conftest import People


async def test_dms_and_groups(people: People) -> None:
    alice = await people.add("alice")
    bob = await people.add("bob")
    carol = await people.add("carol")

    dm = await alice.sdk.create_conversation("dm", [bob.id])
    assert (dm.kind, dm.visibility, dm.name, dm.my_role) == ("dm", "private", None, "member")
    assert dm.dm_peer_id == bob.id
    assert dm.created_by == alice.id
    same = await bob.sdk.create_conversation("dm", [alice.id])
    assert same.id == dm.id
    assert same.dm_peer_id == alice.id

    group = await alice.sdk.create_conversation(
        "group", [bob.id, carol.id], name="Trio", topic="plans"
    )
    assert (group.kind, group.name, group.topic) == ("group", "Trio", "plans")
    assert group.my_role == "owner"
    assert (await bob.sdk.get_conversation(group.id)).my_role == "member"

    with pytest.raises(ValidationFailed) as bad:
        await alice.sdk.create_conversation("dm", [bob.id, carol.id])
    assert bad.value.code == "invalid_members"


async def test_listing_shows_unread_counts_and_mark_read_clears_them(people: People) -> None:
    alice = await people.add("alice")
    bob = await people.add("bob")
    dm = await alice.sdk.create_conversation("dm", [bob.id])
    group = await alice.sdk.create_conversation("group", [bob.id], name="Pair")
    await alice.sdk.send_message(group.id, "hello @bob")
    await alice.sdk.send_message(group.id, "anyone?")

    listed = {c.id: c for c in await bob.sdk.list_conversations()}
    assert set(listed) == {dm.id, group.id}
    summary = listed[group.id]
    assert (summary.unread_count, summary.mention_count) == (2, 1)
    assert summary.last_message is not None
    assert summary.last_message.text == "anyone?"
    assert listed[dm.id].last_message is None

    newest = (await bob.sdk.get_conversation(group.id)).last_seq
    assert await bob.sdk.mark_read(group.id, newest) == newest
    after = await bob.sdk.get_conversation(group.id)
    assert (after.unread_count, after.mention_count, after.last_read_seq) == (0, 0, newest)
    assert await bob.sdk.mark_read(group.id, 0) == newest  # the marker never moves back
    members = {m.user_id: m for m in await alice.sdk.members(group.id)}
    assert members[bob.id].last_read_seq == newest


class TickingClock:
    """Wall time, but never the same millisecond twice: "newer" is always visible."""

    def __init__(self) -> None:
        self.last = 0

    def now_ms(self) -> int:
        self.last = max(self.last + 1, time.time_ns() // 1_000_000)
        return self.last


async def test_listing_puts_the_most_recently_active_conversation_first(
    people: People, ctx: Context
) -> None:
    ctx.clock = TickingClock()
    alice = await people.add("alice")
    bob = await people.add("bob")
    busy = await alice.sdk.create_conversation("group", [bob.id], name="Busy")
    for i in range(5):
        await alice.sdk.send_message(busy.id, f"old {i}")
    quiet = await alice.sdk.create_conversation("dm", [bob.id])
    await alice.sdk.send_message(quiet.id, "just now")
    assert [c.id for c in await bob.sdk.list_conversations()] == [quiet.id, busy.id]


async def test_update_archive_and_unarchive_a_channel(people: People) -> None:
    alice = await people.add("alice")
    bob = await people.add("bob")
    channel = await alice.sdk.create_conversation("channel", [], name="general")
    assert (channel.kind, channel.visibility, channel.my_role) == ("channel", "public", "owner")

    topic = await alice.sdk.update_conversation(channel.id, topic="news")
    assert (topic.name, topic.topic) == ("general", "news")
    renamed = await alice.sdk.update_conversation(channel.id, name="lobby")
    assert (renamed.name, renamed.topic) == ("lobby", "news")
    assert (await bob.sdk.get_conversation(channel.id)).name == "lobby"

    await bob.sdk.join(channel.id)
    with pytest.raises(Forbidden):
        await bob.sdk.update_conversation(channel.id, topic="mine now")
    with pytest.raises(Conflict) as taken:
        await bob.sdk.create_conversation("channel", [], name="lobby")
    assert taken.value.code == "name_taken"

    archived = await alice.sdk.archive(channel.id)
    assert archived.archived
    with pytest.raises(Conflict) as read_only:
        await bob.sdk.send_message(channel.id, "hello?")
    assert (read_only.value.code, read_only.value.status) == ("conversation_archived", 409)
    unarchived = await alice.sdk.unarchive(channel.id)
    assert not unarchived.archived
    sent = await bob.sdk.send_message(channel.id, "hello!")
    assert sent.created


async def test_browse_join_and_leave_channels(people: People) -> None:
    alice = await people.add("alice")
    bob = await people.add("bob")
    beta = await alice.sdk.create_conversation("channel", [], name="beta", topic="b")
    alpha = await alice.sdk.create_conversation("channel", [], name="alpha")
    await alice.sdk.create_conversation("channel", [], name="secret", visibility="private")

    found = await bob.sdk.browse_channels()
    assert [(c.id, c.name, c.joined) for c in found] == [
        (alpha.id, "alpha", False),
        (beta.id, "beta", False),
    ]
    assert found[1].topic == "b"
    assert [c.name for c in await bob.sdk.browse_channels(limit=1)] == ["alpha"]
    assert [c.name for c in await bob.sdk.browse_channels(after="alpha")] == ["beta"]

    joined = await bob.sdk.join(beta.id)
    assert (joined.id, joined.my_role) == (beta.id, "member")
    assert [c.joined for c in await bob.sdk.browse_channels()] == [False, True]
    roles = {m.user_id: m.role for m in await alice.sdk.members(beta.id)}
    assert roles == {alice.id: "owner", bob.id: "member"}

    await bob.sdk.leave(beta.id)
    assert (await bob.sdk.get_conversation(beta.id)).my_role is None
    assert [m.user_id for m in await alice.sdk.members(beta.id)] == [alice.id]
    assert beta.id not in [c.id for c in await bob.sdk.list_conversations()]


async def test_add_remove_and_promote_members(people: People) -> None:
    alice = await people.add("alice")
    bob = await people.add("bob")
    carol = await people.add("carol")
    group = await alice.sdk.create_conversation("group", [bob.id], name="Team")

    added = await alice.sdk.add_members(group.id, [carol.id, bob.id])
    assert [(m.user_id, m.role) for m in added] == [(carol.id, "member")]
    everyone = await alice.sdk.members(group.id)
    ids = sorted([alice.id, bob.id, carol.id])
    assert [m.user_id for m in everyone] == ids
    first = await alice.sdk.members(group.id, limit=1)
    rest = await alice.sdk.members(group.id, after=first[0].user_id)
    assert [m.user_id for m in first + rest] == ids

    promoted = await alice.sdk.set_member_role(group.id, bob.id, "moderator")
    assert (promoted.user_id, promoted.role) == (bob.id, "moderator")
    assert {m.user_id: m.role for m in await carol.sdk.members(group.id)}[bob.id] == "moderator"

    await bob.sdk.remove_member(group.id, carol.id)
    assert carol.id not in [m.user_id for m in await alice.sdk.members(group.id)]
    with pytest.raises(NotFound):
        await carol.sdk.get_conversation(group.id)

    with pytest.raises(Conflict) as last_owner:
        await alice.sdk.leave(group.id)
    assert last_owner.value.code == "last_owner"
    with pytest.raises(Conflict):
        await alice.sdk.set_member_role(group.id, alice.id, "member")
    with pytest.raises(Forbidden):
        await bob.sdk.set_member_role(group.id, bob.id, "owner")
