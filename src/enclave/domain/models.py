"""Domain records shared by services, storage and transport. Times are Unix milliseconds."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from enclave.domain.ids import ConversationId, DepartmentId, MessageId, OrgId, UserId


class OrgRole(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    COMPLIANCE_OFFICER = "compliance_officer"
    DEPARTMENT_ADMIN = "department_admin"
    MEMBER = "member"
    GUEST = "guest"


class ConversationKind(StrEnum):
    DM = "dm"
    GROUP = "group"
    CHANNEL = "channel"


class Visibility(StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"


class MemberRole(StrEnum):
    OWNER = "owner"
    MODERATOR = "moderator"
    MEMBER = "member"
    READER = "reader"
    """A read-only member: reads, marks read and leaves, but does not post or react."""


@dataclass(frozen=True, slots=True)
class Org:
    id: OrgId
    name: str
    created_at: int


@dataclass(frozen=True, slots=True)
class User:
    id: UserId
    org_id: OrgId
    username: str
    display_name: str
    role: OrgRole
    is_active: bool
    must_change_password: bool
    created_at: int
    department_id: DepartmentId | None = None
    """The one department the person belongs to, if any."""


@dataclass(frozen=True, slots=True)
class Department:
    """A node of an organization's department tree (names are unique among siblings)."""

    id: DepartmentId
    org_id: OrgId
    parent_id: DepartmentId | None
    name: str
    created_at: int


@dataclass(frozen=True, slots=True)
class Session:
    token_hash: bytes
    user_id: UserId
    created_at: int
    last_used_at: int
    expires_at: int
    user_agent: str = ""
    last_ip: str | None = None
    """The client address of the last use (recorded at most once a minute, or on a change)."""


@dataclass(frozen=True, slots=True)
class OrgSettings:
    """Organization-wide security settings that admins change at run time."""

    org_id: OrgId
    require_mfa: bool = False
    updated_at: int = 0
    erasure_mode: str = "pseudonymize"
    """What erasing a person does to their messages: `pseudonymize` (kept, attributed to the
    pseudonym) or `delete` (text removed, rows kept as tombstones)."""


@dataclass(frozen=True, slots=True)
class Conversation:
    id: ConversationId
    org_id: OrgId
    kind: ConversationKind
    name: str | None
    topic: str
    visibility: Visibility
    archived: bool
    created_by: UserId
    created_at: int
    last_seq: int
    announcement: bool = False
    """An announcement channel: only its owners and moderators post; others read and react."""


@dataclass(frozen=True, slots=True)
class Member:
    conversation_id: ConversationId
    user_id: UserId
    role: MemberRole
    joined_at: int
    last_read_seq: int


@dataclass(frozen=True, slots=True)
class ReactionSummary:
    emoji: str
    count: int
    user_ids: tuple[UserId, ...]


@dataclass(frozen=True, slots=True)
class Message:
    id: MessageId
    conversation_id: ConversationId
    seq: int
    sender_id: UserId
    client_msg_id: str
    text: str | None
    """None once recalled."""
    thread_root_id: MessageId | None
    created_at: int
    edited_at: int | None
    recalled_at: int | None
    reply_count: int
    last_reply_at: int | None
    mentions: tuple[UserId, ...] = ()
    reactions: tuple[ReactionSummary, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class MessageVersion:
    message_id: MessageId
    version: int
    text: str
    created_at: int


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    """A conversation as its member sees it in the list."""

    conversation: Conversation
    my_role: MemberRole | None
    last_read_seq: int
    unread_count: int
    mention_count: int
    last_message: Message | None
    dm_peer_id: UserId | None


@dataclass(frozen=True, slots=True)
class Reaction:
    message_id: MessageId
    user_id: UserId
    emoji: str
    created_at: int


@dataclass(frozen=True, slots=True)
class Hold:
    """A legal hold on a person or a conversation (`enclave.storage.holds` says what it
    preserves); active while `released_at` is None."""

    id: str
    org_id: str
    kind: str
    """`person` or `conversation`."""
    target_id: str
    reason: str
    created_by: str | None
    created_at: int
    released_by: str | None
    released_at: int | None
    release_reason: str | None

    @property
    def active(self) -> bool:
        return self.released_at is None
