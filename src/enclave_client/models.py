"""Typed, immutable results parsed from the server's JSON.

Times are Unix milliseconds, as on the wire. Parsing checks every field's type; a response
that does not match the contract raises `ProtocolError` instead of yielding a half-typed
object. Unknown extra fields are ignored, so a newer server stays readable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, NewType, TypeVar, get_args

from enclave_client.errors import ProtocolError

UserId = NewType("UserId", str)
ConversationId = NewType("ConversationId", str)
MessageId = NewType("MessageId", str)

UserRole = Literal["owner", "admin", "compliance_officer", "department_admin", "member", "guest"]
MemberRole = Literal["owner", "moderator", "member", "reader"]
ConversationKind = Literal["dm", "group", "channel"]
Visibility = Literal["public", "private"]

_L = TypeVar("_L", bound=str)
_T = TypeVar("_T")

_USER_ROLES: dict[str, UserRole] = {v: v for v in get_args(UserRole)}
_MEMBER_ROLES: dict[str, MemberRole] = {v: v for v in get_args(MemberRole)}
_KINDS: dict[str, ConversationKind] = {v: v for v in get_args(ConversationKind)}
_VISIBILITIES: dict[str, Visibility] = {v: v for v in get_args(Visibility)}


class _Fields:
    """Typed access to one JSON object; any mismatch raises ProtocolError naming the field."""

    def __init__(self, data: object, what: str) -> None:
        if not isinstance(data, dict):
            raise ProtocolError(f"{what} is not a JSON object")
        self._data: dict[str, object] = data
        self._what = what

    def value(self, key: str) -> object:
        """The raw value under `key`, which must be present."""
        if key not in self._data:
            raise ProtocolError(f"{self._what}.{key} is missing")
        return self._data[key]

    def _bad(self, key: str, expected: str) -> ProtocolError:
        return ProtocolError(f"{self._what}.{key} is not {expected}")

    def string(self, key: str) -> str:
        value = self.value(key)
        if not isinstance(value, str):
            raise self._bad(key, "a string")
        return value

    def opt_string(self, key: str) -> str | None:
        return None if self.value(key) is None else self.string(key)

    def integer(self, key: str) -> int:
        value = self.value(key)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self._bad(key, "an integer")
        return value

    def opt_integer(self, key: str) -> int | None:
        return None if self.value(key) is None else self.integer(key)

    def boolean(self, key: str) -> bool:
        value = self.value(key)
        if not isinstance(value, bool):
            raise self._bad(key, "a boolean")
        return value

    def choice(self, key: str, allowed: Mapping[str, _L]) -> _L:
        value = self.value(key)
        if not isinstance(value, str) or value not in allowed:
            raise self._bad(key, f"one of {sorted(allowed)}")
        return allowed[value]

    def opt_choice(self, key: str, allowed: Mapping[str, _L]) -> _L | None:
        return None if self.value(key) is None else self.choice(key, allowed)

    def items(self, key: str) -> list[object]:
        value = self.value(key)
        if not isinstance(value, list):
            raise self._bad(key, "a list")
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        values = self.items(key)
        if not all(isinstance(v, str) for v in values):
            raise self._bad(key, "a list of strings")
        return tuple(str(v) for v in values)


def parse_list(data: object, key: str, parse: Callable[[object], _T]) -> list[_T]:
    """The records under `key` of a list response such as `{"users": [...]}`."""
    return [parse(item) for item in _Fields(data, "response").items(key)]


@dataclass(frozen=True, slots=True)
class User:
    """An account of the organization."""

    id: UserId
    username: str
    display_name: str
    role: UserRole
    is_active: bool
    must_change_password: bool
    created_at: int

    @classmethod
    def from_json(cls, data: object) -> User:
        f = _Fields(data, "user")
        return cls(
            id=UserId(f.string("id")),
            username=f.string("username"),
            display_name=f.string("display_name"),
            role=f.choice("role", _USER_ROLES),
            is_active=f.boolean("is_active"),
            must_change_password=f.boolean("must_change_password"),
            created_at=f.integer("created_at"),
        )


@dataclass(frozen=True, slots=True)
class Reaction:
    """One emoji on a message, with who reacted."""

    emoji: str
    count: int
    user_ids: tuple[UserId, ...]

    @classmethod
    def from_json(cls, data: object) -> Reaction:
        f = _Fields(data, "reaction")
        return cls(
            emoji=f.string("emoji"),
            count=f.integer("count"),
            user_ids=tuple(UserId(u) for u in f.strings("user_ids")),
        )


@dataclass(frozen=True, slots=True)
class Message:
    """A message; `text` is None once it is recalled. `seq` orders a conversation's history."""

    id: MessageId
    conversation_id: ConversationId
    seq: int
    sender_id: UserId
    client_msg_id: str
    text: str | None
    thread_root_id: MessageId | None
    created_at: int
    edited_at: int | None
    recalled: bool
    recalled_at: int | None
    reply_count: int
    last_reply_at: int | None
    mentions: tuple[UserId, ...]
    reactions: tuple[Reaction, ...]

    @classmethod
    def from_json(cls, data: object) -> Message:
        f = _Fields(data, "message")
        root = f.opt_string("thread_root_id")
        return cls(
            id=MessageId(f.string("id")),
            conversation_id=ConversationId(f.string("conversation_id")),
            seq=f.integer("seq"),
            sender_id=UserId(f.string("sender_id")),
            client_msg_id=f.string("client_msg_id"),
            text=f.opt_string("text"),
            thread_root_id=MessageId(root) if root is not None else None,
            created_at=f.integer("created_at"),
            edited_at=f.opt_integer("edited_at"),
            recalled=f.boolean("recalled"),
            recalled_at=f.opt_integer("recalled_at"),
            reply_count=f.integer("reply_count"),
            last_reply_at=f.opt_integer("last_reply_at"),
            mentions=tuple(UserId(u) for u in f.strings("mentions")),
            reactions=tuple(Reaction.from_json(r) for r in f.items("reactions")),
        )


@dataclass(frozen=True, slots=True)
class SentMessage:
    """The result of `send_message`.

    `created` is False when the server already had a message with this `client_msg_id` from
    an earlier call, so nothing new was stored. When the SDK generated the id, only this call
    can have used it, so a retry after a lost response still reports True.
    """

    message: Message
    created: bool


@dataclass(frozen=True, slots=True)
class Conversation:
    """A DM, group or channel as the caller sees it, with the caller's unread counts."""

    id: ConversationId
    kind: ConversationKind
    name: str | None
    topic: str
    visibility: Visibility
    archived: bool
    created_by: UserId
    created_at: int
    last_seq: int
    my_role: MemberRole | None
    last_read_seq: int
    unread_count: int
    mention_count: int
    last_message: Message | None
    dm_peer_id: UserId | None

    @classmethod
    def from_json(cls, data: object) -> Conversation:
        f = _Fields(data, "conversation")
        last = f.value("last_message")
        peer = f.opt_string("dm_peer_id")
        return cls(
            id=ConversationId(f.string("id")),
            kind=f.choice("kind", _KINDS),
            name=f.opt_string("name"),
            topic=f.string("topic"),
            visibility=f.choice("visibility", _VISIBILITIES),
            archived=f.boolean("archived"),
            created_by=UserId(f.string("created_by")),
            created_at=f.integer("created_at"),
            last_seq=f.integer("last_seq"),
            my_role=f.opt_choice("my_role", _MEMBER_ROLES),
            last_read_seq=f.integer("last_read_seq"),
            unread_count=f.integer("unread_count"),
            mention_count=f.integer("mention_count"),
            last_message=Message.from_json(last) if last is not None else None,
            dm_peer_id=UserId(peer) if peer is not None else None,
        )


@dataclass(frozen=True, slots=True)
class Channel:
    """A public channel found by `browse_channels`; `joined` tells whether you are in it."""

    id: ConversationId
    name: str | None
    topic: str
    created_at: int
    joined: bool

    @classmethod
    def from_json(cls, data: object) -> Channel:
        f = _Fields(data, "channel")
        return cls(
            id=ConversationId(f.string("id")),
            name=f.opt_string("name"),
            topic=f.string("topic"),
            created_at=f.integer("created_at"),
            joined=f.boolean("joined"),
        )


@dataclass(frozen=True, slots=True)
class Member:
    """A member of a conversation with its role and read marker."""

    user_id: UserId
    role: MemberRole
    joined_at: int
    last_read_seq: int

    @classmethod
    def from_json(cls, data: object) -> Member:
        f = _Fields(data, "member")
        return cls(
            user_id=UserId(f.string("user_id")),
            role=f.choice("role", _MEMBER_ROLES),
            joined_at=f.integer("joined_at"),
            last_read_seq=f.integer("last_read_seq"),
        )


@dataclass(frozen=True, slots=True)
class MessageVersion:
    """An earlier text of an edited message."""

    version: int
    text: str
    created_at: int

    @classmethod
    def from_json(cls, data: object) -> MessageVersion:
        f = _Fields(data, "version")
        return cls(
            version=f.integer("version"),
            text=f.string("text"),
            created_at=f.integer("created_at"),
        )


@dataclass(frozen=True, slots=True)
class Terms:
    """The organization's current terms of use (`version` None: none published) and whether
    you accepted them. Until you do, the server refuses everything else."""

    version: str | None
    text: str | None
    published_at: int | None
    accepted: bool
    accepted_at: int | None

    @classmethod
    def from_json(cls, data: object) -> Terms:
        f = _Fields(data, "terms")
        return cls(
            version=f.opt_string("version"),
            text=f.opt_string("text"),
            published_at=f.opt_integer("published_at"),
            accepted=f.boolean("accepted"),
            accepted_at=f.opt_integer("accepted_at"),
        )


@dataclass(frozen=True, slots=True)
class Thread:
    """A thread's root message and a page of its replies in ascending `seq`."""

    root: Message
    replies: tuple[Message, ...]

    @classmethod
    def from_json(cls, data: object) -> Thread:
        f = _Fields(data, "thread")
        return cls(
            root=Message.from_json(f.value("root")),
            replies=tuple(Message.from_json(m) for m in f.items("replies")),
        )
