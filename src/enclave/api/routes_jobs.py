"""Administration of an organization's background jobs: list, show, retry, cancel (owners and
admins; another organization's jobs do not exist for them)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from enclave.api import schemas_jobs as s
from enclave.api.deps import Actor, ClientIp, Ctx
from enclave.api.errors import ERROR_RESPONSES
from enclave.domain import wire
from enclave.services import jobs

router = APIRouter(prefix="/api/v1/admin/jobs", responses=ERROR_RESPONSES, tags=["admin"])

JobId = Annotated[str, Path(min_length=1, max_length=64)]


def _cursor(text: str | None) -> tuple[int, str] | None:
    if text is None:
        return None
    at, _, job_id = text.partition(".")
    return int(at), job_id


@router.get("", response_model=s.JobPageOut)
async def list_jobs(
    ctx: Ctx,
    actor: Actor,
    kind: Annotated[
        str | None, Query(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+(\.[a-z0-9_]+)*$")
    ] = None,
    state: s.JobState | None = None,
    cursor: Annotated[str | None, Query(pattern=s.CURSOR_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=jobs.PAGE_MAX)] = 50,
) -> dict[str, Any]:
    """Your organization's jobs, newest first, optionally of one kind or state; page with
    `cursor` = `next_cursor`. Owners and admins only (others: 403 `forbidden`)."""
    page = await jobs.list_jobs(
        ctx, actor, kind=kind, state=state, limit=limit, before=_cursor(cursor)
    )
    nxt = f"{page.next_before[0]}.{page.next_before[1]}" if page.next_before else None
    return {"jobs": [wire.job(j) for j in page.jobs], "next_cursor": nxt}


@router.get("/{job_id}", response_model=s.JobOut)
async def get_job(job_id: JobId, ctx: Ctx, actor: Actor) -> dict[str, Any]:
    """One job of your organization (any other: 404 `not_found`)."""
    return wire.job(await jobs.get(ctx, actor, job_id))


@router.post("/{job_id}/retry", response_model=s.JobOut)
async def retry_job(job_id: JobId, ctx: Ctx, actor: Actor, ip: ClientIp) -> dict[str, Any]:
    """Queue a dead, failed or cancelled job again, due now with all its attempts (otherwise
    409 `job_not_retryable`). Audited as `job.retried`."""
    return wire.job(await jobs.retry(ctx, actor, job_id, ip=ip))


@router.post("/{job_id}/cancel", response_model=s.JobOut)
async def cancel_job(job_id: JobId, ctx: Ctx, actor: Actor, ip: ClientIp) -> dict[str, Any]:
    """Cancel a queued or running job (a finished one: 409 `job_finished`); a running job stops
    when its worker next renews its lease. Audited as `job.cancelled`."""
    return wire.job(await jobs.cancel(ctx, actor, job_id, ip=ip))
