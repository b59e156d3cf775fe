"""The worker: claims due jobs with a lease, runs them, renews the lease while they run, and
records how each ended; and the periodic schedule, which each node keeps by enqueueing one job
per period under a key naming the period (so the cluster runs it once, with no scheduler node).

A worker runs its jobs in a task group of its own. Cancelling `Worker.run` (the node shutting
down) cancels the running handlers and releases their jobs back to the queue with the attempt
not spent; a worker that dies without that (SIGKILL, power loss) keeps its leases until they
expire, and then any node claims the jobs again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
from collections import Counter

from enclave.services import metrics
from enclave.services.context import Context
from enclave.services.jobs.kinds import Kind, Permanent, Registry
from enclave.services.jobs.queue import enqueue, refresh_metrics
from enclave.storage import jobs as store
from enclave.storage.base import StorageError, Tx
from enclave.storage.jobs import Job

__all__ = ["Worker", "backoff_ms", "period_key"]

log = logging.getLogger(__name__)

METRICS_EVERY_S = 15.0
"""How often a worker refreshes the queue gauges from the database."""
PURGE_BATCH = 500


class _LeaseLost(Exception):
    """The job was cancelled, or its lease expired and another worker took it."""


def backoff_ms(attempts: int, base_s: float, max_s: float, rng: random.Random) -> int:
    """The delay before the next attempt after `attempts` failed ones: exponential, capped,
    with 'equal jitter' (a random point in the upper half) so that jobs failing together do
    not retry together."""
    delay = min(max_s, base_s * 2 ** max(0, attempts - 1))
    return int(1000 * (delay / 2 + rng.uniform(0, delay / 2)))


def period_key(kind: Kind, period: int) -> str:
    """The idempotency key of a periodic kind's job for one period."""
    return f"every:{kind.name}:{period}"


class Worker:
    """Runs the registry's kinds on this node until cancelled."""

    def __init__(self, ctx: Context, registry: Registry, *, owner: str | None = None) -> None:
        self.ctx = ctx
        self.registry = registry
        self.owner = owner or f"{ctx.node_id}:{secrets.token_hex(4)}"
        self._cfg = ctx.config.jobs
        self._active: Counter[str] = Counter()
        self._wake = asyncio.Event()
        self._periods: dict[str, int] = {}
        self._rng = random.Random()  # noqa: S311 - retry jitter, not a secret
        self._metrics_at = 0.0

    def _concurrency(self, kind: Kind) -> int:
        return kind.concurrency or self._cfg.concurrency

    def _lease_ms(self, kind: Kind) -> int:
        return int(1000 * (kind.lease_seconds or self._cfg.lease_seconds))

    async def run(self) -> None:
        """Poll, claim and run until cancelled; then release what is still running."""
        async with asyncio.TaskGroup() as group:
            while True:
                try:
                    await self.schedule_periodic()
                    claimed = await self._claim_into(group)
                    await self._maybe_refresh_metrics()
                except StorageError as exc:  # the database is away: try again next poll
                    log.warning("job worker %s: %s", self.owner, exc)
                    claimed = 0
                if claimed == 0:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._cfg.poll_seconds)

    async def _maybe_refresh_metrics(self) -> None:
        loop = asyncio.get_running_loop()
        if loop.time() - self._metrics_at >= METRICS_EVERY_S:
            self._metrics_at = loop.time()
            await refresh_metrics(self.ctx)

    async def _claim_into(self, group: asyncio.TaskGroup) -> int:
        claimed = 0
        for kind in self.registry:
            free = self._concurrency(kind) - self._active[kind.name]
            if free <= 0:
                continue
            now = self.ctx.clock.now_ms()

            def take(tx: Tx, kind: Kind = kind, free: int = free, now: int = now) -> list[Job]:
                return store.claim(tx, kind.name, self.owner, now, now + self._lease_ms(kind), free)

            jobs = await self.ctx.db.write(take)
            for job in jobs:
                self._active[kind.name] += 1
                group.create_task(self._run_one(kind, job), name=f"job {job.kind} {job.id}")
            claimed += len(jobs)
        return claimed

    async def _run_one(self, kind: Kind, job: Job) -> None:
        try:
            outcome = await self._attempt(kind, job)
        except asyncio.CancelledError:
            # The node is stopping: hand the job back, its attempt not spent.
            await asyncio.shield(self._settle(job, "released"))
            metrics.job_finished(kind.name, "released")
            raise
        finally:
            self._active[kind.name] -= 1
            self._wake.set()
        metrics.job_finished(kind.name, outcome)

    async def _attempt(self, kind: Kind, job: Job) -> str:
        if job.payload is None:
            return await self._settle(job, "failed", "the payload's data key was shredded")
        lost = permanent = failed = None
        try:
            async with asyncio.TaskGroup() as group:
                renewer = group.create_task(self._renew(kind, job))
                await kind.handler(self.ctx, job)
                renewer.cancel()
        except* _LeaseLost:
            lost = True  # cancelled, or another worker has it now: nothing to record
        except* Permanent as group_error:
            permanent = group_error.exceptions[0]
        except* Exception as group_error:
            failed = group_error.exceptions[0]
        if lost:
            return "lost"
        if permanent is not None:
            return await self._settle(job, "failed", _message(permanent))
        if failed is not None:
            log.warning("job %s (%s) attempt %d failed: %r", job.id, job.kind, job.attempts, failed)
            return await self._settle(job, "retry", _message(failed))
        return await self._settle(job, "done")

    async def _renew(self, kind: Kind, job: Job) -> None:
        lease_ms = self._lease_ms(kind)
        owner = self.owner
        while True:
            await asyncio.sleep(lease_ms / 3000)
            now = self.ctx.clock.now_ms()

            def renew(tx: Tx, now: int = now) -> bool:
                return store.renew(tx, job.id, owner, now, now + lease_ms)

            if not await self.ctx.db.write(renew):
                raise _LeaseLost(job.id)

    async def _settle(self, job: Job, outcome: str, error: str = "") -> str:
        """Record how the attempt ended; the outcome as counted in the metrics."""
        now = self.ctx.clock.now_ms()
        cfg = self._cfg
        owner = self.owner
        try:
            if outcome == "done":
                held = await self.ctx.db.write(lambda tx: store.complete(tx, job.id, owner, now))
                return "done" if held else "lost"
            if outcome == "released":
                await self.ctx.db.write(lambda tx: store.release(tx, job.id, owner, now))
                return "released"
            retry_at = None
            if outcome == "retry":
                delay = backoff_ms(
                    job.attempts, cfg.retry_base_seconds, cfg.retry_max_seconds, self._rng
                )
                retry_at = now + delay
            state = await self.ctx.db.write(
                lambda tx: store.fail(tx, job.id, owner, now, error, retry_at)
            )
        except StorageError as exc:  # the lease runs out and another worker takes the job
            log.warning("job %s: could not record %s: %s", job.id, outcome, exc)
            return "lost"
        if state is None:
            return "lost"
        return "retry" if state == store.QUEUED else state

    async def schedule_periodic(self) -> None:
        """Enqueue this period's job of every periodic kind, once per period per node; the
        period's key makes the nodes' enqueues one job."""
        now = self.ctx.clock.now_ms()
        for kind in self.registry.periodic():
            assert kind.every_seconds is not None
            every_ms = kind.every_seconds * 1000
            period = now // every_ms
            if self._periods.get(kind.name) == period:
                continue
            await enqueue(
                self.ctx,
                kind,
                {"period": period},
                key=period_key(kind, period),
                run_at=period * every_ms,
            )
            self._periods[kind.name] = period


def _message(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
