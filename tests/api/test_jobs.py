"""The admin job API (`/api/v1/admin/jobs`) and `enclave jobs`: roles, other organizations'
jobs hidden, bad input, a dead job's last error, retry and cancel (audited)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from enclave.cli import main as cli
from enclave.config import Config
from enclave.domain.ids import OrgId, new_id
from enclave.domain.models import Org
from enclave.services import jobs
from enclave.services.context import Context
from enclave.services.runtime import Node
from enclave.storage import accounts as account_store
from enclave.storage import audit as audit_store
from enclave.storage import jobs as store
from tests.conftest import World

API = "/api/v1/admin/jobs"


async def _noop(ctx: Context, job: jobs.Job) -> None:
    pass


async def _broken(ctx: Context, job: jobs.Job) -> None:
    raise RuntimeError("the archive volume is full")


NOOP = jobs.Kind("test.noop", _noop)
BROKEN = jobs.Kind("test.broken", _broken, max_attempts=1)


async def org_of(world: World) -> OrgId:
    owner = await world.owner()
    user = await world.ctx.db.read(lambda tx: account_store.user_by_id(tx, owner.id))
    assert user is not None
    return user.org_id


async def other_org(ctx: Context) -> OrgId:
    org = Org(id=OrgId(new_id()), name=f"other {new_id()[:6]}", created_at=1)
    await ctx.db.write(lambda tx: account_store.insert_org(tx, org))
    return org.id


def _location(config: Config) -> list[str]:
    args = ["--data-dir", str(config.server.data_dir)]
    if config.database.url:
        args += ["--database-url", config.database.url]
    return args


async def test_owners_and_admins_list_and_show_their_orgs_jobs_only(
    world: World, client: httpx.AsyncClient, ctx: Context
) -> None:
    owner = await world.owner()
    admin = await world.person("ada", "admin")
    mine = await org_of(world)
    a = await jobs.enqueue(ctx, NOOP, {"n": 1}, org_id=mine, key="mine-1")
    b = await jobs.enqueue(ctx, BROKEN, {"n": 2}, org_id=mine)
    theirs = await jobs.enqueue(ctx, NOOP, {}, org_id=await other_org(ctx))
    installation = await jobs.enqueue(ctx, NOOP, {})
    for who in (owner, admin):
        resp = await client.get(API, headers=who.headers)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        # newest first; two jobs made in the same clock tick come in id order
        newest_first = sorted((a, b), key=lambda j: (-j.created_at, j.id))
        assert [j["id"] for j in body["jobs"]] == [j.id for j in newest_first]
        assert body["next_cursor"] is None
        first = next(j for j in body["jobs"] if j["id"] == a.id)
        assert (first["kind"], first["state"], first["key"], first["attempts"]) == (
            "test.noop",
            "queued",
            "mine-1",
            0,
        )
        assert "payload" not in first  # a payload may hold chat data: never on the wire
        shown = await client.get(f"{API}/{a.id}", headers=who.headers)
        assert shown.status_code == 200 and shown.json() == first
        for hidden in (theirs.id, installation.id, new_id(), "not-an-id"):
            for resp in (
                await client.get(f"{API}/{hidden}", headers=who.headers),
                await client.post(f"{API}/{hidden}/retry", headers=who.headers),
                await client.post(f"{API}/{hidden}/cancel", headers=who.headers),
            ):
                assert resp.status_code == 404, resp.text
                assert resp.json()["error"]["code"] == "not_found"
    filtered = await client.get(API, params={"kind": "test.broken"}, headers=owner.headers)
    assert [j["id"] for j in filtered.json()["jobs"]] == [b.id]
    page = await client.get(API, params={"limit": 1}, headers=owner.headers)
    assert [j["id"] for j in page.json()["jobs"]] == [b.id]
    rest = await client.get(
        API, params={"limit": 1, "cursor": page.json()["next_cursor"]}, headers=owner.headers
    )
    assert [j["id"] for j in rest.json()["jobs"]] == [a.id]


@pytest.mark.parametrize("role", ["compliance_officer", "department_admin", "member", "guest"])
async def test_other_roles_may_not_manage_jobs(
    world: World, client: httpx.AsyncClient, ctx: Context, role: str
) -> None:
    who = await world.person(f"r{role[:8]}", role)
    job = await jobs.enqueue(ctx, NOOP, {}, org_id=await org_of(world))
    for resp in (
        await client.get(API, headers=who.headers),
        await client.get(f"{API}/{job.id}", headers=who.headers),
        await client.post(f"{API}/{job.id}/retry", headers=who.headers),
        await client.post(f"{API}/{job.id}/cancel", headers=who.headers),
    ):
        assert resp.status_code == 403, resp.text
        assert resp.json()["error"]["code"] == "forbidden"
    assert (await client.get(API)).status_code == 401


async def test_bad_input_is_refused_with_clear_codes(
    world: World, client: httpx.AsyncClient
) -> None:
    owner = await world.owner()
    for params in (
        {"state": "exploded"},
        {"limit": 0},
        {"limit": 201},
        {"cursor": "yesterday"},
        {"cursor": "1." + "a" * 27},
        {"kind": "Bad Kind!"},
        {"kind": "k" * 65},
    ):
        resp = await client.get(API, params=params, headers=owner.headers)
        assert resp.status_code == 422, (params, resp.text)
        assert resp.json()["error"]["code"] == "validation_error"
    resp = await client.get(f"{API}/{'x' * 65}", headers=owner.headers)
    assert resp.status_code == 422


async def test_a_dead_job_shows_its_last_error_and_retry_and_cancel_are_audited(
    world: World, client: httpx.AsyncClient, ctx: Context, config: Config
) -> None:
    owner = await world.owner()
    mine = await org_of(world)
    job = await jobs.enqueue(ctx, BROKEN, {}, org_id=mine)
    node = Node(ctx, jobs.Registry((BROKEN,)))
    await node.start()
    try:
        for _ in range(500):
            if (await jobs.get(ctx, None, job.id)).state == "dead":
                break
            await asyncio.sleep(0.02)
    finally:
        await node.close()
    resp = await client.get(f"{API}/{job.id}", headers=owner.headers)
    assert resp.json()["state"] == "dead"
    assert resp.json()["attempts"] == 1
    assert resp.json()["last_error"] == "RuntimeError: the archive volume is full"
    dead_list = await client.get(API, params={"state": "dead"}, headers=owner.headers)
    assert [j["id"] for j in dead_list.json()["jobs"]] == [job.id]

    retried = await client.post(f"{API}/{job.id}/retry", headers=owner.headers)
    assert retried.status_code == 200, retried.text
    assert (retried.json()["state"], retried.json()["attempts"]) == ("queued", 0)
    again = await client.post(f"{API}/{job.id}/retry", headers=owner.headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "job_not_retryable"
    cancelled = await client.post(f"{API}/{job.id}/cancel", headers=owner.headers)
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    twice = await client.post(f"{API}/{job.id}/cancel", headers=owner.headers)
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "job_finished"

    entries = await ctx.db.read(lambda tx: audit_store.scan(tx, 0, 10_000))
    logged = [(e.action, e.actor_id, e.target_id) for e in entries if e.action.startswith("job.")]
    assert logged == [("job.retried", owner.id, job.id), ("job.cancelled", owner.id, job.id)]


async def test_the_cli_lists_shows_retries_and_cancels(
    world: World,
    ctx: Context,
    config: Config,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    mine = await org_of(world)
    queued = await jobs.enqueue(ctx, NOOP, {"report": 7}, org_id=mine)
    dead = await jobs.enqueue(ctx, BROKEN, {}, org_id=mine)
    now = ctx.clock.now_ms()
    taken = await ctx.db.write(
        lambda tx: store.claim(tx, "test.broken", "cli-test", now, now + 60_000, 1)
    )
    assert [j.id for j in taken] == [dead.id]
    state = await ctx.db.write(
        lambda tx: store.fail(tx, dead.id, "cli-test", now, "RuntimeError: out of paper", now)
    )
    assert state == "dead"
    installation = await jobs.enqueue(ctx, NOOP, {})

    async def cli_run(*args: str) -> tuple[int, str, str]:
        code = await asyncio.to_thread(cli.main, [args[0], args[1], *_location(config), *args[2:]])
        out = capsys.readouterr()
        return code, out.out, out.err

    code, out, _ = await cli_run("jobs", "list")
    assert code == 0
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == [installation.id, dead.id, queued.id]
    assert "dead" in lines[1] and "RuntimeError: out of paper" in lines[1]
    code, out, _ = await cli_run("jobs", "list", "--state", "dead", "--json")
    listed = json.loads(out)
    assert [(j["id"], j["last_error"]) for j in listed] == [(dead.id, "RuntimeError: out of paper")]
    code, out, _ = await cli_run("jobs", "list", "--org", mine)
    assert [line.split()[0] for line in out.splitlines()] == [dead.id, queued.id]

    code, out, _ = await cli_run("jobs", "show", queued.id, "--json")
    shown = json.loads(out)
    assert (shown["state"], shown["payload"], shown["org_id"]) == ("queued", {"report": 7}, mine)
    code, out, _ = await cli_run("jobs", "show", dead.id)
    assert "state: dead" in out and "last_error: RuntimeError: out of paper" in out

    code, out, _ = await cli_run("jobs", "retry", dead.id)
    assert code == 0 and "queued again" in out
    assert (await jobs.get(ctx, None, dead.id)).state == "queued"
    code, _, err = await cli_run("jobs", "retry", queued.id)
    assert code == 1 and "job_not_retryable" in err

    code, out, _ = await cli_run("jobs", "cancel", queued.id)
    assert code == 0 and "would cancel" in out
    assert (await jobs.get(ctx, None, queued.id)).state == "queued"  # not without --yes
    code, out, _ = await cli_run("jobs", "cancel", queued.id, "--yes")
    assert code == 0 and "cancelled" in out
    assert (await jobs.get(ctx, None, queued.id)).state == "cancelled"
    code, _, err = await cli_run("jobs", "show", new_id())
    assert code == 1 and "not_found" in err

    entries = await ctx.db.read(lambda tx: audit_store.scan(tx, 0, 10_000))
    logged = [(e.action, e.actor_id, e.org_id) for e in entries if e.action.startswith("job.")]
    assert logged == [("job.retried", None, mine), ("job.cancelled", None, mine)]
