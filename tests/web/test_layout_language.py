"""The phone layout (one pane at a time), the desktop layout, and the two languages."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Locator, Page, expect

from tests.web.conftest import PHONE, Org, Web, log_in, submit_button
from tests.web.ui import conversation_item, open_conversation, send, unique

pytestmark = [pytest.mark.web, pytest.mark.asyncio(loop_scope="session")]

CJK = re.compile(r"[\u3400-\u9fff]")


async def label(control: Locator) -> str:
    """What a button says: its text, or the value of an <input type=submit>."""
    return str(await control.evaluate("el => (el.value || el.textContent || '').trim()"))


async def body_text(page: Page) -> str:
    return str(await page.evaluate("() => document.body.innerText"))


async def test_phone_shows_one_pane_at_a_time(web: Web, org: Org) -> None:
    alice = await web.open(org.alice, phone=True)
    page = alice.page
    await expect(page.get_by_test_id("app")).to_have_attribute("data-layout", "phone")
    listing = page.get_by_test_id("conversation-list")
    view = page.get_by_test_id("conversation-view")
    await expect(listing).to_be_visible()
    await expect(view).to_be_hidden()

    await conversation_item(page, org.dm.id).click()
    await expect(view).to_be_visible()
    await expect(view).to_have_attribute("data-id", org.dm.id)
    await expect(listing).to_be_hidden()
    await send(page, unique("sent from my phone"))
    overflow = await page.evaluate("() => document.documentElement.scrollWidth")
    assert overflow <= PHONE["width"], f"the page scrolls sideways: {overflow} px wide"

    await page.get_by_test_id("back").click()
    await expect(listing).to_be_visible()
    await expect(view).to_be_hidden()
    await expect(conversation_item(page, org.group.id)).to_be_visible()


async def test_desktop_shows_the_list_and_the_conversation_side_by_side(web: Web, org: Org) -> None:
    alice = await web.open(org.alice)
    page = alice.page
    await expect(page.get_by_test_id("app")).to_have_attribute("data-layout", "desktop")
    await open_conversation(page, org.dm.id)
    listing = page.get_by_test_id("conversation-list")
    view = page.get_by_test_id("conversation-view")
    await expect(listing).to_be_visible()
    await expect(view).to_be_visible()
    await expect(page.get_by_test_id("back")).to_be_hidden()
    left, right = await listing.bounding_box(), await view.bounding_box()
    assert left and right
    assert left["x"] + left["width"] <= right["x"] + 1, f"not side by side: {left} {right}"


async def test_language_follows_the_browser_and_can_be_switched(web: Web, org: Org) -> None:
    en = await web.open(locale="en-US", name="en")
    zh = await web.open(locale="zh-CN", name="zh")
    await expect(en.page.locator("html")).to_have_attribute("lang", re.compile(r"^en\b"))
    await expect(zh.page.locator("html")).to_have_attribute("lang", "zh-CN")
    en_login = await label(submit_button("login-form", en.page))
    zh_login = await label(submit_button("login-form", zh.page))
    assert en_login != zh_login, f"the login button says {en_login!r} in both languages"
    assert CJK.search(zh_login), f"the zh-CN login button says {zh_login!r}"
    assert not CJK.search(en_login), f"the en login button says {en_login!r}"

    await log_in(zh.page, org.alice.username)
    language = zh.page.get_by_test_id("language")
    search = zh.page.get_by_test_id("conversation-search")
    await expect(language).to_have_value("zh-CN")
    await expect(search).to_have_attribute("placeholder", CJK)
    assert CJK.search(await body_text(zh.page)), "the zh-CN app shows no Chinese"

    await language.select_option("en")
    await expect(zh.page.locator("html")).to_have_attribute("lang", re.compile(r"^en\b"))
    await expect(search).not_to_have_attribute("placeholder", CJK)
    untranslated = CJK.findall(await body_text(zh.page))
    assert not untranslated, f"Chinese left on the page after switching to en: {untranslated}"

    await language.select_option("zh-CN")  # and back, at once
    await expect(zh.page.locator("html")).to_have_attribute("lang", "zh-CN")
    await expect(search).to_have_attribute("placeholder", CJK)

    await language.select_option("en")
    await expect(zh.page.locator("html")).to_have_attribute("lang", re.compile(r"^en\b"))
    await zh.page.reload()  # the choice is remembered over the browser's zh-CN
    screen = zh.page.get_by_test_id("login-form").or_(zh.page.get_by_test_id("app"))
    await expect(screen).to_be_visible()
    await expect(zh.page.locator("html")).to_have_attribute("lang", re.compile(r"^en\b"))
    assert not CJK.search(await body_text(zh.page)), "Chinese shows again after a reload"
