"""eDiscovery export through the API, on both backends: what it contains (edits, recalls,
threads, reactions, membership changes), that the manifest's hashes match the files, that the
.eml files parse back with the standard library (Chinese included), who may see exports, and
that the files are private and deleted after their time."""

from __future__ import annotations

import email
import email.policy
import hashlib
import io
import json
import stat
import zipfile
from email.message import EmailMessage
from typing import Any

import httpx

from enclave.services import exports
from enclave.services.context import Context
from enclave.storage import audit as audit_store
from tests.api.helpers import API, code, new_conv, people, send
from tests.conftest import Person, World

CHINESE = "你好，世界：紫禁城的秘密会议在明天"
EXPORTS = f"{API}/compliance/exports"


class FakeClock:
    def __init__(self, now: int) -> None:
        self.now = now

    def now_ms(self) -> int:
        return self.now


async def _scene(world: World, client: httpx.AsyncClient) -> dict[str, Any]:
    """alice and bob in a group (an edit, a recall, a thread, a reaction, Chinese text, carol
    joining and leaving, a role change); bob and carol in a DM alice was never in."""
    alice, bob, carol = await people(world, "alice", "bob", "carol")
    group = await new_conv(client, alice, "group", [bob.id], name="Project X")
    first = await send(client, alice, group, "the plan is alpha")
    edited = await client.patch(
        f"{API}/messages/{first['id']}", json={"text": "the plan is beta"}, headers=alice.headers
    )
    assert edited.status_code == 200, edited.text
    doomed = await send(client, bob, group, "something I regret")
    recalled = await client.delete(f"{API}/messages/{doomed['id']}", headers=bob.headers)
    assert recalled.status_code == 200, recalled.text
    reply = await send(client, bob, group, "reply in thread", root=first["id"])
    chinese = await send(client, alice, group, CHINESE)
    reacted = await client.put(f"{API}/messages/{chinese['id']}/reactions/👍", headers=bob.headers)
    assert reacted.status_code == 200, reacted.text
    added = await client.post(
        f"{API}/conversations/{group}/members", json={"user_ids": [carol.id]}, headers=alice.headers
    )
    assert added.status_code in (200, 201), added.text
    left = await client.post(f"{API}/conversations/{group}/leave", headers=carol.headers)
    assert left.status_code == 204, left.text
    dm = await new_conv(client, bob, "dm", [carol.id])
    await send(client, bob, dm, "between bob and carol only")
    return {
        "alice": alice,
        "bob": bob,
        "carol": carol,
        "group": group,
        "dm": dm,
        "first": first["id"],
        "recalled": doomed["id"],
        "reply": reply["id"],
        "chinese": chinese["id"],
    }


async def _export(client: httpx.AsyncClient, who: Person, body: dict[str, Any]) -> dict[str, Any]:
    resp = await client.post(EXPORTS, json=body, headers=who.headers)
    assert resp.status_code == 202, resp.text
    job = resp.json()
    await exports.wait(job["id"])
    done = await client.get(f"{EXPORTS}/{job['id']}", headers=who.headers)
    assert done.status_code == 200, done.text
    result: dict[str, Any] = done.json()
    return result


def _unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


async def test_export_contains_edits_recalls_threads_and_membership(
    world: World, client: httpx.AsyncClient, ctx: Context
) -> None:
    s = await _scene(world, client)
    officer = await world.person("olga", role="compliance_officer")
    job = await _export(client, officer, {"people": [s["alice"].id]})
    assert job["status"] == "done", job
    assert job["done"] == job["total"] == 4  # the group's messages; none of the DM

    resp = await client.get(f"{EXPORTS}/{job['id']}/download", headers=officer.headers)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/zip"
    files = _unzip(resp.content)

    # The manifest names every other file with its size and SHA-256.
    manifest = json.loads(files["manifest.json"])
    listed = {f["path"]: f for f in manifest["files"]}
    assert set(listed) == set(files) - {"manifest.json"}
    for path, entry in listed.items():
        assert entry["bytes"] == len(files[path]), path
        assert entry["sha256"] == hashlib.sha256(files[path]).hexdigest(), path
    assert manifest["query"]["people"] == [s["alice"].id]
    assert manifest["run_by"]["user_id"] == officer.id
    assert manifest["run_by"]["username"] == "olga"
    assert manifest["counts"]["messages"] == 4

    records = [json.loads(line) for line in files["messages.jsonl"].splitlines()]
    messages = {r["id"]: r for r in records if r["record"] == "message"}
    assert {m["conversation_id"] for m in messages.values()} == {s["group"]}
    assert not any("bob and carol" in (m["text"] or "") for m in messages.values())
    first = messages[s["first"]]
    assert first["text"] == "the plan is beta"
    assert [v["text"] for v in first["versions"]] == ["the plan is alpha"]
    assert first["reply_count"] == 1
    assert messages[s["reply"]]["thread_root_id"] == s["first"]
    recalled = messages[s["recalled"]]
    assert recalled["recalled"] is True
    assert recalled["text"] == "something I regret"  # the record keeps the last text
    chinese = messages[s["chinese"]]
    assert chinese["text"] == CHINESE
    assert [(r["emoji"], r["username"]) for r in chinese["reactions"]] == [("👍", "bob")]
    membership = [r for r in records if r["record"] == "membership"]
    events = [(r["event"], (r["data"] or {}).get("user_id")) for r in membership]
    assert ("member.joined", s["carol"].id) in events
    assert ("member.left", s["carol"].id) in events
    assert any(r["event"] == "conversation.created" for r in membership)

    # One .eml per conversation-day; each parses back, Chinese intact.
    emls = [p for p in files if p.endswith(".eml")]
    assert emls and all(p.startswith(f"eml/{s['group']}/") for p in emls)
    bodies: list[str] = []
    for path in emls:
        mail = email.message_from_bytes(files[path], policy=email.policy.default)
        assert isinstance(mail, EmailMessage)
        assert "Project X" in str(mail["Subject"])
        for part in mail.iter_attachments():
            assert part.get_content_type() == "message/rfc822"
            inner = part.get_content()
            assert isinstance(inner, EmailMessage)
            assert inner["Message-ID"]
            bodies.append(str(inner.get_content()))
    assert len(bodies) == 4
    assert any(CHINESE in b for b in bodies)
    assert any("the plan is alpha" in b and "the plan is beta" in b for b in bodies)

    # Audited: started by the officer, finished by the job, downloaded by the officer.
    entries = await ctx.db.read(lambda tx: audit_store.scan(tx, 0, 10_000))
    mine = [e for e in entries if e.target_id == job["id"]]
    assert [(e.action, e.details.get("stage")) for e in mine] == [
        ("export.ediscovery", "started"),
        ("export.ediscovery", "finished"),
        ("compliance.export_downloaded", None),
    ]
    assert mine[0].actor_id == officer.id and mine[0].details["query"]["people"]
    assert mine[1].details["counts"]["messages"] == 4


async def test_export_files_are_private_and_expire(
    world: World, client: httpx.AsyncClient, ctx: Context
) -> None:
    s = await _scene(world, client)
    owner = await world.owner()  # owners may export too
    clock = FakeClock(ctx.clock.now_ms())
    ctx.clock = clock
    job = await _export(client, owner, {"conversations": [s["group"]], "since": 0})
    assert job["status"] == "done"
    assert job["expires_at"] == job["finished_at"] + 24 * 3_600_000
    root = exports.job_dir(ctx, job["id"])
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))

    clock.now = job["expires_at"] + 1
    assert await exports.sweep(ctx) == 1
    assert not root.exists()
    gone = await client.get(f"{EXPORTS}/{job['id']}", headers=owner.headers)
    assert gone.json()["status"] == "expired"
    late = await client.get(f"{EXPORTS}/{job['id']}/download", headers=owner.headers)
    assert code(late) == (409, "export_not_ready")


async def test_only_compliance_officers_and_owners_see_exports(
    world: World, client: httpx.AsyncClient
) -> None:
    s = await _scene(world, client)
    officer = await world.person("olga", role="compliance_officer")
    admin = await world.person("adam", role="admin")
    job = await _export(client, officer, {"people": [s["bob"].id], "since": 0, "until": 2**50})
    assert job["status"] == "done" and job["total"] == 5  # bob's group and his DM

    for who in (admin, s["alice"], s["bob"]):
        refused = await client.post(EXPORTS, json={}, headers=who.headers)
        assert code(refused) == (403, "forbidden")
        for path in (f"{EXPORTS}/{job['id']}", f"{EXPORTS}/{job['id']}/download"):
            hidden = await client.get(path, headers=who.headers)
            missing = await client.get(path.replace(job["id"], "a" * 26), headers=who.headers)
            assert code(hidden) == code(missing) == (404, "not_found")
            assert hidden.content == missing.content


async def test_export_refuses_people_and_conversations_it_cannot_find(
    world: World, client: httpx.AsyncClient
) -> None:
    officer = await world.person("olga", role="compliance_officer")
    for body in ({"people": ["a" * 26]}, {"conversations": ["b" * 26]}):
        resp = await client.post(EXPORTS, json=body, headers=officer.headers)
        assert code(resp) == (404, "not_found")
    resp = await client.post(EXPORTS, json={"since": 10, "until": 5}, headers=officer.headers)
    assert code(resp) == (422, "invalid_filter")
