"""Page helpers for the browser tests, written against docs/web-client-contract.md.

Everything is found through `data-testid` (and the contract's data attributes); every wait is an
`expect(...)` with the default or an explicit timeout.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

import httpx
from playwright.async_api import Locator, Page, expect

from tests.e2e.test_acceptance import Person

NOT_ONLINE = re.compile(r"^(offline|connecting)$")


def unique(label: str) -> str:
    """A message text no other text in the test contains."""
    return f"{label} {secrets.token_hex(4)}"


def conversation_item(page: Page, conv_id: str) -> Locator:
    return page.locator(f'[data-testid="conversation-item"][data-id="{conv_id}"]')


def status(page: Page) -> Locator:
    return page.get_by_test_id("connection-status")


async def open_conversation(page: Page, conv_id: str) -> None:
    await conversation_item(page, conv_id).click()
    await expect(page.get_by_test_id("conversation-view")).to_have_attribute("data-id", conv_id)
    await expect(conversation_item(page, conv_id)).to_have_attribute("aria-current", "true")
    await expect(page.get_by_test_id("composer")).to_be_visible()


def messages(page: Page) -> Locator:
    """The top-level messages of the open conversation."""
    return page.get_by_test_id("message-list").get_by_test_id("message")


def message(page: Page, text: str) -> Locator:
    """The top-level message(s) whose text contains `text` (use `unique` texts)."""
    return messages(page).filter(has=page.get_by_test_id("message-text").filter(has_text=text))


def message_by_id(page: Page, message_id: str) -> Locator:
    return page.get_by_test_id("message-list").locator(
        f'[data-testid="message"][data-id="{message_id}"]'
    )


async def send(page: Page, text: str) -> Locator:
    """Type `text` in the composer and press Enter; return its message once the server confirmed
    it (it has a server id and data-state="sent")."""
    composer = page.get_by_test_id("composer")
    await composer.fill(text)
    await composer.press("Enter")
    await expect(composer).to_have_value("")
    sent = message(page, text)
    await expect(sent).to_have_count(1)
    await expect(sent).to_have_attribute("data-state", "sent")
    await expect(sent).to_have_attribute("data-id", re.compile(r".+"))
    return sent


async def server_id(msg: Locator) -> str:
    await expect(msg).to_have_attribute("data-id", re.compile(r".+"))
    found = await msg.get_attribute("data-id")
    assert found
    return found


async def choose_action(page: Page, msg: Locator, action: str) -> None:
    """Open a message's menu and choose `action` (edit, recall, react, reply)."""
    await msg.hover()
    await msg.get_by_test_id("message-actions").click()
    await page.locator(f'[data-action="{action}"]').filter(visible=True).click()


async def texts(page: Page) -> list[str]:
    """The texts of the open conversation's top-level messages, top to bottom."""
    return await messages(page).get_by_test_id("message-text").all_inner_texts()


async def message_ids(page: Page) -> list[str | None]:
    ids: list[str | None] = await messages(page).evaluate_all(
        "els => els.map(e => e.dataset.id ?? null)"
    )
    return ids


async def assert_each_once(page: Page, wanted: list[str]) -> None:
    """Every text in `wanted` shows exactly once, in this order; no message shows twice."""
    for text in wanted:
        await expect(message(page, text)).to_have_count(1)
    shown = await texts(page)
    positions = [next(i for i, t in enumerate(shown) if text in t) for text in wanted]
    assert positions == sorted(positions), f"out of order: {wanted} in {shown}"
    ids = [i for i in await message_ids(page) if i is not None]
    assert len(ids) == len(set(ids)), f"a message shows twice: {ids}\n{shown}"


# -- REST, for seeding and for a third person who has no browser --------------------------------


async def post_message(base_url: str, person: Person, conv_id: str, text: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base_url, timeout=10.0) as client:
        resp = await client.post(
            f"/api/v1/conversations/{conv_id}/messages",
            json={"client_msg_id": secrets.token_hex(8), "text": text},
            headers=person.headers,
        )
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def mark_read(base_url: str, person: Person, conv_id: str, seq: int) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=10.0) as client:
        resp = await client.post(
            f"/api/v1/conversations/{conv_id}/read", json={"seq": seq}, headers=person.headers
        )
    assert resp.status_code == 200, resp.text
