"""Two people, two browser contexts: live messages, going offline and back, a server restart."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import expect

from tests.web.conftest import RECONNECT_TIMEOUT_MS, Org, Web
from tests.web.ui import (
    NOT_ONLINE,
    assert_each_once,
    conversation_item,
    message,
    open_conversation,
    send,
    status,
    unique,
)

pytestmark = [pytest.mark.web, pytest.mark.asyncio(loop_scope="session")]


async def test_two_people_exchange_messages_live(web: Web, org: Org) -> None:
    alice = await web.open(org.alice)
    bob = await web.open(org.bob)
    await open_conversation(alice.page, org.dm.id)
    await open_conversation(bob.page, org.dm.id)

    hello = unique("hello bob")
    await send(alice.page, hello)
    seen = message(bob.page, hello)
    await expect(seen).to_have_count(1)
    await expect(seen).to_have_attribute("data-sender", org.alice.id)

    reply = unique("hi alice")
    await send(bob.page, reply)
    await expect(message(alice.page, reply)).to_have_count(1)
    await expect(message(alice.page, reply)).to_have_attribute("data-sender", org.bob.id)

    again = unique("and again")
    await send(alice.page, again)
    for page in (alice.page, bob.page):
        await assert_each_once(page, [hello, reply, again])


async def test_list_shows_unread_count_and_preview_live(web: Web, org: Org) -> None:
    alice = await web.open(org.alice)
    bob = await web.open(org.bob)
    await open_conversation(alice.page, org.group.id)
    await open_conversation(bob.page, org.dm.id)  # bob is elsewhere when the group gets news

    first, second = unique("news one"), unique("news two")
    await send(alice.page, first)
    await send(alice.page, second)
    group = conversation_item(bob.page, org.group.id)
    await expect(group.get_by_test_id("unread-count")).to_have_text("2")
    await expect(group.get_by_test_id("last-message")).to_contain_text(second)

    await open_conversation(bob.page, org.group.id)
    await expect(message(bob.page, second)).to_have_count(1)
    await expect(group.get_by_test_id("unread-count")).to_have_count(0)


async def test_offline_and_back_misses_nothing_and_sends_what_was_typed(web: Web, org: Org) -> None:
    alice = await web.open(org.alice)
    bob = await web.open(org.bob)
    await open_conversation(alice.page, org.dm.id)
    await open_conversation(bob.page, org.dm.id)
    before = unique("before the drop")
    await send(alice.page, before)
    await expect(message(bob.page, before)).to_have_count(1)

    await bob.context.set_offline(True)
    await expect(status(bob.page)).to_have_attribute("data-state", NOT_ONLINE)
    await expect(status(bob.page)).to_be_visible()
    await expect(status(bob.page)).not_to_have_text("")

    while_away = [unique(f"while you were away {i}") for i in range(3)]
    for text in while_away:
        await send(alice.page, text)
    # The premise: bob really is cut off, so what he gets later comes through the resume.
    await expect(message(bob.page, while_away[-1])).to_have_count(0)

    typed_offline = unique("typed on the train")
    composer = bob.page.get_by_test_id("composer")
    await composer.fill(typed_offline)
    await composer.press("Enter")
    pending = message(bob.page, typed_offline)
    await expect(pending).to_have_count(1)
    await expect(pending).to_have_attribute("data-state", "pending")
    await expect(message(alice.page, typed_offline)).to_have_count(0)

    await bob.context.set_offline(False)
    await expect(status(bob.page)).to_have_attribute(
        "data-state", "online", timeout=RECONNECT_TIMEOUT_MS
    )
    await expect(pending).to_have_attribute("data-state", "sent", timeout=RECONNECT_TIMEOUT_MS)
    await expect(message(alice.page, typed_offline)).to_have_count(1)

    # One more each way: anything doubled by the resume would have arrived before these.
    after_a, after_b = unique("welcome back"), unique("thanks")
    await send(alice.page, after_a)
    await expect(message(bob.page, after_a)).to_have_count(1)
    await send(bob.page, after_b)
    await expect(message(alice.page, after_b)).to_have_count(1)

    await assert_each_once(bob.page, [before, *while_away, after_a, after_b])
    await assert_each_once(bob.page, [typed_offline])
    await assert_each_once(alice.page, [before, *while_away, after_a, after_b])
    await assert_each_once(alice.page, [typed_offline])


async def test_server_restart_is_survived_without_loss_or_doubles(web: Web, org: Org) -> None:
    alice = await web.open(org.alice)
    bob = await web.open(org.bob)
    await open_conversation(alice.page, org.dm.id)
    await open_conversation(bob.page, org.dm.id)
    before = unique("before the restart")
    await send(alice.page, before)
    await expect(message(bob.page, before)).to_have_count(1)

    port = org.server.port
    await asyncio.to_thread(org.server.stop)
    for page in (alice.page, bob.page):
        await expect(status(page)).to_have_attribute("data-state", NOT_ONLINE)
    typed_down = unique("sent while the server was down")
    composer = bob.page.get_by_test_id("composer")
    await composer.fill(typed_down)
    await composer.press("Enter")
    await expect(message(bob.page, typed_down)).to_have_attribute("data-state", "pending")

    await asyncio.to_thread(org.servers.start, port=port)  # same data dir, same address
    for page in (alice.page, bob.page):
        await expect(status(page)).to_have_attribute(
            "data-state", "online", timeout=RECONNECT_TIMEOUT_MS
        )
    await expect(message(bob.page, typed_down)).to_have_attribute(
        "data-state", "sent", timeout=RECONNECT_TIMEOUT_MS
    )
    await expect(message(alice.page, typed_down)).to_have_count(1)
    after = unique("after the restart")
    await send(alice.page, after)
    await expect(message(bob.page, after)).to_have_count(1)
    for page in (alice.page, bob.page):
        await assert_each_once(page, [before, typed_down, after])


async def test_ready_never_moves_a_cursor_back(web: Web, org: Org) -> None:
    """`ready.cursors` names conversations the hello did not list; a cursor the client already
    holds for one of them only moves forward (docs/protocol.md, "Connecting")."""
    alice = await web.open(org.alice)
    kept, moved = await alice.page.evaluate(
        """async () => {
          const { state } = await import("/static/app/store.js");
          const { applyFrame } = await import("/static/app/sync.js");
          state.cursors["test-behind"] = 9;
          state.cursors["test-ahead"] = 3;
          applyFrame({ type: "ready", cursors: { "test-behind": 7, "test-ahead": 5 },
                       resync: {}, removed: [] });
          const got = [state.cursors["test-behind"], state.cursors["test-ahead"]];
          delete state.cursors["test-behind"];
          delete state.cursors["test-ahead"];
          return got;
        }"""
    )
    assert (kept, moved) == (9, 5)
