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
from pathlib import Path
from typing import Any

import httpx
import pytest

from enclave.domain.ids import OrgId, new_id
from enclave.domain.models import Org
from enclave.services import orgs
from enclave.services.context import Context
from enclave.services.exports import jobs as exports
from enclave.services.exports import run as export_run
from enclave.storage import accounts as account_store
from enclave.storage import audit as audit_store
from enclave.storage import exports as export_store
from enclave.storage.base import Tx
from tests.api.export_helpers import EXPORTS, export_worker, fast_jobs_config, finished
from tests.api.helpers import API, code, new_conv, people, send
from tests.conftest import Person, World

# Every test here runs a node with the export kind, polling fast (the fixtures' names are
# `config` and `exporting`).
__all__ = ["export_worker", "fast_jobs_config"]
pytestmark = pytest.mark.usefixtures("exporting")

CHINESE = "你好，世界：紫禁城的秘密会议在明天"


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
    return await finished(client, who, resp.json()["id"])


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
    root = export_run.job_dir(ctx, job["id"])
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


async def test_compliance_officers_list_the_organizations_exports(
    world: World, client: httpx.AsyncClient, ctx: Context, tmp_path: Path
) -> None:
    s = await _scene(world, client)
    officer = await world.person("olga", role="compliance_officer")
    owner = await world.owner()
    first = await _export(client, officer, {"people": [s["alice"].id]})
    second = await _export(client, owner, {"conversations": [s["dm"]]})
    org = await orgs.operator_org(ctx, None)
    await export_run.run_to_directory(ctx, org.id, export_run.ExportQuery(), tmp_path / "cli")
    # Another organization's export is not listed.
    other = OrgId(new_id())
    await ctx.db.write(lambda tx: _other_orgs_job(tx, other))

    resp = await client.get(EXPORTS, headers=officer.headers)
    assert resp.status_code == 200, resp.text
    listed = resp.json()
    assert listed["next_before"] is None
    jobs = listed["exports"]
    assert len(jobs) == 3
    assert [j["created_at"] for j in jobs] == sorted((j["created_at"] for j in jobs), reverse=True)
    by_id = {j["id"]: j for j in jobs}
    assert by_id[first["id"]]["requested_by"] == officer.id
    assert by_id[first["id"]]["requested_by_username"] == "olga"
    assert by_id[second["id"]]["requested_by_username"] == owner.username
    assert by_id[first["id"]]["status"] == "done"
    assert by_id[first["id"]]["done"] == by_id[first["id"]]["total"] == 4
    assert by_id[first["id"]]["query"]["people"] == [s["alice"].id]
    (cli,) = [j for j in jobs if j["id"] not in (first["id"], second["id"])]
    assert (cli["requested_by"], cli["requested_by_username"]) == (None, None)

    # Pages: newest first, each job once.
    seen: list[str] = []
    before: str | None = None
    for _ in range(3):
        params = {"limit": 2, **({"before": before} if before else {})}
        page = await client.get(EXPORTS, params=params, headers=owner.headers)
        assert page.status_code == 200, page.text
        seen += [j["id"] for j in page.json()["exports"]]
        before = page.json()["next_before"]
        if before is None:
            break
    assert seen == [j["id"] for j in jobs] and before is None

    for bad in ({"limit": 0}, {"limit": 101}, {"before": "x" * 49}, {"before": "1.bad"}):
        refused = await client.get(EXPORTS, params=bad, headers=officer.headers)
        assert code(refused) == (422, "validation_error"), bad


def _other_orgs_job(tx: Tx, org_id: OrgId) -> None:
    account_store.insert_org(tx, Org(id=org_id, name="Other", created_at=0))
    export_store.insert_job(
        tx,
        export_store.ExportJob(
            id=new_id(),
            org_id=org_id,
            requested_by=None,
            query={},
            status=export_store.DONE,
            done=0,
            total=0,
            error=None,
            created_at=2**40,  # newer than ours: it would come first
            finished_at=None,
            expires_at=None,
        ),
    )


async def test_only_compliance_officers_and_owners_list_exports(
    world: World, client: httpx.AsyncClient
) -> None:
    s = await _scene(world, client)
    officer = await world.person("olga", role="compliance_officer")
    await _export(client, officer, {"people": [s["bob"].id]})
    admin = await world.person("adam", role="admin")
    dana = await world.person("dana", role="department_admin")
    guest = await world.person("gus", role="guest")
    missing = await client.get(f"{EXPORTS}/{'a' * 26}", headers=admin.headers)
    assert code(missing) == (404, "not_found")
    for who in (admin, dana, guest, s["alice"]):
        hidden = await client.get(EXPORTS, headers=who.headers)
        assert code(hidden) == (404, "not_found")
        assert hidden.content == missing.content  # byte for byte a missing export
