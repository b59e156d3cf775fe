"""Conversations, members, read markers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from enclave.api import schemas as s
from enclave.api.deps import Actor, Ctx
from enclave.api.errors import ERROR_RESPONSES
from enclave.domain import wire
from enclave.domain.models import ConversationKind, MemberRole, Visibility
from enclave.services import conversations

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES, tags=["conversations"])

IdCursor = Annotated[str, Query(max_length=26, pattern=r"^[a-z2-7]*$")]
Limit = Annotated[int, Query(ge=1, le=1000)]


@router.get("/conversations", response_model=s.ConversationList)
async def list_conversations(ctx: Ctx, actor: Actor) -> dict[str, Any]:
    """Your conversations, most recently active first, with unread counts."""
    items = await conversations.list_mine(ctx, actor)
    return {"conversations": [wire.summary(c) for c in items]}


@router.post(
    "/conversations",
    status_code=201,
    response_model=s.ConversationOut,
    responses={200: {"model": s.ConversationOut, "description": "The existing DM of the pair."}},
)
async def create_conversation(
    body: s.ConversationCreateIn, ctx: Ctx, actor: Actor, response: Response
) -> dict[str, Any]:
    """Create a DM, group or channel. A DM that exists already is returned with 200. Guests
    may not create conversations (403 `forbidden`)."""
    result = await conversations.create(
        ctx,
        actor,
        kind=ConversationKind(body.kind),
        member_ids=body.members,
        name=body.name,
        topic=body.topic,
        visibility=Visibility(body.visibility) if body.visibility else None,
        announcement=body.announcement,
    )
    if not result.created:
        response.status_code = 200
    return wire.summary(result.conversation)


@router.get("/channels", response_model=s.ChannelList)
async def browse_channels(
    ctx: Ctx,
    actor: Actor,
    after: Annotated[
        str, Query(max_length=80, pattern=r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]*$")
    ] = "",
    limit: Limit = 100,
) -> dict[str, Any]:
    """Public channels of your organization by name; page with `after` = the last name.
    Guests may not browse channels (403 `forbidden`)."""
    found = await conversations.browse_channels(
        ctx, actor, after=after, limit=min(limit, ctx.config.limits.page_max)
    )
    return {
        "channels": [
            {"id": c.id, "name": c.name, "topic": c.topic, "created_at": c.created_at, "joined": j}
            for c, j in found
        ]
    }


@router.get("/conversations/{conv_id}", response_model=s.ConversationOut)
async def get_conversation(conv_id: str, ctx: Ctx, actor: Actor) -> dict[str, Any]:
    return wire.summary(await conversations.get(ctx, actor, conv_id))


@router.patch("/conversations/{conv_id}", response_model=s.ConversationOut)
async def update_conversation(
    conv_id: str, body: s.ConversationUpdateIn, ctx: Ctx, actor: Actor
) -> dict[str, Any]:
    """Rename, set the topic (moderators of a channel; any member of a group), or make a
    channel an announcement channel or not (`announcement`, moderators)."""
    summary = await conversations.update(
        ctx, actor, conv_id, name=body.name, topic=body.topic, announcement=body.announcement
    )
    return wire.summary(summary)


@router.post("/conversations/{conv_id}/archive", response_model=s.ConversationOut)
async def archive(conv_id: str, ctx: Ctx, actor: Actor) -> dict[str, Any]:
    """Make the conversation read-only."""
    return wire.summary(await conversations.set_archived(ctx, actor, conv_id, archived=True))


@router.post("/conversations/{conv_id}/unarchive", response_model=s.ConversationOut)
async def unarchive(conv_id: str, ctx: Ctx, actor: Actor) -> dict[str, Any]:
    return wire.summary(await conversations.set_archived(ctx, actor, conv_id, archived=False))


@router.post("/conversations/{conv_id}/join", response_model=s.ConversationOut)
async def join(conv_id: str, ctx: Ctx, actor: Actor) -> dict[str, Any]:
    """Join a public channel."""
    return wire.summary(await conversations.join(ctx, actor, conv_id))


@router.post("/conversations/{conv_id}/leave", status_code=204)
async def leave(conv_id: str, ctx: Ctx, actor: Actor) -> Response:
    await conversations.leave(ctx, actor, conv_id)
    return Response(status_code=204)


@router.get("/conversations/{conv_id}/members", response_model=s.MemberList)
async def list_members(
    conv_id: str, ctx: Ctx, actor: Actor, after: IdCursor = "", limit: Limit = 200
) -> dict[str, Any]:
    """Members with their roles and read markers; page with `after` = the last user id."""
    found = await conversations.members(
        ctx, actor, conv_id, after=after, limit=min(limit, ctx.config.limits.page_max)
    )
    return {"members": [wire.member(m) for m in found]}


@router.post("/conversations/{conv_id}/members", response_model=s.MemberList)
async def add_members(conv_id: str, body: s.MembersAddIn, ctx: Ctx, actor: Actor) -> dict[str, Any]:
    """Add people; returns those who were not members before."""
    added = await conversations.add_members(ctx, actor, conv_id, body.user_ids)
    return {"members": [wire.member(m) for m in added]}


@router.delete("/conversations/{conv_id}/members/{user_id}", status_code=204)
async def remove_member(conv_id: str, user_id: str, ctx: Ctx, actor: Actor) -> Response:
    await conversations.remove_member(ctx, actor, conv_id, user_id)
    return Response(status_code=204)


@router.patch("/conversations/{conv_id}/members/{user_id}", response_model=s.MemberOut)
async def set_member_role(
    conv_id: str, user_id: str, body: s.MemberRoleIn, ctx: Ctx, actor: Actor
) -> dict[str, Any]:
    member = await conversations.set_member_role(
        ctx, actor, conv_id, user_id, MemberRole(body.role)
    )
    return wire.member(member)


@router.post("/conversations/{conv_id}/read", response_model=s.ReadOut)
async def mark_read(conv_id: str, body: s.ReadIn, ctx: Ctx, actor: Actor) -> dict[str, Any]:
    """Move your read marker forward to `seq` (use the seq of the newest message you saw)."""
    return {"last_read_seq": await conversations.mark_read(ctx, actor, conv_id, body.seq)}
