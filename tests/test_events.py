"""Every event type has one payload class that round-trips through JSON (and through the stored
event log), a section in docs/protocol.md that names its fields, and a case in the web client's
event handler. Each checker also runs over planted mistakes, to show it catches them."""

from __future__ import annotations

import dataclasses
import enum
import re
import types
import typing
from pathlib import Path
from typing import Any, Union

import pytest
from hypothesis import given
from hypothesis import strategies as st

from enclave import codec
from enclave.domain import wire
from enclave.domain.events import (
    PAYLOADS,
    ConversationCreated,
    ConversationSnapshot,
    EventType,
    MessageSnapshot,
    Payload,
    payload_from_json,
)
from enclave.domain.ids import ConversationId, MessageId, OrgId, UserId
from enclave.domain.models import (
    Conversation,
    ConversationKind,
    Message,
    ReactionSummary,
    Visibility,
)
from enclave.services.context import Changes, Context, write
from enclave.storage import messages as msg_store
from tests.storage.test_contract import make_conversation

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL = ROOT / "docs" / "protocol.md"
SYNC_JS = ROOT / "src" / "enclave" / "web" / "static" / "app" / "sync.js"
HANDLER = "applyEvent"
"""The web client's function that applies a stored event (every type is a `case` of it)."""


# -- strategies: any value of a payload class, from its type hints ----------------------------


def values(hint: Any) -> st.SearchStrategy[Any]:
    supertype = getattr(hint, "__supertype__", None)
    if supertype is not None:
        return values(supertype).map(hint)
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return st.none() | values(inner)
    if origin is tuple:
        return st.lists(values(typing.get_args(hint)[0]), max_size=3).map(tuple)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint)
        fields = {f.name: values(hints[f.name]) for f in dataclasses.fields(hint)}
        return st.builds(hint, **fields)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return st.sampled_from(list(hint))
    if hint is bool:
        return st.booleans()
    if hint is int:
        return st.integers(-(2**53), 2**53)
    assert hint is str, hint
    return st.text(st.characters(codec="utf-8"), max_size=12)


@given(st.sampled_from(list(PAYLOADS.values())).flatmap(values))
def test_every_payload_round_trips_through_json(payload: Payload) -> None:
    text = codec.dumps_text(payload.to_json())
    back = payload_from_json(payload.TYPE, codec.loads(text))
    assert back == payload
    assert codec.dumps_text(back.to_json()) == text  # the same bytes again


def test_every_event_type_has_one_payload_class() -> None:
    assert set(PAYLOADS) == set(EventType)
    for type_, cls in PAYLOADS.items():
        assert cls.TYPE is type_
        assert dataclasses.is_dataclass(cls)
        assert cls.__dataclass_params__.frozen


# What the services stored before payloads were typed, byte for byte: rows in today's databases.
STORED: list[tuple[EventType, str]] = [
    (
        EventType.MESSAGE_CREATED,
        '{"message":{"id":"m1","conversation_id":"c1","seq":7,"sender_id":"u1",'
        '"client_msg_id":"k1","text":"hi","thread_root_id":"m0","created_at":5,'
        '"edited_at":null,"recalled":false,"recalled_at":null,"reply_count":0,'
        '"last_reply_at":null,"mentions":["u2"],"reactions":[]},'
        '"thread":{"root_id":"m0","reply_count":3,"last_reply_at":5}}',
    ),
    (  # scrubbed by erasure: recalled without a time
        EventType.MESSAGE_EDITED,
        '{"message":{"id":"m1","conversation_id":"c1","seq":7,"sender_id":"u1",'
        '"client_msg_id":"k1","text":null,"thread_root_id":null,"created_at":5,'
        '"edited_at":6,"recalled":true,"recalled_at":null,"reply_count":2,'
        '"last_reply_at":9,"mentions":[],'
        '"reactions":[{"emoji":"👍","count":2,"user_ids":["u1","u2"]}]}}',
    ),
    (EventType.MESSAGE_RECALLED, '{"message_id":"m1","recalled_at":8}'),
    (EventType.MESSAGE_RECALLED, '{"message_id":"m1","recalled_at":8,"erased":true}'),
    (EventType.REACTION_ADDED, '{"message_id":"m1","user_id":"u1","emoji":"🎉"}'),
    (EventType.REACTION_REMOVED, '{"message_id":"m1","user_id":"u1","emoji":"🎉"}'),
    (EventType.MEMBER_JOINED, '{"user_id":"u1","role":"member"}'),
    (EventType.MEMBER_LEFT, '{"user_id":"u1"}'),
    (EventType.MEMBER_ROLE_CHANGED, '{"user_id":"u1","role":"moderator"}'),
    (
        EventType.CONVERSATION_CREATED,
        '{"conversation":{"id":"c1","kind":"channel","name":"general","topic":"",'
        '"visibility":"public","archived":false,"created_by":"u1","created_at":1,'
        '"last_seq":0,"announcement":false},"member_ids":["u1","u2"]}',
    ),
    (
        EventType.CONVERSATION_UPDATED,
        '{"conversation":{"id":"c1","kind":"dm","name":null,"topic":"t",'
        '"visibility":"private","archived":true,"created_by":"u1","created_at":1,'
        '"last_seq":4,"announcement":true}}',
    ),
    (EventType.CONVERSATION_ARCHIVED, '{"conversation_id":"c1"}'),
    (EventType.CONVERSATION_UNARCHIVED, '{"conversation_id":"c1"}'),
    (EventType.READ_MARKER_MOVED, '{"user_id":"u1","seq":12}'),
    (EventType.MESSAGES_PURGED, '{"message_ids":["m1","m2"],"up_to_seq":40}'),
]


def test_stored_rows_of_every_type_are_read_back_byte_for_byte() -> None:
    assert {t for t, _ in STORED} == set(EventType)
    for type_, text in STORED:
        assert codec.dumps_text(payload_from_json(type_, codec.loads(text)).to_json()) == text


def test_rows_stored_before_announcement_channels_are_read() -> None:
    old = (
        '{"conversation":{"id":"c1","kind":"group","name":"g","topic":"","visibility":"private",'
        '"archived":false,"created_by":"u1","created_at":1,"last_seq":0},"member_ids":["u1"]}'
    )
    payload = payload_from_json(EventType.CONVERSATION_CREATED, codec.loads(old))
    assert isinstance(payload, ConversationCreated)
    assert payload.conversation.announcement is False


@pytest.mark.parametrize(
    ("type_", "data", "error"),
    [
        (EventType.MEMBER_LEFT, {}, "MemberLeft: .*user_id"),  # a key missing
        (EventType.MEMBER_LEFT, {"user_id": "u1", "role": "member"}, "unknown keys"),
        (EventType.READ_MARKER_MOVED, {"user_id": "u1", "seq": "12"}, "seq: expected"),
        (EventType.READ_MARKER_MOVED, {"user_id": "u1", "seq": True}, "seq: expected"),
        (EventType.MEMBER_JOINED, {"user_id": "u1", "role": "emperor"}, "emperor"),
        (EventType.MESSAGES_PURGED, {"message_ids": "m1", "up_to_seq": 1}, "expected an array"),
        (EventType.CONVERSATION_UPDATED, {"conversation": {"id": "c1"}}, "ConversationSnapshot"),
        (EventType.MEMBER_LEFT, ["u1"], "expected an object"),
    ],
)
def test_what_is_not_a_payload_is_refused(type_: EventType, data: Any, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        payload_from_json(type_, data)


messages = st.builds(
    Message,
    id=st.text(max_size=4).map(MessageId),
    conversation_id=st.text(max_size=4).map(ConversationId),
    seq=st.integers(0, 2**40),
    sender_id=st.text(max_size=4).map(UserId),
    client_msg_id=st.text(max_size=4),
    text=st.none() | st.text(max_size=8),
    thread_root_id=st.none() | st.text(max_size=4).map(MessageId),
    created_at=st.integers(0, 2**42),
    edited_at=st.none() | st.integers(0, 2**42),
    recalled_at=st.none() | st.integers(0, 2**42),
    reply_count=st.integers(0, 99),
    last_reply_at=st.none() | st.integers(0, 2**42),
    mentions=st.lists(st.text(max_size=4).map(UserId), max_size=2).map(tuple),
    reactions=st.lists(
        st.builds(
            ReactionSummary,
            emoji=st.text(min_size=1, max_size=2),
            count=st.integers(1, 9),
            user_ids=st.lists(st.text(max_size=4).map(UserId), max_size=2).map(tuple),
        ),
        max_size=2,
    ).map(tuple),
)


@given(messages)
def test_a_message_in_an_event_looks_as_in_rest(m: Message) -> None:
    assert MessageSnapshot.of(m).to_json() == wire.message(m)


@given(
    st.builds(
        Conversation,
        id=st.text(max_size=4).map(ConversationId),
        org_id=st.text(max_size=4).map(OrgId),
        kind=st.sampled_from(list(ConversationKind)),
        name=st.none() | st.text(max_size=6),
        topic=st.text(max_size=6),
        visibility=st.sampled_from(list(Visibility)),
        archived=st.booleans(),
        created_by=st.text(max_size=4).map(UserId),
        created_at=st.integers(0, 2**42),
        last_seq=st.integers(0, 2**40),
        announcement=st.booleans(),
    )
)
def test_a_conversation_in_an_event_looks_as_in_rest(c: Conversation) -> None:
    assert ConversationSnapshot.of(c).to_json() == wire.conversation(c)


async def test_stored_events_are_read_back_as_their_payloads(ctx: Context) -> None:
    """One event of every type through the (sealed) event log of SQLite and PostgreSQL."""
    conv = await make_conversation(ctx.db)
    sent = [payload_from_json(t, codec.loads(text)) for t, text in STORED]

    def record(ch: Changes) -> None:
        for payload in sent:
            ch.record(conv, payload, UserId("u1"))

    await write(ctx, record)
    stored = await ctx.db.read(lambda tx: msg_store.events_after(tx, conv, 0, 100))
    assert [e.payload for e in stored] == sent
    assert [e.type for e in stored] == [p.TYPE for p in sent]
    assert [e.data for e in stored] == [codec.loads(text) for _, text in STORED]


# -- docs/protocol.md: a section per event type, naming its fields -----------------------------


def protocol_problems(markdown: str) -> list[str]:
    """What docs/protocol.md lacks: under "## Events", each event type is a "### `type`"
    heading whose section names every key of its payload in backticks; no heading names a type
    that does not exist."""
    match = re.search(r"^## Events\b.*?$(.*?)(?=^## |\Z)", markdown, re.M | re.S)
    if match is None:
        return ["no '## Events' section"]
    sections: dict[str, str] = {}
    parts = re.split(r"^### `([^`]+)`[ \t]*$", match.group(1), flags=re.M)
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        sections[name] = body.split("\n### ", 1)[0]
    problems = [f"heading for an unknown event type {n!r}" for n in sections if n not in PAYLOADS]
    for type_, cls in PAYLOADS.items():
        body = sections.get(type_.value)
        if body is None:
            problems.append(f"no section for {type_.value}")
            continue
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if f"`{f.name}`" not in body and f"`{f.name}:" not in body:
                problems.append(f"{type_.value}: field {f.name!r} is not named")
    return problems


def test_every_event_type_has_a_section_in_the_protocol() -> None:
    assert protocol_problems(PROTOCOL.read_text("utf-8")) == []


def test_the_protocol_check_catches_planted_mistakes() -> None:
    text = PROTOCOL.read_text("utf-8")
    missing = text.replace("### `read.moved`", "### read markers")
    assert "no section for read.moved" in protocol_problems(missing)
    unnamed = text.replace("`member_ids`:", "and the members:")
    assert "conversation.created: field 'member_ids' is not named" in protocol_problems(unnamed)
    unknown = text.replace("### `member.left`", "### `member.left`\n\nx\n\n### `member.waved`")
    assert "heading for an unknown event type 'member.waved'" in protocol_problems(unknown)
    outside = text.replace("### `messages.purged`", "## Elsewhere\n\n### `messages.purged`")
    assert "no section for messages.purged" in protocol_problems(outside)


# -- the web client handles every event type -------------------------------------------------


def handler_body(js: str, name: str = HANDLER) -> str:
    """The source of `function name(...) { ... }`, braces matched (strings and comments in the
    client never hold an unmatched brace; the test below would show it)."""
    start = re.search(rf"^function {name}\(", js, re.M)
    if start is None:
        return ""
    open_at = js.index("{", start.end())
    depth = 0
    for i in range(open_at, len(js)):
        depth += {"{": 1, "}": -1}.get(js[i], 0)
        if depth == 0:
            return js[open_at : i + 1]
    return ""


def client_problems(js: str) -> list[str]:
    """Event types the web client's handler has no `case` for."""
    body = handler_body(js)
    if not body:
        return [f"no function {HANDLER} in sync.js"]
    cases = set(re.findall(r"""\bcase\s+["']([^"']+)["']\s*:""", body))
    problems = [f"the web client does not handle {t.value}" for t in EventType if t not in cases]
    problems += [f"the web client handles an unknown type {c}" for c in cases - set(PAYLOADS)]
    return problems


def test_the_web_client_handles_every_event_type() -> None:
    assert client_problems(SYNC_JS.read_text("utf-8")) == []


def test_the_client_check_catches_planted_mistakes() -> None:
    js = SYNC_JS.read_text("utf-8")
    unhandled = js.replace('case "reaction.removed":', "")
    assert client_problems(unhandled) == ["the web client does not handle reaction.removed"]
    # A type named elsewhere in the client (another function, a comment) does not count.
    elsewhere = unhandled + '\nfunction other(ev) { switch (ev.type) { case "reaction.removed": } }'
    assert client_problems(elsewhere) == ["the web client does not handle reaction.removed"]
    typo = js.replace('case "read.moved":', 'case "read.moved": case "read.move":')
    assert client_problems(typo) == ["the web client handles an unknown type read.move"]
    assert client_problems("") == [f"no function {HANDLER} in sync.js"]
