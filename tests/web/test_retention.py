"""The "Retention & holds" dialog: an admin sets the default and previews the next run; a
compliance officer places and releases a legal hold; members see neither."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.web.conftest import Org, Web
from tests.web.test_audit_log import make_admin
from tests.web.test_compliance import make_person

pytestmark = [pytest.mark.web, pytest.mark.asyncio(loop_scope="session")]


async def test_admin_sets_retention_and_previews_the_run(web: Web, org: Org) -> None:
    member = await web.open(org.alice)
    await expect(member.page.get_by_test_id("new-conversation")).to_be_visible()
    await expect(member.page.get_by_test_id("retention-button")).to_have_count(0)

    admin = await make_admin(org, "rita")
    page = (await web.open(admin)).page
    await page.get_by_test_id("retention-button").click()
    dialog = page.get_by_test_id("retention-dialog")
    await expect(dialog).to_be_visible()
    await expect(dialog.get_by_test_id("retention-overrides")).to_be_visible()
    await dialog.get_by_test_id("retention-mode").select_option("days")
    await dialog.get_by_test_id("retention-days").fill("30")
    await dialog.get_by_test_id("retention-save").click()
    await expect(dialog.get_by_test_id("retention-status")).to_have_text("Saved.")
    # Admins do not manage holds.
    await expect(dialog.get_by_test_id("holds")).to_have_count(0)

    await dialog.get_by_test_id("retention-preview-button").click()
    summary = dialog.get_by_test_id("retention-preview-summary")
    await expect(summary).to_have_attribute("data-messages", "0")  # nothing is 30 days old

    # Reopened, the dialog shows the saved default.
    await dialog.get_by_role("button", name="Close").click()
    await page.get_by_test_id("retention-button").click()
    await expect(page.get_by_test_id("retention-mode")).to_have_value("days")
    await expect(page.get_by_test_id("retention-days")).to_have_value("30")


async def test_compliance_officer_places_and_releases_a_hold(web: Web, org: Org) -> None:
    officer = await make_person(org, "olga", "compliance_officer")
    page = (await web.open(officer)).page
    await page.get_by_test_id("retention-button").click()
    dialog = page.get_by_test_id("retention-dialog")
    holds = dialog.get_by_test_id("holds")
    await expect(holds.get_by_test_id("holds-empty")).to_be_visible()
    # Compliance officers read the policy but do not change it.
    await expect(dialog.get_by_test_id("retention-save")).to_have_count(0)
    await expect(dialog.get_by_test_id("retention-mode")).to_be_disabled()

    await holds.get_by_test_id("hold-kind").select_option("person")
    await holds.get_by_test_id("hold-target").select_option(org.bob.id)
    await holds.get_by_test_id("hold-reason").fill("Case 2026-17")
    await holds.get_by_test_id("hold-create").click()
    row = holds.get_by_test_id("hold-row")
    await expect(row).to_have_count(1)
    await expect(row).to_have_attribute("data-target", org.bob.id)
    await expect(row).to_contain_text("Case 2026-17")
    await expect(holds.get_by_test_id("holds-empty")).to_be_hidden()

    await row.get_by_test_id("hold-release").click()
    await expect(holds.get_by_test_id("hold-row")).to_have_count(0)
    await expect(holds.get_by_test_id("holds-empty")).to_be_visible()
    await expect(dialog.get_by_test_id("retention-status")).to_have_text("Hold released.")
