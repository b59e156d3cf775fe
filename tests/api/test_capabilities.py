"""GET /users/me/capabilities: what each org role may do, as the web client reads it, and that
it agrees with what the server then allows."""

from __future__ import annotations

from typing import Any

import httpx

from enclave.domain.policy import OrgAction
from tests.api.helpers import API
from tests.api.test_org_model import dept, move
from tests.conftest import TEST_PASSWORD, Person, World

ALL = ["owner", "admin", "compliance_officer", "department_admin", "member", "guest"]


async def caps(client: httpx.AsyncClient, who: Person) -> dict[str, Any]:
    resp = await client.get(f"{API}/users/me/capabilities", headers=who.headers)
    assert resp.status_code == 200, resp.text
    found: dict[str, Any] = resp.json()
    return found


async def test_capabilities_of_each_role(world: World, client: httpx.AsyncClient) -> None:
    owner = await world.owner()
    eng = await dept(client, owner, "Engineering")
    backend = await dept(client, owner, "Backend", eng)
    await dept(client, owner, "Sales")
    people = {role: await world.person(f"p_{role}", role) for role in ALL[1:]}
    people["owner"] = owner
    # (grant_roles, set_roles, administered_roles) as docs/permissions.md states them.
    expected = {
        "owner": (ALL, ALL, ALL),
        "admin": (ALL[2:], ALL[2:], ALL[1:]),
        "compliance_officer": ([], [], []),
        "department_admin": (["member", "guest"], [], ["member", "guest"]),
        "member": ([], [], []),
        "guest": ([], [], []),
    }
    for role, who in people.items():
        got = await caps(client, who)
        grant, set_, administered = expected[role]
        assert got["grant_roles"] == grant, role
        assert got["set_roles"] == set_, role
        assert got["administered_roles"] == administered, role
        assert set(got["actions"]) == {a.value for a in OrgAction}, role
        assert got["department_ids"] == [], role  # no assignment yet

    scopes = {role: (await caps(client, who))["actions"] for role, who in people.items()}
    assert scopes["owner"]["department.manage"] == "org"
    assert scopes["admin"]["compliance.export"] == "none"
    assert scopes["compliance_officer"]["compliance.export"] == "org"
    assert scopes["compliance_officer"]["audit.read"] == "org"
    assert scopes["compliance_officer"]["user.create"] == "none"
    assert scopes["department_admin"]["user.create"] == "subtree"
    assert scopes["department_admin"]["user.set_role"] == "none"
    assert scopes["member"]["channel.browse"] == "org"
    assert scopes["guest"]["channel.browse"] == "none"
    assert scopes["guest"]["conversation.create"] == "none"

    # A department admin reaches the departments assigned to them and those below.
    dana = people["department_admin"]
    assigned = await client.put(f"{API}/departments/{eng}/admins/{dana.id}", headers=owner.headers)
    assert assigned.status_code == 200, assigned.text
    assert (await caps(client, dana))["department_ids"] == sorted([eng, backend])
    assert (await caps(client, owner))["department_ids"] == []  # org-wide: no subtree


async def test_capabilities_agree_with_what_the_server_allows(
    world: World, client: httpx.AsyncClient
) -> None:
    """Each role creates an account of every role (in its reach) and changes a role: the server
    allows exactly what the capabilities say."""
    owner = await world.owner()
    eng = await dept(client, owner, "Engineering")
    people = {role: await world.person(f"q_{role}", role) for role in ALL[1:]}
    people["owner"] = owner
    dana = people["department_admin"]
    assigned = await client.put(f"{API}/departments/{eng}/admins/{dana.id}", headers=owner.headers)
    assert assigned.status_code == 200, assigned.text
    target = await world.person("target", "member")
    assert (await move(client, owner, target.id, eng)).status_code == 200
    for role, who in people.items():
        got = await caps(client, who)
        where = got["department_ids"][0] if got["department_ids"] else None
        for new_role in ALL:
            resp = await client.post(
                f"{API}/users",
                json={
                    "username": f"n_{role}_{new_role}"[:32],
                    "password": TEST_PASSWORD,
                    "display_name": "n",
                    "role": new_role,
                    "department_id": where,
                },
                headers=who.headers,
            )
            assert (resp.status_code == 201) == (new_role in got["grant_roles"]), (role, new_role)
        changed = await client.put(
            f"{API}/users/{target.id}/role", json={"role": "guest"}, headers=who.headers
        )
        assert (changed.status_code == 200) == ("guest" in got["set_roles"]), (role, changed.text)
        if changed.status_code == 200:
            back = await client.put(
                f"{API}/users/{target.id}/role", json={"role": "member"}, headers=owner.headers
            )
            assert back.status_code == 200, back.text
