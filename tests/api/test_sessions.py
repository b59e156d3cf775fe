"""A person's own sessions: list them, see which is this one, revoke one."""

from __future__ import annotations

import httpx

from tests.api.helpers import API, code
from tests.conftest import World


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
