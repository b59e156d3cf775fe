"""Reads that real-time delivery needs: a person's conversations with their newest seq, and the
stored events of a conversation after a cursor."""

from __future__ import annotations

from enclave.domain.events import Event
from enclave.domain.ids import ConversationId, UserId
from enclave.domain.models import User
from enclave.services import gates
from enclave.services.context import Context
from enclave.storage import conversations as conv_store
from enclave.storage import messages as msg_store


async def membership_seqs(ctx: Context, user_id: UserId) -> dict[ConversationId, int]:
    """The conversations `user_id` may receive events of, each with its newest seq."""
    return await ctx.db.read(lambda tx: conv_store.membership_seqs(tx, user_id))


async def memberships(
    ctx: Context, user_ids: list[UserId]
) -> dict[UserId, dict[ConversationId, int]]:
    """`membership_seqs` of several people, in one read transaction."""
    return await ctx.db.read(
        lambda tx: {uid: conv_store.membership_seqs(tx, uid) for uid in user_ids}
    )


async def last_seqs(ctx: Context, conv_ids: list[ConversationId]) -> dict[ConversationId, int]:
    """The newest seq of each of these conversations, in one read transaction."""
    return await ctx.db.read(lambda tx: conv_store.last_seqs(tx, conv_ids))


async def is_member(ctx: Context, user_id: UserId, conv_id: ConversationId) -> bool:
    return await ctx.db.read(lambda tx: gates.is_member(tx, user_id, conv_id))


async def events_for_member(
    ctx: Context, conv_id: ConversationId, after_seq: int, limit: int
) -> list[Event]:
    """Stored events after `after_seq`, for a connection the hub has verified as a member."""
    return await ctx.db.read(lambda tx: msg_store.events_after(tx, conv_id, after_seq, limit))


async def same_org_users(ctx: Context, actor: User, user_ids: list[str]) -> list[UserId]:
    """The ids among `user_ids` of people of the actor's organization whom the actor may see
    (a guest: only those they share a conversation with); the others vanish."""
    return await ctx.db.read(lambda tx: gates.visible_user_ids(tx, actor, user_ids))
