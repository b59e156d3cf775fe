"""The job queue's storage contract (`enclave.storage.jobs`), on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from enclave.domain.ids import OrgId, conversation_scope, new_id
from enclave.services.context import Context
from enclave.storage import accounts
from enclave.storage import jobs as store
from enclave.storage.base import Tx
from tests.storage.test_contract import new_org

OWNER = "node-a"
OTHER = "node-b"


def new_job(
    now: int = 1000,
    *,
    kind: str = "test.kind",
    key: str | None = None,
    org_id: OrgId | None = None,
    run_at: int | None = None,
    max_attempts: int = 3,
    payload: dict[str, object] | None = None,
    seal_scope: str | None = None,
) -> store.NewJob:
    return store.NewJob(
        id=new_id(),
        kind=kind,
        org_id=org_id,
        payload=payload if payload is not None else {"n": 1},
        run_at=now if run_at is None else run_at,
        max_attempts=max_attempts,
        key=key,
        now=now,
        seal_scope=seal_scope,
    )


async def put(ctx: Context, job: store.NewJob) -> store.Job:
    found, created = await ctx.db.write(lambda tx: store.enqueue(tx, job))
    assert created
    return found


async def take(
    ctx: Context, now: int, owner: str = OWNER, limit: int = 10, kind: str = "test.kind"
) -> list[store.Job]:
    return await ctx.db.write(lambda tx: store.claim(tx, kind, owner, now, now + 5000, limit))


async def get(ctx: Context, job_id: str) -> store.Job:
    found = await ctx.db.read(lambda tx: store.get(tx, job_id))
    assert found is not None
    return found


async def test_enqueue_stores_a_queued_job_and_get_reads_it(ctx: Context) -> None:
    org = new_org()
    await ctx.db.write(lambda tx: accounts.insert_org(tx, org))
    job = await put(ctx, new_job(org_id=org.id, run_at=2000, payload={"a": [1, "x"]}))
    assert job.state == store.QUEUED
    assert (job.kind, job.org_id, job.run_at, job.attempts, job.max_attempts) == (
        "test.kind",
        org.id,
        2000,
        0,
        3,
    )
    assert job.payload == {"a": [1, "x"]}
    assert job.lease_owner is None and job.finished_at is None and not job.sealed
    assert await get(ctx, job.id) == job
    assert await ctx.db.read(lambda tx: store.get(tx, new_id())) is None


async def test_a_second_enqueue_with_the_same_key_returns_the_first_job(ctx: Context) -> None:
    first = await put(ctx, new_job(key="k1", payload={"v": 1}))
    again, created = await ctx.db.write(
        lambda tx: store.enqueue(tx, new_job(key="k1", payload={"v": 2}))
    )
    assert not created
    assert again == first
    # Without a key every enqueue is a job of its own.
    a = await put(ctx, new_job())
    b = await put(ctx, new_job())
    assert a.id != b.id


async def test_a_sealed_payload_is_not_stored_in_plaintext_and_reads_back(ctx: Context) -> None:
    scope = conversation_scope(new_id())
    job = await put(ctx, new_job(payload={"query": "secret words"}, seal_scope=scope))
    assert job.sealed and job.payload == {"query": "secret words"}
    raw = await ctx.db.read(
        lambda tx: tx.fetchone("SELECT payload FROM jobs WHERE id = ?", (job.id,))
    )
    assert raw is not None and "secret" not in raw["payload"]
    assert raw["payload"].startswith("e1:")


async def test_claim_takes_due_jobs_oldest_first_and_counts_the_attempt(ctx: Context) -> None:
    late = await put(ctx, new_job(run_at=3000))
    second = await put(ctx, new_job(run_at=1500))
    first = await put(ctx, new_job(run_at=1000))
    await put(ctx, new_job(kind="other.kind", run_at=1000))
    got = await take(ctx, now=2000)
    assert [j.id for j in got] == [first.id, second.id]
    for j in got:
        assert (j.state, j.lease_owner, j.lease_expires_at, j.attempts) == (
            store.RUNNING,
            OWNER,
            7000,
            1,
        )
    assert await take(ctx, now=2000, owner=OTHER) == []  # taken, and the rest is not due
    assert [j.id for j in await take(ctx, now=3000, owner=OTHER)] == [late.id]


async def test_claim_respects_the_limit(ctx: Context) -> None:
    for _ in range(5):
        await put(ctx, new_job())
    assert len(await take(ctx, now=1000, limit=2)) == 2
    assert len(await take(ctx, now=1000, limit=0)) == 0
    assert len(await take(ctx, now=1000, limit=10)) == 3


async def test_a_job_whose_lease_expired_is_claimed_again(ctx: Context) -> None:
    job = await put(ctx, new_job())
    await take(ctx, now=1000)  # lease until 6000
    assert await take(ctx, now=5999, owner=OTHER) == []
    again = await take(ctx, now=6000, owner=OTHER)
    assert [(j.id, j.lease_owner, j.attempts) for j in again] == [(job.id, OTHER, 2)]
    # The first owner lost it: it can no longer renew, complete, fail or release it.
    assert not await ctx.db.write(lambda tx: store.renew(tx, job.id, OWNER, 6001, 9000))
    assert not await ctx.db.write(lambda tx: store.complete(tx, job.id, OWNER, 6001))
    assert await ctx.db.write(lambda tx: store.fail(tx, job.id, OWNER, 6001, "x", 7000)) is None
    assert not await ctx.db.write(lambda tx: store.release(tx, job.id, OWNER, 6001))
    assert (await get(ctx, job.id)).lease_owner == OTHER


async def test_an_expired_job_without_attempts_left_is_dead_not_claimed(ctx: Context) -> None:
    job = await put(ctx, new_job(max_attempts=1))
    await take(ctx, now=1000)
    assert await take(ctx, now=6000, owner=OTHER) == []
    dead = await get(ctx, job.id)
    assert dead.state == store.DEAD and dead.finished_at == 6000
    assert dead.last_error is not None and "lease expired" in dead.last_error


async def test_renew_extends_the_lease(ctx: Context) -> None:
    job = await put(ctx, new_job())
    await take(ctx, now=1000)
    assert await ctx.db.write(lambda tx: store.renew(tx, job.id, OWNER, 5000, 10_000))
    assert await take(ctx, now=9999, owner=OTHER) == []
    assert (await get(ctx, job.id)).lease_expires_at == 10_000


async def test_complete_marks_done(ctx: Context) -> None:
    job = await put(ctx, new_job())
    await take(ctx, now=1000)
    assert await ctx.db.write(lambda tx: store.complete(tx, job.id, OWNER, 1500))
    done = await get(ctx, job.id)
    assert (done.state, done.finished_at, done.lease_owner) == (store.DONE, 1500, None)
    assert not await ctx.db.write(lambda tx: store.complete(tx, job.id, OWNER, 1600))
    assert await take(ctx, now=99_999) == []


async def test_fail_requeues_until_the_attempts_are_spent_then_dead(ctx: Context) -> None:
    job = await put(ctx, new_job(max_attempts=2))
    await take(ctx, now=1000)
    state = await ctx.db.write(lambda tx: store.fail(tx, job.id, OWNER, 1100, "boom 1", 4000))
    assert state == store.QUEUED
    queued = await get(ctx, job.id)
    assert (queued.run_at, queued.last_error, queued.attempts) == (4000, "boom 1", 1)
    assert await take(ctx, now=3999) == []
    assert len(await take(ctx, now=4000)) == 1
    state = await ctx.db.write(lambda tx: store.fail(tx, job.id, OWNER, 4100, "boom 2", 9000))
    assert state == store.DEAD
    dead = await get(ctx, job.id)
    assert (dead.state, dead.last_error, dead.attempts, dead.finished_at) == (
        store.DEAD,
        "boom 2",
        2,
        4100,
    )
    assert await take(ctx, now=99_999) == []


async def test_fail_without_a_retry_time_fails_for_good(ctx: Context) -> None:
    job = await put(ctx, new_job(max_attempts=5))
    await take(ctx, now=1000)
    assert await ctx.db.write(lambda tx: store.fail(tx, job.id, OWNER, 1100, "bad", None)) == (
        store.FAILED
    )
    failed = await get(ctx, job.id)
    assert (failed.state, failed.last_error) == (store.FAILED, "bad")


async def test_release_requeues_without_spending_the_attempt(ctx: Context) -> None:
    job = await put(ctx, new_job())
    await take(ctx, now=1000)
    assert await ctx.db.write(lambda tx: store.release(tx, job.id, OWNER, 1200))
    back = await get(ctx, job.id)
    assert (back.state, back.attempts, back.lease_owner, back.run_at) == (
        store.QUEUED,
        0,
        None,
        1200,
    )
    assert [j.id for j in await take(ctx, now=1200, owner=OTHER)] == [job.id]


async def test_cancel_stops_queued_and_running_jobs_only(ctx: Context) -> None:
    queued = await put(ctx, new_job(run_at=50_000))
    running = await put(ctx, new_job())
    await take(ctx, now=1000)
    assert await ctx.db.write(lambda tx: store.cancel(tx, queued.id, 2000))
    assert await ctx.db.write(lambda tx: store.cancel(tx, running.id, 2000))
    for job_id in (queued.id, running.id):
        found = await get(ctx, job_id)
        assert (found.state, found.finished_at) == (store.CANCELLED, 2000)
    # The running job's worker has lost it; a finished job cannot be cancelled.
    assert not await ctx.db.write(lambda tx: store.renew(tx, running.id, OWNER, 2001, 9000))
    assert not await ctx.db.write(lambda tx: store.cancel(tx, running.id, 2002))
    assert await take(ctx, now=99_999) == []


async def test_retry_requeues_dead_failed_and_cancelled_jobs(ctx: Context) -> None:
    dead = await put(ctx, new_job(max_attempts=1))
    await take(ctx, now=1000)
    await ctx.db.write(lambda tx: store.fail(tx, dead.id, OWNER, 1100, "gone", 2000))
    cancelled = await put(ctx, new_job(run_at=50_000))
    await ctx.db.write(lambda tx: store.cancel(tx, cancelled.id, 1200))
    queued = await put(ctx, new_job(run_at=60_000))
    assert not await ctx.db.write(lambda tx: store.retry(tx, queued.id, 1300))
    for job_id in (dead.id, cancelled.id):
        assert await ctx.db.write(lambda tx, j=job_id: store.retry(tx, j, 3000))
        again = await get(ctx, job_id)
        assert (again.state, again.attempts, again.run_at, again.finished_at) == (
            store.QUEUED,
            0,
            3000,
            None,
        )
    assert (await get(ctx, dead.id)).last_error == "gone"  # kept until it runs again
    assert {j.id for j in await take(ctx, now=3000)} == {dead.id, cancelled.id}


async def test_list_filters_and_pages_newest_first(ctx: Context) -> None:
    org_a, org_b = new_org("a"), new_org("b")

    def orgs(tx: Tx) -> None:
        accounts.insert_org(tx, org_a)
        accounts.insert_org(tx, org_b)

    await ctx.db.write(orgs)
    a_jobs = [await put(ctx, new_job(now=1000 + i, org_id=org_a.id)) for i in range(5)]
    b_job = await put(ctx, new_job(now=2000, org_id=org_b.id, kind="other.kind"))
    install = await put(ctx, new_job(now=3000))

    async def ids(where: store.Filter) -> list[str]:
        return [j.id for j in await ctx.db.read(lambda tx: store.list_jobs(tx, where))]

    assert await ids(store.Filter()) == [install.id, b_job.id] + [j.id for j in a_jobs[::-1]]
    assert await ids(store.Filter(org_id=org_b.id)) == [b_job.id]
    assert await ids(store.Filter(kind="other.kind")) == [b_job.id]
    first = await ids(store.Filter(org_id=org_a.id, limit=2))
    assert first == [a_jobs[4].id, a_jobs[3].id]
    rest = await ids(
        store.Filter(org_id=org_a.id, limit=10, before=(a_jobs[3].created_at, a_jobs[3].id))
    )
    assert rest == [a_jobs[2].id, a_jobs[1].id, a_jobs[0].id]
    await ctx.db.write(lambda tx: store.cancel(tx, a_jobs[0].id, 4000))
    assert await ids(store.Filter(state=store.CANCELLED)) == [a_jobs[0].id]


async def test_counts_and_the_oldest_due_job(ctx: Context) -> None:
    assert await ctx.db.read(store.counts) == {}
    assert await ctx.db.read(lambda tx: store.oldest_queued_at(tx, 5000)) is None
    await put(ctx, new_job(run_at=1000))
    await put(ctx, new_job(run_at=2000))
    await put(ctx, new_job(run_at=9000))  # not due yet: not waiting
    await put(ctx, new_job(kind="other.kind", run_at=1500))
    await take(ctx, now=1200, limit=1)
    counts = await ctx.db.read(store.counts)
    assert counts == {
        ("test.kind", store.QUEUED): 2,
        ("test.kind", store.RUNNING): 1,
        ("other.kind", store.QUEUED): 1,
    }
    assert await ctx.db.read(lambda tx: store.oldest_queued_at(tx, 5000)) == 1500


async def test_purge_deletes_old_done_and_cancelled_jobs_only(ctx: Context) -> None:
    done = await put(ctx, new_job())
    await take(ctx, now=1000)
    await ctx.db.write(lambda tx: store.complete(tx, done.id, OWNER, 1100))
    cancelled = await put(ctx, new_job(run_at=90_000))
    await ctx.db.write(lambda tx: store.cancel(tx, cancelled.id, 1200))
    dead = await put(ctx, new_job(max_attempts=1))
    await take(ctx, now=1300)
    await ctx.db.write(lambda tx: store.fail(tx, dead.id, OWNER, 1400, "x", 2000))
    recent = await put(ctx, new_job(now=5000))
    await take(ctx, now=5000)
    await ctx.db.write(lambda tx: store.complete(tx, recent.id, OWNER, 5000))
    assert await ctx.db.write(lambda tx: store.purge_finished(tx, 1150, 10)) == 1
    assert await ctx.db.write(lambda tx: store.purge_finished(tx, 4000, 10)) == 1
    left = {j.id for j in await ctx.db.read(lambda tx: store.list_jobs(tx, store.Filter()))}
    assert left == {dead.id, recent.id}


@pytest.mark.parametrize("claimers", [4])
async def test_concurrent_claims_never_take_one_job_twice(ctx: Context, claimers: int) -> None:
    jobs = [await put(ctx, new_job()) for _ in range(40)]
    results = await asyncio.gather(
        *(take(ctx, now=1000, owner=f"w{i}", limit=7) for i in range(claimers * 3))
    )
    taken = [j.id for batch in results for j in batch]
    assert len(taken) == len(set(taken))
    assert set(taken) == {j.id for j in jobs}
