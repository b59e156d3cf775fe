"""Sessions: one's own (list with device and address, revoke one, sign out everywhere else),
an admin signing someone out, and the audit entries of account actions."""

from __future__ import annotations

import httpx

from enclave.domain.audit import AuditEntry
from enclave.domain.ids import OrgId, UserId, new_id
from enclave.domain.models import Org, OrgRole, User
from enclave.services import accounts
from enclave.services.context import Context
from enclave.storage import accounts as account_store
from enclave.storage import audit as audit_store
from enclave.storage.base import Tx
from tests.api.helpers import API, code
from tests.conftest import TEST_PASSWORD, Person, World


async def test_list_and_revoke_own_sessions(world: World, client: httpx.AsyncClient) -> None:
    bob = await world.person("bob")
    laptop = await world.login("bob")
    listed = await client.get(f"{API}/users/me/sessions", headers=bob.headers)
    assert listed.status_code == 200, listed.text
    sessions = listed.json()["sessions"]
    assert len(sessions) == 2
    assert [s["current"] for s in sessions].count(True) == 1
    for s in sessions:  # nothing that could be used as a credential is shown
        assert laptop not in s["id"] and bob.token not in s["id"]

    other = next(s for s in sessions if not s["current"])
    gone = await client.delete(f"{API}/users/me/sessions/{other['id']}", headers=bob.headers)
    assert gone.status_code == 204
    dead = await client.get(f"{API}/users/me", headers={"Authorization": f"Bearer {laptop}"})
    assert dead.status_code == 401
    again = await client.delete(f"{API}/users/me/sessions/{other['id']}", headers=bob.headers)
    assert code(again) == (404, "not_found")
    alive = await client.get(f"{API}/users/me", headers=bob.headers)
    assert alive.status_code == 200


async def test_nobody_can_revoke_someone_elses_session(
    world: World, client: httpx.AsyncClient
) -> None:
    alice, bob = await world.person("alice"), await world.person("bob")
    theirs = (await client.get(f"{API}/users/me/sessions", headers=bob.headers)).json()
    target = theirs["sessions"][0]["id"]
    refused = await client.delete(f"{API}/users/me/sessions/{target}", headers=alice.headers)
    assert code(refused) == (404, "not_found")
    still = await client.get(f"{API}/users/me", headers=bob.headers)
    assert still.status_code == 200


async def test_sessions_show_device_address_and_current(
    world: World, client: httpx.AsyncClient
) -> None:
    await world.person("bob")
    firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
    resp = await client.post(
        f"{API}/auth/login",
        json={"username": "bob", "password": TEST_PASSWORD},
        headers={"User-Agent": firefox},
    )
    headers = {"Authorization": f"Bearer {resp.json()['token']}"}
    listed = (await client.get(f"{API}/users/me/sessions", headers=headers)).json()["sessions"]
    mine = next(s for s in listed if s["current"])
    assert mine["device"] == "Firefox on Linux"
    assert mine["user_agent"] == firefox
    assert mine["ip"] == "127.0.0.1"  # httpx's ASGI transport's client address
    assert [s["current"] for s in listed].count(True) == 1


async def test_sign_out_everywhere_else(
    world: World, client: httpx.AsyncClient, ctx: Context
) -> None:
    bob = await world.person("bob")
    others = [await world.login("bob") for _ in range(2)]
    alice = await world.person("alice")
    resp = await client.delete(f"{API}/users/me/sessions", headers=bob.headers)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"revoked": 2}
    for token in others:
        gone = await client.get(f"{API}/users/me", headers={"Authorization": f"Bearer {token}"})
        assert code(gone) == (401, "unauthenticated")
    listed = (await client.get(f"{API}/users/me/sessions", headers=bob.headers)).json()
    assert [s["current"] for s in listed["sessions"]] == [True]
    assert (await client.get(f"{API}/users/me", headers=alice.headers)).status_code == 200
    entry = [e for e in await _audit(ctx) if e.action == "session.revoked"][-1]
    assert entry.actor_id == bob.id and entry.target_id == bob.id
    assert entry.details == {"scope": "others", "count": 2}


async def test_admins_revoke_someones_sessions(
    world: World, client: httpx.AsyncClient, ctx: Context
) -> None:
    owner = await world.owner()
    bob = await world.person("bob")
    laptop = await world.login("bob")
    ada = await world.person("ada", role="admin")
    carol = await world.person("carol")

    refused = await client.post(f"{API}/users/{bob.id}/sessions/revoke", headers=carol.headers)
    assert code(refused) == (403, "forbidden")
    owner_refused = await client.post(
        f"{API}/users/{owner.id}/sessions/revoke", headers=ada.headers
    )
    assert code(owner_refused) == (403, "forbidden")
    outsider = await _outsider(ctx)  # hidden: another organization's user is "not found"
    for missing in ("a" * 26, "nope", outsider):
        resp = await client.post(f"{API}/users/{missing}/sessions/revoke", headers=ada.headers)
        assert code(resp) == (404, "not_found"), missing

    done = await client.post(f"{API}/users/{bob.id}/sessions/revoke", headers=ada.headers)
    assert done.status_code == 200, done.text
    assert done.json() == {"revoked": 2}
    for token in (bob.token, laptop):
        gone = await client.get(f"{API}/users/me", headers={"Authorization": f"Bearer {token}"})
        assert gone.status_code == 401
    assert (await client.get(f"{API}/users/me", headers=ada.headers)).status_code == 200
    entry = [e for e in await _audit(ctx) if e.action == "session.revoked"][-1]
    assert entry.actor_id == ada.id and entry.target_id == bob.id
    assert entry.details == {"scope": "all", "by_admin": True, "count": 2}


async def test_account_actions_are_audited(
    world: World, client: httpx.AsyncClient, ctx: Context
) -> None:
    owner = await world.owner()
    bob = await world.person("bob")
    phone = await world.login("bob")
    assert (await client.post(f"{API}/auth/logout", headers=_bearer(phone))).status_code == 204
    ghost = await client.post(
        f"{API}/auth/login", json={"username": " Ghost ", "password": "whatever it is"}
    )
    assert code(ghost) == (401, "invalid_credentials")
    changed = await client.post(
        f"{API}/users/me/password",
        json={"current_password": TEST_PASSWORD, "new_password": "another fine passphrase"},
        headers=bob.headers,
    )
    assert changed.status_code == 204
    listed = (await client.get(f"{API}/users/me/sessions", headers=bob.headers)).json()
    await client.delete(
        f"{API}/users/me/sessions/{listed['sessions'][0]['id']}", headers=bob.headers
    )
    await client.post(f"{API}/users/{bob.id}/deactivate", headers=owner.headers)
    await client.post(f"{API}/users/{bob.id}/activate", headers=owner.headers)
    await accounts.reset_password(ctx, "bob", "a third good passphrase")

    entries = await _audit(ctx)
    by_action: dict[str, list[AuditEntry]] = {}
    for e in entries:
        by_action.setdefault(e.action, []).append(e)
    created = [e for e in by_action["user.created"] if e.target_id == bob.id]
    assert created[0].actor_id == owner.id and created[0].details["username"] == "bob"
    logins = [e for e in by_action["auth.login"] if e.outcome == "success" and e.actor_id == bob.id]
    assert len(logins) == 2 and logins[0].ip == "127.0.0.1"
    failed = [e for e in by_action["auth.login"] if e.outcome == "failure"]
    assert failed[-1].target_id == "ghost" and failed[-1].details == {"reason": "unknown_user"}
    assert failed[-1].org_id is None and failed[-1].actor_id is None
    logout = by_action["auth.logout"][-1]
    assert logout.actor_id == bob.id
    pw = by_action["auth.password_changed"][-1]
    assert pw.actor_id == bob.id and pw.details["sessions_revoked"] == 0
    revoked = by_action["session.revoked"][-1]
    assert revoked.details["scope"] == "one" and revoked.details["current"] is True
    assert by_action["user.deactivated"][-1].target_id == bob.id
    assert by_action["user.activated"][-1].actor_id == owner.id
    reset = by_action["auth.password_reset"][-1]
    assert (
        reset.actor_id is None
        and reset.target_id == bob.id
        and reset.org_id == owner_org(owner, entries)
    )
    for e in entries:
        assert TEST_PASSWORD not in repr(e) and "whatever it is" not in repr(e)
        assert "another fine passphrase" not in repr(e)


def owner_org(owner: Person, entries: list[AuditEntry]) -> str | None:
    return next(e.org_id for e in entries if e.actor_id == owner.id)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _audit(ctx: Context) -> list[AuditEntry]:
    return await ctx.db.read(lambda tx: audit_store.scan(tx, 0, 100_000))


async def _outsider(ctx: Context) -> str:
    """A user of another organization, made straight in storage."""

    def work(tx: Tx) -> str:
        org = Org(id=OrgId(new_id()), name="Elsewhere", created_at=1)
        account_store.insert_org(tx, org)
        user = User(
            id=UserId(new_id()),
            org_id=org.id,
            username="outsider",
            display_name="Outsider",
            role=OrgRole.MEMBER,
            is_active=True,
            must_change_password=False,
            created_at=1,
        )
        account_store.insert_user(tx, user, "x")
        return user.id

    return await ctx.db.write(work)
