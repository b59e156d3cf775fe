"""Retention policies, the dry run and the run (admins), and legal holds (compliance officers).

See docs/compliance.md. Holds are invisible to every role but compliance officers and the
owner: their routes answer 404 `not_found` to everyone else, like a hold that does not exist.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from enclave.api.deps import Actor, ClientIp, Ctx
from enclave.api.errors import ERROR_RESPONSES
from enclave.domain import wire
from enclave.services import holds
from enclave.services.retention import plan, policy, run

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)

Days = Annotated[int, Field(ge=1, le=policy.MAX_DAYS)]
PathId = Annotated[str, Path(max_length=64)]
IdText = Annotated[str, Field(min_length=26, max_length=26, pattern=r"^[a-z2-7]+$")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- schemas -------------------------------------------------------------------------------------


class OverrideOut(_Out):
    conversation_id: str
    days: int | None = Field(description="Days kept; null: forever.")
    updated_at: int


class RetentionOut(_Out):
    default_days: int | None = Field(description="The organization's default; null: forever.")
    overrides: list[OverrideOut]


class RetentionIn(_In):
    default_days: Days | None = Field(
        description="Keep messages this many days (1–36500), or null to keep them forever."
    )


class ConversationRetentionIn(_In):
    mode: Literal["default", "forever", "days"] = Field(
        description="`default`: follow the organization's default (removes the override); "
        "`forever`; `days`: keep `days` days."
    )
    days: Days | None = Field(None, description="Required with mode `days`, and only then.")


class ConversationRetentionOut(_Out):
    conversation_id: str
    mode: Literal["default", "forever", "days"]
    days: int | None
    effective_days: int | None = Field(description="What applies now; null: forever.")


class ConversationPlanOut(_Out):
    conversation_id: str
    days: int
    cutoff: int = Field(description="Unix ms; what was created before it is past retention.")
    held: bool = Field(description="The whole conversation is under legal hold.")
    messages: int = Field(description="Messages deleted.")
    first_seq: int | None
    last_seq: int | None
    versions: int
    reactions: int
    mentions: int
    hidden: int = Field(description="Messages past retention kept for a legal hold (hidden).")
    events: int = Field(description="Events deleted from the replay log.")
    events_up_to_seq: int
    key_ids: list[str] = Field(description="Data keys shredded.")


class TotalsOut(_Out):
    conversations: int
    messages: int
    versions: int
    reactions: int
    mentions: int
    hidden: int
    events: int
    files: int
    key_ids: list[str]


class PlanOut(_Out):
    org_id: str
    as_of: int
    default_days: int | None
    totals: TotalsOut
    conversations: list[ConversationPlanOut]


class ReceiptOut(PlanOut):
    run_id: str
    kek_rotated: bool
    audit_seq: int | None = Field(
        description="The seq of the `retention.purged` audit entry; null when nothing was "
        "removed (no receipt is written then)."
    )


class HoldOut(_Out):
    id: str
    kind: Literal["person", "conversation"]
    target_id: str
    reason: str
    active: bool
    created_by: str | None
    created_at: int
    released_by: str | None
    released_at: int | None
    release_reason: str | None


class HoldList(_Out):
    holds: list[HoldOut]


class HoldIn(_In):
    kind: Literal["person", "conversation"]
    target_id: IdText = Field(description="A user id (person) or a conversation id.")
    reason: str = Field(min_length=1, max_length=holds.REASON_MAX)


class HoldReleaseIn(_In):
    reason: str = Field(min_length=1, max_length=holds.REASON_MAX)


def _policy(p: policy.Policy) -> dict[str, Any]:
    return {
        "default_days": p.default_days,
        "overrides": [
            {"conversation_id": o.conversation_id, "days": o.days, "updated_at": o.updated_at}
            for o in p.overrides
        ],
    }


# -- retention -----------------------------------------------------------------------------------


@router.get("/org/retention", response_model=RetentionOut, tags=["retention"])
async def get_retention(ctx: Ctx, actor: Actor) -> dict[str, Any]:
    """The organization's default and the conversations that override it (owners, admins,
    compliance officers)."""
    return _policy(await policy.policy(ctx, actor))


@router.put("/org/retention", response_model=RetentionOut, tags=["retention"])
async def put_retention(body: RetentionIn, ctx: Ctx, actor: Actor, ip: ClientIp) -> dict[str, Any]:
    """Set the default (owners and admins); audited as `retention.policy_changed`."""
    return _policy(await policy.set_default(ctx, actor, body.default_days, ip=ip))


@router.get("/org/retention/preview", response_model=PlanOut, tags=["retention"])
async def preview_retention(ctx: Ctx, actor: Actor) -> dict[str, Any]:
    """Exactly what a run would do now (the dry run): per conversation the messages (count and
    seq range), versions, reactions, mentions, events and data keys; nothing changes."""
    return wire.retention_plan(await plan.preview(ctx, actor))


@router.post("/org/retention/run", response_model=ReceiptOut, tags=["retention"])
async def run_retention(ctx: Ctx, actor: Actor, ip: ClientIp) -> dict[str, Any]:
    """Run retention now for your organization (owners and admins) and return its receipt
    (also in the audit log as `retention.purged`). 409 `retention_running` if a run is in
    progress."""
    receipt = await run.run_for(ctx, actor, ip=ip)
    assert receipt is not None
    return wire.retention_receipt(receipt)


@router.put(
    "/conversations/{conv_id}/retention",
    response_model=ConversationRetentionOut,
    tags=["retention"],
)
async def put_conversation_retention(
    conv_id: PathId, body: ConversationRetentionIn, ctx: Ctx, actor: Actor, ip: ClientIp
) -> dict[str, Any]:
    """Override the default for one conversation (owners and admins, for conversations they
    can see); audited as `retention.override_changed`."""
    found = await policy.set_conversation(ctx, actor, conv_id, body.mode, body.days, ip=ip)
    return {
        "conversation_id": found.conversation_id,
        "mode": found.mode,
        "days": found.days,
        "effective_days": found.effective_days,
    }


# -- legal holds ---------------------------------------------------------------------------------


@router.get("/compliance/holds", response_model=HoldList, tags=["compliance"])
async def list_holds(
    ctx: Ctx,
    actor: Actor,
    include_released: bool = False,
    limit: Annotated[int, Query(ge=1, le=holds.LIST_MAX)] = 100,
) -> dict[str, Any]:
    """Your organization's legal holds, newest first (compliance officers and the owner)."""
    found = await holds.list_holds(ctx, actor, include_released=include_released, limit=limit)
    return {"holds": [wire.hold(h) for h in found]}


@router.post("/compliance/holds", status_code=201, response_model=HoldOut, tags=["compliance"])
async def create_hold(body: HoldIn, ctx: Ctx, actor: Actor, ip: ClientIp) -> dict[str, Any]:
    """Place a legal hold on a person or a conversation; audited as `legal_hold.created`."""
    return wire.hold(await holds.create(ctx, actor, body.kind, body.target_id, body.reason, ip=ip))


@router.post("/compliance/holds/{hold_id}/release", response_model=HoldOut, tags=["compliance"])
async def release_hold(
    hold_id: PathId, body: HoldReleaseIn, ctx: Ctx, actor: Actor, ip: ClientIp
) -> dict[str, Any]:
    """Release a hold (409 `hold_released` if it was already); audited as
    `legal_hold.released`. Retention then removes what it kept at its next run."""
    return wire.hold(await holds.release(ctx, actor, hold_id, body.reason, ip=ip))
