"""Edits, recalls, reactions, threads, typing and read state appear on the other side live."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Locator, expect

from tests.web.conftest import Org, Session, Web
from tests.web.ui import (
    choose_action,
    mark_read,
    message,
    message_by_id,
    open_conversation,
    post_message,
    send,
    server_id,
    unique,
)

pytestmark = [pytest.mark.web, pytest.mark.asyncio(loop_scope="session")]


def count(n: int) -> re.Pattern[str]:
    """A reaction's text that shows the count `n` (next to an emoji)."""
    return re.compile(rf"(^|\D){n}(\D|$)")


def reaction(session: Session, message_id: str, emoji: str) -> Locator:
    return message_by_id(session.page, message_id).locator(
        f'[data-testid="reaction"][data-emoji="{emoji}"]'
    )


async def in_dm(web: Web, org: Org) -> tuple[Session, Session]:
    alice = await web.open(org.alice)
    bob = await web.open(org.bob)
    await open_conversation(alice.page, org.dm.id)
    await open_conversation(bob.page, org.dm.id)
    return alice, bob


async def test_an_edit_shows_on_the_other_side(web: Web, org: Org) -> None:
    alice, bob = await in_dm(web, org)
    original, edited = unique("see you at 10"), unique("see you at 11")
    await send(alice.page, original)
    await expect(message(bob.page, original)).to_have_count(1)

    await choose_action(alice.page, message(alice.page, original), "edit")
    box = alice.page.get_by_test_id("edit-box")
    await expect(box).to_be_visible()
    await box.fill(edited)
    await box.press("Enter")
    await expect(box).to_have_count(0)

    for page in (bob.page, alice.page):
        changed = message(page, edited)
        await expect(changed).to_have_count(1)
        await expect(changed.get_by_test_id("message-edited")).to_be_visible()
        await expect(message(page, original)).to_have_count(0)


async def test_a_recall_shows_on_the_other_side(web: Web, org: Org) -> None:
    alice, bob = await in_dm(web, org)
    oops = unique("wrong chat, sorry")
    msg_id = await server_id(await send(alice.page, oops))
    await expect(message(bob.page, oops)).to_have_count(1)

    await choose_action(alice.page, message(alice.page, oops), "recall")
    for page in (bob.page, alice.page):
        recalled = message_by_id(page, msg_id)
        await expect(recalled.get_by_test_id("message-recalled")).to_be_visible()
        await expect(recalled.get_by_test_id("message-text")).to_have_count(0)
        await expect(page.get_by_test_id("message-list")).not_to_contain_text(oops)


async def test_reactions_show_and_toggle_on_both_sides(web: Web, org: Org) -> None:
    alice, bob = await in_dm(web, org)
    news = unique("we shipped it")
    msg_id = await server_id(await send(bob.page, news))
    await expect(message(alice.page, news)).to_have_count(1)

    await choose_action(alice.page, message(alice.page, news), "react")
    picker = alice.page.get_by_test_id("reaction-picker")
    await expect(picker).to_be_visible()
    choice = picker.locator("[data-emoji]").first
    emoji = await choice.get_attribute("data-emoji")
    assert emoji
    await choice.click()

    await expect(reaction(alice, msg_id, emoji)).to_have_attribute("aria-pressed", "true")
    await expect(reaction(alice, msg_id, emoji)).to_have_text(count(1))
    on_bob = reaction(bob, msg_id, emoji)
    await expect(on_bob).to_have_text(count(1))
    await expect(on_bob).not_to_have_attribute("aria-pressed", "true")

    await on_bob.click()  # bob adds his
    await expect(on_bob).to_have_attribute("aria-pressed", "true")
    await expect(on_bob).to_have_text(count(2))
    await expect(reaction(alice, msg_id, emoji)).to_have_text(count(2))

    await reaction(alice, msg_id, emoji).click()  # alice takes hers back
    await expect(reaction(alice, msg_id, emoji)).not_to_have_attribute("aria-pressed", "true")
    await expect(on_bob).to_have_text(count(1))
    await expect(reaction(alice, msg_id, emoji)).to_have_text(count(1))


async def test_thread_replies_show_on_the_other_side(web: Web, org: Org) -> None:
    alice, bob = await in_dm(web, org)
    root = unique("lunch?")
    root_id = await server_id(await send(alice.page, root))
    await expect(message(bob.page, root)).to_have_count(1)

    await choose_action(bob.page, message(bob.page, root), "reply")
    bob_panel = bob.page.get_by_test_id("thread-panel")
    await expect(bob_panel).to_be_visible()
    answer = unique("yes, noodles")
    thread_composer = bob_panel.get_by_test_id("thread-composer")
    await thread_composer.fill(answer)
    await thread_composer.press("Enter")
    await expect(bob_panel.get_by_test_id("thread-reply").filter(has_text=answer)).to_have_count(1)

    reply_count = message_by_id(alice.page, root_id).get_by_test_id("reply-count")
    await expect(reply_count).to_have_text(count(1))
    await expect(message(alice.page, answer)).to_have_count(0)  # not in the main list
    await reply_count.click()
    alice_panel = alice.page.get_by_test_id("thread-panel")
    await expect(alice_panel).to_be_visible()
    await expect(alice_panel.get_by_test_id("thread-reply").filter(has_text=answer)).to_be_visible()

    follow_up = unique("meet at the door")
    await alice_panel.get_by_test_id("thread-composer").fill(follow_up)
    await alice_panel.get_by_test_id("thread-composer").press("Enter")
    bob_replies = bob_panel.get_by_test_id("thread-reply")
    await expect(bob_replies.filter(has_text=follow_up)).to_have_count(1)
    await expect(bob_replies).to_have_count(2)
    bob_count = message_by_id(bob.page, root_id).get_by_test_id("reply-count")
    await expect(bob_count).to_have_text(count(2))

    await alice_panel.get_by_test_id("close-thread").click()
    await expect(alice_panel).to_be_hidden()


async def test_typing_shows_on_the_other_side(web: Web, org: Org) -> None:
    alice, bob = await in_dm(web, org)
    typing = alice.page.get_by_test_id("typing")
    shown = typing.filter(visible=True).filter(has_text=re.compile(r"\S"))

    await bob.page.get_by_test_id("composer").press_sequentially("are you th", delay=30)
    await expect(typing).to_be_visible()
    await expect(typing).to_contain_text(org.display_name(org.bob))
    mine = bob.page.get_by_test_id("typing").filter(visible=True).filter(has_text=re.compile(r"\S"))
    await expect(mine).to_have_count(0)  # nobody is told they are typing themselves

    await bob.page.get_by_test_id("composer").press_sequentially("ere?", delay=30)
    await bob.page.get_by_test_id("composer").press("Enter")
    await expect(message(alice.page, "are you there?")).to_have_count(1)
    # Typing shows for ~5 s after the last keystroke (docs/protocol.md), or less once sent.
    await expect(shown).to_have_count(0, timeout=10_000)


async def test_seen_by_shows_who_read_in_a_dm_and_a_group(web: Web, org: Org) -> None:
    alice = await web.open(org.alice)
    bob = await web.open(org.bob)

    await open_conversation(alice.page, org.dm.id)
    note = unique("did you see this")
    await send(alice.page, note)
    await open_conversation(bob.page, org.dm.id)
    await expect(message(bob.page, note)).to_have_count(1)
    seen_by = alice.page.get_by_test_id("conversation-view").get_by_test_id("seen-by")
    await expect(seen_by).to_contain_text(org.display_name(org.bob))

    await open_conversation(alice.page, org.group.id)
    announcement = unique("standup moved")
    await send(alice.page, announcement)
    await open_conversation(bob.page, org.group.id)
    await expect(message(bob.page, announcement)).to_have_count(1)
    await expect(seen_by).to_contain_text(org.display_name(org.bob))
    await expect(seen_by).not_to_contain_text(org.display_name(org.carol))

    # carol has no browser open: she reads through the API, and alice sees it live
    latest = await post_message(org.base_url, org.bob, org.group.id, unique("ok"))
    await expect(message(alice.page, latest["text"])).to_have_count(1)
    await mark_read(org.base_url, org.carol, org.group.id, latest["seq"])
    await expect(seen_by).to_contain_text(org.display_name(org.carol))
