"""The retention schedule: every node runs `scheduler`, a loop that starts a run every
`retention.interval_minutes` (0: never); the run's lease makes one of them do the work each
time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from typing import Any

from enclave.domain.errors import Conflict
from enclave.services import audit
from enclave.services.context import Context
from enclave.services.retention.run import run

__all__ = ["scheduler", "start_scheduler", "stop_scheduler"]

log = logging.getLogger(__name__)


async def scheduler(ctx: Context, *, sleep: Callable[[float], Any] = asyncio.sleep) -> None:
    """Run retention every `retention.interval_minutes` (0: never) until cancelled. Every node
    runs this loop; the lease makes one of them do the work each time."""
    minutes = ctx.config.retention.interval_minutes
    if minutes <= 0:
        return
    holder = f"node-{secrets.token_hex(8)}"
    while True:
        await sleep(minutes * 60)
        try:
            await run(ctx, audit.Actor.operator(), holder=holder)
        except Conflict:
            log.info("retention: another node is running it")
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("retention run failed; the next one resumes it")


def start_scheduler(ctx: Context) -> asyncio.Task[None] | None:
    """Start the periodic run (None if disabled); cancel the task on shutdown."""
    if ctx.config.retention.interval_minutes <= 0:
        return None
    return asyncio.ensure_future(scheduler(ctx))


async def stop_scheduler(task: asyncio.Task[None] | None) -> None:
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
