"""axe-core (vendored in tests/web/vendor/) finds no serious or critical violation on the login,
conversation, audit log, people, retention and security screens, on desktop and phone, in both
languages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.e2e.test_acceptance import PASSWORD
from tests.web.conftest import Org, Web
from tests.web.test_audit_log import make_admin
from tests.web.test_compliance import make_person, open_export, run_export
from tests.web.test_security import enrol_in_ui, open_security
from tests.web.ui import message, open_conversation, post_message, send, unique

pytestmark = [pytest.mark.web, pytest.mark.asyncio(loop_scope="session")]

AXE_SOURCE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text("utf-8")
BLOCKING = ("serious", "critical")

RUN_AXE = """async () => {
    const result = await axe.run(document, {resultTypes: ['violations']});
    return result.violations.map(v => ({
        id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
        nodes: v.nodes.map(n => ({target: n.target, html: n.html, summary: n.failureSummary})),
    }));
}"""


async def violations(page: Page, screen: str) -> list[dict[str, Any]]:
    """Run axe on the page as it is now; print every violation; return the blocking ones."""
    # The page's CSP forbids injected <script> tags; evaluate() runs outside the page's CSP.
    if not await page.evaluate("() => typeof window.axe === 'object'"):
        await page.evaluate(AXE_SOURCE)
    found: list[dict[str, Any]] = await page.evaluate(RUN_AXE)
    for v in found:
        print(f"[{screen}] {v['impact']}: {v['id']} ({v['help']}) on {len(v['nodes'])} node(s)")
    return [v for v in found if v["impact"] in BLOCKING]


def describe(problems: dict[str, list[dict[str, Any]]]) -> str:
    return json.dumps(problems, indent=1, ensure_ascii=False)[:20_000]


async def test_login_screen_has_no_serious_violations(web: Web, org: Org) -> None:
    problems = {}
    for locale, phone in (("en-US", False), ("zh-CN", True)):
        session = await web.open(locale=locale, phone=phone, name=f"login-{locale}")
        problems[f"login {locale}"] = await violations(session.page, f"login {locale}")

        login = session.page.get_by_test_id("login-form")  # and with its error shown
        await login.locator("input[name=username]").fill("nobody")
        await login.locator("input[name=password]").fill("wrong password")
        await login.locator("input[name=password]").press("Enter")
        await expect(session.page.get_by_test_id("login-error")).to_be_visible()
        problems[f"login error {locale}"] = await violations(session.page, f"error {locale}")
    assert not any(problems.values()), describe(problems)


async def test_conversation_screen_has_no_serious_violations(web: Web, org: Org) -> None:
    for text in ("Morning! Is the build green?", "早上好，构建通过了吗？"):
        await post_message(org.base_url, org.bob, org.group.id, text)
    problems = {}
    for locale, phone in (("en-US", False), ("zh-CN", True)):
        session = await web.open(org.alice, locale=locale, phone=phone, name=f"conv-{locale}")
        page = session.page
        await open_conversation(page, org.group.id)
        mine = unique("Yes, all green")
        await send(page, mine)
        await expect(message(page, "Is the build green?")).to_have_count(1)
        problems[f"conversation {locale}"] = await violations(page, f"conversation {locale}")
    assert not any(problems.values()), describe(problems)


async def test_audit_log_screen_has_no_serious_violations(web: Web, org: Org) -> None:
    """The admin's audit log (its table, filters and a verification result)."""
    problems = {}
    for locale, phone in (("en-US", False), ("zh-CN", True)):
        # The owner's first password is not PASSWORD: an admin made over REST signs in instead.
        admin = await make_admin(org, f"ada{locale[:2]}")
        session = await web.open(admin, locale=locale, phone=phone, name=f"audit-{locale}")
        page = session.page
        await page.get_by_test_id("audit-log-button").click()
        screen = page.get_by_test_id("audit-log")
        await expect(screen.get_by_test_id("audit-entry").first).to_be_visible()
        await screen.get_by_test_id("audit-verify").click()
        await expect(screen.get_by_test_id("audit-verify-result")).to_have_attribute(
            "data-ok", "true"
        )
        problems[f"audit {locale}"] = await violations(page, f"audit {locale}")
    assert not any(problems.values()), describe(problems)


async def test_retention_dialog_has_no_serious_violations(web: Web, org: Org) -> None:
    """The "Retention & holds" dialog of a compliance officer (policy, preview table, holds
    table and form)."""
    problems = {}
    for locale, phone in (("en-US", False), ("zh-CN", True)):
        officer = await make_person(org, f"rho{locale[:2]}", "compliance_officer")
        session = await web.open(officer, locale=locale, phone=phone, name=f"retention-{locale}")
        page = session.page
        await page.get_by_test_id("retention-button").click()
        dialog = page.get_by_test_id("retention-dialog")
        holds = dialog.get_by_test_id("holds")
        await holds.get_by_test_id("hold-target").select_option(org.carol.id)
        await holds.get_by_test_id("hold-reason").fill(f"Case {locale}")
        await holds.get_by_test_id("hold-create").click()
        await expect(holds.get_by_test_id("hold-row").first).to_be_visible()
        await dialog.get_by_test_id("retention-preview-button").click()
        await expect(dialog.get_by_test_id("retention-preview-summary")).to_be_visible()
        problems[f"retention {locale}"] = await violations(page, f"retention {locale}")
    assert not any(problems.values()), describe(problems)


async def test_people_screen_has_no_serious_violations(web: Web, org: Org) -> None:
    """The People screen (the people table with its role and department pickers and
    deactivate buttons, the new-account form, and the department tree with its forms: add,
    move, department admins with one assigned)."""
    problems = {}
    dana = await make_person(org, "dana", "department_admin")
    for locale, phone in (("en-US", False), ("zh-CN", True)):
        admin = await make_admin(org, f"pat{locale[:2]}")
        session = await web.open(admin, locale=locale, phone=phone, name=f"people-{locale}")
        page = session.page
        await page.get_by_test_id("people-button").click()
        screen = page.get_by_test_id("people")
        await expect(screen.get_by_test_id("person-row").first).to_be_visible()
        await expect(screen.get_by_test_id("person-create")).to_be_visible()
        add = screen.get_by_test_id("department-add")
        await add.locator("input[name=name]").fill(f"Team {locale}")
        await add.locator("button[type=submit]").click()
        await expect(screen.get_by_test_id("department-item").first).to_be_visible()
        assign = screen.get_by_test_id("department-admin-assign")
        await assign.locator("select[name=admin]").select_option(dana.id)
        await assign.locator("button[type=submit]").click()
        await expect(screen.get_by_test_id("department-admin").first).to_be_visible()
        problems[f"people {locale}"] = await violations(page, f"people {locale}")
    assert not any(problems.values()), describe(problems)


async def test_security_screen_has_no_serious_violations(web: Web, org: Org) -> None:
    """The Security screen (MFA status and sessions), its enrolment step (QR code, secret, code
    field) and the log-in form asking for the authenticator code."""
    problems = {}
    for (locale, phone), person in zip(
        (("en-US", False), ("zh-CN", True)), (org.alice, org.carol), strict=True
    ):
        session = await web.open(person, locale=locale, phone=phone, name=f"security-{locale}")
        page = session.page
        await open_security(page)
        await expect(page.get_by_test_id("session-item").first).to_be_visible()
        await expect(page.get_by_test_id("mfa-status")).to_be_visible()
        problems[f"security {locale}"] = await violations(page, f"security {locale}")
        await page.get_by_test_id("mfa-start").click()
        await expect(page.get_by_test_id("mfa-qr")).to_be_visible()
        problems[f"enrol {locale}"] = await violations(page, f"enrol {locale}")
        await enrol_in_ui(page)

        fresh = await web.open(locale=locale, phone=phone, name=f"otp-{locale}")
        form = fresh.page.get_by_test_id("login-form")
        await form.locator("input[name=username]").fill(person.username)
        await form.locator("input[name=password]").fill(PASSWORD)
        await form.locator("input[name=password]").press("Enter")
        await expect(fresh.page.get_by_test_id("login-otp")).to_be_visible()
        problems[f"login code {locale}"] = await violations(fresh.page, f"login code {locale}")
    assert not any(problems.values()), describe(problems)


async def test_compliance_export_and_terms_have_no_serious_violations(web: Web, org: Org) -> None:
    """The compliance officer's export dialog (with a finished export and the list of the
    organization's exports) and the terms modal."""
    problems = {}
    for locale, phone in (("en-US", False), ("zh-CN", True)):
        officer = await make_person(org, f"olga{locale[:2]}", "compliance_officer")
        session = await web.open(officer, locale=locale, phone=phone, name=f"export-{locale}")
        page = session.page
        await open_export(page)
        problems[f"export {locale}"] = await violations(page, f"export {locale}")
        await run_export(page, [org.alice.id])
        # The list of the organization's exports, with a finished one to download.
        jobs = page.get_by_test_id("export-jobs")
        await expect(jobs.get_by_test_id("export-job-download").first).to_be_visible()
        problems[f"export done {locale}"] = await violations(page, f"export done {locale}")
    async with httpx.AsyncClient(base_url=org.base_url, timeout=10.0) as client:
        resp = await client.put(
            "/api/v1/org/terms",
            json={"version": "v1", "text": "Be kind. 友善待人。"},
            headers=org.owner.headers,
        )
        assert resp.status_code == 200, resp.text
    for locale, phone in (("en-US", False), ("zh-CN", True)):
        session = await web.open(locale=locale, phone=phone, name=f"terms-{locale}")
        page = session.page
        form = page.get_by_test_id("login-form")
        await form.locator("input[name=username]").fill(org.bob.username)
        await form.locator("input[name=password]").fill(PASSWORD)
        await form.locator("input[name=password]").press("Enter")
        await expect(page.get_by_test_id("terms-dialog")).to_be_visible()
        problems[f"terms {locale}"] = await violations(page, f"terms {locale}")
    assert not any(problems.values()), describe(problems)
