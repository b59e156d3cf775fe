"""Administration: the audit log of the caller's organization (owners, admins and compliance
officers)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from enclave.api import schemas as s
from enclave.api.deps import Actor, Ctx
from enclave.api.errors import ERROR_RESPONSES
from enclave.domain import wire
from enclave.services import audit

router = APIRouter(prefix="/api/v1/admin", responses=ERROR_RESPONSES, tags=["admin"])

VERIFY_PROBLEMS_SHOWN = 100

Ms = Annotated[int | None, Query(ge=0, le=s.MAX_SEQ, description="Unix time in milliseconds.")]


@router.get("/audit", response_model=s.AuditPageOut)
async def list_audit(
    ctx: Ctx,
    actor: Actor,
    action: Annotated[
        str | None,
        Query(
            max_length=64,
            pattern=r"^[a-z0-9_]+(\.[a-z0-9_]+)*$",
            description="An action (`auth.login`) or a prefix of dotted parts (`auth`).",
        ),
    ] = None,
    actor_id: Annotated[
        str | None, Query(min_length=26, max_length=26, pattern=r"^[a-z2-7]+$")
    ] = None,
    target_id: Annotated[
        str | None, Query(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@-]+$")
    ] = None,
    since: Ms = None,
    until: Annotated[
        int | None, Query(ge=0, le=s.MAX_SEQ, description="Unix ms, exclusive.")
    ] = None,
    before_seq: Annotated[
        int | None, Query(ge=1, le=s.MAX_SEQ, description="Entries older than this seq.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=audit.PAGE_MAX)] = 50,
) -> dict[str, Any]:
    """Your organization's audit entries, newest first; page with `before_seq` =
    `next_before_seq`. Owners, admins and compliance officers only (others: 403 `forbidden`).
    Legal hold entries (`legal_hold.*`) are listed only to compliance officers and owners."""
    page = await audit.list_entries(
        ctx,
        actor,
        audit.Query(
            action=action,
            actor_id=actor_id,
            target_id=target_id,
            since=since,
            until=until,
            before_seq=before_seq,
            limit=limit,
        ),
    )
    return {
        "entries": [
            wire.audit_entry(x.entry, x.actor_username, x.target_username) for x in page.entries
        ],
        "next_before_seq": page.next_before_seq,
    }


@router.get("/audit/verify", response_model=s.AuditVerifyOut)
async def verify_audit(ctx: Ctx, actor: Actor) -> dict[str, Any]:
    """Walk the whole hash chain (shared by every organization of this installation) and report
    every altered, missing or reordered entry. Owners, admins and compliance officers only;
    the check is audited."""
    result = await audit.verify_for(ctx, actor)
    return {
        "ok": result.ok,
        "checked": result.checked,
        "head_seq": result.head_seq,
        "head_hash": result.head_hash,
        "problem_count": result.problem_count,
        "problems": [
            {"seq": p.seq, "kind": p.kind, "detail": p.detail}
            for p in result.problems[:VERIFY_PROBLEMS_SHOWN]
        ],
    }
