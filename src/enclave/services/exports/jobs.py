"""eDiscovery exports through the API: the compliance officers' use cases (start, status,
list_jobs, download) and the two job kinds that do the work on the queue.

`start` inserts the export and enqueues its `export.ediscovery` job (keyed by the export's id)
in one write transaction, so an export exists exactly when its job does. Any node's worker
runs it (`run.run_into_files`); a node that dies mid-run loses its lease and another node runs
the export again from the start, after removing what the first one wrote; a finished export is
never run again. An export whose job ends without finishing it (a failure on the last attempt,
a `Permanent` error, dead after its node died on its last attempt, cancelled by an operator)
is marked `failed`: by the handler where it can, else by the next sweep.

`export.sweep` (every 10 minutes, once per cluster) deletes the files of exports whose time is
up (`compliance.export_ttl_hours`) and fails exports their job abandoned; the API's reads sweep
first too, so a status never shows files that are due for deletion.

The files must be on storage every node sees (docs/operations.md): the download may reach any
node, and any node may run the export.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from enclave.domain.errors import Conflict, Forbidden, InvalidInput, NotFound, RateLimited
from enclave.domain.ids import is_valid_id
from enclave.domain.models import User
from enclave.domain.policy import OrgAction
from enclave.services import audit, gates
from enclave.services import jobs as queue
from enclave.services.context import Changes, Context, write
from enclave.services.exports import run
from enclave.services.exports.files import remove_tree, sha256_of
from enclave.storage import exports as store
from enclave.storage.base import Tx

__all__ = [
    "EXPORT",
    "EXPORT_KIND",
    "LIST_MAX",
    "MAX_UNFINISHED",
    "SWEEP",
    "SWEEP_EVERY_S",
    "JobPage",
    "download",
    "list_jobs",
    "start",
    "status",
    "sweep",
]

log = logging.getLogger(__name__)

EXPORT_KIND = "export.ediscovery"
MAX_UNFINISHED = 2
"""Exports of the API one organization may have queued or running at once, across the
cluster; more are refused with `rate_limited`."""
CONCURRENCY = 2
"""Exports one node runs at once."""
ATTEMPTS = 3
LIST_MAX = 100
"""Jobs per page of `list_jobs`."""
SWEEP_EVERY_S = 600
_SWEEP_BATCH = 100
_CURSOR = re.compile(r"^([0-9]{1,19})\.([a-z2-7]{26})$")


def _hidden(actor: User) -> None:
    """Anyone who may not export sees no export jobs at all: 404, like a missing one."""
    try:
        gates.require_org(actor, OrgAction.EXPORT_EDISCOVERY)
    except Forbidden:
        raise NotFound("export") from None


async def start(
    ctx: Context, actor: User, query: run.ExportQuery, ip: str | None = None
) -> store.ExportJob:
    """Start an export (compliance officers and owners); returns it queued. 429
    `rate_limited` while the organization has `MAX_UNFINISHED` exports queued or running."""
    gates.require_org(actor, OrgAction.EXPORT_EDISCOVERY)
    query = run.check_query(query)
    await sweep(ctx)  # exports their job abandoned no longer count

    def work(ch: Changes) -> store.ExportJob:
        if store.unfinished_count(ch.tx, actor.org_id) >= MAX_UNFINISHED:
            raise RateLimited(
                "rate_limited", "exports are running; try again later", retry_after_s=30
            )
        created = run.new_job(ctx, ch, actor.org_id, query, audit.Actor.of(actor, ip), actor.id)
        queue.enqueue_in(
            ctx, ch, EXPORT, {"export_id": created.id}, key=created.id, org_id=actor.org_id
        )
        return created

    return await write(ctx, work)


async def _run_export(ctx: Context, job: queue.Job) -> None:
    """The `export.ediscovery` handler: run the export unless it has ended already."""
    export_id = str((job.payload or {}).get("export_id", ""))
    found = await ctx.db.read(partial(store.job_by_id, job_id=export_id))
    if found is None:
        raise queue.Permanent(f"export {export_id} does not exist")
    if found.status not in store.UNFINISHED:
        return  # finished by an earlier run of this job: not redone
    try:
        await run.run_into_files(ctx, found)
    except (NotFound, InvalidInput) as exc:  # the query no longer resolves: retrying cannot help
        await run.record_failed(ctx, found.id, exc.code)
        raise queue.Permanent(exc.code) from exc
    except Exception as exc:
        log.exception(
            "export %s: attempt %d of %d failed", found.id, job.attempts, job.max_attempts
        )
        if job.attempts >= job.max_attempts:
            await run.record_failed(ctx, found.id, type(exc).__name__)
        raise


async def _sweep_job(ctx: Context, job: queue.Job) -> None:
    await sweep(ctx)


EXPORT = queue.Kind(
    EXPORT_KIND, _run_export, concurrency=CONCURRENCY, max_attempts=ATTEMPTS, lease_seconds=60.0
)
SWEEP = queue.Kind("export.sweep", _sweep_job, concurrency=1, every_seconds=SWEEP_EVERY_S)


async def sweep(ctx: Context) -> int:
    """Delete the files of exports whose time is up, and mark failed the exports their job
    abandoned; returns how many exports' files were deleted."""
    now = ctx.clock.now_ms()

    def read(tx: Tx) -> tuple[list[str], list[tuple[str, str]]]:
        return (
            store.expired_jobs(tx, now, _SWEEP_BATCH),
            store.abandoned_jobs(tx, EXPORT_KIND, _SWEEP_BATCH),
        )

    expired, abandoned = await ctx.db.read(read)
    for export_id, reason in abandoned:
        await asyncio.to_thread(remove_tree, run.job_dir(ctx, export_id))
        await run.record_failed(ctx, export_id, reason[:200])
    for export_id in expired:
        await asyncio.to_thread(remove_tree, run.job_dir(ctx, export_id))
        await ctx.db.write(partial(store.mark_expired, job_id=export_id))
    return len(expired)


async def status(ctx: Context, actor: User, job_id: str) -> store.ExportJob:
    """An export of the caller's organization; 404 for anyone who may not export."""
    _hidden(actor)
    await sweep(ctx)
    found = (
        await ctx.db.read(lambda tx: store.job(tx, actor.org_id, job_id))
        if is_valid_id(job_id)
        else None
    )
    if found is None:
        raise NotFound("export")
    return found


@dataclass(frozen=True)
class JobPage:
    """A page of an organization's export jobs, newest first."""

    jobs: list[store.ExportJob]
    usernames: dict[str, str]
    """Usernames of the people who asked for them (the operator's jobs have nobody)."""
    next_before: str | None
    """The cursor of the next (older) page; None on the last page."""


async def list_jobs(ctx: Context, actor: User, *, before: str | None, limit: int) -> JobPage:
    """The organization's export jobs with their status and progress, newest first: the
    compliance officers' overview. 404 for anyone who may not export, like a single job."""
    _hidden(actor)
    found = _CURSOR.match(before) if before else None
    if before and found is None:
        raise InvalidInput("validation_error", "before: use next_before of the previous page")
    cursor = (int(found.group(1)), found.group(2)) if found else None
    size = max(1, min(limit, LIST_MAX))
    await sweep(ctx)

    def work(tx: Tx) -> tuple[list[store.ExportJob], dict[str, str]]:
        jobs = store.jobs_of_org(tx, actor.org_id, size, cursor)
        asked: list[str] = [j.requested_by for j in jobs if j.requested_by is not None]
        return jobs, store.usernames(tx, actor.org_id, asked)

    jobs, names = await ctx.db.read(work)
    last = jobs[-1] if len(jobs) == size else None
    return JobPage(jobs, names, f"{last.created_at}.{last.id}" if last else None)


async def download(ctx: Context, actor: User, job_id: str, ip: str | None = None) -> Path:
    """The zip of a finished export; each download is audited."""
    job = await status(ctx, actor, job_id)
    path = run.zip_path(ctx, job.id)
    if job.status != store.DONE or not await asyncio.to_thread(path.is_file):
        raise Conflict("export_not_ready", f"the export is {job.status}")
    digest = await asyncio.to_thread(sha256_of, path)

    def work(ch: Changes) -> None:
        audit.record(
            ctx,
            ch,
            "compliance.export_downloaded",
            audit.Actor.of(actor, ip),
            target=audit.Target("export", job.id),
            details={"sha256": digest},
        )

    await write(ctx, work)
    return path
