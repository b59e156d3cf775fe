"""The node runtime: the one owner of this process's background work.

`Node` holds one `asyncio.TaskGroup` in which the job worker (and so every periodic kind of
the registry) and any other long-running work of the node (`Node.spawn`) run. `Node.close`
(the server on SIGTERM or SIGINT) cancels the group: the worker releases its running jobs back
to the queue with their attempts not spent, so another node, or this one after its restart,
runs them; nothing is lost and nothing counts as a failure.

The registry a server runs is `default_registry`: the queue's own clean-up for now; the export
jobs and the retention schedule move onto it next (issue 12).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

from enclave.services.context import Context
from enclave.services.exports import jobs as exports
from enclave.services.jobs import Job, Kind, Registry, Worker
from enclave.storage import jobs as job_store

__all__ = ["PURGE_NAME", "Node", "default_registry", "purge_kind"]

log = logging.getLogger(__name__)

PURGE_EVERY_S = 3600
_PURGE_BATCH = 500


PURGE_NAME = "jobs.purge"


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


def default_registry() -> Registry:
    """The kinds every server node runs."""
    registry = Registry()
    registry.add(purge_kind(registry))
    registry.add(exports.EXPORT)
    registry.add(exports.SWEEP)
    return registry


class Node:
    """Owns this node's background work in one task group; `start`, then `close` once."""

    def __init__(self, ctx: Context, registry: Registry | None = None) -> None:
        self.ctx = ctx
        self.registry = registry if registry is not None else default_registry()
        self.worker = Worker(ctx, self.registry)
        self._main: asyncio.Task[None] | None = None
        self._group: asyncio.TaskGroup | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        """Start the task group with the job worker in it."""
        if self._main is not None:
            raise RuntimeError("the node runtime was started already")
        self._main = asyncio.create_task(self._run(), name="node runtime")
        await self._ready.wait()

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
        """Cancel the task group and wait for it: running jobs are released to the queue."""
        main, self._main = self._main, None
        if main is None:
            return
        main.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            try:
                await main
            except Exception:
                log.exception("the node's background work failed")
