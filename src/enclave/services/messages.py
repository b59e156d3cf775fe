"""Messages: idempotent send, history, edit with versions, recall, threads and reactions."""

from __future__ import annotations

from dataclasses import dataclass, replace

from enclave.domain.errors import Conflict, Forbidden, InvalidInput, RateLimited
from enclave.domain.events import (
    MessageCreated,
    MessageEdited,
    MessageRecalled,
    MessageSnapshot,
    ReactionAdded,
    ReactionRemoved,
    ThreadSnapshot,
)
from enclave.domain.ids import MessageId, UserId, is_valid_id, new_id
from enclave.domain.models import Message, MessageVersion, ReactionSummary, User
from enclave.domain.policy import ConvAction
from enclave.services import audit, gates, limits, metrics, validate
from enclave.services.context import Changes, Context, write
from enclave.storage import accounts as account_store
from enclave.storage import messages as store
from enclave.storage.base import Tx, UniqueViolation


async def _take_send_budget(ctx: Context, actor: User) -> None:
    """The per-user send budget (`limits.send_*`), one token bucket shared by REST and every
    socket of the person; in a cluster `ctx.limiter` keeps it in Redis, so all nodes share it.
    Over it: `rate_limited` with the seconds to wait."""
    cfg = ctx.config.limits
    try:
        await limits.enforce(
            ctx.limiter,
            f"send:user:{actor.id}",
            per_second=cfg.send_per_second,
            burst=cfg.send_burst,
            now_ms=ctx.clock.now_ms(),
        )
    except RateLimited:
        metrics.rate_limited("send:user")
        raise


@dataclass(frozen=True)
class Sent:
    message: Message
    created: bool
    """False when `client_msg_id` was seen before and the original came back."""


async def send(
    ctx: Context,
    actor: User,
    conv_id: str,
    *,
    client_msg_id: str,
    text: str,
    thread_root_id: str | None = None,
) -> Sent:
    """Store a message once per (sender, client_msg_id); a retry returns the original, or
    answers `message_expired` once retention removed it (docs/protocol.md, "send"). Every
    call takes from the sender's one send budget, whatever the transport."""
    cmid = validate.client_msg_id(client_msg_id)
    body = validate.message_text(text, ctx.config.limits.message_max_chars)
    await _take_send_budget(ctx, actor)
    mentioned = validate.mentioned_usernames(body)

    def work(ch: Changes) -> Sent:
        earlier = store.earlier_send(ch.tx, actor.id, cmid)
        if earlier is not None:
            original = earlier.message
            if original is not None and original.conversation_id != conv_id:
                raise Conflict(
                    "idempotency_conflict", "client_msg_id was used in another conversation"
                )
            # A sender who may no longer see the conversation must not read it through a retry.
            gates.conversation(ch.tx, actor, conv_id, ConvAction.VIEW)
            if original is None:
                # Retention removed it: deleted, or hidden because a legal hold keeps it. Both
                # answer alike (a deleted one's conversation is not even known), so a retry
                # tells the sender nothing about holds, and nothing is posted a second time.
                raise Conflict(
                    "message_expired",
                    "this message was sent earlier and retention has removed it",
                )
            return Sent(original, created=False)
        conv, _ = gates.conversation(ch.tx, actor, conv_id, ConvAction.POST)
        root: Message | None = None
        if thread_root_id is not None:
            root = gates.thread_root(ch.tx, conv, thread_root_id)
        named = account_store.active_users_by_username(ch.tx, conv.org_id, mentioned)
        mentions = tuple(gates.members_among(ch.tx, conv, [UserId(u.id) for u in named]))
        seq = ch.next_seq(conv.id)
        message = Message(
            id=MessageId(new_id()),
            conversation_id=conv.id,
            seq=seq,
            sender_id=actor.id,
            client_msg_id=cmid,
            text=body,
            thread_root_id=root.id if root else None,
            created_at=ch.now,
            edited_at=None,
            recalled_at=None,
            reply_count=0,
            last_reply_at=None,
            mentions=mentions,
        )
        store.insert_message(ch.tx, message)
        thread = None
        if root is not None:
            store.bump_thread(ch.tx, root.id, ch.now)
            thread = ThreadSnapshot(root.id, root.reply_count + 1, ch.now)
        ch.record(conv.id, MessageCreated(MessageSnapshot.of(message), thread), actor.id, seq=seq)
        return Sent(message, created=True)

    try:
        return await write(ctx, work)
    except UniqueViolation:
        # A concurrent retry with the same key committed first (PostgreSQL made this insert
        # wait for it, then refused it); run again, and the lookup above finds the original.
        return await write(ctx, work)


async def history(
    ctx: Context,
    actor: User,
    conv_id: str,
    *,
    after_seq: int | None,
    before_seq: int | None,
    limit: int,
    include_replies: bool = True,
) -> list[Message]:
    def work(tx: Tx) -> list[Message]:
        conv, _ = gates.conversation(tx, actor, conv_id, ConvAction.VIEW)
        return store.page(
            tx,
            conv.id,
            after_seq=after_seq,
            before_seq=before_seq,
            limit=limit,
            include_replies=include_replies,
        )

    return await ctx.db.read(work)


async def get(ctx: Context, actor: User, message_id: str) -> Message:
    return await ctx.db.read(lambda tx: gates.message(tx, actor, message_id, ConvAction.VIEW)[0])


async def edit(ctx: Context, actor: User, message_id: str, text: str) -> Message:
    """Replace the text of one's own message; the previous text is kept as a version."""
    body = validate.message_text(text, ctx.config.limits.message_max_chars)

    def work(ch: Changes) -> Message:
        if is_valid_id(message_id):
            store.lock(ch.tx, message_id)  # then read the text that this edit replaces
        msg, conv, _ = gates.message(ch.tx, actor, message_id, ConvAction.POST)
        if msg.sender_id != actor.id:
            raise Forbidden("forbidden", "only the sender may edit a message")
        if msg.recalled_at is not None or msg.text is None:
            raise Conflict("message_recalled", "a recalled message cannot be edited")
        if msg.text == body:
            return msg
        store.add_version(
            ch.tx, msg.conversation_id, msg.id, msg.text, msg.edited_at or msg.created_at
        )
        store.update_text(ch.tx, msg.conversation_id, msg.id, body, ch.now)
        edited = replace(msg, text=body, edited_at=ch.now)
        ch.record(conv.id, MessageEdited(MessageSnapshot.of(edited)), actor.id)
        return edited

    return await write(ctx, work)


async def recall(ctx: Context, actor: User, message_id: str) -> Message:
    """Recall a message: the sender, or a moderator of a group or channel, may do it."""

    def work(ch: Changes) -> Message:
        msg, conv, _ = gates.message(ch.tx, actor, message_id, ConvAction.VIEW)
        action = ConvAction.POST if msg.sender_id == actor.id else ConvAction.MODERATE_MESSAGES
        if msg.recalled_at is not None:
            # Recalling twice changes nothing, but only for someone who could have recalled it.
            gates.conversation(ch.tx, actor, conv.id, action, allow_archived=True)
            return msg
        gates.conversation(ch.tx, actor, conv.id, action)
        store.set_recalled(ch.tx, msg.id, ch.now)
        recalled = replace(msg, text=None, recalled_at=ch.now)
        ch.record(conv.id, MessageRecalled(msg.id, ch.now), actor.id)
        audit.record(
            ctx,
            ch,
            "message.recalled",
            audit.Actor.of(actor),
            target=audit.Target("message", msg.id),
            details={
                "conversation_id": conv.id,
                "sender_id": msg.sender_id,
                "moderated": msg.sender_id != actor.id,
            },
        )
        return recalled

    return await write(ctx, work)


async def versions(ctx: Context, actor: User, message_id: str) -> list[MessageVersion]:
    """Earlier texts of a message, oldest first; none once it is recalled."""

    def work(tx: Tx) -> list[MessageVersion]:
        msg, _, _ = gates.message(tx, actor, message_id, ConvAction.VIEW)
        return [] if msg.recalled_at is not None else store.versions(tx, msg.id)

    return await ctx.db.read(work)


async def thread(
    ctx: Context, actor: User, root_id: str, *, after_seq: int, limit: int
) -> tuple[Message, list[Message]]:
    def work(tx: Tx) -> tuple[Message, list[Message]]:
        root, _, _ = gates.message(tx, actor, root_id, ConvAction.VIEW)
        if root.thread_root_id is not None:
            raise InvalidInput("invalid_thread_root", "this message is itself a reply")
        return root, store.thread(tx, root.id, after_seq=after_seq, limit=limit)

    return await ctx.db.read(work)


async def react(
    ctx: Context, actor: User, message_id: str, emoji: str, *, add: bool
) -> tuple[ReactionSummary, ...]:
    """Add or remove the actor's reaction; doing it twice changes nothing."""
    clean = validate.emoji(emoji)

    def work(ch: Changes) -> tuple[ReactionSummary, ...]:
        msg, conv, _ = gates.message(ch.tx, actor, message_id, ConvAction.REACT)
        if msg.recalled_at is not None:
            raise Conflict("message_recalled", "a recalled message takes no reactions")
        if add:
            changed = store.add_reaction(ch.tx, msg.id, actor.id, clean, ch.now)
        else:
            changed = store.remove_reaction(ch.tx, msg.id, actor.id, clean)
        if changed:
            change = ReactionAdded if add else ReactionRemoved
            ch.record(conv.id, change(msg.id, actor.id, clean), actor.id)
        return store.reactions_of(ch.tx, msg.id)

    return await write(ctx, work)


async def reactions(ctx: Context, actor: User, message_id: str) -> tuple[ReactionSummary, ...]:
    def work(tx: Tx) -> tuple[ReactionSummary, ...]:
        msg, _, _ = gates.message(tx, actor, message_id, ConvAction.VIEW)
        return store.reactions_of(tx, msg.id)

    return await ctx.db.read(work)
