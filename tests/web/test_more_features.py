"""History paging, failed sends and retry, mentions, the conversation filter, creating and joining
channels, members and presence, sessions and log-out, and the unread count in the tab title."""

from __future__ import annotations

import asyncio
import json
import re
import secrets

import httpx
import pytest
from playwright.async_api import Route, WebSocketRoute, expect

from tests.web.conftest import RECONNECT_TIMEOUT_MS, Org, Web, log_in
from tests.web.ui import (
    conversation_item,
    message,
    messages,
    open_conversation,
    send,
    texts,
    unique,
)

pytestmark = [pytest.mark.web, pytest.mark.asyncio(loop_scope="session")]

MAX_TEXT = 16_000  # the server's default longest message text (message.max_text_length)


async def test_history_loads_older_pages_when_scrolled_to_the_top(web: Web, org: Org) -> None:
    wanted = [f"history line {i:03d}" for i in range(120)]
    async with httpx.AsyncClient(base_url=org.base_url, timeout=10.0) as client:
        for i, text in enumerate(wanted):
            sender = (org.alice, org.bob, org.carol)[i % 3]
            resp = await client.post(
                f"/api/v1/conversations/{org.group.id}/messages",
                json={"client_msg_id": secrets.token_hex(8), "text": text},
                headers=sender.headers,
            )
            assert resp.status_code == 201, resp.text

    alice = await web.open(org.alice)
    page = alice.page
    await open_conversation(page, org.group.id)
    await expect(message(page, wanted[-1])).to_have_count(1)
    await expect(message(page, wanted[0])).to_have_count(0)

    list_ = page.get_by_test_id("message-list")
    for _ in range(10):  # one older page per scroll to the top
        if await message(page, wanted[0]).count():
            break
        shown = await messages(page).count()
        await list_.evaluate("el => { el.scrollTop = 0; el.dispatchEvent(new Event('scroll')); }")
        await page.wait_for_function(
            "n => document.querySelectorAll("
            "'[data-testid=message-list] [data-testid=message]').length > n",
            arg=shown,
        )
    await expect(message(page, wanted[0])).to_have_count(1)
    await expect(messages(page)).to_have_count(len(wanted))
    shown_texts = await texts(page)
    assert shown_texts == wanted, "history is not complete, in order and without duplicates"


async def test_failed_message_shows_retry_and_retry_sends_it_once(web: Web, org: Org) -> None:
    # The server rejects a text longer than its limit: the message fails and offers a retry.
    bob = await web.open(org.bob)
    await open_conversation(bob.page, org.dm.id)
    too_long = unique("too long") + " " + "x" * MAX_TEXT
    composer = bob.page.get_by_test_id("composer")
    await composer.fill(too_long)
    await composer.press("Enter")
    rejected = messages(bob.page).filter(has_text="too long")
    await expect(rejected).to_have_count(1)
    await expect(rejected).to_have_attribute("data-state", "failed")
    await expect(rejected.get_by_test_id("retry")).to_be_visible()

    # A send the server never answers (its first "send" frame is answered with an error, as if
    # the server had failed) shows as failed; a retry sends it with the same client_msg_id.
    alice = await web.open(name="alice")
    dropped: list[str] = []

    async def route(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()

        def from_page(frame: str | bytes) -> None:
            data = json.loads(frame)
            if data.get("type") == "send" and not dropped:
                dropped.append(data["client_msg_id"])
                ws.send(
                    json.dumps(
                        {
                            "type": "error",
                            "req_id": data.get("req_id"),
                            "code": "internal",
                            "message": "the server failed",
                        }
                    )
                )
                return
            server.send(frame)

        ws.on_message(from_page)

    await alice.page.route_web_socket(re.compile(r".*"), route)
    await log_in(alice.page, org.alice.username)
    await open_conversation(alice.page, org.dm.id)
    text = unique("second time lucky")
    await alice.page.get_by_test_id("composer").fill(text)
    await alice.page.get_by_test_id("composer").press("Enter")
    failed = message(alice.page, text)
    await expect(failed).to_have_attribute("data-state", "failed")
    assert dropped and await failed.get_attribute("data-client-id") == dropped[0]
    await expect(message(bob.page, text)).to_have_count(0)

    await failed.get_by_test_id("retry").click()
    await expect(failed).to_have_attribute("data-state", "sent")
    await expect(failed).to_have_attribute("data-id", re.compile(r".+"))
    await expect(failed.get_by_test_id("retry")).to_have_count(0)
    await expect(message(bob.page, text)).to_have_count(1)
    await expect(message(alice.page, text)).to_have_count(1)


async def test_mention_autocomplete_inserts_the_username(web: Web, org: Org) -> None:
    alice = await web.open(org.alice)
    bob = await web.open(org.bob)
    await open_conversation(alice.page, org.group.id)
    await open_conversation(bob.page, org.group.id)

    composer = alice.page.get_by_test_id("composer")
    await composer.press_sequentially("ping @bo")
    option = alice.page.locator('[data-testid="mention-option"][data-username="bob"]')
    await expect(option).to_be_visible()
    await option.click()
    await expect(composer).to_have_value(re.compile(r"^ping @bob\s$"))
    tail = unique("the build is green")
    await composer.press_sequentially(tail)
    await composer.press("Enter")
    await expect(composer).to_have_value("")

    sent = message(alice.page, tail)
    await expect(sent).to_have_attribute("data-state", "sent")
    seen = message(bob.page, tail)
    await expect(seen).to_have_count(1)
    await expect(seen.get_by_test_id("message-text")).to_contain_text(f"ping @bob {tail}")


async def test_mention_list_appears_when_members_arrive_after_the_at_sign(
    web: Web, org: Org
) -> None:
    """Someone who types "@ca" before the conversation's members have loaded (a slow network)
    gets the list as soon as they arrive, without another key press."""
    alice = await web.open(org.alice)
    released = asyncio.Event()
    held: list[str] = []

    async def hold(route: Route) -> None:
        held.append(route.request.url)
        await released.wait()
        await route.continue_()

    await alice.page.route(re.compile(rf"/api/v1/conversations/{org.group.id}/members"), hold)
    await open_conversation(alice.page, org.group.id)
    composer = alice.page.get_by_test_id("composer")
    await composer.press_sequentially("hi @ca")
    assert held, "the members request was not made when the conversation opened"
    options = alice.page.get_by_test_id("mention-option")
    await expect(options).to_have_count(0)

    released.set()
    carol = options.and_(alice.page.locator('[data-username="carol"]'))
    await expect(carol).to_be_visible()
    await expect(options).to_have_count(1)
    await composer.press("Enter")
    await expect(composer).to_have_value("hi @carol ")
    await expect(options).to_have_count(0)


async def test_conversation_search_filters_the_list_by_name(web: Web, org: Org) -> None:
    alice = await web.open(org.alice)
    page = alice.page
    items = page.get_by_test_id("conversation-item")
    await expect(items).to_have_count(2)
    search = page.get_by_test_id("conversation-search")

    await search.fill("launch")
    await expect(items).to_have_count(1)
    await expect(conversation_item(page, org.group.id)).to_be_visible()

    await search.fill("bob")
    await expect(items).to_have_count(1)
    await expect(conversation_item(page, org.dm.id)).to_be_visible()

    await search.fill("no such conversation")
    await expect(items).to_have_count(0)

    await search.fill("")
    await expect(items).to_have_count(2)


async def test_new_channel_appears_live_and_others_can_join_it(web: Web, org: Org) -> None:
    alice = await web.open(org.alice)
    bob = await web.open(org.bob)
    carol = await web.open(org.carol)
    name = f"release-{secrets.token_hex(3)}"

    page = alice.page
    await page.get_by_test_id("new-conversation").click()
    dialog = page.get_by_test_id("new-conversation-dialog")
    await expect(dialog).to_be_visible()
    await dialog.locator("select[name=kind]").select_option("channel")
    await dialog.locator("input[name=name]").fill(name)
    await dialog.locator("select[name=visibility]").select_option("public")
    await dialog.get_by_test_id("people-search").fill("bo")
    bob_option = dialog.locator(f'[data-testid="person-option"][data-id="{org.bob.id}"]')
    await bob_option.click()
    await expect(bob_option).to_have_attribute("aria-pressed", "true")
    await dialog.get_by_test_id("create-conversation").click()
    await expect(dialog).to_be_hidden()

    named = page.get_by_test_id("conversation-item").filter(has_text=name)
    await expect(named).to_have_count(1)
    channel_id = await named.get_attribute("data-id")
    assert channel_id
    for session in (alice, bob):
        await expect(conversation_item(session.page, channel_id)).to_have_count(1)
    await expect(conversation_item(carol.page, channel_id)).to_have_count(0)

    await carol.page.get_by_test_id("browse-channels").click()
    browser = carol.page.get_by_test_id("channel-browser")
    await expect(browser).to_be_visible()
    item = browser.locator(f'[data-testid="channel-item"][data-id="{channel_id}"]')
    await item.get_by_test_id("join-channel").click()
    await expect(conversation_item(carol.page, channel_id)).to_have_count(1)

    await open_conversation(carol.page, channel_id)
    await open_conversation(bob.page, channel_id)
    hello = unique("hello from carol")
    await send(carol.page, hello)
    await expect(message(bob.page, hello)).to_have_count(1)


async def test_members_and_presence(web: Web, org: Org) -> None:
    alice = await web.open(org.alice)
    page = alice.page
    await open_conversation(page, org.group.id)
    await page.get_by_test_id("members-button").click()
    members = page.get_by_test_id("member-list").get_by_test_id("member")
    await expect(members).to_have_count(3)
    for person in (org.alice, org.bob, org.carol):
        await expect(
            page.get_by_test_id("member-list").locator(
                f'[data-testid="member"][data-id="{person.id}"]'
            )
        ).to_have_count(1)

    dot = conversation_item(page, org.dm.id).get_by_test_id("presence")
    await expect(dot).to_have_attribute("data-status", "offline")
    bob = await web.open(org.bob)
    await expect(dot).to_have_attribute("data-status", "online")
    bob_row = page.get_by_test_id("member-list").locator(
        f'[data-testid="member"][data-id="{org.bob.id}"]'
    )
    await expect(bob_row.get_by_test_id("presence")).to_have_attribute("data-status", "online")

    await bob.context.close()
    await expect(dot).to_have_attribute("data-status", "offline", timeout=RECONNECT_TIMEOUT_MS)


async def test_profile_sessions_revoke_and_logout(web: Web, org: Org) -> None:
    laptop = await web.open(org.bob, name="bob-laptop")
    phone = await web.open(org.bob, phone=True, name="bob-phone")
    page = laptop.page

    await page.get_by_test_id("profile-button").click()
    profile = page.get_by_test_id("profile")
    await expect(profile).to_be_visible()
    sessions = profile.get_by_test_id("session-item")
    await expect(sessions.first).to_be_visible()
    assert await sessions.count() >= 2  # both of bob's browsers (and his REST log-in)
    current = profile.locator('[data-testid="session-item"][data-current="true"]')
    await expect(current).to_have_count(1)

    # Revoke every other session of bob's: the phone is sent back to the login form.
    others = profile.locator('[data-testid="session-item"]:not([data-current="true"])')
    while await others.count():
        before = await sessions.count()
        await others.first.get_by_test_id("revoke-session").click()
        await expect(sessions).to_have_count(before - 1)
    await expect(phone.page.get_by_test_id("login-form")).to_be_visible(
        timeout=RECONNECT_TIMEOUT_MS
    )
    await expect(phone.page.get_by_test_id("app")).to_have_count(0)
    await expect(page.get_by_test_id("app")).to_be_visible()

    await profile.get_by_test_id("logout").click()
    await expect(page.get_by_test_id("login-form")).to_be_visible()


async def test_tab_title_shows_the_unread_count(web: Web, org: Org) -> None:
    alice = await web.open(org.alice)
    await open_conversation(alice.page, org.group.id)
    await expect(alice.page).not_to_have_title(re.compile(r"^\(\d+\)"))
    bob = await web.open(org.bob)
    await open_conversation(bob.page, org.dm.id)
    await send(bob.page, unique("are you there"))
    await expect(alice.page).to_have_title(re.compile(r"^\(\d+\)"))
    await expect(
        conversation_item(alice.page, org.dm.id).get_by_test_id("unread-count")
    ).to_have_text("1")
    await open_conversation(alice.page, org.dm.id)
    await expect(alice.page).not_to_have_title(re.compile(r"^\(\d+\)"))
