"""Conversations: DMs, groups and channels; membership, roles, archive and read markers."""

from __future__ import annotations

from dataclasses import dataclass, replace

from enclave.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from enclave.domain.events import (
    ConversationArchived,
    ConversationCreated,
    ConversationSnapshot,
    ConversationUnarchived,
    ConversationUpdated,
    MemberJoined,
    MemberLeft,
    MemberRoleChanged,
    ReadMoved,
)
from enclave.domain.ids import ConversationId, new_id
from enclave.domain.models import (
    Conversation,
    ConversationKind,
    ConversationSummary,
    Member,
    MemberRole,
    User,
    Visibility,
)
from enclave.domain.policy import ConvAction, OrgAction
from enclave.services import audit, gates, validate
from enclave.services.context import Changes, Context, write
from enclave.storage import conversations as store
from enclave.storage import messages as msg_store
from enclave.storage.base import Tx

NAME_MAX = 80
TOPIC_MAX = 250


@dataclass(frozen=True)
class Created:
    conversation: ConversationSummary
    created: bool


async def create(
    ctx: Context,
    actor: User,
    *,
    kind: ConversationKind,
    member_ids: list[str],
    name: str | None = None,
    topic: str = "",
    visibility: Visibility | None = None,
    announcement: bool = False,
) -> Created:
    """Create a conversation; a DM for a pair that already has one returns that one. Only a
    channel can be an announcement channel."""
    gates.require_org(actor, OrgAction.CREATE_CONVERSATION)
    if announcement and kind is not ConversationKind.CHANNEL:
        raise InvalidInput("validation_error", "only channels can be announcement channels")
    others = [uid for uid in dict.fromkeys(member_ids) if uid != actor.id]
    clean_name = validate.line(name, field="name", max_chars=NAME_MAX) if name else None
    clean_topic = validate.line(topic, field="topic", max_chars=TOPIC_MAX, allow_empty=True)
    if kind is ConversationKind.DM:
        if len(others) != 1:
            raise InvalidInput("invalid_members", "a DM has exactly one other member")
        if clean_name or clean_topic or visibility is Visibility.PUBLIC:
            raise InvalidInput("invalid_members", "a DM has no name, topic or public visibility")
    elif kind is ConversationKind.CHANNEL and not clean_name:
        raise InvalidInput("validation_error", "a channel needs a name")
    elif kind is ConversationKind.GROUP and not others:
        raise InvalidInput("invalid_members", "a group needs at least one other member")
    if len(others) + 1 > ctx.config.limits.group_max_members:
        raise InvalidInput("invalid_members", "too many members")
    if kind is ConversationKind.CHANNEL:
        vis = visibility or Visibility.PUBLIC
    elif visibility is Visibility.PUBLIC:
        raise InvalidInput("validation_error", "only channels can be public")
    else:
        vis = Visibility.PRIVATE

    def work(ch: Changes) -> Created:
        users = gates.same_org_active(ch.tx, actor.org_id, others)
        dm_key = ":".join(sorted([actor.id, others[0]])) if kind is ConversationKind.DM else None
        if dm_key is not None:
            existing = store.by_dm_key(ch.tx, dm_key)
            if existing is not None:
                return Created(_summary(ch.tx, actor, existing), created=False)
        is_channel = kind is ConversationKind.CHANNEL
        if is_channel and clean_name and store.channel_name_taken(ch.tx, actor.org_id, clean_name):
            raise Conflict("name_taken", f"a channel named {clean_name!r} exists")
        conv = Conversation(
            id=ConversationId(new_id()),
            org_id=actor.org_id,
            kind=kind,
            name=clean_name,
            topic=clean_topic,
            visibility=vis,
            archived=False,
            created_by=actor.id,
            created_at=ch.now,
            last_seq=0,
            announcement=announcement,
        )
        if not store.insert_conversation(ch.tx, conv, dm_key):
            # A concurrent creation of the same DM committed first (PostgreSQL waited for it
            # on the unique key); this statement sees it, so answer as a repeat would.
            raced = store.by_dm_key(ch.tx, dm_key) if dm_key is not None else None
            if raced is not None:
                return Created(_summary(ch.tx, actor, raced), created=False)
            raise Conflict("name_taken", "a conversation with this name or pair exists")
        owner_role = MemberRole.MEMBER if kind is ConversationKind.DM else MemberRole.OWNER
        store.add_member(ch.tx, Member(conv.id, actor.id, owner_role, ch.now, 0))
        for user in users:
            store.add_member(ch.tx, Member(conv.id, user.id, MemberRole.MEMBER, ch.now, 0))
        members = (actor.id, *[u.id for u in users])
        created = ConversationCreated(ConversationSnapshot.of(conv), members)
        event = ch.record(conv.id, created, actor.id)
        return Created(_summary(ch.tx, actor, replace(conv, last_seq=event.seq)), created=True)

    return await write(ctx, work)


def _summary(tx: Tx, actor: User, conv: Conversation) -> ConversationSummary:
    member = store.member(tx, conv.id, actor.id)
    counts = store.unread_counts(tx, actor.id).get(conv.id, (0, 0)) if member else (0, 0)
    return ConversationSummary(
        conversation=conv,
        my_role=member.role if member else None,
        last_read_seq=member.last_read_seq if member else 0,
        unread_count=counts[0],
        mention_count=counts[1],
        last_message=msg_store.last_top_level(tx, conv.id),
        dm_peer_id=store.dm_peer(tx, conv.id, actor.id)
        if conv.kind is ConversationKind.DM
        else None,
    )


async def get(ctx: Context, actor: User, conv_id: str) -> ConversationSummary:
    def work(tx: Tx) -> ConversationSummary:
        conv, _ = gates.conversation(tx, actor, conv_id, ConvAction.VIEW)
        return _summary(tx, actor, conv)

    return await ctx.db.read(work)


async def may_post(ctx: Context, actor: User, conv_id: str) -> bool:
    """May `actor` post in this conversation now? (Typing indicators are shown only for those
    who may: not a read-only member, not a member of an announcement channel.)"""

    def work(tx: Tx) -> bool:
        try:
            gates.conversation(tx, actor, conv_id, ConvAction.POST)
        except (NotFound, Forbidden, Conflict):
            return False
        return True

    return await ctx.db.read(work)


async def list_mine(ctx: Context, actor: User) -> list[ConversationSummary]:
    """The actor's conversations, most recently active first, with unread counts."""

    def work(tx: Tx) -> list[ConversationSummary]:
        counts = store.unread_counts(tx, actor.id)
        result = []
        for conv, member in store.my_conversations(tx, actor.id):
            unread, mentions = counts.get(conv.id, (0, 0))
            result.append(
                ConversationSummary(
                    conversation=conv,
                    my_role=member.role,
                    last_read_seq=member.last_read_seq,
                    unread_count=unread,
                    mention_count=mentions,
                    last_message=msg_store.last_top_level(tx, conv.id),
                    dm_peer_id=store.dm_peer(tx, conv.id, actor.id)
                    if conv.kind is ConversationKind.DM
                    else None,
                )
            )
        return result

    return await ctx.db.read(work)


async def browse_channels(
    ctx: Context, actor: User, *, after: str, limit: int
) -> list[tuple[Conversation, bool]]:
    """Public channels of the actor's org, by name, with whether the actor has joined."""
    gates.require_org(actor, OrgAction.BROWSE_CHANNELS)

    def work(tx: Tx) -> list[tuple[Conversation, bool]]:
        channels = store.public_channels(tx, actor.org_id, after=after.casefold(), limit=limit)
        return [(c, store.member(tx, c.id, actor.id) is not None) for c in channels]

    return await ctx.db.read(work)


async def update(
    ctx: Context,
    actor: User,
    conv_id: str,
    *,
    name: str | None,
    topic: str | None,
    announcement: bool | None = None,
) -> ConversationSummary:
    def work(ch: Changes) -> ConversationSummary:
        conv, _ = gates.conversation(ch.tx, actor, conv_id, ConvAction.UPDATE)
        if announcement is not None and conv.kind is not ConversationKind.CHANNEL:
            raise InvalidInput("validation_error", "only channels can be announcement channels")
        new_name = conv.name
        if name is not None:
            new_name = validate.line(name, field="name", max_chars=NAME_MAX)
            if conv.kind is ConversationKind.CHANNEL and store.channel_name_taken(
                ch.tx, conv.org_id, new_name, except_id=conv.id
            ):
                raise Conflict("name_taken", f"a channel named {new_name!r} exists")
        new_topic = conv.topic
        if topic is not None:
            new_topic = validate.line(topic, field="topic", max_chars=TOPIC_MAX, allow_empty=True)
        store.update_details(ch.tx, conv.id, new_name, new_topic)
        changed = replace(conv, name=new_name, topic=new_topic)
        if announcement is not None and announcement != conv.announcement:
            store.set_announcement(ch.tx, conv.id, announcement)
            changed = replace(changed, announcement=announcement)
            action = "conversation.announcement_changed"
            flag = {"announcement": announcement}
            audit.record(
                ctx,
                ch,
                action,
                audit.Actor.of(actor),
                target=audit.Target("conversation", conv.id),
                details=flag,
            )
        event = ch.record(conv.id, ConversationUpdated(ConversationSnapshot.of(changed)), actor.id)
        return _summary(ch.tx, actor, replace(changed, last_seq=event.seq))

    return await write(ctx, work)


async def set_archived(
    ctx: Context, actor: User, conv_id: str, *, archived: bool
) -> ConversationSummary:
    def work(ch: Changes) -> ConversationSummary:
        conv, _ = gates.conversation(ch.tx, actor, conv_id, ConvAction.ARCHIVE)
        if conv.archived == archived:
            return _summary(ch.tx, actor, conv)
        store.set_archived(ch.tx, conv.id, archived)
        change = ConversationArchived if archived else ConversationUnarchived
        event = ch.record(conv.id, change(conv.id), actor.id)
        audit.record(
            ctx,
            ch,
            change.TYPE.value,
            audit.Actor.of(actor),
            target=audit.Target("conversation", conv.id),
            details={"kind": conv.kind.value},
        )
        return _summary(ch.tx, actor, replace(conv, archived=archived, last_seq=event.seq))

    return await write(ctx, work)


async def join(ctx: Context, actor: User, conv_id: str) -> ConversationSummary:
    def work(ch: Changes) -> ConversationSummary:
        already = gates.own_membership(ch.tx, actor, conv_id)
        if already is not None:
            return _summary(ch.tx, actor, already[0])  # already a member: nothing to do
        conv, _ = gates.conversation(ch.tx, actor, conv_id, ConvAction.JOIN)
        if len(store.member_ids(ch.tx, conv.id)) >= ctx.config.limits.group_max_members:
            raise InvalidInput("invalid_members", "the channel is full")
        store.add_member(ch.tx, Member(conv.id, actor.id, MemberRole.MEMBER, ch.now, 0))
        _joined(ch, conv, actor, [actor])
        return _summary(ch.tx, actor, store.by_id(ch.tx, conv.id) or conv)

    return await write(ctx, work)


def _joined(ch: Changes, conv: Conversation, actor: User, users: list[User]) -> None:
    for user in users:
        ch.record(conv.id, MemberJoined(user.id, MemberRole.MEMBER), actor.id)


async def leave(ctx: Context, actor: User, conv_id: str) -> None:
    def work(ch: Changes) -> None:
        conv, member = gates.conversation(ch.tx, actor, conv_id, ConvAction.LEAVE)
        assert member is not None
        _check_not_last_owner(ch.tx, conv, member)
        store.remove_member(ch.tx, conv.id, actor.id)
        ch.record(conv.id, MemberLeft(actor.id), actor.id)

    await write(ctx, work)


def _check_not_last_owner(tx: Tx, conv: Conversation, member: Member) -> None:
    if member.role is not MemberRole.OWNER:
        return
    if (
        store.count_role(tx, conv.id, MemberRole.OWNER) <= 1
        and len(store.member_ids(tx, conv.id)) > 1
    ):
        raise Conflict("last_owner", "make someone else an owner first")


async def add_members(ctx: Context, actor: User, conv_id: str, user_ids: list[str]) -> list[Member]:
    """Add people; those already in are left as they are. Returns the new members."""
    if not user_ids:
        raise InvalidInput("invalid_members", "name at least one user")

    def work(ch: Changes) -> list[Member]:
        conv, _ = gates.conversation(ch.tx, actor, conv_id, ConvAction.ADD_MEMBERS)
        users = gates.same_org_active(ch.tx, actor.org_id, user_ids)
        if len(store.member_ids(ch.tx, conv.id)) + len(users) > ctx.config.limits.group_max_members:
            raise InvalidInput("invalid_members", "too many members")
        added = []
        for user in users:
            m = Member(conv.id, user.id, MemberRole.MEMBER, ch.now, 0)
            if store.add_member(ch.tx, m):
                added.append(m)
        _joined(ch, conv, actor, [u for u in users if any(a.user_id == u.id for a in added)])
        return added

    return await write(ctx, work)


async def remove_member(ctx: Context, actor: User, conv_id: str, user_id: str) -> None:
    if user_id == actor.id:
        await leave(ctx, actor, conv_id)
        return

    def work(ch: Changes) -> None:
        conv, me = gates.conversation(ch.tx, actor, conv_id, ConvAction.REMOVE_MEMBER)
        target = gates.member(ch.tx, conv, me, user_id, ConvAction.REMOVE_MEMBER)
        _check_not_last_owner(ch.tx, conv, target)
        store.remove_member(ch.tx, conv.id, target.user_id)
        ch.record(conv.id, MemberLeft(target.user_id), actor.id)
        details = {"conversation_id": conv.id, "role": target.role.value}
        audit.record(
            ctx,
            ch,
            "conversation.member_removed",
            audit.Actor.of(actor),
            target=audit.Target("user", target.user_id),
            details=details,
        )

    await write(ctx, work)


async def set_member_role(
    ctx: Context, actor: User, conv_id: str, user_id: str, role: MemberRole
) -> Member:
    def work(ch: Changes) -> Member:
        conv, me = gates.conversation(ch.tx, actor, conv_id, ConvAction.SET_MEMBER_ROLE)
        target = gates.member(ch.tx, conv, me, user_id, ConvAction.SET_MEMBER_ROLE)
        if target.role is role:
            return target
        owners = store.count_role(ch.tx, conv.id, MemberRole.OWNER)
        if target.role is MemberRole.OWNER and owners <= 1:
            raise Conflict("last_owner", "the last owner cannot be demoted")
        store.set_member_role(ch.tx, conv.id, target.user_id, role)
        ch.record(conv.id, MemberRoleChanged(target.user_id, role), actor.id)
        details = {"conversation_id": conv.id, "from": target.role.value, "to": role.value}
        audit.record(
            ctx,
            ch,
            "conversation.member_role_changed",
            audit.Actor.of(actor),
            target=audit.Target("user", target.user_id),
            details=details,
        )
        return replace(target, role=role)

    return await write(ctx, work)


async def members(
    ctx: Context, actor: User, conv_id: str, *, after: str, limit: int
) -> list[Member]:
    def work(tx: Tx) -> list[Member]:
        conv, _ = gates.conversation(tx, actor, conv_id, ConvAction.VIEW)
        return store.members(tx, conv.id, after=after, limit=limit)

    return await ctx.db.read(work)


async def mark_read(ctx: Context, actor: User, conv_id: str, seq: int) -> int:
    """Move the actor's read marker forward to `seq` (clamped to the newest); return it."""

    def work(ch: Changes) -> int:
        conv, member = gates.conversation(ch.tx, actor, conv_id, ConvAction.MARK_READ)
        assert member is not None
        target = min(seq, conv.last_seq)
        if target <= member.last_read_seq:
            return member.last_read_seq
        store.move_read_marker(ch.tx, conv.id, actor.id, target)
        ch.record(conv.id, ReadMoved(actor.id, target), actor.id)
        return target

    return await write(ctx, work)
