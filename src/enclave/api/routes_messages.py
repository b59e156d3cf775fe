"""Messages, edits, recall, threads and reactions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from enclave.api import schemas as s
from enclave.api.deps import Actor, Ctx
from enclave.api.errors import ERROR_RESPONSES
from enclave.domain import wire
from enclave.services import messages

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES, tags=["messages"])

Seq = Annotated[int | None, Query(ge=0, le=s.MAX_SEQ)]
Limit = Annotated[int, Query(ge=1, le=1000)]
Emoji = Annotated[str, Path(min_length=1, max_length=64)]


@router.post(
    "/conversations/{conv_id}/messages",
    status_code=201,
    response_model=s.MessageOut,
    responses={200: {"model": s.MessageOut, "description": "A retry: the original message."}},
)
async def send_message(
    conv_id: str, body: s.MessageCreateIn, ctx: Ctx, actor: Actor, response: Response
) -> dict[str, Any]:
    """Send a message. Retrying with the same `client_msg_id` returns the original (200), or
    409 `message_expired` once retention has removed it (nothing is sent again)."""
    sent = await messages.send(
        ctx,
        actor,
        conv_id,
        client_msg_id=body.client_msg_id,
        text=body.text,
        thread_root_id=body.thread_root_id,
    )
    if not sent.created:
        response.status_code = 200
    return wire.message(sent.message)


@router.get("/conversations/{conv_id}/messages", response_model=s.MessageList)
async def list_messages(
    conv_id: str,
    ctx: Ctx,
    actor: Actor,
    after_seq: Seq = None,
    before_seq: Seq = None,
    limit: Limit = 50,
    include_replies: bool = True,
) -> dict[str, Any]:
    """History in ascending `seq`: the first `limit` after `after_seq`, else the last `limit`
    before `before_seq` (or the newest)."""
    found = await messages.history(
        ctx,
        actor,
        conv_id,
        after_seq=after_seq,
        before_seq=before_seq,
        limit=min(limit, ctx.config.limits.page_max),
        include_replies=include_replies,
    )
    return {"messages": [wire.message(m) for m in found]}


@router.get("/messages/{message_id}", response_model=s.MessageOut)
async def get_message(message_id: str, ctx: Ctx, actor: Actor) -> dict[str, Any]:
    return wire.message(await messages.get(ctx, actor, message_id))


@router.patch("/messages/{message_id}", response_model=s.MessageOut)
async def edit_message(
    message_id: str, body: s.MessageEditIn, ctx: Ctx, actor: Actor
) -> dict[str, Any]:
    """Edit your own message; the previous text is kept as a version."""
    return wire.message(await messages.edit(ctx, actor, message_id, body.text))


@router.delete("/messages/{message_id}", response_model=s.MessageOut)
async def recall_message(message_id: str, ctx: Ctx, actor: Actor) -> dict[str, Any]:
    """Recall a message (the sender, or a moderator of a group or channel)."""
    return wire.message(await messages.recall(ctx, actor, message_id))


@router.get("/messages/{message_id}/versions", response_model=s.VersionList)
async def message_versions(message_id: str, ctx: Ctx, actor: Actor) -> dict[str, Any]:
    """Earlier texts of an edited message, oldest first."""
    found = await messages.versions(ctx, actor, message_id)
    return {"versions": [wire.version(v) for v in found]}


@router.get("/messages/{message_id}/thread", response_model=s.ThreadOut)
async def get_thread(
    message_id: str,
    ctx: Ctx,
    actor: Actor,
    after_seq: Annotated[int, Query(ge=0, le=s.MAX_SEQ)] = 0,
    limit: Limit = 100,
) -> dict[str, Any]:
    """A thread's root and its replies in ascending `seq`."""
    root, replies = await messages.thread(
        ctx, actor, message_id, after_seq=after_seq, limit=min(limit, ctx.config.limits.page_max)
    )
    return {"root": wire.message(root), "replies": [wire.message(m) for m in replies]}


@router.get("/messages/{message_id}/reactions", response_model=s.ReactionList)
async def list_reactions(message_id: str, ctx: Ctx, actor: Actor) -> dict[str, Any]:
    found = await messages.reactions(ctx, actor, message_id)
    return {"reactions": [wire.reaction(r) for r in found]}


@router.put("/messages/{message_id}/reactions/{emoji}", response_model=s.ReactionList)
async def add_reaction(message_id: str, emoji: Emoji, ctx: Ctx, actor: Actor) -> dict[str, Any]:
    """React; reacting twice with the same emoji changes nothing."""
    found = await messages.react(ctx, actor, message_id, emoji, add=True)
    return {"reactions": [wire.reaction(r) for r in found]}


@router.delete("/messages/{message_id}/reactions/{emoji}", response_model=s.ReactionList)
async def remove_reaction(message_id: str, emoji: Emoji, ctx: Ctx, actor: Actor) -> dict[str, Any]:
    found = await messages.react(ctx, actor, message_id, emoji, add=False)
    return {"reactions": [wire.reaction(r) for r in found]}
