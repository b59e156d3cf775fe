"""The retention schedule: a periodic job kind on the job queue (docs/architecture.md, "The job
path"), one job per `retention.interval_minutes` across the whole cluster, none when it is 0.

The job runs retention for every organization (`run.run`). Its holder of the run's lease is
named after the job, so when a node dies mid-run and another node retries the job, the retry
takes the lease over at once and resumes the interrupted run; a node stopped with SIGTERM
releases the job (and the lease) and another node, or the next start, runs it. A run started by
hand (`enclave retention run`, `POST /api/v1/org/retention/run`) is not a queued job: the lease
keeps it and the scheduled run apart, and a scheduled run that finds the lease taken leaves the
work to the next period.
"""

from __future__ import annotations

import logging

from enclave.config import Config
from enclave.domain.errors import Conflict
from enclave.services import audit
from enclave.services.context import Context
from enclave.services.jobs import Job, Kind
from enclave.services.retention.run import run

__all__ = ["NAME", "kind"]

log = logging.getLogger(__name__)

NAME = "retention.run"


async def _run_all(ctx: Context, job: Job) -> None:
    try:
        await run(ctx, audit.Actor.operator(), holder=f"job:{job.id}")
    except Conflict:
        # A run started by hand holds the lease; it does this period's work.
        log.info("retention: a run is in progress elsewhere; the next period runs again")


def kind(config: Config) -> Kind | None:
    """The periodic retention job, every `retention.interval_minutes`; None when that is 0."""
    minutes = config.retention.interval_minutes
    if minutes <= 0:
        return None
    return Kind(NAME, _run_all, concurrency=1, every_seconds=minutes * 60)
