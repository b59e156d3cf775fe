"""The Security screen: enrolling an authenticator app and signing in with its codes, a
recovery code, signing out another session, and an organization that requires MFA.

Codes are computed here with pyotp against the real server's clock. After the enrolment used the
code of the current 30-second step, the next sign-in uses the next step's code, which the server
accepts (one step of drift) and which is always later than the one used."""

from __future__ import annotations

import time

import httpx
import pyotp
import pytest
from playwright.async_api import Page, expect

from tests.e2e.test_acceptance import PASSWORD, Person
from tests.web.conftest import RECONNECT_TIMEOUT_MS, Org, Web, submit_button

pytestmark = [pytest.mark.web, pytest.mark.asyncio(loop_scope="session")]


def next_code(secret: str) -> str:
    return str(pyotp.TOTP(secret).at(int(time.time()) + 30))


async def open_security(page: Page) -> None:
    await page.get_by_test_id("profile-button").click()
    await page.get_by_test_id("security-button").click()
    await expect(page.get_by_test_id("security")).to_be_visible()


async def enrol_in_ui(page: Page) -> tuple[str, list[str]]:
    """Enrol through the open enrolment panel; return the secret and the recovery codes."""
    enrol = page.get_by_test_id("mfa-enrol")
    await expect(enrol.get_by_test_id("mfa-qr")).to_be_visible()
    src = await enrol.get_by_test_id("mfa-qr").get_attribute("src")
    assert src is not None and src.startswith("data:image/svg+xml")
    secret = (await enrol.get_by_test_id("mfa-secret").inner_text()).replace(" ", "")
    form = page.get_by_test_id("mfa-confirm-form")
    await form.locator("input[name=code]").fill(pyotp.TOTP(secret).now())
    await submit_button("mfa-confirm-form", page).click()
    codes_panel = page.get_by_test_id("recovery-codes")
    await expect(codes_panel.get_by_test_id("recovery-code")).to_have_count(10)
    codes = await codes_panel.get_by_test_id("recovery-code").all_inner_texts()
    await codes_panel.get_by_test_id("recovery-codes-done").click()
    return secret, codes


async def sign_in_with_code(page: Page, username: str, code: str, *, recovery: bool) -> None:
    form = page.get_by_test_id("login-form")
    await form.locator("input[name=username]").fill(username)
    await form.locator("input[name=password]").fill(PASSWORD)
    await submit_button("login-form", page).click()
    otp = page.get_by_test_id("login-otp")
    await expect(otp).to_be_visible()  # the server said mfa_required
    if recovery:
        await page.get_by_test_id("use-recovery-code").click()
        await expect(otp).to_have_attribute("name", "recovery_code")
    await otp.fill(code)
    await submit_button("login-form", page).click()
    await expect(page.get_by_test_id("app")).to_be_visible()
    await expect(page.get_by_test_id("connection-status")).to_have_attribute(
        "data-state", "online", timeout=RECONNECT_TIMEOUT_MS
    )


async def test_enrol_then_sign_in_with_a_code_and_with_a_recovery_code(web: Web, org: Org) -> None:
    laptop = await web.open(org.bob, name="bob-laptop")
    page = laptop.page
    await open_security(page)
    status = page.get_by_test_id("mfa-status")
    await expect(status).to_have_attribute("data-state", "off")
    await page.get_by_test_id("mfa-start").click()
    secret, codes = await enrol_in_ui(page)
    await expect(status).to_have_attribute("data-state", "on")
    await expect(page.get_by_test_id("recovery-codes-left")).to_contain_text("10")

    # A new device: password, then the authenticator code.
    phone = await web.open(name="bob-phone", phone=True)
    await sign_in_with_code(phone.page, "bob", next_code(secret), recovery=False)
    # Another: password, then a recovery code, which is then used up.
    tablet = await web.open(name="bob-tablet")
    await sign_in_with_code(tablet.page, "bob", codes[0], recovery=True)
    again = await web.open(name="bob-again")
    form = again.page.get_by_test_id("login-form")
    await form.locator("input[name=username]").fill("bob")
    await form.locator("input[name=password]").fill(PASSWORD)
    await submit_button("login-form", again.page).click()
    await again.page.get_by_test_id("use-recovery-code").click()
    await again.page.get_by_test_id("login-otp").fill(codes[0])
    await submit_button("login-form", again.page).click()
    await expect(again.page.get_by_test_id("login-error")).to_be_visible()
    await expect(again.page.get_by_test_id("app")).to_have_count(0)

    await page.reload()
    await open_security(page)
    await expect(page.get_by_test_id("recovery-codes-left")).to_contain_text("9")


async def test_revoke_another_session_and_sign_out_everywhere_else(web: Web, org: Org) -> None:
    laptop = await web.open(org.carol, name="carol-laptop")
    phone = await web.open(org.carol, phone=True, name="carol-phone")
    tablet = await web.open(org.carol, name="carol-tablet")
    page = laptop.page
    await open_security(page)
    security = page.get_by_test_id("security")
    sessions = security.get_by_test_id("session-item")
    await expect(
        security.locator('[data-testid="session-item"][data-current="true"]')
    ).to_have_count(1)
    count = await sessions.count()
    assert count >= 4  # three browsers and the REST log-in that made her

    others = security.locator('[data-testid="session-item"]:not([data-current="true"])')
    await others.first.get_by_test_id("revoke-session").click()
    await expect(sessions).to_have_count(count - 1)
    await security.get_by_test_id("revoke-other-sessions").click()
    await expect(sessions).to_have_count(1)
    for other in (phone, tablet):
        await expect(other.page.get_by_test_id("login-form")).to_be_visible(
            timeout=RECONNECT_TIMEOUT_MS
        )
    await expect(page.get_by_test_id("app")).to_be_visible()


async def test_an_org_that_requires_mfa_shows_the_enrolment_first(web: Web, org: Org) -> None:
    admin = await make_admin(org, "ada")
    async with httpx.AsyncClient(base_url=org.base_url, timeout=10.0) as client:
        resp = await client.patch(
            "/api/v1/org/settings", json={"require_mfa": True}, headers=admin.headers
        )
        assert resp.status_code == 200, resp.text
    session = await web.open(name="alice")
    page = session.page
    form = page.get_by_test_id("login-form")
    await form.locator("input[name=username]").fill("alice")
    await form.locator("input[name=password]").fill(PASSWORD)
    await submit_button("login-form", page).click()
    await expect(page.get_by_test_id("mfa-enrollment-required")).to_be_visible()
    await expect(page.get_by_test_id("app")).to_have_count(0)
    await enrol_in_ui(page)
    await expect(page.get_by_test_id("app")).to_be_visible()
    await expect(page.get_by_test_id("connection-status")).to_have_attribute(
        "data-state", "online", timeout=RECONNECT_TIMEOUT_MS
    )


async def make_admin(org: Org, username: str) -> Person:
    """An admin made over REST by the owner, with the shared test password."""
    async with httpx.AsyncClient(base_url=org.base_url, timeout=10.0) as client:
        made = await client.post(
            "/api/v1/users",
            json={"username": username, "password": PASSWORD, "role": "admin"},
            headers=org.owner.headers,
        )
        assert made.status_code == 201, made.text
        login = await client.post(
            "/api/v1/auth/login", json={"username": username, "password": PASSWORD}
        )
        assert login.status_code == 200, login.text
        token = login.json()["token"]
    return Person(made.json()["id"], username, {"Authorization": f"Bearer {token}"})
