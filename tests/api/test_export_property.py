"""Exports as a property (issue 6): nobody exports what the permission table denies.

The same random organizations as `test_access_property` (org roles, conversations of every
kind and membership, a second organization next to the first, whose second person is a
member or a compliance officer), then every person of both organizations:

- starts an eDiscovery export of the people of their own organization the example picks:
  only owners and compliance officers may (`compliance.export`), others get 403; naming a
  person or a conversation of the other organization answers 404, byte for byte like an id
  that names nothing;
- lists the export jobs, looks at every job made so far, and downloads the new ones: the list
  holds exactly the jobs of the person's own organization, and a job exists only for
  the owners and compliance officers of its own organization (any of them: the policy gives
  the action across the organization, so officers share their jobs); for everyone else,
  another organization's officers and people whose role changed since included, the status
  and the download answer byte for byte like a missing job;
- downloads their own data (`POST /users/me/export`).

What an eDiscovery export holds is checked against the model: exactly the conversations of
its organization the picked people are members of, with exactly their messages, and no id of
the other organization in any file. A person's own export holds exactly their memberships
and the messages they sent, no id or message of a conversation they were never a member of
(outside their own audit entries), and nothing of the other organization.
"""

from __future__ import annotations

import io
import json
import weakref
import zipfile
from dataclasses import dataclass

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from enclave.domain.ids import new_id
from tests.api.export_helpers import export_worker, fast_jobs_config, finished
from tests.api.helpers import API
from tests.api.test_access_property import (
    CONVERSATIONS,
    OWNER,
    ROLES,
    Cast,
    ConvSpec,
    N,
    build,
    cast,
)
from tests.conftest import World

# A node runs the export jobs beside the app (fixtures `config` and `exporting`).
__all__ = ["export_worker", "fast_jobs_config"]
pytestmark = pytest.mark.usefixtures("exporting")

EXPORTS = f"{API}/compliance/exports"
EXPORTERS = ("owner", "compliance_officer")
A_PEOPLE = [OWNER, *(f"person{i}" for i in range(N))]
B_PEOPLE = ["mallory", "trent"]


@dataclass(frozen=True)
class Job:
    id: str
    org: str
    by: str


_JOBS: weakref.WeakKeyDictionary[World, list[Job]] = weakref.WeakKeyDictionary()
"""Export jobs made so far, per test (like the cast, kept across examples)."""


def may_export(c: Cast, key: str) -> bool:
    return c.model.role[key] in EXPORTERS


def org_people(c: Cast, key: str) -> list[str]:
    return A_PEOPLE if c.model.org[key] == "A" else B_PEOPLE


def selected(c: Cast, org: str, custodians: list[str]) -> set[str]:
    """Conversations of `org` an export of `custodians` (none: everybody) selects."""
    return {
        cid
        for cid, conv in c.model.convs.items()
        if conv.org == org and (not custodians or any(k in conv.members for k in custodians))
    }


def ids_of_org(c: Cast, org: str) -> set[str]:
    """Every id of an organization the test knows: people, conversations, messages."""
    found = {c.people[k].id for k in c.people if c.model.org[k] == org}
    for cid, conv in c.model.convs.items():
        if conv.org == org:
            found |= {cid, conv.seed}
    return found


def sender_of_seed(conv_members: dict[str, str]) -> str:
    """Who made a conversation (and sent its first message): its only conversation owner."""
    (creator,) = [k for k, role in conv_members.items() if role == "owner"]
    return creator


def unzip(data: bytes) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {name: zf.read(name).decode("utf-8") for name in zf.namelist()}


async def set_trent(client: httpx.AsyncClient, c: Cast, role: str) -> None:
    mallory, trent = c.people["mallory"], c.people["trent"]
    resp = await client.put(
        f"{API}/users/{trent.id}/role", json={"role": role}, headers=mallory.headers
    )
    assert resp.status_code == 200, resp.text
    c.model.role["trent"] = role


async def start_exports(client: httpx.AsyncClient, c: Cast, picks: list[int]) -> list[Job]:
    """Every person asks for an export of the picked people of their own organization (and,
    if allowed, also names the other organization's people and conversations)."""
    m, made = c.model, []
    for key, who in c.people.items():
        mine = org_people(c, key)
        custodians = sorted({mine[i % len(mine)] for i in picks})
        body = {"people": [c.people[k].id for k in custodians]}
        started = await client.post(EXPORTS, json=body, headers=who.headers)
        if not may_export(c, key):
            assert started.status_code == 403, (key, started.text)
            assert started.json()["error"]["code"] == "forbidden"
            continue
        assert started.status_code == 202, (key, started.text)
        job = Job(started.json()["id"], m.org[key], key)
        assert (await finished(client, who, job.id))["status"] == "done"
        made.append(job)

        other = "B" if m.org[key] == "A" else "A"
        theirs = sorted(k for k in c.people if m.org[k] == other)
        their_conv = sorted(cid for cid, conv in m.convs.items() if conv.org == other)[0]
        for field, foreign in (("people", c.people[theirs[0]].id), ("conversations", their_conv)):
            probe = await client.post(EXPORTS, json={field: [foreign]}, headers=who.headers)
            missing = await client.post(EXPORTS, json={field: [new_id()]}, headers=who.headers)
            assert probe.status_code == 404, (key, field, probe.text)
            assert probe.content == missing.content, (key, field)
    return made


async def check_job_access(
    client: httpx.AsyncClient, c: Cast, jobs: list[Job], fresh: list[Job], picks: list[int]
) -> None:
    m = c.model
    for key, who in c.people.items():
        h = who.headers
        gone = new_id()
        missing_status = await client.get(f"{EXPORTS}/{gone}", headers=h)
        missing_zip = await client.get(f"{EXPORTS}/{gone}/download", headers=h)
        assert missing_status.status_code == missing_zip.status_code == 404
        listed = await client.get(f"{EXPORTS}?limit=100", headers=h)
        if may_export(c, key):
            assert listed.status_code == 200, (key, listed.text)
            assert {x["id"] for x in listed.json()["exports"]} == {
                job.id for job in jobs if job.org == m.org[key]
            }, key
        else:
            assert listed.content == missing_status.content, (key, listed.text)
        for job in jobs:
            sees = may_export(c, key) and m.org[key] == job.org
            status = await client.get(f"{EXPORTS}/{job.id}", headers=h)
            if sees:
                assert status.status_code == 200, (key, job, status.text)
                assert status.json()["status"] == "done", status.text
                assert status.json()["requested_by"] == c.people[job.by].id
            else:
                assert status.content == missing_status.content, (key, job, status.text)
            if job not in fresh:
                continue
            got = await client.get(f"{EXPORTS}/{job.id}/download", headers=h)
            if not sees:
                assert got.content == missing_zip.content, (key, job, got.text)
                continue
            assert got.status_code == 200, (key, job, got.text)
            if key == job.by:
                check_zip(c, job, unzip(got.content), picks)


def check_zip(c: Cast, job: Job, files: dict[str, str], picks: list[int]) -> None:
    m = c.model
    mine = org_people(c, job.by)
    custodians = sorted({mine[i % len(mine)] for i in picks})
    expected = selected(c, job.org, custodians)
    records = [json.loads(line) for line in files["messages.jsonl"].splitlines()]
    convs = {r["id"] for r in records if r["record"] == "conversation"}
    assert convs == expected, (job, custodians)
    messages = {r["id"] for r in records if r["record"] == "message"}
    assert messages == {m.convs[cid].seed for cid in expected}, job
    other = "B" if job.org == "A" else "A"
    foreign = ids_of_org(c, other)
    for name, text in files.items():
        leaked = {x for x in foreign if x in text}
        assert not leaked, (job, name, leaked)


async def check_own_exports(client: httpx.AsyncClient, c: Cast) -> None:
    m = c.model
    for key, who in c.people.items():
        resp = await client.post(f"{API}/users/me/export", headers=who.headers)
        assert resp.status_code == 200, (key, resp.text)
        doc = resp.json()
        text = resp.text
        ever = {cid for cid, conv in m.convs.items() if key in conv.members}
        assert {x["conversation"]["id"] for x in doc["memberships"]} == ever, key
        assert {x["id"] for x in doc["messages"]} == {
            conv.seed for conv in m.convs.values() if sender_of_seed(conv.members) == key
        }, key
        touched = {x["conversation_id"] for x in doc["messages"] + doc["reactions"]}
        assert touched <= ever, key
        # Nothing of a conversation the person was never in: neither its id (but in their own
        # audit entries, which may name what they did) nor any of its messages.
        never = [conv for cid, conv in m.convs.items() if cid not in ever]
        outside_audit = json.dumps({k: v for k, v in doc.items() if k != "audit_entries"})
        for conv in never:
            assert conv.seed not in text, (key, conv)
        assert not {cid for cid in m.convs if cid not in ever and cid in outside_audit}, key
        other = "B" if m.org[key] == "A" else "A"
        leaked = {x for x in ids_of_org(c, other) if x in text}
        assert not leaked, (key, leaked)


@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    # No shrinking: examples share the accounts and what earlier examples built, so a smaller
    # example is no simpler to read, and shrinking a failure would take minutes.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(
    roles=st.lists(st.sampled_from(ROLES), min_size=N, max_size=N),
    trent=st.sampled_from(["member", "compliance_officer"]),
    convs=CONVERSATIONS,
    picks=st.lists(st.integers(0, N), max_size=2),
)
async def test_nobody_exports_what_the_table_denies(
    world: World,
    client: httpx.AsyncClient,
    roles: list[str],
    trent: str,
    convs: list[ConvSpec],
    picks: list[int],
) -> None:
    c = await cast(world, client)
    # Departments play no part in exports: one, and nobody placed or made its admin.
    await build(client, c, roles, [-1], [-1] * N, [-1] * N, convs)
    await set_trent(client, c, trent)
    jobs = _JOBS.setdefault(world, [])
    fresh = await start_exports(client, c, picks)
    jobs += fresh
    await check_job_access(client, c, jobs, fresh, picks)
    await check_own_exports(client, c)
