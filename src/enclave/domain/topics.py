"""Where a signal goes between nodes: its topics.

A node follows only the topics its live connections need: the conversations they are
subscribed to, the people connected to it, the people whose presence they watch and the
organizations they belong to. A signal is sent to every topic it concerns, so it reaches each
node that needs it and no other. A signal type not named here goes to every node (`EVERYONE`):
a new kind of signal is carried correctly before anyone thinks of routing it.
"""

from __future__ import annotations

from typing import NewType

from enclave.domain.events import Event, EventType
from enclave.domain.ids import ConversationId, OrgId, UserId
from enclave.domain.signals import (
    AccessChanged,
    Committed,
    PresenceChanged,
    SessionsRevoked,
    Signal,
    Typing,
)

__all__ = [
    "EVERYONE",
    "Topic",
    "conversation_topic",
    "org_topic",
    "presence_topic",
    "split_committed",
    "topics_of",
    "user_topic",
]

Topic = NewType("Topic", str)

EVERYONE = Topic("all")
"""Followed by every node, always."""


def conversation_topic(conv_id: ConversationId) -> Topic:
    """Events and typing of one conversation: followed by nodes with a subscribed connection."""
    return Topic(f"c:{conv_id}")


def user_topic(user_id: UserId) -> Topic:
    """What concerns one person's connections (joining a conversation, revoked sessions,
    access changes): followed by nodes where that person is connected."""
    return Topic(f"u:{user_id}")


def presence_topic(user_id: UserId) -> Topic:
    """One person's presence: followed by nodes with a connection watching it."""
    return Topic(f"p:{user_id}")


def org_topic(org_id: OrgId) -> Topic:
    """Organization-wide changes: followed by nodes with a connection of that organization."""
    return Topic(f"o:{org_id}")


def _joined(event: Event) -> list[UserId]:
    """People whose connections start following the conversation with this event."""
    if event.type is EventType.MEMBER_JOINED:
        return [UserId(str(event.data.get("user_id", "")))]
    if event.type is EventType.CONVERSATION_CREATED:
        return [UserId(str(uid)) for uid in event.data.get("member_ids", [])]
    return []


def split_committed(signal: Committed) -> list[Committed]:
    """One `Committed` per conversation, its events kept in order (each goes to its own topic)."""
    parts: dict[ConversationId, list[Event]] = {}
    for event in signal.events:
        parts.setdefault(event.conversation_id, []).append(event)
    if len(parts) == 1:
        return [signal]
    return [Committed(tuple(events)) for events in parts.values()]


def topics_of(signal: Signal) -> list[Topic]:
    """The topics `signal` is sent to. A `Committed` must hold one conversation's events
    (`split_committed`); those whose people join it go to those people's topics too, because
    their nodes may not follow the conversation yet."""
    match signal:
        case Committed(events=events):
            topics = dict.fromkeys(conversation_topic(e.conversation_id) for e in events)
            for event in events:
                topics.update(dict.fromkeys(user_topic(uid) for uid in _joined(event)))
            return list(topics)
        case Typing():
            return [conversation_topic(signal.conversation_id)]
        case PresenceChanged():
            return [presence_topic(signal.user_id)]
        case SessionsRevoked():
            return [user_topic(signal.user_id)]
        case AccessChanged():
            if signal.user_id is not None:
                return [user_topic(signal.user_id)]
            return [org_topic(signal.org_id)]
        case _:
            return [EVERYONE]
