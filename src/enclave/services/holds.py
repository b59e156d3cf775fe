"""Legal holds: created and released by compliance officers (and the owner), with a reason.

Holds are invisible to everyone else: for any other role every holds call answers 404
`not_found`, exactly like a hold that does not exist, so nobody learns from the API that a hold
exists (a person under hold included). What a hold preserves is in `enclave.storage.holds`;
retention (`services.retention`) and erasure consult it. Creating and releasing are audited
(`legal_hold.created`, `legal_hold.released`).
"""

from __future__ import annotations

from enclave.domain.errors import Conflict, NotFound
from enclave.domain.ids import is_valid_id, new_id
from enclave.domain.models import Hold, User
from enclave.services import audit, gates, validate
from enclave.services.context import Changes, Context, write
from enclave.storage import holds as store
from enclave.storage.base import Tx

REASON_MAX = 500
LIST_MAX = 500


def _require(actor: User) -> None:
    """Only holders of `compliance.holds` may know about holds; to others they do not exist."""
    if not gates.may_see_holds(actor):
        raise NotFound("resource")


def _reason(text: str) -> str:
    return validate.line(text, field="reason", max_chars=REASON_MAX)


async def list_holds(
    ctx: Context, actor: User, *, include_released: bool, limit: int
) -> list[Hold]:
    _require(actor)
    limit = max(1, min(limit, LIST_MAX))
    return await ctx.db.read(
        lambda tx: store.list_for_org(tx, actor.org_id, include_released, limit)
    )


def _check_target(tx: Tx, actor: User, kind: str, target_id: str) -> None:
    if kind == store.PERSON:
        gates.org_user(tx, actor, target_id)
        return
    gates.org_conversation(tx, actor, target_id)


async def create(
    ctx: Context, actor: User, kind: str, target_id: str, reason: str, *, ip: str | None = None
) -> Hold:
    """Place a hold on a person or a conversation of the actor's organization."""
    _require(actor)
    if kind not in store.KINDS:
        raise NotFound("resource")
    why = _reason(reason)

    def work(ch: Changes) -> Hold:
        _check_target(ch.tx, actor, kind, target_id)
        hold = Hold(
            id=new_id(),
            org_id=actor.org_id,
            kind=kind,
            target_id=target_id,
            reason=why,
            created_by=actor.id,
            created_at=ch.now,
            released_by=None,
            released_at=None,
            release_reason=None,
        )
        store.insert(ch.tx, hold)
        audit.record(
            ctx,
            ch,
            "legal_hold.created",
            audit.Actor.of(actor, ip),
            target=audit.Target("legal_hold", hold.id),
            details={"kind": kind, "target_id": target_id, "reason": why},
        )
        return hold

    return await write(ctx, work)


async def release(
    ctx: Context, actor: User, hold_id: str, reason: str, *, ip: str | None = None
) -> Hold:
    """Release a hold: retention and erasure may then remove what it preserved."""
    _require(actor)
    why = _reason(reason)

    def work(ch: Changes) -> Hold:
        hold = store.get(ch.tx, actor.org_id, hold_id) if is_valid_id(hold_id) else None
        if hold is None:
            raise NotFound("hold")
        if not store.release(ch.tx, hold.id, actor.id, ch.now, why):
            raise Conflict("hold_released", "this hold was released already")
        audit.record(
            ctx,
            ch,
            "legal_hold.released",
            audit.Actor.of(actor, ip),
            target=audit.Target("legal_hold", hold.id),
            details={"kind": hold.kind, "target_id": hold.target_id, "reason": why},
        )
        found = store.get(ch.tx, actor.org_id, hold.id)
        assert found is not None
        return found

    return await write(ctx, work)
