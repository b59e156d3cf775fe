"""The admin's audit log screen: entries newest first, filters, older pages, chain verification
(intact, then after someone edited the database)."""

from __future__ import annotations

import sqlite3

import httpx
import pytest
from playwright.async_api import expect

from tests.e2e.harness import bearer, login
from tests.e2e.test_acceptance import PASSWORD, Person
from tests.web.conftest import Org, Web
from tests.web.ui import open_conversation, post_message

pytestmark = [pytest.mark.web, pytest.mark.asyncio(loop_scope="session")]

RECALLS = 30  # per person: with the account flows' entries, more than one page of 50


async def make_admin(org: Org, username: str = "ada") -> Person:
    """An admin (made by the owner over REST) who signs in with the usual test password."""
    async with httpx.AsyncClient(base_url=org.base_url, timeout=10.0) as client:
        resp = await client.post(
            "/api/v1/users",
            json={
                "username": username,
                "password": PASSWORD,
                "display_name": username.title(),
                "role": "admin",
            },
            headers=org.owner.headers,
        )
        assert resp.status_code == 201, resp.text
        token = await login(client, username, PASSWORD)
        return Person(resp.json()["id"], username, bearer(token))


async def recall_many(org: Org) -> None:
    async with httpx.AsyncClient(base_url=org.base_url, timeout=10.0) as client:
        for who in (org.alice, org.bob):
            for i in range(RECALLS):
                msg = await post_message(org.base_url, who, org.group.id, f"oops {i}")
                resp = await client.delete(f"/api/v1/messages/{msg['id']}", headers=who.headers)
                assert resp.status_code == 200, resp.text


def seqs(page_rows: list[str | None]) -> list[int]:
    return [int(s) for s in page_rows if s is not None]


async def test_admin_pages_filters_and_verifies_the_audit_log(web: Web, org: Org) -> None:
    admin = await make_admin(org)
    await recall_many(org)

    member = await web.open(org.alice)
    await open_conversation(member.page, org.group.id)
    await expect(member.page.get_by_test_id("audit-log-button")).to_have_count(0)

    session = await web.open(admin)
    page = session.page
    await page.get_by_test_id("audit-log-button").click()
    screen = page.get_by_test_id("audit-log")
    await expect(screen).to_be_visible()
    rows = screen.get_by_test_id("audit-entry")
    await expect(rows).to_have_count(50)
    older = screen.get_by_test_id("audit-load-older")
    await expect(older).to_be_visible()
    await older.click()
    await expect(rows).not_to_have_count(50)
    while await older.is_visible():
        before = await rows.count()
        await older.click()
        await expect(rows).not_to_have_count(before)
    shown = seqs(await rows.evaluate_all("rs => rs.map(r => r.dataset.seq)"))
    assert shown == sorted(shown, reverse=True) and len(set(shown)) == len(shown)
    assert len(shown) > 2 * RECALLS
    # The newest entries are bob's recalls (and alerts, if a threshold was met): time, actor,
    # action, target, IP and outcome are shown.
    first = rows.first
    await expect(first.locator("td")).to_have_count(6)

    filters = screen.get_by_test_id("audit-filters")
    await filters.locator("input[name=action]").fill("message.recalled")
    await filters.locator("select[name=actor]").select_option(org.alice.id)
    await filters.locator("button[type=submit]").click()
    await expect(rows).to_have_count(RECALLS)
    actions = await rows.evaluate_all("rs => rs.map(r => r.dataset.action)")
    assert set(actions) == {"message.recalled"}
    await expect(rows.first.locator("td").nth(1)).to_have_text("Alice")

    await filters.locator("input[name=action]").fill("no such action!")
    await filters.locator("button[type=submit]").click()
    await expect(screen.locator("[aria-live=polite]").first).not_to_be_empty()

    result = screen.get_by_test_id("audit-verify-result")
    await screen.get_by_test_id("audit-verify").click()
    await expect(result).to_have_attribute("data-ok", "true")

    # Someone with the database file edits an entry: the next check says so, and where.
    db = sqlite3.connect(org.servers.data_dir / "enclave.db")
    try:
        with db:
            db.execute("UPDATE audit_log SET details = '{}' WHERE seq = 3")
    finally:
        db.close()
    await screen.get_by_test_id("audit-verify").click()
    await expect(result).to_have_attribute("data-ok", "false")
    problem = screen.get_by_test_id("audit-problem")
    await expect(problem).to_have_count(1)
    await expect(problem).to_have_attribute("data-seq", "3")
    await expect(problem).to_have_attribute("data-kind", "altered")
