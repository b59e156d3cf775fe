"""Consent to the terms of use, on both backends: nothing to accept until terms are published;
then every call but reading and accepting them, /users/me and log-out answers 403
`terms_acceptance_required` until the person accepts that version; a new version asks again."""

from __future__ import annotations

import httpx

from enclave.services.context import Context
from enclave.storage import audit as audit_store
from tests.api.helpers import API, code, people
from tests.conftest import Person, World

TERMS = f"{API}/org/terms"


async def _publish(client: httpx.AsyncClient, admin: Person, version: str, text: str) -> None:
    resp = await client.put(TERMS, json={"version": version, "text": text}, headers=admin.headers)
    assert resp.status_code == 200, resp.text
    assert resp.json()["version"] == version and resp.json()["accepted"] is False


async def _accept(client: httpx.AsyncClient, who: Person, version: str) -> None:
    resp = await client.post(
        f"{API}/users/me/terms/accept", json={"version": version}, headers=who.headers
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["accepted"] is True and resp.json()["accepted_at"] is not None


async def test_consent_is_required_per_version(
    world: World, client: httpx.AsyncClient, ctx: Context
) -> None:
    owner = await world.owner()
    (alice,) = await people(world, "alice")
    none = await client.get(TERMS, headers=alice.headers)
    assert none.json() == {
        "version": None,
        "text": None,
        "published_at": None,
        "accepted": True,
        "accepted_at": None,
    }
    assert (await client.get(f"{API}/conversations", headers=alice.headers)).status_code == 200

    await _publish(client, owner, "2026-01", "Be kind. 友善待人。\nNo spam.")
    for who in (alice, owner):  # the publisher too
        blocked = await client.get(f"{API}/conversations", headers=who.headers)
        assert code(blocked) == (403, "terms_acceptance_required")
        send = await client.post(
            f"{API}/conversations", json={"kind": "channel", "name": "x"}, headers=who.headers
        )
        assert code(send) == (403, "terms_acceptance_required")
        assert (await client.get(f"{API}/users/me", headers=who.headers)).status_code == 200
        shown = await client.get(TERMS, headers=who.headers)
        assert shown.status_code == 200
        assert shown.json()["text"] == "Be kind. 友善待人。\nNo spam."
        assert shown.json()["accepted"] is False
    wrong = await client.post(
        f"{API}/users/me/terms/accept", json={"version": "2025-12"}, headers=alice.headers
    )
    assert code(wrong) == (409, "terms_outdated")

    await _accept(client, alice, "2026-01")
    assert (await client.get(f"{API}/conversations", headers=alice.headers)).status_code == 200
    await _accept(client, alice, "2026-01")  # again: nothing changes
    await _accept(client, owner, "2026-01")

    # A member may not publish; a version is published once.
    refused = await client.put(
        TERMS, json={"version": "2026-02", "text": "mine"}, headers=alice.headers
    )
    assert code(refused) == (403, "forbidden")
    twice = await client.put(TERMS, json={"version": "2026-01", "text": "x"}, headers=owner.headers)
    assert code(twice) == (409, "terms_version_exists")

    # New terms: asked again.
    await _publish(client, owner, "2026-02", "Be kind, always.")
    blocked = await client.get(f"{API}/conversations", headers=alice.headers)
    assert code(blocked) == (403, "terms_acceptance_required")
    stale = await client.post(
        f"{API}/users/me/terms/accept", json={"version": "2026-01"}, headers=alice.headers
    )
    assert code(stale) == (409, "terms_outdated")
    await _accept(client, alice, "2026-02")
    assert (await client.get(f"{API}/conversations", headers=alice.headers)).status_code == 200

    # Consent records: in the person's own export, and in the audit log.
    await _accept(client, owner, "2026-02")
    mine = await client.post(f"{API}/users/me/export", headers=alice.headers)
    assert [c["terms_version"] for c in mine.json()["consents"]] == ["2026-01", "2026-02"]
    entries = await ctx.db.read(lambda tx: audit_store.scan(tx, 0, 10_000))
    accepted = [e for e in entries if e.action == "terms.accepted" and e.actor_id == alice.id]
    assert [e.details["version"] for e in accepted] == ["2026-01", "2026-02"]
    assert [e.details["version"] for e in entries if e.action == "terms.published"] == [
        "2026-01",
        "2026-02",
    ]


async def test_logout_works_before_accepting(world: World, client: httpx.AsyncClient) -> None:
    owner = await world.owner()
    (alice,) = await people(world, "alice")
    await _publish(client, owner, "v1", "Terms.")
    out = await client.post(f"{API}/auth/logout", headers=alice.headers)
    assert out.status_code == 204
    assert code(await client.get(f"{API}/users/me", headers=alice.headers))[0] == 401
