"""The job queue's service: workers, retries, dead letters, concurrency limits, leases, the node
runtime's shutdown and periodic jobs (in-process, on SQLite and on PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from enclave.app import open_context
from enclave.config import Config, ConfigError
from enclave.domain.ids import conversation_scope, new_id
from enclave.services import jobs, metrics
from enclave.services.context import Context, write
from enclave.services.runtime import Node, default_registry
from enclave.storage import jobs as store
from tests.conftest import make_config

FAST = {
    "jobs.poll_seconds": 0.02,
    "jobs.lease_seconds": 1.0,
    "jobs.retry_base_seconds": 0.01,
    "jobs.retry_max_seconds": 0.05,
    "jobs.max_attempts": 3,
}


@pytest.fixture
def fast_config(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Config:
    """`cluster` is PostgreSQL plus Redis, as a cluster's nodes run (the queue lives in the
    database either way; Redis carries the nodes' events and limits)."""
    url = request.getfixturevalue("pg_schema_url") if backend != "sqlite" else ""
    cluster: dict[str, str] = {}
    if backend == "cluster":
        cluster = {
            "redis.url": request.getfixturevalue("redis_url"),
            "redis.prefix": request.getfixturevalue("redis_prefix"),
        }
    return make_config(tmp_path, url, **FAST, **cluster)


ALL_MODES = pytest.mark.parametrize("backend", ["sqlite", "postgres", "cluster"])


@pytest.fixture
async def ctx(fast_config: Config) -> AsyncIterator[Context]:
    async with open_context(fast_config) as context:
        yield context


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    """Poll `check` until it holds (the workers run on their own)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.02)


async def state_of(ctx: Context, job_id: str) -> store.Job:
    found = await ctx.db.read(lambda tx: store.get(tx, job_id))
    assert found is not None
    return found


async def reaches(ctx: Context, job_id: str, state: str) -> store.Job:
    async def check() -> bool:
        return (await state_of(ctx, job_id)).state == state

    await until(check)
    return await state_of(ctx, job_id)


class Running:
    """Nodes started by a test, closed at its end."""

    def __init__(self) -> None:
        self.nodes: list[Node] = []

    async def node(self, ctx: Context, *kinds: jobs.Kind) -> Node:
        node = Node(ctx, jobs.Registry(kinds))
        await node.start()
        self.nodes.append(node)
        return node

    async def close(self) -> None:
        for node in self.nodes:
            await node.close()


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    nodes = Running()
    yield nodes
    await nodes.close()


# -- running, failing, dying -------------------------------------------------------------------


async def test_a_worker_runs_a_job_once_with_its_payload(ctx: Context, running: Running) -> None:
    seen: list[tuple[str, Any]] = []

    async def handler(c: Context, job: jobs.Job) -> None:
        seen.append((job.id, job.payload))

    kind = jobs.Kind("test.echo", handler)
    job = await jobs.enqueue(ctx, kind, {"x": 1})
    await running.node(ctx, kind)
    done = await reaches(ctx, job.id, "done")
    assert seen == [(job.id, {"x": 1})]
    assert (done.attempts, done.lease_owner, done.last_error) == (1, None, None)


async def test_a_job_is_not_run_before_its_time(ctx: Context, running: Running) -> None:
    ran: list[str] = []

    async def handler(c: Context, job: jobs.Job) -> None:
        ran.append(job.id)

    kind = jobs.Kind("test.later", handler)
    later = await jobs.enqueue(ctx, kind, {}, run_at=ctx.clock.now_ms() + 600)
    await running.node(ctx, kind)
    await asyncio.sleep(0.3)
    assert ran == []
    await reaches(ctx, later.id, "done")


async def test_a_job_that_always_fails_is_dead_after_its_attempts_with_the_last_error(
    ctx: Context, running: Running
) -> None:
    calls: list[int] = []

    async def handler(c: Context, job: jobs.Job) -> None:
        calls.append(job.attempts)
        raise RuntimeError(f"disk on fire (attempt {job.attempts})")

    kind = jobs.Kind("test.fails", handler, max_attempts=4)
    job = await jobs.enqueue(ctx, kind, {})
    await running.node(ctx, kind)
    dead = await reaches(ctx, job.id, "dead")
    assert calls == [1, 2, 3, 4]
    assert dead.attempts == 4
    assert dead.last_error == "RuntimeError: disk on fire (attempt 4)"
    await asyncio.sleep(0.2)
    assert calls == [1, 2, 3, 4]  # dead jobs stay dead


async def test_the_configured_attempts_apply_to_kinds_without_their_own(
    ctx: Context, running: Running
) -> None:
    async def handler(c: Context, job: jobs.Job) -> None:
        raise ValueError("nope")

    kind = jobs.Kind("test.default_attempts", handler)
    job = await jobs.enqueue(ctx, kind, {})
    assert job.max_attempts == 3  # jobs.max_attempts
    await running.node(ctx, kind)
    assert (await reaches(ctx, job.id, "dead")).attempts == 3


async def test_a_failure_is_retried_and_a_later_success_completes(
    ctx: Context, running: Running
) -> None:
    async def handler(c: Context, job: jobs.Job) -> None:
        if job.attempts < 3:
            raise ConnectionError("flaky")

    kind = jobs.Kind("test.flaky", handler, max_attempts=5)
    job = await jobs.enqueue(ctx, kind, {})
    await running.node(ctx, kind)
    done = await reaches(ctx, job.id, "done")
    assert done.attempts == 3
    assert done.last_error == "ConnectionError: flaky"  # what went wrong before stays visible


async def test_a_permanent_error_fails_the_job_at_once(ctx: Context, running: Running) -> None:
    calls = 0

    async def handler(c: Context, job: jobs.Job) -> None:
        nonlocal calls
        calls += 1
        raise jobs.Permanent("the export was deleted")

    kind = jobs.Kind("test.permanent", handler, max_attempts=5)
    job = await jobs.enqueue(ctx, kind, {})
    await running.node(ctx, kind)
    failed = await reaches(ctx, job.id, "failed")
    assert calls == 1
    assert failed.last_error == "Permanent: the export was deleted"


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    rng = random.Random(7)
    for attempts, low, high in [(1, 5000, 10_000), (2, 10_000, 20_000), (3, 20_000, 40_000)]:
        delays = {jobs.backoff_ms(attempts, 10.0, 3600.0, rng) for _ in range(50)}
        assert all(low <= d <= high for d in delays), (attempts, delays)
        assert len(delays) > 10  # jittered, not one fixed delay
    assert all(
        30_000 <= jobs.backoff_ms(20, 10.0, 60.0, rng) <= 60_000 for _ in range(20)
    )  # capped at retry_max_seconds


async def test_retries_wait_for_the_backoff(tmp_path: Path, running: Running) -> None:
    config = make_config(
        tmp_path, **{**FAST, "jobs.retry_base_seconds": 0.4, "jobs.retry_max_seconds": 0.4}
    )
    async with open_context(config) as ctx:
        times: list[float] = []

        async def handler(c: Context, job: jobs.Job) -> None:
            times.append(asyncio.get_running_loop().time())
            raise RuntimeError("again")

        kind = jobs.Kind("test.backoff", handler, max_attempts=2)
        job = await jobs.enqueue(ctx, kind, {})
        node = await running.node(ctx, kind)
        await reaches(ctx, job.id, "dead")
        await node.close()
    assert len(times) == 2
    assert times[1] - times[0] >= 0.19  # at least half of the 0.4 s delay (equal jitter)


async def test_per_kind_concurrency_is_respected(ctx: Context, running: Running) -> None:
    active = 0
    most = 0
    other_ran = asyncio.Event()

    async def slow(c: Context, job: jobs.Job) -> None:
        nonlocal active, most
        active += 1
        most = max(most, active)
        await asyncio.sleep(0.15)
        active -= 1

    async def quick(c: Context, job: jobs.Job) -> None:
        other_ran.set()

    slow_kind = jobs.Kind("test.slow", slow, concurrency=2)
    quick_kind = jobs.Kind("test.quick", quick)
    queued = [await jobs.enqueue(ctx, slow_kind, {"i": i}) for i in range(6)]
    await jobs.enqueue(ctx, quick_kind, {})
    await running.node(ctx, slow_kind, quick_kind)
    await asyncio.wait_for(other_ran.wait(), 5)  # a full kind does not hold up other kinds
    for job in queued:
        await reaches(ctx, job.id, "done")
    assert most == 2


async def test_the_lease_is_renewed_while_a_long_job_runs(
    fast_config: Config, running: Running
) -> None:
    """A job three leases long is not taken by a second node meanwhile."""
    runs: list[str] = []

    async def long(c: Context, job: jobs.Job) -> None:
        runs.append(c.node_id)
        await asyncio.sleep(1.5)

    kind = jobs.Kind("test.long", long, lease_seconds=0.5)
    async with open_context(fast_config) as a, open_context(fast_config) as b:
        job = await jobs.enqueue(a, kind, {})
        await running.node(a, kind)
        await until(lambda: _true(bool(runs)))
        await running.node(b, kind)
        done = await reaches(a, job.id, "done")
        await running.close()
    assert len(runs) == 1
    assert done.attempts == 1


async def _true(value: bool) -> bool:
    return value


async def test_cancelling_a_running_job_stops_its_handler(ctx: Context, running: Running) -> None:
    started = asyncio.Event()
    stopped = asyncio.Event()

    async def forever(c: Context, job: jobs.Job) -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        finally:
            stopped.set()

    kind = jobs.Kind("test.cancel", forever, lease_seconds=0.5)
    job = await jobs.enqueue(ctx, kind, {})
    await running.node(ctx, kind)
    await asyncio.wait_for(started.wait(), 5)
    cancelled = await jobs.cancel(ctx, None, job.id)
    assert cancelled.state == "cancelled"
    await asyncio.wait_for(stopped.wait(), 5)  # at its next lease renewal
    assert (await state_of(ctx, job.id)).state == "cancelled"


async def test_closing_the_node_releases_running_jobs_without_spending_attempts(
    ctx: Context,
) -> None:
    started = asyncio.Event()

    async def forever(c: Context, job: jobs.Job) -> None:
        started.set()
        await asyncio.sleep(60)

    kind = jobs.Kind("test.release", forever)
    job = await jobs.enqueue(ctx, kind, {})
    node = Node(ctx, jobs.Registry((kind,)))
    await node.start()
    await asyncio.wait_for(started.wait(), 5)
    assert (await state_of(ctx, job.id)).attempts == 1
    await node.close()
    back = await state_of(ctx, job.id)
    assert (back.state, back.attempts, back.lease_owner, back.last_error) == (
        "queued",
        0,
        None,
        None,
    )


async def test_a_job_enqueued_in_a_transaction_exists_only_if_it_commits(ctx: Context) -> None:
    async def handler(c: Context, job: jobs.Job) -> None:
        pass

    kind = jobs.Kind("test.tx", handler)

    def commits(ch: Any) -> jobs.Job:
        return jobs.enqueue_in(ctx, ch, kind, {"ok": True}, key="kept")

    kept = await write(ctx, commits)
    assert (await state_of(ctx, kept.id)).payload == {"ok": True}

    class Changed(Exception):
        pass

    def rolls_back(ch: Any) -> None:
        jobs.enqueue_in(ctx, ch, kind, {}, key="dropped")
        raise Changed

    with pytest.raises(Changed):
        await write(ctx, rolls_back)
    page = await jobs.list_jobs(ctx, None, kind="test.tx")
    assert [j.key for j in page.jobs] == ["kept"]
    # Idempotent by key: the same key gives the first job back.
    again = await jobs.enqueue(ctx, kind, {"ok": False}, key="kept")
    assert again.id == kept.id and again.payload == {"ok": True}


async def test_a_sealed_kind_needs_a_scope_and_its_handler_reads_the_payload(
    ctx: Context, running: Running
) -> None:
    seen: list[Any] = []

    async def handler(c: Context, job: jobs.Job) -> None:
        seen.append(job.payload)

    kind = jobs.Kind("test.sealed", handler, sealed=True)
    with pytest.raises(ValueError, match="seal_scope"):
        await jobs.enqueue(ctx, kind, {"q": "words"})
    job = await jobs.enqueue(ctx, kind, {"q": "words"}, seal_scope=conversation_scope(new_id()))
    assert job.sealed
    await running.node(ctx, kind)
    await reaches(ctx, job.id, "done")
    assert seen == [{"q": "words"}]


@ALL_MODES
async def test_1000_jobs_across_3_workers_run_exactly_once_each(
    ctx: Context, running: Running
) -> None:
    runs: Counter[str] = Counter()
    by_worker: Counter[str] = Counter()

    all_in = asyncio.Event()

    async def handler(c: Context, job: jobs.Job) -> None:
        runs[job.id] += 1
        by_worker[c.node_id] += 1
        if len(by_worker) == 3:
            all_in.set()
        if by_worker[c.node_id] == 1:  # a node's first job waits until every node has claimed one
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(all_in.wait(), 20)
        await asyncio.sleep(0)

    kind = jobs.Kind("test.many", handler, concurrency=8)

    def many(ch: Any) -> list[str]:
        return [jobs.enqueue_in(ctx, ch, kind, {"i": i}).id for i in range(1000)]

    ids = await write(ctx, many)
    async with AsyncExitStack() as stack:
        contexts = [await stack.enter_async_context(open_context(ctx.config)) for _ in range(3)]
        for c in contexts:
            await running.node(c, kind)

        async def all_done() -> bool:
            counts = await ctx.db.read(store.counts)
            return counts.get(("test.many", "done"), 0) == 1000

        await until(all_done, timeout=90)
        await running.close()
    assert set(runs) == set(ids)
    assert set(runs.values()) == {1}
    assert len(by_worker) == 3, by_worker  # all three took part


async def test_the_metrics_show_the_queue(ctx: Context) -> None:
    async def handler(c: Context, job: jobs.Job) -> None:
        pass

    kind = jobs.Kind("test.metrics", handler)
    await jobs.enqueue(ctx, kind, {}, run_at=ctx.clock.now_ms() - 5000)
    await jobs.enqueue(ctx, kind, {})
    await jobs.refresh_metrics(ctx)
    assert metrics.sample("enclave_jobs", {"kind": "test.metrics", "state": "queued"}) == 2
    assert metrics.sample("enclave_jobs_oldest_queued_seconds") >= 5
    node = Node(ctx, jobs.Registry((kind,)))
    await node.start()
    await until(lambda: _both_done(ctx))
    await node.close()
    await jobs.refresh_metrics(ctx)
    assert metrics.sample("enclave_jobs", {"kind": "test.metrics", "state": "queued"}) == 0
    assert metrics.sample("enclave_jobs", {"kind": "test.metrics", "state": "done"}) == 2
    assert (
        metrics.sample("enclave_job_runs_total", {"kind": "test.metrics", "outcome": "done"}) >= 2
    )


async def _both_done(ctx: Context) -> bool:
    # Not "none queued": a job still running when the node closes is released, queued again.
    counts = await ctx.db.read(store.counts)
    return counts.get(("test.metrics", "done"), 0) == 2


# -- periodic jobs ---------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["postgres", "cluster"])
async def test_a_periodic_job_runs_once_per_period_across_3_nodes(
    fast_config: Config, running: Running
) -> None:
    """Three runtimes on one PostgreSQL (a cluster's nodes; with Redis too) each keep the
    schedule; every period runs once."""
    periods: Counter[int] = Counter()

    async def tick(c: Context, job: jobs.Job) -> None:
        assert job.payload is not None
        periods[int(job.payload["period"])] += 1

    kind = jobs.Kind("test.tick", tick, every_seconds=1)
    async with AsyncExitStack() as stack:
        contexts = [await stack.enter_async_context(open_context(fast_config)) for _ in range(3)]
        for c in contexts:
            await running.node(c, kind)
        await asyncio.sleep(3.5)
        await running.close()
        page = await jobs.list_jobs(contexts[0], None, kind="test.tick", limit=100)
    assert len(periods) >= 3
    assert set(periods.values()) == {1}, periods
    assert sorted(j.key or "" for j in page.jobs) == sorted(
        jobs.period_key(kind, p) for p in periods
    )


async def test_the_default_registry_purges_old_finished_jobs(tmp_path: Path) -> None:
    config = make_config(tmp_path, **FAST, **{"jobs.keep_finished_hours": 1})
    async with open_context(config) as ctx:

        async def handler(c: Context, job: jobs.Job) -> None:
            pass

        kind = jobs.Kind("test.old", handler)
        old = await jobs.enqueue(ctx, kind, {})
        now = ctx.clock.now_ms()
        await ctx.db.write(
            lambda tx: tx.execute(
                "UPDATE jobs SET state = 'done', finished_at = ? WHERE id = ?",
                (now - 2 * 3_600_000, old.id),
            )
        )
        fresh = await jobs.enqueue(ctx, kind, {})
        registry = default_registry(config)
        registry.add(kind)
        node = Node(ctx, registry)
        await node.start()

        async def purged() -> bool:
            return await ctx.db.read(lambda tx: store.get(tx, old.id)) is None

        await until(purged)
        await reaches(ctx, fresh.id, "done")
        await node.close()


def test_the_jobs_options_are_validated_by_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"jobs\.poll_seconds"):
        make_config(tmp_path, **{"jobs.poll_seconds": 0})
    with pytest.raises(ConfigError, match=r"jobs\.retry_max_seconds"):
        make_config(tmp_path, **{"jobs.retry_base_seconds": 10, "jobs.retry_max_seconds": 5})
    with pytest.raises(ConfigError, match=r"jobs\.max_attempts"):
        make_config(tmp_path, **{"jobs.max_attempts": 0})
