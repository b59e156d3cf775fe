"""GDPR through the API, on both backends: a person's own export (Art. 15/20) is complete and
holds nothing of conversations they were never in; erasure (Art. 17) leaves nothing of the
profile readable, pseudonymizes or deletes the messages per organization policy without
breaking threads, and is refused for a person under legal hold."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from enclave.config import Config
from enclave.domain.ids import new_id
from enclave.services.context import Context
from enclave.storage import accounts as account_store
from enclave.storage import audit as audit_store
from enclave.storage import holds
from enclave.storage.base import Tx
from tests.api.helpers import API, code, new_conv, people, send
from tests.conftest import TEST_PASSWORD, Person, World
from tests.services.test_encryption import _checkpoint, _stored_bytes

SECRET = "quokkaparliament"


async def _my_data(client: httpx.AsyncClient, who: Person) -> tuple[dict[str, Any], bytes]:
    resp = await client.post(f"{API}/users/me/export", headers=who.headers)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    return json.loads(resp.content), resp.content


async def test_a_persons_export_holds_all_they_sent_and_nothing_else(
    world: World, client: httpx.AsyncClient, ctx: Context
) -> None:
    alice, bob, carol = await people(world, "alice", "bob", "carol")
    group = await new_conv(client, alice, "group", [bob.id, carol.id])
    dm = await new_conv(client, alice, "dm", [bob.id])
    sent = []
    for i in range(4):
        sent.append(await send(client, alice, group, f"group note {i} 你好"))
    for i in range(3):
        sent.append(await send(client, alice, dm, f"dm note {i}"))
    reply = await send(client, alice, group, "a reply", root=sent[0]["id"])
    sent.append(reply)
    edited = await client.patch(
        f"{API}/messages/{sent[1]['id']}",
        json={"text": "group note 1, edited"},
        headers=alice.headers,
    )
    assert edited.status_code == 200, edited.text
    await send(client, bob, group, "bob says hi")
    reacted = await client.put(
        f"{API}/messages/{sent[0]['id']}/reactions/🎉", headers=alice.headers
    )
    assert reacted.status_code == 200
    elsewhere = await new_conv(client, bob, "dm", [carol.id])
    await send(client, bob, elsewhere, f"bob to carol {SECRET}")
    mfa = await client.post(f"{API}/users/me/mfa/totp", headers=alice.headers)
    assert mfa.status_code == 200, mfa.text

    data, raw = await _my_data(client, alice)
    assert data["format"] == "enclave-personal-data-1"
    assert data["profile"]["id"] == alice.id and data["profile"]["username"] == "alice"
    mine = data["messages"]
    assert len(mine) == len(sent) == 8  # every message alice sent, counted
    assert {m["id"] for m in mine} == {m["id"] for m in sent}
    assert {m["conversation_id"] for m in mine} == {group, dm}
    assert all(m["sender_id"] == alice.id for m in mine)
    by_id = {m["id"]: m for m in mine}
    assert [v["text"] for v in by_id[sent[1]["id"]]["versions"]] == ["group note 1 你好"]
    assert by_id[reply["id"]]["thread_root_id"] == sent[0]["id"]
    assert [(r["emoji"], r["message_id"]) for r in data["reactions"]] == [("🎉", sent[0]["id"])]
    assert {m["conversation"]["id"] for m in data["memberships"]} == {group, dm}
    assert data["sessions"] and all("token" not in json.dumps(s) for s in data["sessions"])
    assert data["mfa"]["enrolled"] is False
    # Nothing of a conversation alice was never in; never the MFA secret.
    assert SECRET.encode() not in raw and elsewhere.encode() not in raw
    assert mfa.json()["secret"].encode() not in raw
    actions = {e["action"] for e in data["audit_entries"]}
    assert {"user.created", "auth.login", "export.gdpr"} <= actions
    entries = await ctx.db.read(lambda tx: audit_store.scan(tx, 0, 10_000))
    assert any(e.action == "export.gdpr" and e.actor_id == alice.id for e in entries)


async def _sealed_texts(ctx: Context, sender: str) -> list[str]:
    """Every stored ciphertext of the person's message texts, versions and message events."""

    def work(tx: Tx) -> list[str]:
        found = [
            str(r["text"])
            for r in tx.fetchall("SELECT text FROM messages WHERE sender_id = ?", (sender,))
        ]
        found += [
            str(r["text"])
            for r in tx.fetchall(
                "SELECT v.text FROM message_versions v JOIN messages m ON m.id = v.message_id"
                " WHERE m.sender_id = ?",
                (sender,),
            )
        ]
        found += [
            str(r["data"])
            for r in tx.fetchall(
                "SELECT data FROM events WHERE actor_id = ? AND type IN"
                " ('message.created', 'message.edited')",
                (sender,),
            )
        ]
        return found

    return await ctx.db.read(work)


async def _erase(client: httpx.AsyncClient, admin: Person, who: Person) -> dict[str, Any]:
    resp = await client.post(f"{API}/users/{who.id}/erase", headers=admin.headers)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def _set_mode(client: httpx.AsyncClient, owner: Person, mode: str) -> None:
    resp = await client.patch(
        f"{API}/org/settings", json={"erasure_mode": mode}, headers=owner.headers
    )
    assert resp.status_code == 200 and resp.json()["erasure_mode"] == mode, resp.text


async def test_erasure_in_delete_mode_leaves_nothing_readable_and_threads_render(
    world: World, client: httpx.AsyncClient, ctx: Context, config: Config
) -> None:
    alice, bob = await people(world, "alice", "bob")
    owner = await world.owner()
    await _set_mode(client, owner, "delete")
    group = await new_conv(client, alice, "group", [bob.id])
    root = await send(client, alice, group, f"alice's root {SECRET}")
    edited = await client.patch(
        f"{API}/messages/{root['id']}",
        json={"text": f"alice's root, edited {SECRET}"},
        headers=alice.headers,
    )
    assert edited.status_code == 200
    bob_reply = await send(client, bob, group, "bob replies", root=root["id"])
    bob_root = await send(client, bob, group, "bob's own thread")
    alice_reply = await send(client, alice, group, f"alice replies {SECRET}", root=bob_root["id"])
    mfa = await client.post(f"{API}/users/me/mfa/totp", headers=alice.headers)
    assert mfa.status_code == 200
    sealed = await _sealed_texts(ctx, alice.id)
    assert len(sealed) == 6  # two texts, one earlier version, two `created` + one `edited` event
    sealed_mfa = await ctx.db.read(
        lambda tx: tx.fetchone("SELECT secret FROM user_mfa WHERE user_id = ?", (alice.id,))
    )
    assert sealed_mfa is not None
    before = await client.get(f"{API}/conversations/{group}/messages", headers=bob.headers)

    result = await _erase(client, owner, alice)
    assert result["mode"] == "delete"
    assert result["username"].startswith("erased-")
    assert result["messages_deleted"] == 2 and result["versions_deleted"] == 1
    assert result["events_scrubbed"] == 3 and result["keys_shredded"] == 1

    # The profile: pseudonym, no display name, no MFA, no sessions, no way to log in.
    shown = await client.get(f"{API}/users/{alice.id}", headers=owner.headers)
    assert shown.status_code == 200
    assert shown.json()["username"] == result["username"]
    assert shown.json()["display_name"] == ""
    assert shown.json()["is_active"] is False
    stored = await ctx.db.read(lambda tx: account_store.user_by_id(tx, alice.id))
    assert stored is not None and stored.display_name == ""
    opened = await ctx.db.read(
        lambda tx: ctx.data_keys.open(tx, f"user_mfa.secret|{alice.id}", sealed_mfa["secret"])
    )
    assert opened is None  # the MFA secret's key is gone, backups included
    mfa_rows = await ctx.db.read(
        lambda tx: tx.fetchall("SELECT 1 FROM user_mfa WHERE user_id = ?", (alice.id,))
    )
    assert mfa_rows == []
    relog = await client.post(
        f"{API}/auth/login", json={"username": "alice", "password": TEST_PASSWORD}
    )
    assert code(relog) == (401, "invalid_credentials")
    assert code(await client.get(f"{API}/users/me", headers=alice.headers))[0] == 401

    # Threads still render, with tombstones where alice's text was.
    thread = await client.get(f"{API}/messages/{root['id']}/thread", headers=bob.headers)
    assert thread.status_code == 200, thread.text
    assert thread.json()["root"]["text"] is None and thread.json()["root"]["recalled"] is True
    assert [r["id"] for r in thread.json()["replies"]] == [bob_reply["id"]]
    assert thread.json()["root"]["reply_count"] == 1
    other = await client.get(f"{API}/messages/{bob_root['id']}/thread", headers=bob.headers)
    assert other.status_code == 200
    assert [(r["id"], r["text"]) for r in other.json()["replies"]] == [(alice_reply["id"], None)]
    after = await client.get(f"{API}/conversations/{group}/messages", headers=bob.headers)
    assert [m["seq"] for m in after.json()["messages"]] == [
        m["seq"] for m in before.json()["messages"]
    ]
    versions = await client.get(f"{API}/messages/{root['id']}/versions", headers=bob.headers)
    assert versions.json()["versions"] == []
    assert "bob's own thread" in after.text

    # The ciphertexts are gone from the database file (or dump), not just unreadable.
    # Off the event loop: a checkpoint or a pg_dump takes a while.
    if not config.uses_postgres:
        await asyncio.to_thread(_checkpoint, config.sqlite_path())
    stored_bytes = await asyncio.to_thread(_stored_bytes, config)
    for value in sealed:
        assert value.encode() not in stored_bytes
    entries = await ctx.db.read(lambda tx: audit_store.scan(tx, 0, 10_000))
    erased = [e for e in entries if e.action == "user.erased"]
    assert len(erased) == 1 and erased[0].target_id == alice.id
    assert erased[0].details["mode"] == "delete" and erased[0].details["messages_deleted"] == 2
    assert any(e.action == "keys.shredded" and e.target_id == f"user:{alice.id}" for e in entries)


async def test_erasure_in_pseudonymize_mode_keeps_the_messages(
    world: World, client: httpx.AsyncClient
) -> None:
    alice, bob = await people(world, "alice", "bob")
    owner = await world.owner()
    admin = await world.person("adam", role="admin")
    group = await new_conv(client, alice, "group", [bob.id])
    msg = await send(client, alice, group, "kept for the record")
    result = await _erase(client, admin, alice)
    assert result["mode"] == "pseudonymize" and result["messages_deleted"] == 0
    shown = await client.get(f"{API}/messages/{msg['id']}", headers=bob.headers)
    assert shown.json()["text"] == "kept for the record"
    assert shown.json()["sender_id"] == alice.id
    user = await client.get(f"{API}/users/{alice.id}", headers=owner.headers)
    assert user.json()["username"] == result["username"] and user.json()["display_name"] == ""
    # Running it again (an interrupted erasure) completes without changing anything else.
    again = await _erase(client, admin, alice)
    assert again["username"] == result["username"] and again["keys_shredded"] == 0


async def test_a_person_under_legal_hold_is_not_erased(
    world: World, client: httpx.AsyncClient, ctx: Context
) -> None:
    alice, bob = await people(world, "alice", "bob")
    owner = await world.owner()
    await _set_mode(client, owner, "delete")
    group = await new_conv(client, alice, "group", [bob.id])
    await send(client, alice, group, "under hold")

    def hold(tx: Tx) -> None:
        org = account_store.first_org(tx)
        assert org is not None
        holds.insert(
            tx,
            holds.Hold(
                id=new_id(),
                org_id=org.id,
                kind=holds.PERSON,
                target_id=alice.id,
                reason="litigation",
                created_by=owner.id,
                created_at=ctx.clock.now_ms(),
                released_by=None,
                released_at=None,
                release_reason=None,
            ),
        )

    await ctx.db.write(hold)
    resp = await client.post(f"{API}/users/{alice.id}/erase", headers=owner.headers)
    assert code(resp) == (409, "legal_hold")
    me = await client.get(f"{API}/users/me", headers=alice.headers)
    assert me.status_code == 200 and me.json()["username"] == "alice"
    texts = await client.get(f"{API}/conversations/{group}/messages", headers=bob.headers)
    assert [m["text"] for m in texts.json()["messages"]] == ["under hold"]


async def test_only_owners_and_admins_erase_and_never_themselves(
    world: World, client: httpx.AsyncClient
) -> None:
    alice, bob = await people(world, "alice", "bob")
    owner = await world.owner()
    officer = await world.person("olga", role="compliance_officer")
    for who in (bob, officer):
        resp = await client.post(f"{API}/users/{alice.id}/erase", headers=who.headers)
        assert code(resp) == (403, "forbidden")
    resp = await client.post(f"{API}/users/{owner.id}/erase", headers=owner.headers)
    assert code(resp) == (403, "forbidden")
    missing = await client.post(f"{API}/users/{new_id()}/erase", headers=owner.headers)
    assert code(missing) == (404, "not_found")
