"""Erasure of a person (GDPR Art. 17), executed by an owner or admin at the person's request.

What it does, in this order:

1. One write transaction: refuses a person under legal hold (`legal_hold`), oneself, an owner
   (unless the actor is an owner) and the last owner; replaces the username with a pseudonym
   (`erased-<12 hex digits>`), makes the password unusable, deactivates the account, deletes
   every session, the MFA secret and the recovery codes; audited `user.erasure_started`.
2. With the organization's `erasure_mode` = `delete`: in batches, removes the text and every
   earlier version of each message the person sent and the text in the event log
   (`message.created`/`message.edited` events, sealed again without it). The rows stay as
   tombstones shown like recalled messages (a `message.recalled` event tells connected
   clients), so threads, reply counts and seq continuity hold. Messages in conversations under
   legal hold are kept as they are. With `pseudonymize` the messages stay, attributed to the
   pseudonym.
3. Shreds the person's data key (`keys.shred`, scope `user:<id>`): the display name and the MFA
   secret can no longer be read, in backups made before either (the KEK is rotated).
4. Audits `user.erased` with the mode and the counts.

Running it again on an erased person finishes an interrupted erasure and changes nothing else.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from enclave.domain.errors import Conflict, Forbidden
from enclave.domain.events import MessageRecalled
from enclave.domain.ids import ConversationId, UserId, user_scope
from enclave.domain.models import OrgRole, User
from enclave.domain.policy import OrgAction
from enclave.domain.signals import SessionsRevoked
from enclave.services import audit, gates, keys
from enclave.services.context import Changes, Context, write
from enclave.storage import accounts as account_store
from enclave.storage import erasure as store
from enclave.storage import holds
from enclave.storage import mfa as mfa_store

BATCH = 500


@dataclass(frozen=True)
class Erasure:
    user_id: str
    username: str
    """The pseudonym that replaced the username."""
    mode: str
    messages_deleted: int
    messages_kept_under_hold: int
    versions_deleted: int
    events_scrubbed: int
    sessions_revoked: int
    keys_shredded: int


def pseudonym(user_id: str) -> str:
    """The username an erased account gets: stable, unique, and revealing nothing but the id."""
    return "erased-" + hashlib.sha256(f"enclave-erased:{user_id}".encode()).hexdigest()[:12]


async def erase(ctx: Context, actor: User, user_id: str, ip: str | None = None) -> Erasure:
    """Erase a person of the actor's organization (owners and admins)."""
    gates.require_org(actor, OrgAction.ERASE_USER)
    who = audit.Actor.of(actor, ip)

    def begin(ch: Changes) -> tuple[User, str, int]:
        # Only an owner erases an owner (the roles each role administers: domain.policy).
        target = gates.user_admin(ch.tx, actor, OrgAction.ERASE_USER, user_id)
        if target.id == actor.id:
            raise Forbidden("forbidden", "you cannot erase your own account; ask another admin")
        if (
            target.role is OrgRole.OWNER
            and target.is_active
            and account_store.count_owners(ch.tx, target.org_id) <= 1
        ):
            raise Conflict("last_owner", "the last owner cannot be erased")
        if holds.person_held(ch.tx, target.id):
            raise Conflict("legal_hold", "the person is under legal hold: nothing is erased")
        mode = account_store.org_settings(ch.tx, target.org_id).erasure_mode
        name = pseudonym(target.id)
        store.mark_erased(ch.tx, target.id, name, ch.now)
        sessions = account_store.delete_user_sessions(ch.tx, target.id)
        mfa_store.delete(ch.tx, target.id)
        audit.record(
            ctx,
            ch,
            "user.erasure_started",
            who,
            target=audit.Target("user", target.id),
            details={"mode": mode, "sessions_revoked": sessions, "pseudonym": name},
        )
        return target, mode, sessions

    target, mode, sessions = await write(ctx, begin)
    await ctx.bus.publish(SessionsRevoked(target.id, None))
    deleted = kept = versions = scrubbed = 0
    if mode == "delete":
        deleted, kept, versions = await _delete_texts(ctx, actor, target.id)
        scrubbed = await _scrub_events(ctx, target.id)
    shredded = await keys.shred(ctx, ctx.clock.now_ms(), who, user_scope(target.id))
    result = Erasure(
        user_id=target.id,
        username=pseudonym(target.id),
        mode=mode,
        messages_deleted=deleted,
        messages_kept_under_hold=kept,
        versions_deleted=versions,
        events_scrubbed=scrubbed,
        sessions_revoked=sessions,
        keys_shredded=len(shredded.key_ids),
    )

    def finish(ch: Changes) -> None:
        details: dict[str, Any] = {
            k: v for k, v in result.__dict__.items() if k not in ("user_id", "username")
        }
        audit.record(
            ctx,
            ch,
            "user.erased",
            who,
            target=audit.Target("user", target.id),
            details={**details, "pseudonym": result.username, "key_ids": shredded.key_ids},
        )

    await write(ctx, finish)
    return result


async def _delete_texts(ctx: Context, actor: User, user_id: UserId) -> tuple[int, int, int]:
    deleted = kept = versions = 0
    after = ""
    held: dict[ConversationId, bool] = {}
    while True:

        def batch(ch: Changes, a: str = after) -> tuple[int, int, int, str | None]:
            refs = store.texts_after(ch.tx, user_id, a, BATCH)
            d = k = v = 0
            for ref in refs:
                if ref.conversation_id not in held:
                    held[ref.conversation_id] = holds.conversation_wholly_held(
                        ch.tx, ref.conversation_id
                    )
                if held[ref.conversation_id]:
                    k += 1
                    continue
                v += store.delete_text(ch.tx, ref.id, ch.now)
                d += 1
                recalled = MessageRecalled(ref.id, ch.now, erased=True)
                ch.record(ref.conversation_id, recalled, actor.id)
            return d, k, v, refs[-1].id if refs else None

        d, k, v, last = await write(ctx, batch)
        deleted, kept, versions = deleted + d, kept + k, versions + v
        if last is None:
            return deleted, kept, versions
        after = last


async def _scrub_events(ctx: Context, user_id: UserId) -> int:
    """Remove the text from the person's message events (what reconnecting clients replay)."""
    scrubbed = 0
    after: tuple[str, int] = ("", 0)
    held: dict[ConversationId, bool] = {}
    while True:

        def batch(ch: Changes, a: tuple[str, int] = after) -> tuple[int, tuple[str, int] | None]:
            found = store.text_events_after(ch.tx, user_id, a, BATCH)
            n = 0
            for event in found:
                conv = event.conversation_id
                if conv not in held:
                    held[conv] = holds.conversation_wholly_held(ch.tx, conv)
                message = event.data.get("message") if event.data else None
                if held[conv] or not isinstance(message, dict) or message.get("text") is None:
                    continue
                data = {
                    **(event.data or {}),
                    "message": {**message, "text": None, "recalled": True},
                }
                store.rewrite_event(ch.tx, event, data)
                n += 1
            last = (found[-1].conversation_id, found[-1].seq) if found else None
            return n, last

        n, last = await write(ctx, batch)
        scrubbed += n
        if last is None:
            return scrubbed
        after = last
