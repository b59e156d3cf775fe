"""The audit log through the REST API: what is recorded, paging and filters, who may read it,
verification, alerts, and the protected /metrics endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from enclave.app import create_app, open_context
from enclave.services import metrics
from enclave.services.context import Context
from enclave.storage.base import Tx
from tests.api.helpers import API, code, new_conv, people, send
from tests.api.test_visibility import rival, rival_org
from tests.conftest import World, make_config

AUDIT = f"{API}/admin/audit"


async def listed(
    client: httpx.AsyncClient, headers: dict[str, str], **params: Any
) -> dict[str, Any]:
    resp = await client.get(AUDIT, params=params, headers=headers)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def moderated_group(world: World, client: httpx.AsyncClient) -> dict[str, Any]:
    """Owner runs a group with alice and bob; alice's message is recalled by its sender, bob's
    by the owner; bob is made moderator, then removed; the group is archived."""
    owner = await world.owner()
    alice, bob = await people(world, "alice", "bob")
    conv = await new_conv(client, owner, "group", [alice.id, bob.id], name="team")
    mine = await send(client, alice, conv, "oops")
    his = await send(client, bob, conv, "spam")
    for who, msg in ((alice, mine), (owner, his)):
        resp = await client.delete(f"{API}/messages/{msg['id']}", headers=who.headers)
        assert resp.status_code == 200, resp.text
    path = f"{API}/conversations/{conv}/members/{bob.id}"
    resp = await client.patch(path, json={"role": "moderator"}, headers=owner.headers)
    assert resp.status_code == 200, resp.text
    assert (await client.delete(path, headers=owner.headers)).status_code == 204
    resp = await client.post(f"{API}/conversations/{conv}/archive", headers=owner.headers)
    assert resp.status_code == 200, resp.text
    return {"owner": owner, "alice": alice, "bob": bob, "conv": conv, "mine": mine, "his": his}


async def test_moderation_and_recalls_are_recorded(world: World, client: httpx.AsyncClient) -> None:
    g = await moderated_group(world, client)
    owner, alice, bob, conv = g["owner"], g["alice"], g["bob"], g["conv"]
    mine = await listed(client, owner.headers, action="message")
    assert [
        (e["action"], e["actor_id"], e["actor_username"], e["target_type"], e["target_id"])
        for e in mine["entries"]
    ] == [
        ("message.recalled", owner.id, owner.username, "message", g["his"]["id"]),
        ("message.recalled", alice.id, "alice", "message", g["mine"]["id"]),
    ]
    assert mine["entries"][0]["details"] == {
        "conversation_id": conv,
        "sender_id": bob.id,
        "moderated": True,
    }
    assert mine["entries"][1]["details"]["moderated"] is False
    convs = await listed(client, owner.headers, action="conversation")
    assert [
        (e["action"], e["target_type"], e["target_id"], e["target_username"], e["details"])
        for e in convs["entries"]
    ] == [
        ("conversation.archived", "conversation", conv, None, {"kind": "group"}),
        (
            "conversation.member_removed",
            "user",
            bob.id,
            "bob",
            {"conversation_id": conv, "role": "moderator"},
        ),
        (
            "conversation.member_role_changed",
            "user",
            bob.id,
            "bob",
            {"conversation_id": conv, "from": "member", "to": "moderator"},
        ),
    ]
    entry = convs["entries"][0]
    assert entry["outcome"] == "success" and entry["ip"] is None and len(entry["hash"]) == 64


async def test_paging_newest_first_and_filters(world: World, client: httpx.AsyncClient) -> None:
    g = await moderated_group(world, client)
    owner, alice = g["owner"], g["alice"]
    everything = await listed(client, owner.headers, limit=200)
    seqs = [e["seq"] for e in everything["entries"]]
    assert seqs == sorted(seqs, reverse=True) and everything["next_before_seq"] is None
    assert len(seqs) >= 5

    paged: list[int] = []
    cursor: int | None = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor is not None:
            params["before_seq"] = cursor
        page = await listed(client, owner.headers, **params)
        assert len(page["entries"]) <= 2
        paged += [e["seq"] for e in page["entries"]]
        cursor = page["next_before_seq"]
        if cursor is None:
            break
        assert cursor == paged[-1]
    assert paged == seqs

    exact = await listed(client, owner.headers, action="message.recalled")
    assert len(exact["entries"]) == 2
    # A prefix matches whole dotted parts only: "message.recall" is no prefix of "recalled".
    assert (await listed(client, owner.headers, action="message.recall"))["entries"] == []
    assert (await listed(client, owner.headers, action="mess"))["entries"] == []
    by_alice = await listed(client, owner.headers, actor_id=alice.id)
    assert {e["action"] for e in by_alice["entries"]} >= {"message.recalled"}
    assert all(e["actor_id"] == alice.id for e in by_alice["entries"])
    on_bob = await listed(client, owner.headers, target_id=g["bob"].id, action="conversation")
    assert len(on_bob["entries"]) == 2

    recalls = exact["entries"]
    first_at, last_at = recalls[-1]["at"], recalls[0]["at"]
    window = await listed(
        client, owner.headers, action="message", since=first_at, until=last_at + 1
    )
    assert len(window["entries"]) == 2
    later = await listed(client, owner.headers, action="message", since=last_at + 1)
    assert later["entries"] == []
    assert (await listed(client, owner.headers, until=0))["entries"] == []


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"since": 10, "until": 10}, "invalid_filter"),
        ({"since": 11, "until": 10}, "invalid_filter"),
        ({"action": "Auth"}, "validation_error"),
        ({"action": "auth..login"}, "validation_error"),
        ({"action": "auth%"}, "validation_error"),
        ({"actor_id": "not-an-id"}, "validation_error"),
        ({"target_id": "a b"}, "validation_error"),
        ({"since": -1}, "validation_error"),
        ({"since": "yesterday"}, "validation_error"),
        ({"before_seq": 0}, "validation_error"),
        ({"limit": 201}, "validation_error"),
        ({"limit": 0}, "validation_error"),
    ],
)
async def test_bad_filters_have_stable_codes(
    world: World, client: httpx.AsyncClient, params: dict[str, Any], expected: str
) -> None:
    owner = await world.owner()
    resp = await client.get(AUDIT, params=params, headers=owner.headers)
    assert code(resp) == (422, expected)


async def test_only_owners_and_admins_read_and_verify(
    world: World, client: httpx.AsyncClient
) -> None:
    await world.owner()
    admin = await world.person("ada", role="admin")
    member = await world.person("max")
    for path in (AUDIT, f"{AUDIT}/verify"):
        assert (await client.get(path, headers=admin.headers)).status_code == 200
        # The same answer as every admin-only action (POST /users) gives a member.
        assert code(await client.get(path, headers=member.headers)) == (403, "forbidden")
        assert code(await client.get(path)) == (401, "unauthenticated")
    denied = await client.post(
        f"{API}/users",
        json={"username": "zed", "password": "x" * 20, "display_name": "", "role": "member"},
        headers=member.headers,
    )
    assert code(denied) == (403, "forbidden")


async def _everything(client: httpx.AsyncClient, who: dict[str, str], **params: Any) -> list[Any]:
    """Every entry a reader gets, walking the pages two at a time."""
    entries: list[Any] = []
    cursor: int | None = None
    while True:
        page = await listed(
            client, who, limit=2, **params, **({"before_seq": cursor} if cursor else {})
        )
        entries += page["entries"]
        cursor = page["next_before_seq"]
        if cursor is None:
            return entries


async def test_legal_hold_entries_are_listed_only_to_those_who_may_see_holds(
    world: World, client: httpx.AsyncClient
) -> None:
    """An admin under legal hold reads the audit log, but the hold's entries are not in it:
    not in any page, nor under any filter. Compliance officers and owners see them."""
    owner = await world.owner()
    admin = await world.person("ada", role="admin")
    officer = await world.person("olga", role="compliance_officer")
    holds = f"{API}/compliance/holds"
    made = await client.post(
        holds,
        json={"kind": "person", "target_id": admin.id, "reason": "case 12"},
        headers=officer.headers,
    )
    assert made.status_code == 201, made.text
    hold = made.json()["id"]
    released = await client.post(
        f"{holds}/{hold}/release", json={"reason": "settled"}, headers=officer.headers
    )
    assert released.status_code == 200, released.text
    await world.person("max")  # an entry after the hold's, so that pages walk past them

    hold_entries = [("legal_hold.released", hold), ("legal_hold.created", hold)]
    for reader in (owner, officer):
        seen = await _everything(client, reader.headers)
        holds_seen = [
            (e["action"], e["target_id"]) for e in seen if e["target_type"] == "legal_hold"
        ]
        assert holds_seen == hold_entries
        on_hold = await listed(client, reader.headers, target_id=hold)
        assert [e["action"] for e in on_hold["entries"]] == [a for a, _ in hold_entries]

    everything = await _everything(client, owner.headers)
    for_admin = await _everything(client, admin.headers)
    assert [e["seq"] for e in for_admin] == [
        e["seq"] for e in everything if not e["action"].startswith("legal_hold.")
    ]
    assert not any(hold in str(e) or admin.id in str(e["details"]) for e in for_admin)
    missing = await listed(client, admin.headers, target_id="b" * 26)
    for params in (
        {"action": "legal_hold"},
        {"action": "legal_hold.created"},
        {"target_id": hold},
    ):
        page = await listed(client, admin.headers, **params)
        assert page == missing, params
    by_officer = await listed(client, admin.headers, actor_id=officer.id)
    assert not any(e["action"].startswith("legal_hold.") for e in by_officer["entries"])


async def test_an_admin_never_sees_another_organizations_entries(
    world: World, client: httpx.AsyncClient
) -> None:
    g = await moderated_group(world, client)
    org = await rival_org(world)
    mallory = await rival(world, org, "mallory")
    trent = await rival(world, org, "trent")
    own = await new_conv(client, mallory, "group", [trent.id], name="rivals")
    msg = await send(client, mallory, own, "mine")
    assert (await client.delete(f"{API}/messages/{msg['id']}", headers=mallory.headers)).is_success

    theirs = await listed(client, mallory.headers, limit=200)
    assert ("message.recalled", msg["id"]) in [
        (e["action"], e["target_id"]) for e in theirs["entries"]
    ]
    assert all(e["actor_id"] in (mallory.id, trent.id, None) for e in theirs["entries"])
    first_org = {g["owner"].id, g["alice"].id, g["bob"].id}
    for params in ({}, {"actor_id": g["owner"].id}, {"target_id": g["bob"].id}):
        page = await listed(client, mallory.headers, limit=200, **params)
        assert not any(
            e["actor_id"] in first_org or e["target_id"] in first_org for e in page["entries"]
        )
        assert all(e["target_id"] != g["conv"] for e in page["entries"])
    ours = await listed(client, g["owner"].headers, limit=200)
    assert msg["id"] not in {e["target_id"] for e in ours["entries"]}
    assert not {mallory.id, trent.id} & {e["actor_id"] for e in ours["entries"]}


async def test_verify_reports_tampering(world: World, client: httpx.AsyncClient) -> None:
    g = await moderated_group(world, client)
    owner = g["owner"]
    resp = await client.get(f"{AUDIT}/verify", headers=owner.headers)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["ok"] is True and body["problems"] == [] and body["problem_count"] == 0
    assert body["checked"] >= 5 and body["head_seq"] == body["checked"]
    # The check itself is audited.
    newest = (await listed(client, owner.headers, limit=1))["entries"][0]
    assert (newest["action"], newest["actor_id"], newest["details"]) == (
        "audit.verified",
        owner.id,
        {"checked": body["checked"], "problems": 0},
    )

    target = (await listed(client, owner.headers, action="message.recalled"))["entries"][0]

    def tamper(tx: Tx) -> None:
        tx.execute("UPDATE audit_log SET details = '{}' WHERE seq = ?", (target["seq"],))

    await world.ctx.db.write(tamper)
    body = (await client.get(f"{AUDIT}/verify", headers=owner.headers)).json()
    assert body["ok"] is False and body["problem_count"] == 1
    assert body["problems"] == [
        {"seq": target["seq"], "kind": "altered", "detail": body["problems"][0]["detail"]}
    ]
    newest = (await listed(client, owner.headers, limit=1))["entries"][0]
    assert (newest["action"], newest["outcome"]) == ("audit.verified", "failure")


# -- alerts and metrics through the API ---------------------------------------------------------

Custom = Callable[..., AbstractAsyncContextManager[tuple[Context, httpx.AsyncClient]]]


@pytest.fixture
def custom(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Custom:
    """A server with extra configuration, seen from a chosen client address."""
    url = request.getfixturevalue("pg_schema_url") if backend == "postgres" else ""

    @asynccontextmanager
    async def make(
        client_addr: str = "127.0.0.1", **overrides: Any
    ) -> AsyncIterator[tuple[Context, httpx.AsyncClient]]:
        async with open_context(make_config(tmp_path, url, **overrides)) as ctx:
            transport = httpx.ASGITransport(app=create_app(ctx), client=(client_addr, 50000))
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                yield ctx, c

    return make


async def test_mass_recall_raises_one_alert_per_window(custom: Custom) -> None:
    before = metrics.sample("enclave_alerts_total", {"rule": "mass_deletion"})
    async with custom(**{"alerts.deletions_per_actor": 3}) as (ctx, client):
        world = World(ctx, client)
        owner = await world.owner()
        (alice,) = await people(world, "alice")
        conv = await new_conv(client, owner, "group", [alice.id], name="wipe")
        msgs = [await send(client, alice, conv, f"m{i}") for i in range(6)]
        for msg in msgs:
            resp = await client.delete(f"{API}/messages/{msg['id']}", headers=owner.headers)
            assert resp.status_code == 200, resp.text
        alerts = (await listed(client, owner.headers, action="alert"))["entries"]
        assert [(e["action"], e["target_type"], e["target_id"], e["outcome"]) for e in alerts] == [
            ("alert.mass_deletion", "user", owner.id, "alert")
        ]
        assert alerts[0]["details"]["count"] == 3
        recalls = (await listed(client, owner.headers, action="message.recalled"))["entries"]
        assert alerts[0]["details"]["trigger_seq"] == recalls[-3]["seq"]
        assert metrics.sample("enclave_alerts_total", {"rule": "mass_deletion"}) == before + 1
        metrics_text = (await client.get("/metrics")).text
        assert 'enclave_alerts_total{rule="mass_deletion"}' in metrics_text


async def test_metrics_answer_loopback_only_without_a_token(custom: Custom) -> None:
    async with custom() as (_, client):
        resp = await client.get("/metrics")
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/plain")
        for name in (
            "enclave_audit_entries_total",
            "enclave_alerts_total",
            "enclave_failed_logins_total",
            "enclave_rate_limited_requests_total",
            "enclave_websocket_connections",
        ):
            assert f"# TYPE {name.removesuffix('_total')}" in resp.text, name
        unknown = await client.get("/no-such-page")
        for headers in (
            {"X-Forwarded-For": "127.0.0.1"},
            {"Forwarded": "for=203.0.113.5"},
            {"X-Real-IP": "203.0.113.5"},
        ):
            refused = await client.get("/metrics", headers=headers)
            assert refused.status_code == 404 and refused.content == unknown.content
    async with custom(client_addr="203.0.113.5") as (_, client):
        refused = await client.get("/metrics")
        assert refused.status_code == 404
        assert refused.content == (await client.get("/no-such-page")).content


async def test_metrics_with_a_token_require_it_from_everyone(custom: Custom) -> None:
    token = "s3cret-metrics-token-0123"
    for addr in ("127.0.0.1", "10.9.8.7"):
        async with custom(client_addr=addr, **{"server.metrics_token": token}) as (_, client):
            assert (await client.get("/metrics")).status_code == 404
            wrong = {"Authorization": f"Bearer {token}x"}
            assert (await client.get("/metrics", headers=wrong)).status_code == 404
            right = {"Authorization": f"Bearer {token}"}
            resp = await client.get("/metrics", headers=right)
            assert resp.status_code == 200 and "enclave_alerts_total" in resp.text


async def test_rate_limited_requests_are_counted(custom: Custom) -> None:
    labels = {"limit": "rest:ip"}
    before = metrics.sample("enclave_rate_limited_requests_total", labels)
    async with custom(**{"limits.ip_burst": 2, "limits.ip_per_second": 0.001}) as (_, client):
        statuses = [(await client.get("/healthz")).status_code for _ in range(4)]
        assert statuses == [200, 200, 429, 429]
    assert metrics.sample("enclave_rate_limited_requests_total", labels) == before + 2


async def test_failed_logins_are_counted_and_alerted(custom: Custom) -> None:
    overrides = {"alerts.failed_logins_per_ip": 3, "alerts.failed_logins_per_account": 0}
    before = metrics.sample("enclave_failed_logins_total")
    async with custom(**overrides) as (ctx, client):
        world = World(ctx, client)
        owner = await world.owner()
        for _ in range(4):
            resp = await client.post(
                f"{API}/auth/login", json={"username": owner.username, "password": "wrong" * 4}
            )
            assert resp.status_code == 401
        alerts = (await listed(client, owner.headers, action="alert"))["entries"]
        assert [(e["action"], e["target_id"]) for e in alerts] == [
            ("alert.failed_logins_ip", "127.0.0.1")
        ]
    assert metrics.sample("enclave_failed_logins_total") == before + 4
