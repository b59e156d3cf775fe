"""The node runtime: the one owner of this process's background work.

`Node` holds one `asyncio.TaskGroup` in which the job worker (and so every periodic kind of
the registry), its residents' work (the realtime hub's loops: session re-checks, the presence
sweep, resyncs) and any other long-running work of the node (`Node.spawn`) run.

`Node.close` (the server on SIGTERM or SIGINT, once it stopped accepting connections) shuts
down in one order: each resident closes first, newest first (the hub closes its sockets with
1001 so that clients resume elsewhere, then stops its work), then the group is cancelled: the
worker releases its running jobs back to the queue with their attempts not spent, so another
node, or this one after its restart, runs them; nothing is lost and nothing counts as a failure.

The registry a server runs is `default_registry(config)`: the queue's own clean-up and the
retention schedule (`retention.run`, when `retention.interval_minutes` is not 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Protocol

from enclave.config import Config
from enclave.services.context import Context
from enclave.services.exports import jobs as exports
from enclave.services.jobs import Job, Kind, Registry, Worker
from enclave.services.retention import schedule as retention_schedule
from enclave.storage import jobs as job_store

__all__ = ["PURGE_NAME", "Node", "Resident", "Spawn", "default_registry", "purge_kind"]

log = logging.getLogger(__name__)

PURGE_EVERY_S = 3600
_PURGE_BATCH = 500


PURGE_NAME = "jobs.purge"

Spawn = Callable[[Coroutine[Any, Any, None], str], "asyncio.Task[None]"]
"""`Node.spawn`: run work, under a name, in the node's task group."""


class Resident(Protocol):
    """Long-running work the node owns besides its jobs (the realtime hub). It is started once
    the node's task group runs, with the group's `spawn`, and closed before the jobs are
    released. Work it spawns must handle its own errors (see `Node.spawn`)."""

    def start(self, spawn: Spawn) -> None: ...

    async def close(self) -> None: ...


def purge_kind(registry: Registry) -> Kind:
    """The queue's own clean-up, hourly: delete done and cancelled jobs older than
    `jobs.keep_finished_hours`, but never a periodic job of a period that may not be over (its
    key is what keeps the period from running twice), whatever kinds `registry` holds then."""

    async def purge(ctx: Context, job: Job) -> None:
        longest_s = max((k.every_seconds or 0 for k in registry), default=0)
        keep_s = max(ctx.config.jobs.keep_finished_hours * 3600, longest_s)
        before = ctx.clock.now_ms() - keep_s * 1000
        while await ctx.db.write(lambda tx: job_store.purge_finished(tx, before, _PURGE_BATCH)):
            pass

    return Kind(PURGE_NAME, purge, concurrency=1, every_seconds=PURGE_EVERY_S)


def default_registry(config: Config) -> Registry:
    """The kinds every server node runs (those `config` turns on)."""
    registry = Registry()
    registry.add(purge_kind(registry))
    if (retention_kind := retention_schedule.kind(config)) is not None:
        registry.add(retention_kind)
    registry.add(exports.EXPORT)
    registry.add(exports.SWEEP)
    return registry


class Node:
    """Owns this node's background work in one task group; `start`, then `close` once."""

    def __init__(
        self,
        ctx: Context,
        registry: Registry | None = None,
        *,
        residents: Sequence[Resident] = (),
    ) -> None:
        self.ctx = ctx
        self.registry = registry if registry is not None else default_registry(ctx.config)
        self.worker = Worker(ctx, self.registry)
        self._residents = list(residents)
        self._started: list[Resident] = []
        self._main: asyncio.Task[None] | None = None
        self._group: asyncio.TaskGroup | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        """Start the task group with the job worker in it, then the residents."""
        if self._main is not None:
            raise RuntimeError("the node runtime was started already")
        self._main = asyncio.create_task(self._run(), name="node runtime")
        await self._ready.wait()
        try:
            for resident in self._residents:
                resident.start(self.spawn)
                self._started.append(resident)
        except BaseException:
            await self.close()
            raise

    def spawn(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """Run `work` in the node's task group until the node closes. It must handle its own
        errors: one that escapes stops the node's background work (and is logged)."""
        if self._group is None:
            raise RuntimeError("start the node runtime first")
        return self._group.create_task(work, name=name)

    async def _run(self) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                group.create_task(self.worker.run(), name="job worker")
                self._ready.set()
        except BaseException:
            self._ready.set()
            raise
        finally:
            self._group = None

    async def close(self) -> None:
        """Close the residents (newest first), then cancel the task group and wait for it:
        running jobs are released to the queue."""
        while self._started:
            resident = self._started.pop()
            try:
                await resident.close()
            except Exception:
                log.exception("closing %r failed", resident)
        main, self._main = self._main, None
        if main is None:
            return
        main.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            try:
                await main
            except Exception:
                log.exception("the node's background work failed")
