"""The composer: Enter sends, Shift+Enter is a newline, Enter while an IME composes does not."""

from __future__ import annotations

import pytest
from playwright.async_api import Locator, expect

from tests.web.conftest import Org, Session, Web
from tests.web.ui import message, messages, open_conversation, send, unique

pytestmark = [pytest.mark.web, pytest.mark.asyncio(loop_scope="session")]

COMPOSED = "你好"  # what the pinyin IME is composing


async def in_dm(web: Web, org: Org) -> tuple[Session, Session]:
    alice = await web.open(org.alice)
    bob = await web.open(org.bob)
    await open_conversation(alice.page, org.dm.id)
    await open_conversation(bob.page, org.dm.id)
    return alice, bob


async def compose(composer: Locator, text: str) -> None:
    """Start a composition and let the IME put `text` into the composer, as Chrome does."""
    await composer.dispatch_event("compositionstart", {"data": ""})
    await composer.evaluate(
        """(el, text) => {
            const update = new CompositionEvent('compositionupdate', {bubbles: true, data: text});
            el.dispatchEvent(update);
            el.value = el.value + text;
            el.dispatchEvent(new InputEvent('input', {
                bubbles: true, isComposing: true, inputType: 'insertCompositionText', data: text,
            }));
        }""",
        text,
    )


async def ime_enter(composer: Locator, is_composing: bool) -> bool:
    """An Enter keydown as an IME delivers it (keyCode 229); True if the page cancelled it."""
    return bool(
        await composer.evaluate(
            """(el, isComposing) => !el.dispatchEvent(new KeyboardEvent('keydown', {
                key: 'Enter', code: 'Enter', keyCode: 229, which: 229, isComposing,
                bubbles: true, cancelable: true,
            }))""",
            is_composing,
        )
    )


async def assert_not_sent(alice: Session, bob: Session, composer: Locator, text: str) -> None:
    """Nothing left alice's composer: checked after a full round trip through the server (bob's
    message reaching alice), so a send that was merely late would have shown by then."""
    marker = unique("round trip")
    await send(bob.page, marker)
    await expect(message(alice.page, marker)).to_have_count(1)
    await expect(composer).to_have_value(text)
    await expect(messages(alice.page)).to_have_count(1)
    await expect(messages(bob.page)).to_have_count(1)


async def test_enter_while_composing_does_not_send(web: Web, org: Org) -> None:
    alice, bob = await in_dm(web, org)
    composer = alice.page.get_by_test_id("composer")
    prefix = unique("ime")
    await composer.fill(prefix + " ")
    await compose(composer, COMPOSED)

    # Chrome's order: the Enter that picks the candidate arrives while composing, then the end.
    await ime_enter(composer, is_composing=True)
    await composer.dispatch_event("compositionend", {"data": COMPOSED})
    await assert_not_sent(alice, bob, composer, f"{prefix} {COMPOSED}")

    await composer.press("Enter")  # a plain Enter now sends the whole text, once
    await expect(composer).to_have_value("")
    for page in (alice.page, bob.page):
        await expect(message(page, f"{prefix} {COMPOSED}")).to_have_count(1)
        await expect(messages(page)).to_have_count(2)


async def test_enter_that_ends_a_composition_after_compositionend_does_not_send(
    web: Web, org: Org
) -> None:
    """Safari (the iPhone) ends the composition first, then sends the Enter with keyCode 229."""
    alice, bob = await in_dm(web, org)
    composer = alice.page.get_by_test_id("composer")
    prefix = unique("ime safari")
    await composer.fill(prefix + " ")
    await compose(composer, COMPOSED)
    await composer.dispatch_event("compositionend", {"data": COMPOSED})
    await ime_enter(composer, is_composing=False)
    await assert_not_sent(alice, bob, composer, f"{prefix} {COMPOSED}")

    await composer.press("Enter")
    for page in (alice.page, bob.page):
        await expect(message(page, f"{prefix} {COMPOSED}")).to_have_count(1)


async def test_shift_enter_is_a_newline_and_enter_sends(web: Web, org: Org) -> None:
    alice, bob = await in_dm(web, org)
    composer = alice.page.get_by_test_id("composer")
    first, second = unique("line one"), unique("line two")
    await composer.fill(first)
    await composer.press("Shift+Enter")
    await composer.press_sequentially(second)
    await expect(composer).to_have_value(f"{first}\n{second}")
    await expect(messages(alice.page)).to_have_count(0)

    await composer.press("Enter")
    for page in (alice.page, bob.page):
        sent = message(page, first)
        await expect(sent).to_have_count(1)
        await expect(sent.get_by_test_id("message-text")).to_contain_text(second)
        await expect(messages(page)).to_have_count(1)
