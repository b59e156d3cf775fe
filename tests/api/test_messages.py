"""Messages through the REST API: idempotent send, history, edits, recall, reactions, threads
and mentions."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import httpx

from tests.api.helpers import API, code, new_conv, people, post, send
from tests.conftest import Person, World


async def history(
    client: httpx.AsyncClient, who: Person, conv: str, **params: Any
) -> list[dict[str, Any]]:
    resp = await client.get(
        f"{API}/conversations/{conv}/messages", params=params, headers=who.headers
    )
    assert resp.status_code == 200, resp.text
    found: list[dict[str, Any]] = resp.json()["messages"]
    return found


async def get_message(client: httpx.AsyncClient, who: Person, msg: str) -> dict[str, Any]:
    resp = await client.get(f"{API}/messages/{msg}", headers=who.headers)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def counts(client: httpx.AsyncClient, who: Person, conv: str) -> tuple[int, int]:
    resp = await client.get(f"{API}/conversations/{conv}", headers=who.headers)
    assert resp.status_code == 200, resp.text
    return resp.json()["unread_count"], resp.json()["mention_count"]


# -- sending ----------------------------------------------------------------------------------


async def test_send_and_retry_returns_the_original(world: World, client: httpx.AsyncClient) -> None:
    alice, bob = await people(world, "alice", "bob")
    conv = await new_conv(client, alice, "group", [bob.id])
    other = await new_conv(client, alice, "dm", [bob.id])

    first = await post(client, alice, conv, "hello", cmid="key-1")
    assert first.status_code == 201, first.text
    msg = first.json()
    assert (msg["text"], msg["sender_id"], msg["client_msg_id"]) == ("hello", alice.id, "key-1")
    assert (msg["recalled"], msg["edited_at"], msg["reply_count"]) == (False, None, 0)

    retry = await post(client, alice, conv, "hello", cmid="key-1")
    assert retry.status_code == 200, retry.text
    assert retry.json() == msg
    # A retry whose text changed still answers with the original: the key names the message.
    changed = await post(client, alice, conv, "hello again", cmid="key-1")
    assert changed.status_code == 200
    assert changed.json()["id"] == msg["id"]
    assert changed.json()["text"] == "hello"

    elsewhere = await post(client, alice, other, "hello", cmid="key-1")
    assert code(elsewhere) == (409, "idempotency_conflict")
    assert await history(client, bob, other) == []
    # Keys belong to their sender: bob may use the same one.
    bobs = await post(client, bob, conv, "hi", cmid="key-1")
    assert bobs.status_code == 201
    assert [m["text"] for m in await history(client, bob, conv)] == ["hello", "hi"]


async def test_concurrent_retries_create_one_message(
    world: World, client: httpx.AsyncClient
) -> None:
    alice, bob = await people(world, "alice", "bob")
    conv = await new_conv(client, alice, "group", [bob.id])
    results = await asyncio.gather(
        *(post(client, alice, conv, "only once", cmid="same-key") for _ in range(8))
    )
    assert sorted(r.status_code for r in results) == [200] * 7 + [201], [r.text for r in results]
    assert len({r.json()["id"] for r in results}) == 1
    assert [m["text"] for m in await history(client, bob, conv)] == ["only once"]
    assert await counts(client, bob, conv) == (1, 0)

    # The same key sent at once to two conversations lands in exactly one of them.
    other = await new_conv(client, alice, "dm", [bob.id])
    raced = await asyncio.gather(
        *(post(client, alice, c, "racing", cmid="race-key") for c in (conv, other) * 3)
    )
    assert sorted(r.status_code for r in raced) == [200, 200, 201, 409, 409, 409]
    assert {r.json()["error"]["code"] for r in raced if r.status_code == 409} == {
        "idempotency_conflict"
    }
    landed = [m for c in (conv, other) for m in await history(client, bob, c)]
    assert [m["text"] for m in landed].count("racing") == 1


async def test_a_visitor_of_a_public_channel_cannot_post(
    world: World, client: httpx.AsyncClient
) -> None:
    alice, bob = await people(world, "alice", "bob")
    conv = await new_conv(client, alice, "channel", [], name="open")
    assert code(await post(client, bob, conv, "drive-by")) == (403, "not_a_member")
    assert await history(client, bob, conv) == []


# -- history ----------------------------------------------------------------------------------


async def test_seq_increases_and_history_pages_in_ascending_order(
    world: World, client: httpx.AsyncClient
) -> None:
    alice, bob = await people(world, "alice", "bob")
    conv = await new_conv(client, alice, "group", [bob.id])
    sent = [await send(client, alice if i % 2 else bob, conv, f"m{i}") for i in range(7)]
    seqs = [m["seq"] for m in sent]
    assert all(a < b for a, b in itertools.pairwise(seqs))

    def texts(found: list[dict[str, Any]]) -> list[str]:
        return [m["text"] for m in found]

    assert texts(await history(client, bob, conv)) == [f"m{i}" for i in range(7)]
    assert texts(await history(client, bob, conv, limit=3)) == ["m4", "m5", "m6"]
    assert texts(await history(client, bob, conv, after_seq=seqs[1], limit=2)) == ["m2", "m3"]
    assert texts(await history(client, bob, conv, before_seq=seqs[5], limit=2)) == ["m3", "m4"]
    assert texts(await history(client, bob, conv, before_seq=seqs[2])) == ["m0", "m1"]
    between = await history(client, bob, conv, after_seq=seqs[1], before_seq=seqs[5])
    assert texts(between) == ["m2", "m3", "m4"]
    assert await history(client, bob, conv, after_seq=seqs[6]) == []

    # Paging forward from 0 in pages of 3 yields everything once, in order.
    seen: list[str] = []
    cursor = 0
    while page := await history(client, bob, conv, after_seq=cursor, limit=3):
        seen += texts(page)
        cursor = page[-1]["seq"]
    assert seen == [f"m{i}" for i in range(7)]


async def test_history_can_hide_thread_replies(world: World, client: httpx.AsyncClient) -> None:
    alice, bob = await people(world, "alice", "bob")
    conv = await new_conv(client, alice, "group", [bob.id])
    root = await send(client, alice, conv, "root")
    await send(client, bob, conv, "reply", root=root["id"])
    await send(client, alice, conv, "top")

    assert [m["text"] for m in await history(client, bob, conv)] == ["root", "reply", "top"]
    top_level = await history(client, bob, conv, include_replies="false")
    assert [m["text"] for m in top_level] == ["root", "top"]
    assert top_level[0]["reply_count"] == 1


# -- edits ------------------------------------------------------------------------------------


async def test_edit_keeps_earlier_versions(world: World, client: httpx.AsyncClient) -> None:
    alice, bob = await people(world, "alice", "bob")
    conv = await new_conv(client, alice, "group", [bob.id])
    msg = await send(client, alice, conv, "draft one")
    url = f"{API}/messages/{msg['id']}"

    for text in ("draft two", "final"):
        resp = await client.patch(url, json={"text": text}, headers=alice.headers)
        assert resp.status_code == 200, resp.text
        assert resp.json()["text"] == text
        assert resp.json()["edited_at"] is not None
    same = await client.patch(url, json={"text": "final"}, headers=alice.headers)
    assert same.status_code == 200

    fetched = await get_message(client, bob, msg["id"])
    assert (fetched["text"], fetched["seq"], fetched["id"]) == ("final", msg["seq"], msg["id"])
    versions = await client.get(f"{url}/versions", headers=bob.headers)
    assert versions.status_code == 200
    found = versions.json()["versions"]
    assert [v["text"] for v in found] == ["draft one", "draft two"]
    assert [v["version"] for v in found] == [1, 2]
    assert found[0]["created_at"] == msg["created_at"]

    fresh = await client.get(
        f"{API}/messages/{(await send(client, bob, conv, 'x'))['id']}/versions",
        headers=alice.headers,
    )
    assert fresh.json()["versions"] == []


async def test_concurrent_edits_each_keep_the_text_they_replaced(
    world: World, client: httpx.AsyncClient
) -> None:
    alice, bob = await people(world, "alice", "bob")
    conv = await new_conv(client, alice, "group", [bob.id])
    msg = await send(client, alice, conv, "v0")
    url = f"{API}/messages/{msg['id']}"
    edits = [f"v{i}" for i in range(1, 9)]
    results = await asyncio.gather(
        *(client.patch(url, json={"text": t}, headers=alice.headers) for t in edits)
    )
    assert [r.status_code for r in results] == [200] * len(edits)
    final = (await get_message(client, bob, msg["id"]))["text"]
    found = (await client.get(f"{url}/versions", headers=bob.headers)).json()["versions"]
    # Every edit replaced exactly the text before it: v0 first, each text once, no gaps.
    texts = [v["text"] for v in found]
    assert [v["version"] for v in found] == list(range(1, len(edits) + 1))
    assert texts[0] == "v0"
    assert sorted([*texts, final]) == sorted(["v0", *edits])


async def test_only_the_sender_edits_and_recalled_messages_stay_recalled(
    world: World, client: httpx.AsyncClient
) -> None:
    alice, bob = await people(world, "alice", "bob")
    conv = await new_conv(client, alice, "channel", [bob.id], name="edits")
    msg = await send(client, bob, conv, "bob wrote this")
    url = f"{API}/messages/{msg['id']}"

    # Not even the channel owner may put words in bob's mouth.
    assert code(await client.patch(url, json={"text": "x"}, headers=alice.headers)) == (
        403,
        "forbidden",
    )
    assert (await get_message(client, bob, msg["id"]))["text"] == "bob wrote this"

    assert (await client.delete(url, headers=bob.headers)).status_code == 200
    again = await client.patch(url, json={"text": "undo"}, headers=bob.headers)
    assert code(again) == (409, "message_recalled")
    fetched = await get_message(client, alice, msg["id"])
    assert (fetched["text"], fetched["recalled"]) == (None, True)


# -- recall -----------------------------------------------------------------------------------


async def test_recall_by_sender_and_by_moderator(world: World, client: httpx.AsyncClient) -> None:
    alice, bob, carol = await people(world, "alice", "bob", "carol")
    conv = await new_conv(client, alice, "channel", [bob.id, carol.id], name="recalls")
    own = await send(client, bob, conv, "oops")
    others = await send(client, bob, conv, "spam")
    keep = await send(client, alice, conv, "keep")

    recalled = await client.delete(f"{API}/messages/{own['id']}", headers=bob.headers)
    assert recalled.status_code == 200, recalled.text
    body = recalled.json()
    assert (body["id"], body["text"], body["recalled"]) == (own["id"], None, True)
    assert body["recalled_at"] is not None

    # A plain member cannot recall someone else's message.
    denied = await client.delete(f"{API}/messages/{keep['id']}", headers=carol.headers)
    assert code(denied) == (403, "forbidden")
    denied = await client.delete(f"{API}/messages/{others['id']}", headers=carol.headers)
    assert code(denied) == (403, "forbidden")

    promoted = await client.patch(
        f"{API}/conversations/{conv}/members/{carol.id}",
        json={"role": "moderator"},
        headers=alice.headers,
    )
    assert promoted.status_code == 200
    by_mod = await client.delete(f"{API}/messages/{others['id']}", headers=carol.headers)
    assert by_mod.status_code == 200, by_mod.text

    found = {m["id"]: m for m in await history(client, alice, conv)}
    assert [(found[m["id"]]["text"], found[m["id"]]["recalled"]) for m in (own, others, keep)] == [
        (None, True),
        (None, True),
        ("keep", False),
    ]


async def test_a_dm_peer_cannot_recall_your_messages(
    world: World, client: httpx.AsyncClient
) -> None:
    alice, bob = await people(world, "alice", "bob")
    dm = await new_conv(client, alice, "dm", [bob.id])
    msg = await send(client, alice, dm, "mine")
    denied = await client.delete(f"{API}/messages/{msg['id']}", headers=bob.headers)
    assert code(denied) == (403, "forbidden")
    assert (await get_message(client, bob, msg["id"]))["text"] == "mine"


# -- reactions --------------------------------------------------------------------------------


async def test_reactions_are_idempotent_and_counted(
    world: World, client: httpx.AsyncClient
) -> None:
    alice, bob = await people(world, "alice", "bob")
    conv = await new_conv(client, alice, "group", [bob.id])
    msg = await send(client, alice, conv, "react to me")
    url = f"{API}/messages/{msg['id']}/reactions"

    for who in (alice, bob, bob):
        resp = await client.put(f"{url}/👍", headers=who.headers)
        assert resp.status_code == 200, resp.text
    resp = await client.put(f"{url}/🎉", headers=bob.headers)
    assert resp.json()["reactions"] == [
        {"emoji": "👍", "count": 2, "user_ids": [alice.id, bob.id]},
        {"emoji": "🎉", "count": 1, "user_ids": [bob.id]},
    ]
    listed = await client.get(url, headers=alice.headers)
    assert listed.json() == resp.json()
    assert (await get_message(client, alice, msg["id"]))["reactions"] == resp.json()["reactions"]
    in_history = (await history(client, alice, conv))[0]
    assert in_history["reactions"] == resp.json()["reactions"]

    for _ in range(2):
        removed = await client.delete(f"{url}/👍", headers=alice.headers)
        assert removed.status_code == 200
        assert removed.json()["reactions"] == [
            {"emoji": "👍", "count": 1, "user_ids": [bob.id]},
            {"emoji": "🎉", "count": 1, "user_ids": [bob.id]},
        ]
    gone = await client.delete(f"{url}/🎉", headers=bob.headers)
    assert gone.json()["reactions"] == [{"emoji": "👍", "count": 1, "user_ids": [bob.id]}]


async def test_a_recalled_message_takes_no_reactions(
    world: World, client: httpx.AsyncClient
) -> None:
    alice, bob = await people(world, "alice", "bob")
    conv = await new_conv(client, alice, "group", [bob.id])
    msg = await send(client, alice, conv, "short-lived")
    assert (
        await client.put(f"{API}/messages/{msg['id']}/reactions/ok", headers=bob.headers)
    ).is_success
    assert (await client.delete(f"{API}/messages/{msg['id']}", headers=alice.headers)).is_success
    late = await client.put(f"{API}/messages/{msg['id']}/reactions/late", headers=bob.headers)
    assert code(late) == (409, "message_recalled")


async def test_a_visitor_of_a_public_channel_cannot_react(
    world: World, client: httpx.AsyncClient
) -> None:
    alice, bob = await people(world, "alice", "bob")
    conv = await new_conv(client, alice, "channel", [], name="square")
    msg = await send(client, alice, conv, "look")
    resp = await client.put(f"{API}/messages/{msg['id']}/reactions/eyes", headers=bob.headers)
    assert code(resp) == (403, "not_a_member")
    assert (await get_message(client, bob, msg["id"]))["reactions"] == []


# -- threads ----------------------------------------------------------------------------------


async def test_replies_form_a_thread(world: World, client: httpx.AsyncClient) -> None:
    alice, bob = await people(world, "alice", "bob")
    conv = await new_conv(client, alice, "group", [bob.id])
    root = await send(client, alice, conv, "question")
    assert (root["reply_count"], root["last_reply_at"]) == (0, None)
    first = await send(client, bob, conv, "answer 1", root=root["id"])
    await send(client, alice, conv, "unrelated")
    second = await send(client, alice, conv, "answer 2", root=root["id"])
    assert first["thread_root_id"] == second["thread_root_id"] == root["id"]

    updated = await get_message(client, bob, root["id"])
    assert (updated["reply_count"], updated["last_reply_at"]) == (2, second["created_at"])
    thread = await client.get(f"{API}/messages/{root['id']}/thread", headers=bob.headers)
    assert thread.status_code == 200
    assert thread.json()["root"]["id"] == root["id"]
    assert [m["text"] for m in thread.json()["replies"]] == ["answer 1", "answer 2"]
    paged = await client.get(
        f"{API}/messages/{root['id']}/thread",
        params={"after_seq": first["seq"]},
        headers=bob.headers,
    )
    assert [m["id"] for m in paged.json()["replies"]] == [second["id"]]


async def test_thread_roots_must_be_top_level_messages_of_the_conversation(
    world: World, client: httpx.AsyncClient
) -> None:
    alice, bob = await people(world, "alice", "bob")
    conv = await new_conv(client, alice, "group", [bob.id])
    other = await new_conv(client, alice, "dm", [bob.id])
    root = await send(client, alice, conv, "root")
    reply = await send(client, bob, conv, "reply", root=root["id"])
    foreign = await send(client, alice, other, "elsewhere")

    for bad_root in (reply["id"], foreign["id"], "a" * 26):
        resp = await post(client, bob, conv, "nested?", root=bad_root)
        assert code(resp) == (422, "invalid_thread_root")
    of_reply = await client.get(f"{API}/messages/{reply['id']}/thread", headers=bob.headers)
    assert code(of_reply) == (422, "invalid_thread_root")
    assert (await get_message(client, bob, root["id"]))["reply_count"] == 1
    assert [m["text"] for m in await history(client, bob, conv)] == ["root", "reply"]


# -- mentions and unread counts ---------------------------------------------------------------


async def test_mentions_resolve_only_members(world: World, client: httpx.AsyncClient) -> None:
    alice, bob, carol = await people(world, "alice", "bob", "carol")
    conv = await new_conv(client, alice, "channel", [bob.id], name="mentions")
    msg = await send(client, alice, conv, "@BOB and @carol and @nobody, see email@bob.example")
    assert msg["mentions"] == [bob.id]
    assert await counts(client, bob, conv) == (1, 1)
    # carol is not a member: she is not mentioned, and the channel is not in her list.
    listed = await client.get(f"{API}/conversations", headers=carol.headers)
    assert listed.json()["conversations"] == []


async def test_unread_and_mention_counts(world: World, client: httpx.AsyncClient) -> None:
    alice, bob = await people(world, "alice", "bob")
    conv = await new_conv(client, alice, "group", [bob.id])
    assert await counts(client, bob, conv) == (0, 0)
    await send(client, alice, conv, "one")
    mention = await send(client, alice, conv, "two @bob")
    root = await send(client, alice, conv, "three")
    await send(client, bob, conv, "bob's own reply", root=root["id"])
    assert await counts(client, bob, conv) == (3, 1)
    assert await counts(client, alice, conv) == (1, 0)

    # A recalled message is no longer unread, and its mention is gone.
    assert (
        await client.delete(f"{API}/messages/{mention['id']}", headers=alice.headers)
    ).is_success
    assert await counts(client, bob, conv) == (2, 0)

    resp = await client.post(
        f"{API}/conversations/{conv}/read", json={"seq": root["seq"]}, headers=bob.headers
    )
    assert resp.status_code == 200
    assert await counts(client, bob, conv) == (0, 0)
    await send(client, alice, conv, "four @bob")
    assert await counts(client, bob, conv) == (1, 1)
