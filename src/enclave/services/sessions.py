"""Sessions: the caller's list of them, and revoking one, all the others, or (an admin) all of
a person's."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from enclave.domain.devices import device_label
from enclave.domain.errors import NotFound
from enclave.domain.models import User
from enclave.domain.policy import OrgAction
from enclave.domain.signals import SessionsRevoked
from enclave.services import audit, gates
from enclave.services.auth import Authenticated
from enclave.services.context import Changes, Context, write
from enclave.storage import accounts as store


@dataclass(frozen=True)
class SessionInfo:
    """One of the caller's sessions, as they may see it (never the token or its hash)."""

    id: str
    user_agent: str
    device: str
    """A short label such as "Firefox on Linux" (see `domain.devices`)."""
    ip: str | None
    """The address of the last use."""
    created_at: int
    last_used_at: int
    current: bool


def _public_session_id(token_hash: bytes) -> str:
    # Derived from the stored hash, not the hash itself: the lookup key never leaves the server.
    return hashlib.sha256(b"session-id:" + token_hash).hexdigest()[:24]


async def my_sessions(ctx: Context, auth: Authenticated) -> list[SessionInfo]:
    """The caller's open sessions, most recently used first."""
    found = await ctx.db.read(lambda tx: store.user_sessions(tx, auth.user.id))
    return [
        SessionInfo(
            id=_public_session_id(s.token_hash),
            user_agent=s.user_agent,
            device=device_label(s.user_agent),
            ip=s.last_ip,
            created_at=s.created_at,
            last_used_at=s.last_used_at,
            current=s.token_hash == auth.token_hash,
        )
        for s in found
    ]


async def revoke_session(
    ctx: Context, auth: Authenticated, session_id: str, ip: str | None = None
) -> None:
    """End one of the caller's own sessions (its live sockets close too)."""

    def work(ch: Changes) -> bytes:
        for session in store.user_sessions(ch.tx, auth.user.id):
            if _public_session_id(session.token_hash) == session_id:
                store.delete_session(ch.tx, session.token_hash)
                audit.record(
                    ctx,
                    ch,
                    "session.revoked",
                    audit.Actor.of(auth.user, ip),
                    target=audit.Target("session", session_id),
                    details={
                        "scope": "one",
                        "user_id": auth.user.id,
                        "current": session.token_hash == auth.token_hash,
                    },
                )
                return session.token_hash
        raise NotFound("session")

    digest = await write(ctx, work)
    await ctx.bus.publish(SessionsRevoked(auth.user.id, digest))


async def revoke_other_sessions(ctx: Context, auth: Authenticated, ip: str | None = None) -> int:
    """Sign out everywhere else: every session of the caller but this one; returns how many."""

    def work(ch: Changes) -> int:
        count = store.delete_user_sessions(ch.tx, auth.user.id, keep=auth.token_hash)
        audit.record(
            ctx,
            ch,
            "session.revoked",
            audit.Actor.of(auth.user, ip),
            target=audit.Target.user(auth.user),
            details={"scope": "others", "count": count},
        )
        return count

    count = await write(ctx, work)
    await ctx.bus.publish(SessionsRevoked(auth.user.id, None, keep=auth.token_hash))
    return count


async def revoke_user_sessions(
    ctx: Context, actor: User, user_id: str, ip: str | None = None
) -> int:
    """An admin signs a person of their organization out everywhere; returns how many."""
    gates.require_scope(actor, OrgAction.REVOKE_USER_SESSIONS)

    def work(ch: Changes) -> tuple[User, int]:
        # Only an owner signs out an owner; department admins only within their departments.
        user = gates.user_admin(ch.tx, actor, OrgAction.REVOKE_USER_SESSIONS, user_id)
        count = store.delete_user_sessions(ch.tx, user.id)
        audit.record(
            ctx,
            ch,
            "session.revoked",
            audit.Actor.of(actor, ip),
            target=audit.Target.user(user),
            details={"scope": "all", "by_admin": True, "count": count},
        )
        return user, count

    user, count = await write(ctx, work)
    await ctx.bus.publish(SessionsRevoked(user.id, None))
    return count
