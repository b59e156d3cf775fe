"""Screenshots of an open conversation, phone and desktop, en and zh-CN, as test artifacts.

They land in test-artifacts/web/{desktop,phone}-{en,zh-CN}.png. With ENCLAVE_UPDATE_SCREENSHOT=1
the desktop English one is also copied to docs/images/web-desktop-en.png (shown in the README).
"""

from __future__ import annotations

import os
import shutil
from urllib.parse import quote

import httpx
import pytest
from playwright.async_api import expect

from tests.web.conftest import ARTIFACTS, REPO, Org, Web
from tests.web.ui import message, messages, open_conversation, post_message

pytestmark = [pytest.mark.web, pytest.mark.asyncio(loop_scope="session")]

README_SHOT = REPO / "docs" / "images" / "web-desktop-en.png"


async def seed(org: Org) -> list[str]:
    """A short, friendly conversation in the group, with a reaction; return its texts."""
    script = [
        (org.carol, "Morning all! The release branch is cut."),
        (org.bob, "Great. I'll run the upgrade test on the staging box."),
        (org.alice, "Thanks! 我下午把中文文档更新一下。"),
        (org.bob, "好的，辛苦了 👍"),
        (org.carol, "Retro at 4 pm, same room as last time."),
    ]
    sent = [await post_message(org.base_url, who, org.group.id, text) for who, text in script]
    async with httpx.AsyncClient(base_url=org.base_url, timeout=10.0) as client:
        for who in (org.alice, org.carol):
            resp = await client.put(
                f"/api/v1/messages/{sent[0]['id']}/reactions/{quote('🎉')}", headers=who.headers
            )
            assert resp.status_code == 200, resp.text
    return [text for _, text in script]


async def test_screenshots_of_a_conversation(web: Web, org: Org) -> None:
    texts = await seed(org)
    shots = []
    for device in ("desktop", "phone"):
        for lang in ("en", "zh-CN"):
            session = await web.open(
                org.alice,
                phone=device == "phone",
                locale="en-US" if lang == "en" else lang,
                name=f"{device}-{lang}",
            )
            page = session.page
            await open_conversation(page, org.group.id)
            await expect(messages(page)).to_have_count(len(texts))
            await expect(message(page, texts[-1])).to_be_visible()
            await page.evaluate("() => document.fonts.ready.then(() => true)")
            size = page.viewport_size
            assert size is not None
            await page.mouse.move(size["width"] - 2, size["height"] - 120)  # hover nothing
            path = ARTIFACTS / f"{device}-{lang}.png"
            await page.screenshot(path=path)
            shots.append(path)
    assert all(p.stat().st_size > 0 for p in shots)
    if os.environ.get("ENCLAVE_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(ARTIFACTS / "desktop-en.png", README_SHOT)
