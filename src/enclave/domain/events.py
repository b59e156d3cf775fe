"""Stored conversation events. Each one takes the conversation's next `seq` in the transaction
that causes it, so a cursor of (conversation, seq) can never skip one (see docs/architecture.md).

Every event type has one frozen payload class below: its fields are the event's `data` as
docs/protocol.md documents it (a section per type), its `TYPE` names the event type, and
`to_json` / `from_json` turn it into that JSON object and back. The JSON is what the events
table stores (sealed), what the bus carries between nodes and what clients receive, so a field
is renamed only together with a migration of the stored rows. Fields marked `_OMIT` are left out
of the JSON while they hold their default (`thread` of a top-level message, `erased` of a
recall that was not an erasure), exactly as the services wrote them before payloads were typed.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Self, Union

from enclave.domain.ids import ConversationId, MessageId, UserId
from enclave.domain.models import (
    Conversation,
    ConversationKind,
    MemberRole,
    Message,
    ReactionSummary,
    Visibility,
)

__all__ = [
    "PAYLOADS",
    "ConversationArchived",
    "ConversationCreated",
    "ConversationSnapshot",
    "ConversationUnarchived",
    "ConversationUpdated",
    "Event",
    "EventType",
    "MemberJoined",
    "MemberLeft",
    "MemberRoleChanged",
    "MessageCreated",
    "MessageEdited",
    "MessageRecalled",
    "MessageSnapshot",
    "MessagesPurged",
    "Payload",
    "ReactionAdded",
    "ReactionRemoved",
    "ReactionSnapshot",
    "ReadMoved",
    "ThreadSnapshot",
    "payload_from_json",
]


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


_OMIT = {"omit_default": True}
"""Field metadata: leave the field out of the JSON while it holds its default."""


class _Json:
    """A frozen dataclass that is one JSON object: a key per field, in field order; nested
    records, tuples (as arrays), enums (as their value) and ids (as strings) inside."""

    __slots__ = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in _plan(type(self)):
            value = getattr(self, f.name)
            if f.omit and value == f.default:
                continue
            out[f.name] = value if f.encode is None else f.encode(value)
        return out

    @classmethod
    def from_json(cls, data: object) -> Self:
        """The record `to_json` wrote; ValueError for anything else (a missing or unknown key,
        a value of the wrong kind)."""
        if type(data) is not dict:
            raise ValueError(f"{cls.__name__}: expected an object, got {type(data).__name__}")
        values: dict[str, Any] = {}
        for f in _plan(cls):
            if f.name in data:
                try:
                    values[f.name] = f.decode(data[f.name])
                except ValueError as exc:
                    raise ValueError(f"{cls.__name__}.{f.name}: {exc}") from None
            elif f.required:
                raise ValueError(f"{cls.__name__}: missing key {f.name!r}")
        if len(values) != len(data):
            unknown = sorted(set(data) - set(values))
            raise ValueError(f"{cls.__name__}: unknown keys {unknown}")
        return cls(**values)


# -- each record class's field converters, worked out once from its type hints ----------------

_Encoder = Callable[[Any], Any]
_Decoder = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    encode: _Encoder | None
    """None: the value is JSON as it is."""
    decode: _Decoder
    omit: bool
    default: Any
    required: bool


_PLANS: dict[type[Any], tuple[_Field, ...]] = {}


def _plan(cls: type[Any]) -> tuple[_Field, ...]:
    found = _PLANS.get(cls)
    if found is None:
        hints = typing.get_type_hints(cls)
        found = _PLANS[cls] = tuple(
            _Field(
                name=f.name,
                encode=_encoder(hints[f.name]),
                decode=_decoder(hints[f.name]),
                omit=bool(f.metadata.get("omit_default")),
                default=f.default,
                required=f.default is dataclasses.MISSING,
            )
            for f in dataclasses.fields(cls)
        )
    return found


def _optional(hint: Any) -> Any | None:
    """X of `X | None`; None for any other hint."""
    if typing.get_origin(hint) in (Union, types.UnionType):
        args = typing.get_args(hint)
        if type(None) in args:
            (inner,) = [a for a in args if a is not type(None)]
            return inner
    return None


def _encoder(hint: Any) -> _Encoder | None:
    supertype = getattr(hint, "__supertype__", None)
    if supertype is not None:  # a NewType such as UserId
        return _encoder(supertype)
    inner = _optional(hint)
    if inner is not None:
        encode = _encoder(inner)
        return None if encode is None else (lambda v: None if v is None else encode(v))
    if typing.get_origin(hint) is tuple:
        item = _encoder(typing.get_args(hint)[0])
        return list if item is None else (lambda v: [item(x) for x in v])
    if isinstance(hint, type) and issubclass(hint, _Json):
        return hint.to_json
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return lambda v: v.value
    if hint in (int, str, bool):
        return None
    raise TypeError(f"an event field cannot be of type {hint!r}")


def _decoder(hint: Any) -> _Decoder:
    supertype = getattr(hint, "__supertype__", None)
    if supertype is not None:  # a NewType is its supertype at run time
        return _decoder(supertype)
    inner = _optional(hint)
    if inner is not None:
        decode = _decoder(inner)
        return lambda v: None if v is None else decode(v)
    if typing.get_origin(hint) is tuple:
        item = _decoder(typing.get_args(hint)[0])

        def array(v: Any) -> tuple[Any, ...]:
            if type(v) is not list:
                raise ValueError("expected an array")
            return tuple(item(x) for x in v)

        return array
    if isinstance(hint, type) and issubclass(hint, _Json):
        return hint.from_json
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint  # ValueError for a value it does not have
    if hint in (int, str, bool):
        kind: type[Any] = hint

        def primitive(v: Any) -> Any:
            if type(v) is not kind:  # a bool is not an int here
                raise ValueError(f"expected {kind.__name__}, got {type(v).__name__}")
            return v

        return primitive
    raise TypeError(f"an event field cannot be of type {hint!r}")


# -- records inside payloads ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReactionSnapshot(_Json):
    emoji: str
    count: int
    user_ids: tuple[UserId, ...]

    @classmethod
    def of(cls, r: ReactionSummary) -> ReactionSnapshot:
        return cls(r.emoji, r.count, r.user_ids)


@dataclass(frozen=True, slots=True)
class MessageSnapshot(_Json):
    """A message as it was when the event happened; the same keys as `wire.message`. It keeps
    `recalled` apart from `recalled_at`: erasure scrubs stored events to `text: null,
    recalled: true` without a time."""

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
    reactions: tuple[ReactionSnapshot, ...]

    @classmethod
    def of(cls, m: Message) -> MessageSnapshot:
        return cls(
            id=m.id,
            conversation_id=m.conversation_id,
            seq=m.seq,
            sender_id=m.sender_id,
            client_msg_id=m.client_msg_id,
            text=m.text,
            thread_root_id=m.thread_root_id,
            created_at=m.created_at,
            edited_at=m.edited_at,
            recalled=m.recalled_at is not None,
            recalled_at=m.recalled_at,
            reply_count=m.reply_count,
            last_reply_at=m.last_reply_at,
            mentions=m.mentions,
            reactions=tuple(ReactionSnapshot.of(r) for r in m.reactions),
        )


@dataclass(frozen=True, slots=True)
class ThreadSnapshot(_Json):
    """The thread a reply went to, as it is after the reply."""

    root_id: MessageId
    reply_count: int
    last_reply_at: int


@dataclass(frozen=True, slots=True)
class ConversationSnapshot(_Json):
    """A conversation as it was when the event happened; the same keys as
    `wire.conversation`."""

    id: ConversationId
    kind: ConversationKind
    name: str | None
    topic: str
    visibility: Visibility
    archived: bool
    created_by: UserId
    created_at: int
    last_seq: int
    announcement: bool = False
    """Absent from rows stored before announcement channels existed (read as False)."""

    @classmethod
    def of(cls, c: Conversation) -> ConversationSnapshot:
        return cls(
            id=c.id,
            kind=c.kind,
            name=c.name,
            topic=c.topic,
            visibility=c.visibility,
            archived=c.archived,
            created_by=c.created_by,
            created_at=c.created_at,
            last_seq=c.last_seq,
            announcement=c.announcement,
        )


# -- one payload class per event type ---------------------------------------------------------


class Payload(_Json):
    """The `data` of one event type; the subclass names the type."""

    __slots__ = ()
    TYPE: ClassVar[EventType]


@dataclass(frozen=True, slots=True)
class MessageCreated(Payload):
    TYPE: ClassVar[EventType] = EventType.MESSAGE_CREATED
    message: MessageSnapshot
    thread: ThreadSnapshot | None = field(default=None, metadata=_OMIT)
    """Set on a reply: its thread's root and counts after it."""


@dataclass(frozen=True, slots=True)
class MessageEdited(Payload):
    TYPE: ClassVar[EventType] = EventType.MESSAGE_EDITED
    message: MessageSnapshot


@dataclass(frozen=True, slots=True)
class MessageRecalled(Payload):
    TYPE: ClassVar[EventType] = EventType.MESSAGE_RECALLED
    message_id: MessageId
    recalled_at: int
    erased: bool = field(default=False, metadata=_OMIT)
    """True when the sender's erasure removed the text (GDPR Art. 17), not a recall."""


@dataclass(frozen=True, slots=True)
class ReactionAdded(Payload):
    TYPE: ClassVar[EventType] = EventType.REACTION_ADDED
    message_id: MessageId
    user_id: UserId
    emoji: str


@dataclass(frozen=True, slots=True)
class ReactionRemoved(Payload):
    TYPE: ClassVar[EventType] = EventType.REACTION_REMOVED
    message_id: MessageId
    user_id: UserId
    emoji: str


@dataclass(frozen=True, slots=True)
class MemberJoined(Payload):
    TYPE: ClassVar[EventType] = EventType.MEMBER_JOINED
    user_id: UserId
    role: MemberRole


@dataclass(frozen=True, slots=True)
class MemberLeft(Payload):
    """Left or removed (the event's actor tells which)."""

    TYPE: ClassVar[EventType] = EventType.MEMBER_LEFT
    user_id: UserId


@dataclass(frozen=True, slots=True)
class MemberRoleChanged(Payload):
    TYPE: ClassVar[EventType] = EventType.MEMBER_ROLE_CHANGED
    user_id: UserId
    role: MemberRole


@dataclass(frozen=True, slots=True)
class ConversationCreated(Payload):
    TYPE: ClassVar[EventType] = EventType.CONVERSATION_CREATED
    conversation: ConversationSnapshot
    member_ids: tuple[UserId, ...]


@dataclass(frozen=True, slots=True)
class ConversationUpdated(Payload):
    TYPE: ClassVar[EventType] = EventType.CONVERSATION_UPDATED
    conversation: ConversationSnapshot


@dataclass(frozen=True, slots=True)
class ConversationArchived(Payload):
    TYPE: ClassVar[EventType] = EventType.CONVERSATION_ARCHIVED
    conversation_id: ConversationId


@dataclass(frozen=True, slots=True)
class ConversationUnarchived(Payload):
    TYPE: ClassVar[EventType] = EventType.CONVERSATION_UNARCHIVED
    conversation_id: ConversationId


@dataclass(frozen=True, slots=True)
class ReadMoved(Payload):
    TYPE: ClassVar[EventType] = EventType.READ_MARKER_MOVED
    user_id: UserId
    seq: int


@dataclass(frozen=True, slots=True)
class MessagesPurged(Payload):
    """Retention removed these messages (and hid the replies it keeps under legal hold);
    events up to `up_to_seq` are no longer replayed."""

    TYPE: ClassVar[EventType] = EventType.MESSAGES_PURGED
    message_ids: tuple[MessageId, ...]
    up_to_seq: int


PAYLOADS: dict[EventType, type[Payload]] = {
    cls.TYPE: cls
    for cls in (
        MessageCreated,
        MessageEdited,
        MessageRecalled,
        ReactionAdded,
        ReactionRemoved,
        MemberJoined,
        MemberLeft,
        MemberRoleChanged,
        ConversationCreated,
        ConversationUpdated,
        ConversationArchived,
        ConversationUnarchived,
        ReadMoved,
        MessagesPurged,
    )
}
"""The payload class of every event type (tests/domain/test_events.py checks it is complete)."""


def payload_from_json(type_: EventType, data: object) -> Payload:
    """The payload of an event of `type_` whose JSON `data` was stored or sent; ValueError when
    it is not one."""
    return PAYLOADS[type_].from_json(data)


@dataclass(frozen=True, slots=True)
class Event:
    conversation_id: ConversationId
    seq: int
    actor_id: UserId
    created_at: int
    payload: Payload
    _data: dict[str, Any] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def type(self) -> EventType:
        return self.payload.TYPE

    @property
    def data(self) -> dict[str, Any]:
        """The payload as JSON: stored, carried between nodes and sent to clients (computed
        once; treat it as read-only)."""
        if self._data is None:
            object.__setattr__(self, "_data", self.payload.to_json())
        assert self._data is not None
        return self._data
