"""Messages that travel on the bus between nodes: committed events and ephemeral signals."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from enclave.domain.events import Event
from enclave.domain.ids import ConversationId, OrgId, UserId


class PresenceStatus(StrEnum):
    ONLINE = "online"
    AWAY = "away"
    OFFLINE = "offline"


@dataclass(frozen=True, slots=True)
class Committed:
    """Events that a transaction has committed, in seq order per conversation."""

    events: tuple[Event, ...]


@dataclass(frozen=True, slots=True)
class Typing:
    """Someone is typing in a conversation (never stored)."""

    conversation_id: ConversationId
    user_id: UserId
    thread_root_id: str | None


@dataclass(frozen=True, slots=True)
class PresenceChanged:
    """A person's aggregate presence over all their devices changed (never stored)."""

    org_id: OrgId
    user_id: UserId
    status: PresenceStatus


@dataclass(frozen=True, slots=True)
class SessionsRevoked:
    """Close live connections of a user: those of one session (`token_hash`), or all of them
    but those of the session `keep`."""

    user_id: UserId
    token_hash: bytes | None
    keep: bytes | None = None


@dataclass(frozen=True, slots=True)
class AccessChanged:
    """What people may do changed outside any conversation's event log (an org role, a
    department, new terms of use, a new MFA requirement): every node re-reads the account and
    session state of their live connections, those of `user_id`, or of everyone in `org_id`
    when `user_id` is None. Published after the change committed."""

    org_id: OrgId
    user_id: UserId | None = None


Signal = Committed | Typing | PresenceChanged | SessionsRevoked | AccessChanged
