"""Compliance in the web client: the terms-of-use modal after log-in, "Download my data" in the
profile, and the compliance officer's export dialog (start, progress, download the zip)."""

from __future__ import annotations

import io
import json
import zipfile

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.e2e.harness import bearer, login
from tests.e2e.test_acceptance import PASSWORD, Person
from tests.web.conftest import Org, Web
from tests.web.ui import post_message, unique

pytestmark = [pytest.mark.web, pytest.mark.asyncio(loop_scope="session")]


async def make_person(org: Org, username: str, role: str) -> Person:
    """An account of `role`, made by the owner over REST, signing in with the test password."""
    async with httpx.AsyncClient(base_url=org.base_url, timeout=10.0) as client:
        resp = await client.post(
            "/api/v1/users",
            json={"username": username, "password": PASSWORD, "role": role},
            headers=org.owner.headers,
        )
        assert resp.status_code == 201, resp.text
        token = await login(client, username, PASSWORD)
        return Person(resp.json()["id"], username, bearer(token))


async def open_export(page: Page) -> None:
    await page.get_by_test_id("compliance-export-button").click()
    await expect(page.get_by_test_id("compliance-export")).to_be_visible()


async def run_export(page: Page, people: list[str]) -> None:
    dialog = page.get_by_test_id("compliance-export")
    await dialog.locator("select[name=people]").select_option(people)
    await dialog.get_by_test_id("export-start").click()
    await expect(dialog.get_by_test_id("export-status")).to_have_attribute("data-status", "done")


async def test_terms_must_be_accepted_after_log_in(web: Web, org: Org) -> None:
    async with httpx.AsyncClient(base_url=org.base_url, timeout=10.0) as client:
        resp = await client.put(
            "/api/v1/org/terms",
            json={"version": "2026-01", "text": "Be kind.\n友善待人。"},
            headers=org.owner.headers,
        )
        assert resp.status_code == 200, resp.text
    session = await web.open(name="terms")
    page = session.page
    form = page.get_by_test_id("login-form")
    await form.locator("input[name=username]").fill(org.alice.username)
    await form.locator("input[name=password]").fill(PASSWORD)
    await form.locator("input[name=password]").press("Enter")
    modal = page.get_by_test_id("terms-dialog")
    await expect(modal).to_be_visible()
    await expect(modal.get_by_test_id("terms-text")).to_have_text("Be kind.\n友善待人。")
    await expect(page.get_by_test_id("app")).to_have_count(0)
    await modal.get_by_test_id("terms-accept").click()
    await expect(page.get_by_test_id("app")).to_be_visible()
    await expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "online")


async def test_download_my_data(web: Web, org: Org) -> None:
    text = unique("mine to take")
    await post_message(org.base_url, org.alice, org.group.id, text)
    session = await web.open(org.alice)
    page = session.page
    await page.get_by_test_id("profile-button").click()
    async with page.expect_download() as info:
        await page.get_by_test_id("download-my-data").click()
    download = await info.value
    assert download.suggested_filename == "enclave-my-data.json"
    data = json.loads((await download.path()).read_bytes())
    assert data["profile"]["username"] == org.alice.username
    assert text in [m["text"] for m in data["messages"]]
    await expect(page.get_by_test_id("my-data-status")).not_to_be_empty()


async def test_compliance_officer_exports_and_downloads(web: Web, org: Org) -> None:
    text = unique("for the record")
    await post_message(org.base_url, org.alice, org.group.id, text)
    officer = await make_person(org, "olga", "compliance_officer")

    member = await web.open(org.alice)
    await expect(member.page.get_by_test_id("app")).to_be_visible()
    await expect(member.page.get_by_test_id("compliance-export-button")).to_have_count(0)

    session = await web.open(officer)
    page = session.page
    await open_export(page)
    await run_export(page, [org.alice.id])
    async with page.expect_download() as info:
        await page.get_by_test_id("export-download").click()
    download = await info.value
    assert download.suggested_filename.endswith(".zip")
    with zipfile.ZipFile(io.BytesIO((await download.path()).read_bytes())) as zf:
        names = zf.namelist()
        assert "manifest.json" in names and "messages.jsonl" in names
        assert text in zf.read("messages.jsonl").decode("utf-8")


async def test_terms_published_while_the_app_is_open_ask_at_once(web: Web, org: Org) -> None:
    session = await web.open(org.alice)
    page = session.page
    await expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "online")
    async with httpx.AsyncClient(base_url=org.base_url, timeout=10.0) as client:
        resp = await client.put(
            "/api/v1/org/terms",
            json={"version": "2026-02", "text": "New rules.\n新规则。"},
            headers=org.owner.headers,
        )
        assert resp.status_code == 200, resp.text
    # No reload: the server closes the socket (4003) and the app shows the terms.
    modal = page.get_by_test_id("terms-dialog")
    await expect(modal).to_be_visible()
    await expect(modal.get_by_test_id("terms-text")).to_have_text("New rules.\n新规则。")
    await expect(page.get_by_test_id("app")).to_have_count(0)
    await modal.get_by_test_id("terms-accept").click()
    await expect(page.get_by_test_id("app")).to_be_visible()
    await expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "online")


async def test_compliance_officers_see_the_organizations_exports(web: Web, org: Org) -> None:
    text = unique("on the list")
    await post_message(org.base_url, org.alice, org.group.id, text)
    officer = await make_person(org, "olga", "compliance_officer")
    async with httpx.AsyncClient(base_url=org.base_url, timeout=10.0) as client:
        resp = await client.post(
            "/api/v1/compliance/exports",
            json={"people": [org.alice.id]},
            headers=org.owner.headers,
        )
        assert resp.status_code == 202, resp.text
        owners = resp.json()["id"]

    session = await web.open(officer, phone=True)
    page = session.page
    await open_export(page)
    dialog = page.get_by_test_id("compliance-export")
    jobs = dialog.get_by_test_id("export-jobs")
    theirs = jobs.locator(f"[data-testid=export-job][data-id='{owners}']")
    await expect(theirs).to_have_attribute("data-status", "done")
    await expect(theirs).to_contain_text(f"@{org.owner.username}")

    # Her own export joins the list, newest first, and is followed to the end there too.
    await run_export(page, [org.bob.id])
    rows = jobs.get_by_test_id("export-job")
    await expect(rows).to_have_count(2)
    await expect(rows.first).to_contain_text("@olga")
    await expect(rows.first).to_have_attribute("data-status", "done")

    # The owner's finished export downloads from the list.
    async with page.expect_download() as info:
        await theirs.get_by_test_id("export-job-download").click()
    download = await info.value
    with zipfile.ZipFile(io.BytesIO((await download.path()).read_bytes())) as zf:
        assert text in zf.read("messages.jsonl").decode("utf-8")
