"""The admin's "People" screen: roles, departments and the department tree; and what guests and
members do not get in the sidebar."""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import expect

from tests.e2e.harness import bearer, login
from tests.e2e.test_acceptance import PASSWORD, Person
from tests.web.conftest import Org, Web, submit_button
from tests.web.test_audit_log import make_admin
from tests.web.ui import open_conversation

pytestmark = [pytest.mark.web, pytest.mark.asyncio(loop_scope="session")]


async def make_person(org: Org, username: str, role: str) -> Person:
    async with httpx.AsyncClient(base_url=org.base_url, timeout=10.0) as client:
        resp = await client.post(
            "/api/v1/users",
            json={"username": username, "password": PASSWORD, "role": role},
            headers=org.owner.headers,
        )
        assert resp.status_code == 201, resp.text
        token = await login(client, username, PASSWORD)
        return Person(resp.json()["id"], username, bearer(token))


async def rest_user(org: Org, user_id: str) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=org.base_url, timeout=10.0) as client:
        resp = await client.get(f"/api/v1/users/{user_id}", headers=org.owner.headers)
        assert resp.status_code == 200, resp.text
        body: dict[str, object] = resp.json()
        return body


async def test_admin_manages_people_and_departments(web: Web, org: Org) -> None:
    admin = await make_admin(org)
    member = await web.open(org.alice)
    await expect(member.page.get_by_test_id("people-button")).to_have_count(0)

    session = await web.open(admin)
    page = session.page
    await page.get_by_test_id("people-button").click()
    screen = page.get_by_test_id("people")
    await expect(screen).to_be_visible()
    carol = screen.locator(f"[data-testid=person-row][data-id='{org.carol.id}']")
    await expect(carol).to_have_attribute("data-role", "member")
    # An admin may not touch the owner's role.
    owner_row = screen.locator(f"[data-testid=person-row][data-id='{org.owner.id}']")
    await expect(owner_row.get_by_test_id("person-role")).to_be_disabled()

    await carol.get_by_test_id("person-role").select_option("compliance_officer")
    await expect(carol).to_have_attribute("data-role", "compliance_officer")
    assert (await rest_user(org, org.carol.id))["role"] == "compliance_officer"

    # The tree: add Engineering, Backend inside it, rename Backend, then delete it.
    add = screen.get_by_test_id("department-add")
    await add.locator("input[name=name]").fill("Engineering")
    await submit_button("department-add", page).click()
    eng = screen.locator("[data-testid=department-item][data-name='Engineering']")
    await expect(eng).to_have_count(1)
    eng_id = await eng.get_attribute("data-id")
    await add.locator("input[name=name]").fill("Backend")
    await add.locator("select[name=parent]").select_option(eng_id)
    await submit_button("department-add", page).click()
    backend = screen.locator("[data-testid=department-item][data-name='Backend']")
    await expect(backend).to_have_attribute("data-parent", eng_id or "")
    await expect(backend).to_have_attribute("data-depth", "1")
    await backend.get_by_test_id("department-name").fill("Platform")
    await backend.get_by_test_id("department-save").click()
    platform = screen.locator("[data-testid=department-item][data-name='Platform']")
    await expect(platform).to_have_count(1)

    # Move alice into Engineering; then Engineering is not empty and cannot be deleted.
    alice = screen.locator(f"[data-testid=person-row][data-id='{org.alice.id}']")
    await alice.get_by_test_id("person-department").select_option(eng_id)
    await expect(alice).to_have_attribute("data-department", eng_id or "")
    assert (await rest_user(org, org.alice.id))["department_id"] == eng_id
    await eng.get_by_test_id("department-delete").click()
    await expect(screen.get_by_test_id("people-status")).not_to_have_text("Saved.")
    await expect(eng).to_have_count(1)
    await platform.get_by_test_id("department-delete").click()
    await expect(platform).to_have_count(0)


async def test_department_admins_see_people_but_not_the_tree(web: Web, org: Org) -> None:
    dana = await make_person(org, "dana", "department_admin")
    session = await web.open(dana)
    await session.page.get_by_test_id("people-button").click()
    screen = session.page.get_by_test_id("people")
    await expect(screen.get_by_test_id("person-row").first).to_be_visible()
    await expect(screen.get_by_test_id("department-tree")).to_have_count(0)
    # No department is assigned to dana: nobody is hers to move, and roles are not hers to set.
    row = screen.locator(f"[data-testid=person-row][data-id='{org.bob.id}']")
    await expect(row.get_by_test_id("person-department")).to_be_disabled()
    await expect(row.get_by_test_id("person-role")).to_be_disabled()


async def test_guests_get_no_channel_browser_and_no_new_conversations(web: Web, org: Org) -> None:
    gil = await make_person(org, "gil", "guest")
    session = await web.open(gil)
    page = session.page
    await expect(page.get_by_test_id("app")).to_be_visible()
    for testid in ("new-conversation", "browse-channels", "people-button", "audit-log-button"):
        await expect(page.get_by_test_id(testid)).to_have_count(0)


async def test_announcement_channels_and_readers_get_no_composer(web: Web, org: Org) -> None:
    async with httpx.AsyncClient(base_url=org.base_url, timeout=10.0) as client:
        resp = await client.post(
            "/api/v1/conversations",
            json={"kind": "channel", "name": "news", "members": [org.bob.id], "announcement": True},
            headers=org.alice.headers,
        )
        assert resp.status_code == 201, resp.text
        news = resp.json()["id"]
    session = await web.open(org.bob)
    page = session.page
    await open_conversation(page, news)
    note = page.get_by_test_id("read-only-note")
    await expect(note).to_have_attribute("data-reason", "announcementOnly")
    await expect(page.get_by_test_id("composer")).to_be_disabled()
    # Made a moderator, bob may post: the note goes and the composer comes back.
    async with httpx.AsyncClient(base_url=org.base_url, timeout=10.0) as client:
        resp = await client.patch(
            f"/api/v1/conversations/{news}/members/{org.bob.id}",
            json={"role": "moderator"},
            headers=org.alice.headers,
        )
        assert resp.status_code == 200, resp.text
    await expect(note).to_be_hidden()
    await expect(page.get_by_test_id("composer")).to_be_enabled()
    # In the group, alice makes him a read-only member.
    async with httpx.AsyncClient(base_url=org.base_url, timeout=10.0) as client:
        resp = await client.patch(
            f"/api/v1/conversations/{org.group.id}/members/{org.bob.id}",
            json={"role": "reader"},
            headers=org.alice.headers,
        )
        assert resp.status_code == 200, resp.text
    await open_conversation(page, org.group.id)
    await expect(page.get_by_test_id("read-only-note")).to_have_attribute("data-reason", "readOnly")
    await expect(page.get_by_test_id("composer")).to_be_disabled()


async def rest(org: Org, method: str, path: str, body: object = None) -> object:
    """A REST call as the owner; returns the JSON answer."""
    async with httpx.AsyncClient(base_url=org.base_url, timeout=10.0) as client:
        resp = await client.request(method, f"/api/v1{path}", json=body, headers=org.owner.headers)
        assert resp.is_success, resp.text
        return resp.json() if resp.content else None


async def test_admin_creates_deactivates_and_reactivates_accounts(web: Web, org: Org) -> None:
    admin = await make_admin(org)
    session = await web.open(admin)
    page = session.page
    await page.get_by_test_id("people-button").click()
    screen = page.get_by_test_id("people")
    await expect(screen.get_by_test_id("person-row").first).to_be_visible()
    # Neither oneself nor the owner (an admin does not administer owners) can be deactivated.
    mine = screen.locator(f"[data-testid=person-row][data-id='{admin.id}']")
    await expect(mine.get_by_test_id("person-active")).to_be_disabled()
    owner_row = screen.locator(f"[data-testid=person-row][data-id='{org.owner.id}']")
    await expect(owner_row.get_by_test_id("person-active")).to_be_disabled()

    form = screen.get_by_test_id("person-create")
    # Admins cannot give the owner or admin role.
    role_options = form.locator("select[name=role] option")
    await expect(role_options).to_have_count(4)
    roles = await role_options.evaluate_all("options => options.map(o => o.value)")
    assert roles == ["compliance_officer", "department_admin", "member", "guest"]
    await form.locator("input[name=username]").fill("dora")
    await form.locator("input[name=display_name]").fill("Dora Explorer")
    await form.locator("input[name=password]").fill(PASSWORD)
    await form.locator("select[name=role]").select_option("guest")
    await submit_button("person-create", page).click()
    dora = screen.locator("[data-testid=person-row][data-username='dora']")
    await expect(dora).to_have_attribute("data-role", "guest")
    await expect(form.locator("input[name=username]")).to_have_value("")
    dora_id = await dora.get_attribute("data-id")
    assert dora_id is not None
    created = await rest_user(org, dora_id)
    assert (created["display_name"], created["role"], created["is_active"]) == (
        "Dora Explorer",
        "guest",
        True,
    )
    async with httpx.AsyncClient(base_url=org.base_url, timeout=10.0) as client:
        await login(client, "dora", PASSWORD)  # the new account signs in

    # The same name again is refused, and says why.
    await form.locator("input[name=username]").fill("dora")
    await form.locator("input[name=password]").fill(PASSWORD)
    await submit_button("person-create", page).click()
    await expect(screen.get_by_test_id("people-status")).to_have_text("That username is taken.")

    toggle = dora.get_by_test_id("person-active")
    await expect(toggle).to_have_attribute("data-action", "deactivate")
    await toggle.click()  # the confirmation is accepted (tests/web/conftest.py)
    await expect(dora).to_have_attribute("data-active", "false")
    assert (await rest_user(org, dora_id))["is_active"] is False
    await expect(toggle).to_have_attribute("data-action", "activate")
    await toggle.click()
    await expect(dora).to_have_attribute("data-active", "true")
    assert (await rest_user(org, dora_id))["is_active"] is True


async def test_admin_moves_departments_and_assigns_department_admins_on_a_phone(
    web: Web, org: Org
) -> None:
    eng = await rest(org, "POST", "/departments", {"name": "Engineering"})
    ops = await rest(org, "POST", "/departments", {"name": "Ops"})
    assert isinstance(eng, dict) and isinstance(ops, dict)
    dana = await make_person(org, "dana", "department_admin")
    admin = await make_admin(org)
    session = await web.open(admin, phone=True)
    page = session.page
    await expect(page.get_by_test_id("app")).to_have_attribute("data-layout", "phone")
    await page.get_by_test_id("people-button").click()
    screen = page.get_by_test_id("people")
    ops_item = screen.locator(f"[data-testid=department-item][data-id='{ops['id']}']")
    await expect(ops_item).to_have_attribute("data-depth", "0")

    # Re-parent: Ops moves inside Engineering.
    move = screen.get_by_test_id("department-move")
    await move.locator("select[name=department]").select_option(ops["id"])
    await move.locator("select[name=parent]").select_option(eng["id"])
    await submit_button("department-move", page).click()
    await expect(ops_item).to_have_attribute("data-parent", eng["id"])
    await expect(ops_item).to_have_attribute("data-depth", "1")
    found = await rest(org, "GET", "/departments")
    assert isinstance(found, dict)
    parents = {d["id"]: d["parent_id"] for d in found["departments"]}
    assert parents[ops["id"]] == eng["id"]
    # Engineering cannot move inside Ops, which is inside it now.
    await move.locator("select[name=department]").select_option(eng["id"])
    await move.locator("select[name=parent]").select_option(ops["id"])
    await submit_button("department-move", page).click()
    await expect(screen.get_by_test_id("people-status")).to_have_text(
        "A department cannot be moved inside itself."
    )

    # Dana administers Engineering (and Ops below it) once assigned.
    assign = screen.get_by_test_id("department-admin-assign")
    await assign.locator("select[name=admin]").select_option(dana.id)
    await assign.locator("select[name=department]").select_option(eng["id"])
    await submit_button("department-admin-assign", page).click()
    eng_item = screen.locator(f"[data-testid=department-item][data-id='{eng['id']}']")
    await expect(
        eng_item.locator(f"[data-testid=department-admin][data-id='{dana.id}']")
    ).to_be_visible()
    found = await rest(org, "GET", "/departments")
    assert isinstance(found, dict)
    assert {d["id"]: d["admin_ids"] for d in found["departments"]}[eng["id"]] == [dana.id]
    async with httpx.AsyncClient(base_url=org.base_url, timeout=10.0) as client:
        resp = await client.put(
            f"/api/v1/users/{org.bob.id}/department",
            json={"department_id": ops["id"]},
            headers=dana.headers,
        )
        assert resp.status_code == 403, resp.text  # bob is in no department of hers yet
        await rest(org, "PUT", f"/users/{org.bob.id}/department", {"department_id": eng["id"]})
        resp = await client.put(
            f"/api/v1/users/{org.bob.id}/department",
            json={"department_id": ops["id"]},
            headers=dana.headers,
        )
        assert resp.status_code == 200, resp.text  # within her subtree

    await eng_item.get_by_test_id("department-admin-remove").click()
    await expect(eng_item.get_by_test_id("department-admin")).to_have_count(0)
    found = await rest(org, "GET", "/departments")
    assert isinstance(found, dict)
    assert {d["id"]: d["admin_ids"] for d in found["departments"]}[eng["id"]] == []


async def test_department_admins_create_accounts_in_their_departments(web: Web, org: Org) -> None:
    eng = await rest(org, "POST", "/departments", {"name": "Engineering"})
    other = await rest(org, "POST", "/departments", {"name": "Sales"})
    assert isinstance(eng, dict) and isinstance(other, dict)
    dana = await make_person(org, "dana", "department_admin")
    await rest(org, "PUT", f"/departments/{eng['id']}/admins/{dana.id}")
    session = await web.open(dana, phone=True)
    page = session.page
    await page.get_by_test_id("people-button").click()
    screen = page.get_by_test_id("people")
    form = screen.get_by_test_id("person-create")
    options = "options => options.map(o => o.value)"
    role_options = form.locator("select[name=role] option")
    await expect(role_options).to_have_count(2)
    assert await role_options.evaluate_all(options) == ["member", "guest"]
    # Only her own departments; a department is required of her. The list arrives after the
    # screen opens, so wait for it before reading it.
    place_options = form.locator("select[name=department] option")
    await expect(place_options).to_have_count(1)
    assert await place_options.evaluate_all(options) == [eng["id"]]
    await form.locator("input[name=username]").fill("erin")
    await form.locator("input[name=password]").fill(PASSWORD)
    await submit_button("person-create", page).click()
    erin = screen.locator("[data-testid=person-row][data-username='erin']")
    await expect(erin).to_have_attribute("data-department", eng["id"])
    # She administers erin: deactivation is hers to do, the role is not.
    await expect(erin.get_by_test_id("person-active")).to_be_enabled()
    await expect(erin.get_by_test_id("person-role")).to_be_disabled()


async def test_a_role_change_shows_at_once_in_an_open_app(web: Web, org: Org) -> None:
    session = await web.open(org.alice)
    page = session.page
    await expect(page.get_by_test_id("people-button")).to_have_count(0)
    await rest(org, "PUT", f"/users/{org.alice.id}/role", {"role": "admin"})
    # No reload: the socket's `account.updated` brings the admin tools.
    await expect(page.get_by_test_id("people-button")).to_be_visible()
    await expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "online")
    await rest(org, "PUT", f"/users/{org.alice.id}/role", {"role": "member"})
    await expect(page.get_by_test_id("people-button")).to_have_count(0)
