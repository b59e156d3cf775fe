"""Departments, org roles and their scopes, guests, announcement channels and read-only members,
through the REST API (docs/permissions.md)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from enclave.app import open_context
from enclave.cli.main import main
from enclave.config import load_config
from enclave.domain.ids import new_id
from enclave.services import auth
from enclave.services.context import Context
from enclave.storage import accounts as account_store
from enclave.storage import audit as audit_store
from tests.api.helpers import API, code, new_conv, people, send
from tests.api.test_visibility import rival, rival_org
from tests.conftest import FAST_AUTH, TEST_PASSWORD, Person, World

D = f"{API}/departments"


async def dept(client: httpx.AsyncClient, who: Person, name: str, parent: str | None = None) -> str:
    resp = await client.post(D, json={"name": name, "parent_id": parent}, headers=who.headers)
    assert resp.status_code == 201, resp.text
    assert resp.json()["parent_id"] == parent
    return str(resp.json()["id"])


async def move(
    client: httpx.AsyncClient, who: Person, user_id: str, dept_id: str | None
) -> httpx.Response:
    return await client.put(
        f"{API}/users/{user_id}/department", json={"department_id": dept_id}, headers=who.headers
    )


async def set_role(
    client: httpx.AsyncClient, who: Person, user_id: str, role: str
) -> httpx.Response:
    return await client.put(f"{API}/users/{user_id}/role", json={"role": role}, headers=who.headers)


async def audit_actions(ctx: Context) -> list[tuple[str, str | None, dict[str, Any]]]:
    entries = await ctx.db.read(lambda tx: audit_store.scan(tx, 0, 100_000))
    return [(e.action, e.target_id, e.details) for e in entries]


# -- departments ------------------------------------------------------------------------------


async def test_department_tree(world: World, client: httpx.AsyncClient) -> None:
    owner = await world.owner()
    (alice,) = await people(world, "alice")
    eng = await dept(client, owner, "Engineering")
    backend = await dept(client, owner, "Backend", eng)
    sales = await dept(client, owner, "Sales")
    await dept(client, owner, "Backend", sales)  # the same name under another parent is fine

    again = await client.post(D, json={"name": "backend", "parent_id": eng}, headers=owner.headers)
    assert code(again) == (409, "department_name_taken")
    listed = (await client.get(D, headers=alice.headers)).json()["departments"]
    assert [d["name"] for d in listed] == ["Backend", "Backend", "Engineering", "Sales"]
    assert {(d["name"], d["parent_id"]) for d in listed} == {
        ("Backend", eng),
        ("Backend", sales),
        ("Engineering", None),
        ("Sales", None),
    }

    renamed = await client.patch(f"{D}/{backend}", json={"name": "Platform"}, headers=owner.headers)
    assert renamed.status_code == 200 and renamed.json()["name"] == "Platform", renamed.text
    moved = await client.patch(f"{D}/{backend}", json={"parent_id": sales}, headers=owner.headers)
    assert moved.json()["parent_id"] == sales
    top = await client.patch(f"{D}/{backend}", json={"parent_id": None}, headers=owner.headers)
    assert top.json()["parent_id"] is None
    await client.patch(f"{D}/{backend}", json={"parent_id": eng}, headers=owner.headers)
    cycle = await client.patch(f"{D}/{eng}", json={"parent_id": backend}, headers=owner.headers)
    assert code(cycle) == (422, "department_cycle")
    itself = await client.patch(f"{D}/{eng}", json={"parent_id": eng}, headers=owner.headers)
    assert code(itself) == (422, "department_cycle")

    # Ten levels at most: Engineering > Platform > 8 more is ten; one more is refused, and so is
    # hanging the ten-level chain under another department.
    parent = backend
    for level in range(3, 11):
        parent = await dept(client, owner, f"L{level}", parent)
    deep = await client.post(D, json={"name": "L11", "parent_id": parent}, headers=owner.headers)
    assert code(deep) == (422, "department_too_deep")
    under = await client.patch(f"{D}/{eng}", json={"parent_id": sales}, headers=owner.headers)
    assert code(under) == (422, "department_too_deep")

    assert (await move(client, owner, alice.id, sales)).json()["department_id"] == sales
    for busy in (eng, sales):
        resp = await client.delete(f"{D}/{busy}", headers=owner.headers)
        assert code(resp) == (409, "department_not_empty"), busy
    assert (await move(client, owner, alice.id, None)).json()["department_id"] is None
    leaf = await dept(client, owner, "Temp")
    assert (await client.delete(f"{D}/{leaf}", headers=owner.headers)).status_code == 204
    assert code(await client.delete(f"{D}/{leaf}", headers=owner.headers)) == (404, "not_found")

    # Members read the tree but do not change it.
    for method, path, body in (
        ("POST", D, {"name": "Mine"}),
        ("PATCH", f"{D}/{eng}", {"name": "Mine"}),
        ("DELETE", f"{D}/{leaf}", None),
        ("PUT", f"{D}/{eng}/admins/{alice.id}", None),
    ):
        resp = await client.request(method, path, json=body, headers=alice.headers)
        assert code(resp) == (403, "forbidden"), (method, path)

    done = [a for a, _, _ in await audit_actions(world.ctx) if a.startswith("department.")]
    assert {"department.created", "department.updated", "department.deleted"} <= set(done)


async def test_departments_of_other_organizations_do_not_exist(
    world: World, client: httpx.AsyncClient
) -> None:
    owner = await world.owner()
    mine = await dept(client, owner, "Mine")
    org = await rival_org(world)
    mallory = await rival(world, org, "mallory")
    theirs = await dept(client, mallory, "Theirs")
    theirs_listed = (await client.get(D, headers=mallory.headers)).json()["departments"]
    assert [d["name"] for d in theirs_listed] == ["Theirs"]
    unknown = new_id()
    probes = [
        ("PATCH", "/departments/{d}", {"name": "pwned"}),
        ("DELETE", "/departments/{d}", None),
        ("PUT", "/departments/{d}/admins/" + mallory.id, None),
        ("POST", "/departments", {"name": "x", "parent_id": "{d}"}),
    ]
    for method, template, body in probes:
        results = []
        for target in (mine, unknown):
            filled = None
            if body is not None:
                filled = {k: (target if v == "{d}" else v) for k, v in body.items()}
            resp = await client.request(
                method, API + template.format(d=target), json=filled, headers=mallory.headers
            )
            results.append(resp)
        real, fake = results
        assert code(real) == (404, "not_found"), (method, template, real.text)
        assert real.content == fake.content, (method, template)
    # Nor can a department of hers be given to someone of the first org, or the reverse.
    cross = await move(client, mallory, owner.id, theirs)
    assert code(cross) == (404, "not_found")
    assert code(await move(client, owner, owner.id, theirs)) == (404, "not_found")


# -- roles ------------------------------------------------------------------------------------


async def test_role_changes(world: World, client: httpx.AsyncClient) -> None:
    owner = await world.owner()
    ada = await world.person("ada", role="admin")
    bob, carol = await people(world, "bob", "carol")
    eve = await world.person("eve", role="admin")

    assert code(await set_role(client, bob, carol.id, "admin")) == (403, "forbidden")
    done = await set_role(client, ada, carol.id, "compliance_officer")
    assert done.status_code == 200 and done.json()["role"] == "compliance_officer", done.text
    for role in ("department_admin", "guest", "member"):
        assert (await set_role(client, ada, carol.id, role)).json()["role"] == role
    # Admins neither make nor unmake owners and admins.
    assert code(await set_role(client, ada, carol.id, "admin")) == (403, "forbidden")
    assert code(await set_role(client, ada, carol.id, "owner")) == (403, "forbidden")
    assert code(await set_role(client, ada, eve.id, "member")) == (403, "forbidden")
    assert code(await set_role(client, ada, owner.id, "member")) == (403, "forbidden")
    assert code(await set_role(client, ada, ada.id, "member")) == (403, "forbidden")

    # The last owner stays one; with a second owner the first may step down.
    assert code(await set_role(client, owner, owner.id, "admin")) == (409, "last_owner")
    assert (await set_role(client, owner, bob.id, "owner")).json()["role"] == "owner"
    assert (await set_role(client, owner, owner.id, "member")).json()["role"] == "member"
    me = await client.get(f"{API}/users/me", headers=owner.headers)
    assert me.json()["role"] == "member"
    refused = await client.post(
        f"{API}/users", json={"username": "zed", "password": TEST_PASSWORD}, headers=owner.headers
    )
    assert code(refused) == (403, "forbidden")

    changes = [
        (t, d["from"], d["to"])
        for a, t, d in await audit_actions(world.ctx)
        if a == "user.role_changed"
    ]
    assert (carol.id, "member", "compliance_officer") in changes
    assert (owner.id, "owner", "member") in changes
    assert len(changes) == 6  # refusals and no-ops write nothing

    org = await rival_org(world)
    mallory = await rival(world, org, "mallory")
    assert code(await set_role(client, mallory, carol.id, "member")) == (404, "not_found")
    assert code(await set_role(client, bob, mallory.id, "member")) == (404, "not_found")


async def test_only_owners_create_owners_and_admins(
    world: World, client: httpx.AsyncClient
) -> None:
    await world.owner()
    ada = await world.person("ada", role="admin")
    for role, status in (("owner", 403), ("admin", 403), ("compliance_officer", 201)):
        resp = await client.post(
            f"{API}/users",
            json={"username": f"x-{role[:5]}", "password": TEST_PASSWORD, "role": role},
            headers=ada.headers,
        )
        assert resp.status_code == status, (role, resp.text)


async def test_compliance_officers_audit_but_do_not_administer(
    world: World, client: httpx.AsyncClient
) -> None:
    owner = await world.owner()
    (alice,) = await people(world, "alice")
    cora = await world.person("cora", role="compliance_officer")
    channel = await new_conv(client, alice, "channel", [], name="general")
    assert (await client.get(f"{API}/admin/audit", headers=cora.headers)).status_code == 200
    assert (await client.get(f"{API}/admin/audit/verify", headers=cora.headers)).status_code == 200
    everyone = await client.get(f"{API}/users?include_inactive=true", headers=cora.headers)
    assert everyone.status_code == 200
    refusals = [
        ("POST", "/users", {"username": "newbie", "password": TEST_PASSWORD}),
        ("POST", f"/users/{alice.id}/deactivate", None),
        ("POST", f"/users/{alice.id}/sessions/revoke", None),
        ("PUT", f"/users/{alice.id}/role", {"role": "guest"}),
        ("PUT", f"/users/{alice.id}/department", {"department_id": None}),
        ("POST", "/departments", {"name": "Legal"}),
        ("PATCH", "/org/settings", {"require_mfa": True}),
        ("POST", f"/conversations/{channel}/archive", None),
    ]
    for method, path, body in refusals:
        resp = await client.request(method, API + path, json=body, headers=cora.headers)
        assert code(resp) == (403, "forbidden"), (method, path, resp.text)
    # Owners and admins archive channels they are not in; that is chat administration.
    archived = await client.post(f"{API}/conversations/{channel}/archive", headers=owner.headers)
    assert archived.status_code == 200


# -- department admins ------------------------------------------------------------------------


async def test_department_admins_administer_their_subtree(
    world: World, client: httpx.AsyncClient
) -> None:
    owner = await world.owner()
    eng = await dept(client, owner, "Engineering")
    backend = await dept(client, owner, "Backend", eng)
    sales = await dept(client, owner, "Sales")
    dana = await world.person("dana", role="department_admin")
    bob, sam, nick, ada = await people(world, "bob", "sam", "nick", "ada")
    for who, where in ((bob, backend), (sam, sales), (ada, backend)):
        assert (await move(client, owner, who.id, where)).status_code == 200
    assert (await set_role(client, owner, ada.id, "admin")).status_code == 200

    member_as_admin = await client.put(f"{D}/{eng}/admins/{bob.id}", headers=owner.headers)
    assert code(member_as_admin) == (409, "not_department_admin")
    # Without an assignment the role administers nobody.
    assert code(await move(client, dana, bob.id, eng)) == (403, "forbidden")
    assigned = await client.put(f"{D}/{eng}/admins/{dana.id}", headers=owner.headers)
    assert assigned.json()["admin_ids"] == [dana.id]

    def new_user(name: str, **extra: Any) -> dict[str, Any]:
        return {"username": name, "password": TEST_PASSWORD, **extra}

    made = await client.post(
        f"{API}/users", json=new_user("newbie", department_id=backend), headers=dana.headers
    )
    assert made.status_code == 201 and made.json()["department_id"] == backend, made.text
    guest = await client.post(
        f"{API}/users",
        json=new_user("visitor", department_id=eng, role="guest"),
        headers=dana.headers,
    )
    assert guest.status_code == 201, guest.text
    for body in (
        new_user("nowhere"),
        new_user("salesy", department_id=sales),
        new_user("boss", department_id=eng, role="admin"),
        new_user("peer", department_id=eng, role="department_admin"),
    ):
        resp = await client.post(f"{API}/users", json=body, headers=dana.headers)
        assert code(resp) == (403, "forbidden"), body
    missing = await client.post(
        f"{API}/users", json=new_user("lost", department_id=new_id()), headers=dana.headers
    )
    assert code(missing) == (404, "not_found")

    # Inside the subtree: deactivate, list, activate, sign out, move.
    off = await client.post(f"{API}/users/{bob.id}/deactivate", headers=dana.headers)
    assert off.status_code == 200 and off.json()["is_active"] is False
    off_sam = await client.post(f"{API}/users/{sam.id}/deactivate", headers=owner.headers)
    assert off_sam.status_code == 200
    seen = await client.get(f"{API}/users?include_inactive=true", headers=dana.headers)
    names = {u["username"] for u in seen.json()["users"]}
    assert "bob" in names and "sam" not in names and "nick" in names
    assert (await client.post(f"{API}/users/{bob.id}/activate", headers=dana.headers)).json()[
        "is_active"
    ]
    bob_token = await world.login("bob")
    revoked = await client.post(f"{API}/users/{bob.id}/sessions/revoke", headers=dana.headers)
    assert revoked.json() == {"revoked": 1}, bob_token
    assert (await move(client, dana, bob.id, eng)).json()["department_id"] == eng
    assert (await move(client, dana, bob.id, backend)).json()["department_id"] == backend

    # Outside it, or above their station: refused.
    for method, path, body in (
        ("POST", f"/users/{sam.id}/activate", None),
        ("POST", f"/users/{nick.id}/deactivate", None),
        ("POST", f"/users/{ada.id}/deactivate", None),  # an admin, though in Backend
        ("POST", f"/users/{owner.id}/sessions/revoke", None),
        ("PUT", f"/users/{bob.id}/department", {"department_id": sales}),
        ("PUT", f"/users/{bob.id}/department", {"department_id": None}),
        ("PUT", f"/users/{nick.id}/department", {"department_id": eng}),
        ("PUT", f"/users/{bob.id}/role", {"role": "guest"}),
        ("POST", "/departments", {"name": "Sub", "parent_id": eng}),
    ):
        resp = await client.request(method, API + path, json=body, headers=dana.headers)
        assert code(resp) == (403, "forbidden"), (method, path, resp.text)

    # Taking the role away takes the assignments with it.
    demoted = await set_role(client, owner, dana.id, "member")
    assert demoted.status_code == 200
    tree = (await client.get(D, headers=owner.headers)).json()["departments"]
    assert [d["admin_ids"] for d in tree if d["id"] == eng] == [[]]
    back = await set_role(client, owner, dana.id, "department_admin")
    assert back.status_code == 200
    assert code(await move(client, dana, bob.id, eng)) == (403, "forbidden")
    entries = await audit_actions(world.ctx)
    removed = [d for a, _, d in entries if a == "user.role_changed" and d["to"] == "member"]
    assert removed[-1]["department_admin_assignments_removed"] == 1
    assert any(a == "department.admin_added" for a, _, _ in entries)
    created = [d for a, _, d in entries if a == "user.created" and d["username"] == "newbie"]
    assert created[0]["department_id"] == backend


# -- guests -----------------------------------------------------------------------------------


async def test_guests_see_only_what_they_were_invited_to(
    world: World, client: httpx.AsyncClient
) -> None:
    owner = await world.owner()
    alice, bob = await people(world, "alice", "bob")
    gil = await world.person("gil", role="guest")
    town = await new_conv(client, alice, "channel", [bob.id], name="town-square")
    await send(client, alice, town, "public news")
    group = await new_conv(client, alice, "group", [gil.id], name="project")
    await dept(client, owner, "Engineering")

    channels = await client.get(f"{API}/channels", headers=gil.headers)
    assert code(channels) == (403, "forbidden")
    mine = (await client.get(f"{API}/conversations", headers=gil.headers)).json()
    assert [c["id"] for c in mine["conversations"]] == [group]
    for path in (f"/conversations/{town}", f"/conversations/{town}/messages"):
        real = await client.get(API + path, headers=gil.headers)
        fake = await client.get(API + path.replace(town, new_id()), headers=gil.headers)
        assert code(real) == (404, "not_found") and real.content == fake.content
    join = await client.post(f"{API}/conversations/{town}/join", headers=gil.headers)
    assert code(join) == (404, "not_found")

    users = (await client.get(f"{API}/users", headers=gil.headers)).json()["users"]
    assert {u["username"] for u in users} == {"alice", "gil"}
    hidden = await client.get(f"{API}/users/{bob.id}", headers=gil.headers)
    missing = await client.get(f"{API}/users/{new_id()}", headers=gil.headers)
    assert code(hidden) == (404, "not_found") and hidden.content == missing.content
    assert (await client.get(f"{API}/users/{alice.id}", headers=gil.headers)).status_code == 200
    inactive = await client.get(f"{API}/users?include_inactive=true", headers=gil.headers)
    assert code(inactive) == (403, "forbidden")
    assert code(await client.get(D, headers=gil.headers)) == (403, "forbidden")

    for kind, extra in (("dm", {}), ("group", {}), ("channel", {"name": "mine"})):
        resp = await client.post(
            f"{API}/conversations",
            json={"kind": kind, "members": [alice.id], **extra},
            headers=gil.headers,
        )
        assert code(resp) == (403, "forbidden"), kind
    add = await client.post(
        f"{API}/conversations/{group}/members", json={"user_ids": [bob.id]}, headers=gil.headers
    )
    assert code(add) == (403, "forbidden")
    assert (await send(client, gil, group, "hello from outside"))["text"] == "hello from outside"
    left = await client.post(f"{API}/conversations/{group}/leave", headers=gil.headers)
    assert left.status_code == 204
    assert (await client.get(f"{API}/users", headers=gil.headers)).json()["users"] == [
        u for u in users if u["username"] == "gil"
    ]


# -- announcement channels and read-only members ------------------------------------------------


async def test_announcement_channels(world: World, client: httpx.AsyncClient) -> None:
    alice, bob = await people(world, "alice", "bob")
    news = await new_conv(client, alice, "channel", [bob.id], name="news", announcement=True)
    got = (await client.get(f"{API}/conversations/{news}", headers=bob.headers)).json()
    assert got["announcement"] is True
    post = await client.post(
        f"{API}/conversations/{news}/messages",
        json={"client_msg_id": "b1", "text": "may I?"},
        headers=bob.headers,
    )
    assert code(post) == (403, "announcement_channel")
    msg = await send(client, alice, news, "release tonight")
    react = await client.put(f"{API}/messages/{msg['id']}/reactions/ok", headers=bob.headers)
    assert react.status_code == 200
    reply = await client.post(
        f"{API}/conversations/{news}/messages",
        json={"client_msg_id": "b2", "text": "thanks", "thread_root_id": msg["id"]},
        headers=bob.headers,
    )
    assert code(reply) == (403, "announcement_channel")
    switch = await client.patch(
        f"{API}/conversations/{news}", json={"announcement": False}, headers=bob.headers
    )
    assert code(switch) == (403, "forbidden")
    role = await client.patch(
        f"{API}/conversations/{news}/members/{bob.id}",
        json={"role": "moderator"},
        headers=alice.headers,
    )
    assert role.status_code == 200
    assert (await send(client, bob, news, "now I may"))["text"] == "now I may"
    off = await client.patch(
        f"{API}/conversations/{news}", json={"announcement": False}, headers=bob.headers
    )
    assert off.status_code == 200 and off.json()["announcement"] is False
    group = await client.post(
        f"{API}/conversations",
        json={"kind": "group", "members": [bob.id], "announcement": True},
        headers=alice.headers,
    )
    assert code(group) == (422, "validation_error")
    entries = await audit_actions(world.ctx)
    assert ("conversation.announcement_changed", news, {"announcement": False}) in entries


async def test_read_only_members(world: World, client: httpx.AsyncClient) -> None:
    alice, bob, carol = await people(world, "alice", "bob", "carol")
    group = await new_conv(client, alice, "group", [bob.id, carol.id], name="readers")
    msg = await send(client, alice, group, "read this")
    made = await client.patch(
        f"{API}/conversations/{group}/members/{carol.id}",
        json={"role": "reader"},
        headers=alice.headers,
    )
    assert made.status_code == 200 and made.json()["role"] == "reader", made.text
    got = (await client.get(f"{API}/conversations/{group}", headers=carol.headers)).json()
    assert got["my_role"] == "reader"
    history = await client.get(f"{API}/conversations/{group}/messages", headers=carol.headers)
    assert [m["text"] for m in history.json()["messages"]] == ["read this"]
    post = await client.post(
        f"{API}/conversations/{group}/messages",
        json={"client_msg_id": "c1", "text": "me too"},
        headers=carol.headers,
    )
    assert code(post) == (403, "read_only_member")
    react = await client.put(f"{API}/messages/{msg['id']}/reactions/ok", headers=carol.headers)
    assert code(react) == (403, "read_only_member")
    for method, path, body in (
        ("POST", f"/conversations/{group}/members", {"user_ids": [alice.id]}),
        ("PATCH", f"/conversations/{group}", {"topic": "mine now"}),
    ):
        resp = await client.request(method, API + path, json=body, headers=carol.headers)
        assert code(resp) == (403, "forbidden"), path
    read = await client.post(
        f"{API}/conversations/{group}/read", json={"seq": 99}, headers=carol.headers
    )
    assert read.status_code == 200
    left = await client.post(f"{API}/conversations/{group}/leave", headers=carol.headers)
    assert left.status_code == 204


# -- the CLI ----------------------------------------------------------------------------------


def test_enclave_orgs_create_and_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in FAST_AUTH.items():
        monkeypatch.setenv("ENCLAVE_" + key.replace(".", "_").upper(), str(value))
    data = ["--data-dir", str(tmp_path / "data")]
    assert main(["init", *data]) == 0
    assert main(["orgs", "create", "Acme Corp", "--owner", "wile", *data]) == 0
    out = capsys.readouterr().out
    found = re.search(r"One-time password:\s+(\S+)", out.split("Organization created")[1])
    assert found, out
    assert main(["orgs", "list", *data]) == 0
    listing = capsys.readouterr().out
    assert "Acme Corp" in listing and "My Organization" in listing
    taken = main(["orgs", "create", "Other", "--owner", "wile", *data])
    assert taken == 1
    assert "username_taken" in capsys.readouterr().err

    async def login() -> tuple[str, str]:
        config = load_config(None, overrides={"server.data_dir": tmp_path / "data"})
        async with open_context(config) as ctx:
            result = await auth.login(ctx, "wile", found.group(1))
            first = await ctx.db.read(account_store.first_org)
            assert first is not None
            return result.user.org_id, first.id

    org_id, first_org = asyncio.run(login())
    assert org_id != first_org
