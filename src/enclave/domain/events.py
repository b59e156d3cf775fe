"""Stored conversation events. Each one takes the conversation's next `seq` in the transaction
that causes it, so a cursor of (conversation, seq) can never skip one (see docs/architecture.md)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from enclave.domain.ids import ConversationId, UserId


class EventType(StrEnum):
    MESSAGE_CREATED = "message.created"
    MESSAGE_EDITED = "message.edited"
    MESSAGE_RECALLED = "message.recalled"
    REACTION_ADDED = "reaction.added"
    REACTION_REMOVED = "reaction.removed"
    MEMBER_JOINED = "member.joined"
    MEMBER_LEFT = "member.left"
    MEMBER_ROLE_CHANGED = "member.role_changed"
    CONVERSATION_CREATED = "conversation.created"
    CONVERSATION_UPDATED = "conversation.updated"
    CONVERSATION_ARCHIVED = "conversation.archived"
    CONVERSATION_UNARCHIVED = "conversation.unarchived"
    READ_MARKER_MOVED = "read.moved"
    MESSAGES_PURGED = "messages.purged"


@dataclass(frozen=True, slots=True)
class Event:
    conversation_id: ConversationId
    seq: int
    type: EventType
    actor_id: UserId
    created_at: int
    data: dict[str, Any]
    """JSON-ready body; its shape per type is in docs/protocol.md."""
