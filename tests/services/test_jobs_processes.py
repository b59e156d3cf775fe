"""The job queue with real worker processes sharing one database (PostgreSQL, an SQLite file,
which several processes can share through its write lock, and PostgreSQL + Redis as a cluster's
nodes run): a worker SIGKILLed mid-job loses the
job to another after its lease expires, and the effect happens once; SIGTERM releases running
jobs to the queue."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from enclave.app import open_context
from enclave.config import Config
from enclave.services import jobs
from enclave.services.context import Context
from enclave.storage import jobs as store
from tests.conftest import make_config
from tests.services.jobs_worker import EFFECT

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


@pytest.fixture(params=["sqlite", "postgres", "cluster"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def shared_config(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Config:
    url = request.getfixturevalue("pg_schema_url") if backend != "sqlite" else ""
    cluster: dict[str, str] = {}
    if backend == "cluster":
        cluster = {
            "redis.url": request.getfixturevalue("redis_url"),
            "redis.prefix": request.getfixturevalue("redis_prefix"),
        }
    return make_config(tmp_path, url, **{"jobs.poll_seconds": 0.05}, **cluster)


@pytest.fixture
async def ctx(shared_config: Config) -> AsyncIterator[Context]:
    async with open_context(shared_config) as context:
        yield context


class Workers:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.procs: list[asyncio.subprocess.Process] = []

    async def start(self) -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.services.jobs_worker",
            str(self.config.server.data_dir),
            self.config.database.url,
            *((self.config.redis.url, self.config.redis.prefix) if self.config.redis.url else ()),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        self.procs.append(proc)
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert line.strip() == b"ready", line
        return proc

    async def stop_all(self) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


@pytest.fixture
async def workers(shared_config: Config) -> AsyncIterator[Workers]:
    started = Workers(shared_config)
    yield started
    await started.stop_all()


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.05)


def runs(where: Path) -> list[tuple[int, int]]:
    log = where / "runs.log"
    if not log.exists():
        return []
    return [
        (int(pid), int(attempt))
        for pid, attempt in (line.split() for line in log.read_text().splitlines())
    ]


async def job_state(ctx: Context, job_id: str) -> store.Job:
    found = await ctx.db.read(lambda tx: store.get(tx, job_id))
    assert found is not None
    return found


async def test_a_worker_killed_mid_job_loses_it_to_another_and_the_effect_happens_once(
    ctx: Context, workers: Workers, tmp_path: Path
) -> None:
    where = tmp_path / "effects"
    where.mkdir()
    (where / "hang").touch()  # the first run does its effect, then hangs until killed
    job = await jobs.enqueue(ctx, EFFECT, {"dir": str(where)}, key="order-1")
    first = await workers.start()

    async def first_ran() -> bool:
        return len(runs(where)) == 1

    await until(first_ran)
    first.send_signal(signal.SIGKILL)
    await first.wait()
    held = await job_state(ctx, job.id)
    assert (held.state, held.attempts) == ("running", 1)  # its lease has not expired yet
    (where / "hang").unlink()
    second = await workers.start()

    async def finished() -> bool:
        return (await job_state(ctx, job.id)).state == "done"

    await until(finished)
    done = await job_state(ctx, job.id)
    assert done.attempts == 2
    assert [pid for pid, _ in runs(where)] == [first.pid, second.pid]
    assert [attempt for _, attempt in runs(where)] == [1, 2]
    effects = sorted(p.name for p in where.iterdir() if p.name.startswith("effect-"))
    assert effects == ["effect-order-1"]
    assert (where / "effect-order-1").read_text() == str(first.pid)  # once, by the first run
    second.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(second.wait(), 15) == 0


async def test_sigterm_releases_running_jobs_without_spending_their_attempt(
    ctx: Context, workers: Workers, tmp_path: Path
) -> None:
    where = tmp_path / "effects"
    where.mkdir()
    (where / "hang").touch()
    job = await jobs.enqueue(ctx, EFFECT, {"dir": str(where)}, key="order-2")
    worker = await workers.start()

    async def running() -> bool:
        return (await job_state(ctx, job.id)).state == "running" and len(runs(where)) == 1

    await until(running)
    worker.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(worker.wait(), 15) == 0
    back = await job_state(ctx, job.id)
    assert (back.state, back.attempts, back.lease_owner, back.lease_expires_at) == (
        "queued",
        0,
        None,
        None,
    )
    assert back.last_error is None
    # The next node runs it at once (no lease to wait out), as its first attempt.
    (where / "hang").unlink()
    await workers.start()

    async def finished() -> bool:
        return (await job_state(ctx, job.id)).state == "done"

    await until(finished, timeout=10)
    assert (await job_state(ctx, job.id)).attempts == 1
    assert sorted(p.name for p in where.iterdir() if p.name.startswith("effect-")) == [
        "effect-order-2"
    ]
