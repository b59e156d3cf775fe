"""The retention and legal-hold API: who may do what, validation, audit entries, and the
preview matching the run."""

from __future__ import annotations

import httpx
import pytest

from enclave.services.context import Context
from enclave.storage import audit as audit_store
from tests.api.helpers import API, code, new_conv, people, send
from tests.conftest import World

DAY = 86_400_000


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000_000

    def now_ms(self) -> int:
        return self.now


async def _actions(ctx: Context) -> list[str]:
    entries = await ctx.db.read(lambda tx: audit_store.scan(tx, 0, 10_000))
    return [e.action for e in entries]


async def test_who_may_read_and_set_retention(world: World, client: httpx.AsyncClient) -> None:
    (member,) = await people(world, "mia")
    officer = await world.person("olga", role="compliance_officer")
    admin = await world.person("adam", role="admin")

    resp = await client.get(f"{API}/org/retention", headers=member.headers)
    assert code(resp) == (403, "forbidden")
    resp = await client.get(f"{API}/org/retention/preview", headers=member.headers)
    assert code(resp) == (403, "forbidden")
    resp = await client.post(f"{API}/org/retention/run", headers=member.headers)
    assert code(resp) == (403, "forbidden")

    resp = await client.get(f"{API}/org/retention", headers=officer.headers)
    assert resp.status_code == 200 and resp.json() == {"default_days": None, "overrides": []}
    resp = await client.get(f"{API}/org/retention/preview", headers=officer.headers)
    assert resp.status_code == 200, resp.text
    resp = await client.put(
        f"{API}/org/retention", json={"default_days": 30}, headers=officer.headers
    )
    assert code(resp) == (403, "forbidden")

    resp = await client.put(
        f"{API}/org/retention", json={"default_days": 30}, headers=admin.headers
    )
    assert resp.status_code == 200 and resp.json()["default_days"] == 30
    resp = await client.put(
        f"{API}/org/retention", json={"default_days": None}, headers=admin.headers
    )
    assert resp.json()["default_days"] is None
    for days in (0, -1, 36501):
        resp = await client.put(
            f"{API}/org/retention", json={"default_days": days}, headers=admin.headers
        )
        assert code(resp) == (422, "validation_error")
    resp = await client.put(f"{API}/org/retention", json={}, headers=admin.headers)
    assert code(resp) == (422, "validation_error")
    assert (await _actions(world.ctx)).count("retention.policy_changed") == 2


async def test_conversation_overrides(world: World, client: httpx.AsyncClient) -> None:
    alice, bob = await people(world, "alice", "bob")
    admin = await world.person("adam", role="admin")
    public = await new_conv(client, alice, "channel", [], name="general")
    private = await new_conv(client, alice, "group", [bob.id])

    url = f"{API}/conversations/{public}/retention"
    resp = await client.put(url, json={"mode": "days", "days": 7}, headers=admin.headers)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {
        "conversation_id": public,
        "mode": "days",
        "days": 7,
        "effective_days": 7,
    }
    listed = await client.get(f"{API}/org/retention", headers=admin.headers)
    assert [o["conversation_id"] for o in listed.json()["overrides"]] == [public]
    resp = await client.put(url, json={"mode": "forever"}, headers=admin.headers)
    assert resp.json()["effective_days"] is None
    resp = await client.put(url, json={"mode": "default"}, headers=admin.headers)
    assert resp.json()["mode"] == "default"
    listed = await client.get(f"{API}/org/retention", headers=admin.headers)
    assert listed.json()["overrides"] == []

    # Conversations the admin cannot see do not exist for this either; members may not.
    hidden = f"{API}/conversations/{private}/retention"
    resp = await client.put(hidden, json={"mode": "forever"}, headers=admin.headers)
    assert code(resp) == (404, "not_found")
    resp = await client.put(url, json={"mode": "forever"}, headers=alice.headers)
    assert code(resp) == (403, "forbidden")
    missing = f"{API}/conversations/{'a' * 26}/retention"
    resp = await client.put(missing, json={"mode": "forever"}, headers=admin.headers)
    assert code(resp) == (404, "not_found")

    for body in ({"mode": "days"}, {"mode": "forever", "days": 3}):
        resp = await client.put(url, json=body, headers=admin.headers)
        assert code(resp) == (422, "invalid_retention")
    for body in ({"mode": "weekly"}, {"mode": "days", "days": 0}, {"days": 3}):
        resp = await client.put(url, json=body, headers=admin.headers)
        assert code(resp) == (422, "validation_error")
    assert (await _actions(world.ctx)).count("retention.override_changed") == 3


async def test_preview_then_run_through_the_api(
    world: World, client: httpx.AsyncClient, ctx: Context
) -> None:
    clock = FakeClock()
    ctx.clock = clock
    alice, bob = await people(world, "alice", "bob")
    owner = await world.owner()
    dm = await new_conv(client, alice, "dm", [bob.id])
    await send(client, alice, dm, "old news")
    clock.now += 100 * DAY
    owner.headers = {"Authorization": f"Bearer {await world.login(owner.username)}"}
    resp = await client.put(
        f"{API}/org/retention", json={"default_days": 30}, headers=owner.headers
    )
    assert resp.status_code == 200, resp.text

    preview = (await client.get(f"{API}/org/retention/preview", headers=owner.headers)).json()
    assert preview["totals"]["messages"] == 1 and preview["totals"]["key_ids"]
    run = await client.post(f"{API}/org/retention/run", headers=owner.headers)
    assert run.status_code == 200, run.text
    body = run.json()
    assert body["totals"] == preview["totals"]
    assert body["conversations"] == preview["conversations"]
    assert body["audit_seq"] and body["kek_rotated"]
    again = (await client.get(f"{API}/org/retention/preview", headers=owner.headers)).json()
    assert again["conversations"] == []
    assert "retention.purged" in await _actions(ctx)


async def test_legal_holds_are_for_compliance_officers_only(
    world: World, client: httpx.AsyncClient, ctx: Context
) -> None:
    alice, bob = await people(world, "alice", "bob")
    officer = await world.person("olga", role="compliance_officer")
    admin = await world.person("adam", role="admin")
    conv = await new_conv(client, alice, "group", [bob.id])

    made = await client.post(
        f"{API}/compliance/holds",
        json={"kind": "person", "target_id": bob.id, "reason": "litigation 7"},
        headers=officer.headers,
    )
    assert made.status_code == 201, made.text
    hold = made.json()
    assert hold["kind"] == "person" and hold["target_id"] == bob.id and hold["active"]
    on_conv = await client.post(
        f"{API}/compliance/holds",
        json={"kind": "conversation", "target_id": conv, "reason": "litigation 8"},
        headers=officer.headers,
    )
    assert on_conv.status_code == 201, on_conv.text

    listed = await client.get(f"{API}/compliance/holds", headers=officer.headers)
    assert {h["id"] for h in listed.json()["holds"]} == {hold["id"], on_conv.json()["id"]}

    # To everyone else, holds do not exist: 404 everywhere, like a missing resource.
    for who in (bob, alice, admin):
        assert code(await client.get(f"{API}/compliance/holds", headers=who.headers)) == (
            404,
            "not_found",
        )
        resp = await client.post(
            f"{API}/compliance/holds",
            json={"kind": "person", "target_id": alice.id, "reason": "x"},
            headers=who.headers,
        )
        assert code(resp) == (404, "not_found")
        resp = await client.post(
            f"{API}/compliance/holds/{hold['id']}/release",
            json={"reason": "x"},
            headers=who.headers,
        )
        assert code(resp) == (404, "not_found")

    # Targets must exist in the organization.
    for kind in ("person", "conversation"):
        resp = await client.post(
            f"{API}/compliance/holds",
            json={"kind": kind, "target_id": "a" * 26, "reason": "x"},
            headers=officer.headers,
        )
        assert code(resp) == (404, "not_found")
    missing = await client.post(
        f"{API}/compliance/holds/{'b' * 26}/release", json={"reason": "x"}, headers=officer.headers
    )
    assert code(missing) == (404, "not_found")

    release = f"{API}/compliance/holds/{hold['id']}/release"
    resp = await client.post(release, json={"reason": "settled"}, headers=officer.headers)
    assert resp.status_code == 200 and resp.json()["active"] is False
    assert resp.json()["release_reason"] == "settled"
    resp = await client.post(release, json={"reason": "again"}, headers=officer.headers)
    assert code(resp) == (409, "hold_released")
    active = await client.get(f"{API}/compliance/holds", headers=officer.headers)
    assert [h["id"] for h in active.json()["holds"]] == [on_conv.json()["id"]]
    everything = await client.get(
        f"{API}/compliance/holds?include_released=true", headers=officer.headers
    )
    assert len(everything.json()["holds"]) == 2
    actions = await _actions(ctx)
    assert actions.count("legal_hold.created") == 2
    assert actions.count("legal_hold.released") == 1


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "device", "target_id": "a" * 26, "reason": "x"},
        {"kind": "person", "target_id": "short", "reason": "x"},
        {"kind": "person", "target_id": "a" * 26, "reason": ""},
        {"kind": "person", "target_id": "a" * 26, "reason": "x" * 501},
        {"kind": "person", "target_id": "a" * 26},
    ],
)
async def test_hold_input_is_checked(
    world: World, client: httpx.AsyncClient, body: dict[str, str]
) -> None:
    officer = await world.person("olga", role="compliance_officer")
    resp = await client.post(f"{API}/compliance/holds", json=body, headers=officer.headers)
    assert code(resp) == (422, "validation_error")
