"""Messages, history paging, threads, edits, recall and reactions through the SDK."""

from __future__ import annotations

import pytest

from enclave_client import Conflict, Forbidden, Reaction, ValidationFailed
from tests.sdk.conftest import People, Someone


async def _pair(people: People) -> tuple[Someone, Someone, str]:
    alice = await people.add("alice")
    bob = await people.add("bob")
    dm = await alice.sdk.create_conversation("dm", [bob.id])
    return alice, bob, dm.id


async def test_send_and_read_history(people: People) -> None:
    alice, bob, conv = await _pair(people)
    sent = [await alice.sdk.send_message(conv, f"m{i}") for i in range(5)]
    assert all(s.created for s in sent)
    first = sent[0].message
    assert (first.conversation_id, first.sender_id, first.text) == (conv, alice.id, "m0")
    assert len(first.client_msg_id) == 32  # a generated uuid4 hex
    assert len({s.message.client_msg_id for s in sent}) == 5
    seqs = [s.message.seq for s in sent]
    assert seqs == sorted(seqs)

    assert [m.text for m in await bob.sdk.messages(conv)] == ["m0", "m1", "m2", "m3", "m4"]
    assert [m.text for m in await bob.sdk.messages(conv, limit=2)] == ["m3", "m4"]
    after = await bob.sdk.messages(conv, after_seq=seqs[1])
    assert [m.text for m in after] == ["m2", "m3", "m4"]
    before = await bob.sdk.messages(conv, before_seq=seqs[3], limit=2)
    assert [m.text for m in before] == ["m1", "m2"]
    assert await bob.sdk.get_message(first.id) == first


async def test_mentions_are_resolved(people: People) -> None:
    alice, bob, conv = await _pair(people)
    sent = await alice.sdk.send_message(conv, "hi @bob and @nobody")
    assert sent.message.mentions == (bob.id,)


async def test_sending_again_with_the_same_client_msg_id_returns_the_original(
    people: People,
) -> None:
    alice, bob, conv = await _pair(people)
    first = await alice.sdk.send_message(conv, "once", client_msg_id="draft-42")
    again = await alice.sdk.send_message(conv, "once", client_msg_id="draft-42")
    assert first.created
    assert not again.created
    assert again.message == first.message
    assert [m.text for m in await bob.sdk.messages(conv)] == ["once"]

    other = await alice.sdk.create_conversation("group", [bob.id], name="Elsewhere")
    with pytest.raises(Conflict) as reused:
        await alice.sdk.send_message(other.id, "once", client_msg_id="draft-42")
    assert reused.value.code == "idempotency_conflict"


async def test_iter_messages_pages_through_all_history_in_order(people: People) -> None:
    alice, bob, conv = await _pair(people)
    texts = [f"message {i}" for i in range(230)]
    for text in texts:
        await alice.sdk.send_message(conv, text)

    every = [m async for m in bob.sdk.iter_messages(conv)]
    assert [m.text for m in every] == texts
    seqs = [m.seq for m in every]
    assert seqs == sorted(set(seqs))

    # The server caps pages at 200: a larger page_size must still reach the end.
    assert [m.text async for m in bob.sdk.iter_messages(conv, page_size=1000)] == texts
    tail = [m.text async for m in bob.sdk.iter_messages(conv, after_seq=seqs[99], page_size=7)]
    assert tail == texts[100:]
    assert [m async for m in bob.sdk.iter_messages(conv, after_seq=seqs[-1])] == []


async def test_threads_and_replies(people: People) -> None:
    alice, bob, conv = await _pair(people)
    root = (await alice.sdk.send_message(conv, "lunch?")).message
    r1 = (await bob.sdk.send_message(conv, "yes", thread_root_id=root.id)).message
    r2 = (await alice.sdk.send_message(conv, "noon", thread_root_id=root.id)).message
    await alice.sdk.send_message(conv, "unrelated")
    assert r1.thread_root_id == root.id

    thread = await bob.sdk.thread(root.id)
    assert thread.root.id == root.id
    assert thread.root.reply_count == 2
    assert thread.root.last_reply_at == r2.created_at
    assert [m.text for m in thread.replies] == ["yes", "noon"]
    assert [m.id for m in (await bob.sdk.thread(root.id, after_seq=r1.seq)).replies] == [r2.id]
    assert [m.id for m in (await bob.sdk.thread(root.id, limit=1)).replies] == [r1.id]

    top_level = await bob.sdk.messages(conv, include_replies=False)
    assert [m.text for m in top_level] == ["lunch?", "unrelated"]
    everything = await bob.sdk.messages(conv)
    assert [m.text for m in everything] == ["lunch?", "yes", "noon", "unrelated"]
    only_top = [m.text async for m in bob.sdk.iter_messages(conv, include_replies=False)]
    assert only_top == ["lunch?", "unrelated"]

    with pytest.raises(ValidationFailed) as nested:
        await bob.sdk.send_message(conv, "deeper", thread_root_id=r1.id)
    assert nested.value.code == "invalid_thread_root"
    with pytest.raises(ValidationFailed):
        await bob.sdk.thread(r1.id)


async def test_edit_keeps_versions_and_recall_hides_text(people: People) -> None:
    alice, bob, conv = await _pair(people)
    msg = (await alice.sdk.send_message(conv, "frist")).message
    edited = await alice.sdk.edit_message(msg.id, "first")
    assert (edited.id, edited.text) == (msg.id, "first")
    assert edited.edited_at is not None
    await alice.sdk.edit_message(msg.id, "first!")
    versions = await bob.sdk.message_versions(msg.id)
    assert [v.text for v in versions] == ["frist", "first"]
    assert [v.version for v in versions] == sorted(v.version for v in versions)
    assert versions[0].created_at == msg.created_at
    assert (await bob.sdk.get_message(msg.id)).text == "first!"
    with pytest.raises(Forbidden):
        await bob.sdk.edit_message(msg.id, "bob was here")

    recalled = await alice.sdk.recall_message(msg.id)
    assert recalled.recalled
    assert recalled.text is None
    assert recalled.recalled_at is not None
    seen = await bob.sdk.get_message(msg.id)
    assert (seen.recalled, seen.text) == (True, None)
    assert await bob.sdk.message_versions(msg.id) == []
    with pytest.raises(Conflict) as gone:
        await alice.sdk.edit_message(msg.id, "undo")
    assert gone.value.code == "message_recalled"


async def test_reactions(people: People) -> None:
    alice, bob, conv = await _pair(people)
    msg = (await alice.sdk.send_message(conv, "ship it")).message

    assert await alice.sdk.add_reaction(msg.id, "👍") == [Reaction("👍", 1, (alice.id,))]
    both = await bob.sdk.add_reaction(msg.id, "👍")
    assert [(r.emoji, r.count, set(r.user_ids)) for r in both] == [("👍", 2, {alice.id, bob.id})]
    assert await bob.sdk.add_reaction(msg.id, "👍") == both  # reacting twice changes nothing

    # Characters with a meaning in URLs must arrive as the emoji itself.
    for odd in ("100%", "a?b", "#1", ".."):
        await bob.sdk.add_reaction(msg.id, odd)
    emoji = {r.emoji for r in await alice.sdk.reactions(msg.id)}
    assert emoji == {"👍", "100%", "a?b", "#1", ".."}

    left = await alice.sdk.remove_reaction(msg.id, "👍")
    assert [r for r in left if r.emoji == "👍"] == [Reaction("👍", 1, (bob.id,))]
    assert (await bob.sdk.get_message(msg.id)).reactions == tuple(left)

    with pytest.raises(ValidationFailed) as bad:
        await bob.sdk.add_reaction(msg.id, "two words")
    assert bad.value.code == "invalid_emoji"
