"""Compliance: eDiscovery exports, a person's own data export, erasure, terms of use."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import FileResponse, StreamingResponse

from enclave.api import schemas_compliance as s
from enclave.api.deps import Actor, ClientIp, Ctx, Session
from enclave.api.errors import ERROR_RESPONSES
from enclave.domain import wire
from enclave.services import erasure, personal_data, terms
from enclave.services.exports import jobs as exports
from enclave.services.exports.run import ExportQuery

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)

ExportId = Annotated[str, Path(max_length=64)]


@router.post(
    "/compliance/exports", status_code=202, response_model=s.ExportJobOut, tags=["compliance"]
)
async def start_export(body: s.ExportIn, ctx: Ctx, actor: Actor, ip: ClientIp) -> dict[str, Any]:
    """Start an eDiscovery export (compliance officers and owners; others 403 `forbidden`):
    a background job. Poll `GET /compliance/exports/{id}`, then download the zip."""
    job = await exports.start(
        ctx,
        actor,
        ExportQuery(
            people=tuple(body.people),
            conversations=tuple(body.conversations),
            since=body.since,
            until=body.until,
        ),
        ip,
    )
    return wire.export_job(job)


@router.get("/compliance/exports", response_model=s.ExportJobList, tags=["compliance"])
async def list_exports(
    ctx: Ctx,
    actor: Actor,
    before: Annotated[
        str | None, Query(max_length=48, pattern=r"^[0-9]{1,19}\.[a-z2-7]{26}$")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=exports.LIST_MAX)] = 50,
) -> dict[str, Any]:
    """Your organization's eDiscovery exports, newest first, with status, progress, who asked
    and when (compliance officers and owners; 404 `not_found` for anyone else, like a missing
    export). Page with `before` = the previous page's `next_before`."""
    page = await exports.list_jobs(ctx, actor, before=before, limit=limit)
    return wire.export_jobs(page.jobs, page.usernames, page.next_before)


@router.get("/compliance/exports/{export_id}", response_model=s.ExportJobOut, tags=["compliance"])
async def export_status(export_id: ExportId, ctx: Ctx, actor: Actor) -> dict[str, Any]:
    """An export's status and progress (messages done of total). Compliance officers and
    owners of its organization; 404 for anyone else."""
    return wire.export_job(await exports.status(ctx, actor, export_id))


@router.get(
    "/compliance/exports/{export_id}/download",
    response_class=FileResponse,
    responses={200: {"content": {"application/zip": {}}, "description": "The export as a zip."}},
    tags=["compliance"],
)
async def export_download(
    export_id: ExportId, ctx: Ctx, actor: Actor, ip: ClientIp
) -> FileResponse:
    """The finished export as a zip (`messages.jsonl`, `eml/`, `manifest.json`); 409
    `export_not_ready` until it is done or after its files expired. Audited."""
    path = await exports.download(ctx, actor, export_id, ip)
    return FileResponse(
        path, media_type="application/zip", filename=f"enclave-export-{export_id}.zip"
    )


@router.post(
    "/users/me/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"application/json": {"schema": {"type": "object"}}},
            "description": "Everything Enclave holds about you, as one JSON document.",
        }
    },
    tags=["users"],
)
async def export_my_data(ctx: Ctx, actor: Actor, ip: ClientIp) -> StreamingResponse:
    """Download all your data (GDPR Art. 15 and 20): profile, MFA status, sessions, consents,
    memberships, every message you sent with its history, your reactions, and the audit
    entries about you. Streamed; audited (`export.gdpr`)."""
    stream = await personal_data.export(ctx, actor, ip)
    return StreamingResponse(
        stream,
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="enclave-my-data.json"'},
    )


@router.post("/users/{user_id}/erase", response_model=s.ErasureOut, tags=["users"])
async def erase_user(
    user_id: Annotated[str, Path(max_length=64)], ctx: Ctx, actor: Actor, ip: ClientIp
) -> dict[str, Any]:
    """Erase a person at their request (GDPR Art. 17; owners and admins): pseudonymous
    username, profile key shredded, sessions and MFA deleted, account deactivated; messages
    deleted or kept under the pseudonym per `erasure_mode` (GET /org/settings). 409
    `legal_hold` if the person is under legal hold. Running it again finishes an interrupted
    erasure."""
    return dataclasses.asdict(await erasure.erase(ctx, actor, user_id, ip))


@router.get("/org/terms", response_model=s.TermsOut, tags=["org"])
async def get_terms(ctx: Ctx, session: Session) -> dict[str, Any]:
    """Your organization's current terms of use and whether you accepted them (readable before
    accepting them)."""
    found = await terms.current(ctx, session.user)
    return wire.terms(found.terms, found.accepted_at)


@router.put("/org/terms", response_model=s.TermsOut, tags=["org"])
async def publish_terms(body: s.TermsIn, ctx: Ctx, actor: Actor, ip: ClientIp) -> dict[str, Any]:
    """Publish new terms of use (owners and admins). Everyone, you included, must accept them
    (`POST /users/me/terms/accept`) before anything else: until then 403
    `terms_acceptance_required`."""
    found = await terms.publish(ctx, actor, body.version, body.text, ip)
    return wire.terms(found.terms, found.accepted_at)


@router.post("/users/me/terms/accept", response_model=s.TermsOut, tags=["users"])
async def accept_terms(
    body: s.TermsAcceptIn, ctx: Ctx, session: Session, ip: ClientIp
) -> dict[str, Any]:
    """Accept the current terms; `version` must be the one shown (else 409 `terms_outdated`)."""
    found = await terms.accept(ctx, session.user, body.version, ip)
    return wire.terms(found.terms, found.accepted_at)
