"""Messages, their versions, mentions, reactions; and the conversation event log."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass

from enclave import codec
from enclave.domain.events import Event, EventType, payload_from_json
from enclave.domain.ids import ConversationId, MessageId, UserId, conversation_scope
from enclave.domain.models import Message, MessageVersion, ReactionSummary
from enclave.storage.base import Row, Tx


def text_aad(message_id: str) -> str:
    return f"messages.text|{message_id}"


def version_aad(message_id: str, version: int) -> str:
    return f"message_versions.text|{message_id}|{version}"


def event_aad(conv_id: str, seq: int) -> str:
    return f"events.data|{conv_id}|{seq}"


def _message(tx: Tx, row: Row, reactions: tuple[ReactionSummary, ...] = ()) -> Message:
    stored = row["text"]
    text = None
    if row["recalled_at"] is None and stored is not None:
        text = tx.sealer.open(tx, text_aad(row["id"]), stored)
    return Message(
        id=MessageId(row["id"]),
        conversation_id=ConversationId(row["conversation_id"]),
        seq=row["seq"],
        sender_id=UserId(row["sender_id"]),
        client_msg_id=row["client_msg_id"],
        text=text,
        thread_root_id=MessageId(row["thread_root_id"]) if row["thread_root_id"] else None,
        created_at=row["created_at"],
        edited_at=row["edited_at"],
        recalled_at=row["recalled_at"],
        reply_count=row["reply_count"],
        last_reply_at=row["last_reply_at"],
        mentions=tuple(UserId(u) for u in codec.loads(row["mentions"])),
        reactions=reactions,
    )


def insert_message(tx: Tx, m: Message) -> None:
    tx.execute(
        "INSERT INTO messages (id, conversation_id, seq, sender_id, client_msg_id, text,"
        " thread_root_id, created_at, edited_at, recalled_at, reply_count, last_reply_at,"
        " mentions) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            m.id,
            m.conversation_id,
            m.seq,
            m.sender_id,
            m.client_msg_id,
            None
            if m.text is None
            else tx.sealer.seal(
                tx, conversation_scope(m.conversation_id), m.created_at, text_aad(m.id), m.text
            ),
            m.thread_root_id,
            m.created_at,
            m.edited_at,
            m.recalled_at,
            m.reply_count,
            m.last_reply_at,
            codec.dumps_text(list(m.mentions)),
        ),
    )
    for user_id in m.mentions:
        tx.execute(
            "INSERT INTO mentions (message_id, user_id, conversation_id, seq) VALUES (?, ?, ?, ?)",
            (m.id, user_id, m.conversation_id, m.seq),
        )


def by_id(tx: Tx, message_id: str) -> Message | None:
    # A message that retention hid (kept only for a legal hold) does not exist for members.
    row = tx.fetchone(
        "SELECT * FROM messages WHERE id = ? AND retention_hidden_at IS NULL", (message_id,)
    )
    if row is None:
        return None
    return _message(tx, row, _reactions_of(tx, MessageId(row["id"])))


@dataclass(frozen=True, slots=True)
class EarlierSend:
    """What became of an earlier send with the same (sender, client_msg_id)."""

    message: Message | None
    """The original; None when retention removed it: deleted, or hidden because a legal hold
    keeps it (the two must look alike to the sender)."""


def spent_digest(sender_id: str, client_msg_id: str) -> str:
    """The key under which a deleted message's (sender, client_msg_id) is remembered: a digest,
    so that the table says nothing about who sent what."""
    return hashlib.sha256(f"{sender_id}\n{client_msg_id}".encode()).hexdigest()


def earlier_send(tx: Tx, sender_id: UserId, client_msg_id: str) -> EarlierSend | None:
    """The earlier send with this key, or None if there was none."""
    row = tx.fetchone(
        "SELECT * FROM messages WHERE sender_id = ? AND client_msg_id = ?",
        (sender_id, client_msg_id),
    )
    if row is not None:
        if row["retention_hidden_at"] is not None:
            return EarlierSend(None)
        return EarlierSend(_message(tx, row, _reactions_of(tx, MessageId(row["id"]))))
    spent = tx.fetchone(
        "SELECT 1 AS spent FROM spent_client_msg_ids WHERE digest = ?",
        (spent_digest(sender_id, client_msg_id),),
    )
    return EarlierSend(None) if spent is not None else None


def remember_spent(tx: Tx, message_id: str) -> None:
    """Before a message is deleted (retention): remember its (sender, client_msg_id)."""
    row = tx.fetchone("SELECT sender_id, client_msg_id FROM messages WHERE id = ?", (message_id,))
    if row is not None:
        tx.execute(
            "INSERT INTO spent_client_msg_ids (digest) VALUES (?) ON CONFLICT (digest) DO NOTHING",
            (spent_digest(row["sender_id"], row["client_msg_id"]),),
        )


def page(
    tx: Tx,
    conv_id: ConversationId,
    *,
    after_seq: int | None,
    before_seq: int | None,
    limit: int,
    include_replies: bool,
) -> list[Message]:
    """A page of history in ascending seq: the first `limit` after `after_seq`, or else the
    last `limit` before `before_seq` (or the newest)."""
    replies = int(include_replies)
    if after_seq is not None:
        rows = tx.fetchall(
            "SELECT * FROM messages WHERE conversation_id = ? AND seq > ? AND seq < ?"
            " AND (thread_root_id IS NULL OR ? = 1) AND retention_hidden_at IS NULL"
            " ORDER BY seq LIMIT ?",
            (conv_id, after_seq, before_seq if before_seq is not None else 2**62, replies, limit),
        )
    else:
        rows = tx.fetchall(
            "SELECT * FROM messages WHERE conversation_id = ? AND seq < ?"
            " AND (thread_root_id IS NULL OR ? = 1) AND retention_hidden_at IS NULL"
            " ORDER BY seq DESC LIMIT ?",
            (conv_id, before_seq if before_seq is not None else 2**62, replies, limit),
        )
        rows.reverse()
    return _with_reactions(tx, rows)


def thread(tx: Tx, root_id: MessageId, *, after_seq: int, limit: int) -> list[Message]:
    rows = tx.fetchall(
        "SELECT * FROM messages WHERE thread_root_id = ? AND seq > ?"
        " AND retention_hidden_at IS NULL ORDER BY seq LIMIT ?",
        (root_id, after_seq, limit),
    )
    return _with_reactions(tx, rows)


def last_top_level(tx: Tx, conv_id: ConversationId) -> Message | None:
    row = tx.fetchone(
        "SELECT * FROM messages WHERE conversation_id = ? AND thread_root_id IS NULL"
        " AND retention_hidden_at IS NULL ORDER BY seq DESC LIMIT 1",
        (conv_id,),
    )
    return _message(tx, row) if row else None


def _with_reactions(tx: Tx, rows: list[Row]) -> list[Message]:
    if not rows:
        return []
    conv_id = rows[0]["conversation_id"]
    first, last = rows[0]["seq"], rows[-1]["seq"]
    grouped: dict[str, dict[str, list[UserId]]] = defaultdict(lambda: defaultdict(list))
    for r in tx.fetchall(
        "SELECT r.message_id, r.emoji, r.user_id FROM reactions r"
        " JOIN messages m ON m.id = r.message_id"
        " WHERE m.conversation_id = ? AND m.seq >= ? AND m.seq <= ?"
        " ORDER BY r.created_at, r.user_id",
        (conv_id, min(first, last), max(first, last)),
    ):
        grouped[r["message_id"]][r["emoji"]].append(UserId(r["user_id"]))
    return [_message(tx, r, _summaries(grouped.get(r["id"], {}))) for r in rows]


def _summaries(by_emoji: dict[str, list[UserId]]) -> tuple[ReactionSummary, ...]:
    return tuple(
        ReactionSummary(emoji=e, count=len(users), user_ids=tuple(users))
        for e, users in by_emoji.items()
    )


def _reactions_of(tx: Tx, message_id: MessageId) -> tuple[ReactionSummary, ...]:
    grouped: dict[str, list[UserId]] = defaultdict(list)
    for r in tx.fetchall(
        "SELECT emoji, user_id FROM reactions WHERE message_id = ? ORDER BY created_at, user_id",
        (message_id,),
    ):
        grouped[r["emoji"]].append(UserId(r["user_id"]))
    return _summaries(grouped)


def reactions_of(tx: Tx, message_id: MessageId) -> tuple[ReactionSummary, ...]:
    return _reactions_of(tx, message_id)


def lock(tx: Tx, message_id: str) -> None:
    """Take the message's row lock until commit (a no-op update; portable to both backends), so
    that concurrent edits of one message run one after the other and each sees the last text."""
    tx.execute("UPDATE messages SET reply_count = reply_count WHERE id = ?", (message_id,))


def update_text(
    tx: Tx, conv_id: ConversationId, message_id: MessageId, text: str, edited_at: int
) -> None:
    sealed = tx.sealer.seal(tx, conversation_scope(conv_id), edited_at, text_aad(message_id), text)
    tx.execute(
        "UPDATE messages SET text = ?, edited_at = ? WHERE id = ?", (sealed, edited_at, message_id)
    )


def add_version(
    tx: Tx, conv_id: ConversationId, message_id: MessageId, text: str, created_at: int
) -> int:
    row = tx.fetchone(
        "SELECT COALESCE(MAX(version), 0) AS v FROM message_versions WHERE message_id = ?",
        (message_id,),
    )
    version = int(row["v"]) + 1 if row else 1
    sealed = tx.sealer.seal(
        tx, conversation_scope(conv_id), created_at, version_aad(message_id, version), text
    )
    tx.execute(
        "INSERT INTO message_versions (message_id, version, text, created_at) VALUES (?, ?, ?, ?)",
        (message_id, version, sealed, created_at),
    )
    return version


def versions(tx: Tx, message_id: MessageId) -> list[MessageVersion]:
    return [
        MessageVersion(
            message_id=MessageId(r["message_id"]),
            version=r["version"],
            text=tx.sealer.open(tx, version_aad(r["message_id"], r["version"]), r["text"]) or "",
            created_at=r["created_at"],
        )
        for r in tx.fetchall(
            "SELECT message_id, version, text, created_at FROM message_versions"
            " WHERE message_id = ? ORDER BY version",
            (message_id,),
        )
    ]


def set_recalled(tx: Tx, message_id: MessageId, at: int) -> None:
    tx.execute("UPDATE messages SET recalled_at = ? WHERE id = ?", (at, message_id))


def bump_thread(tx: Tx, root_id: MessageId, at: int) -> None:
    tx.execute(
        "UPDATE messages SET reply_count = reply_count + 1, last_reply_at = ? WHERE id = ?",
        (at, root_id),
    )


def add_reaction(tx: Tx, message_id: MessageId, user_id: UserId, emoji: str, at: int) -> bool:
    return (
        tx.execute(
            "INSERT INTO reactions (message_id, user_id, emoji, created_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            (message_id, user_id, emoji, at),
        )
        == 1
    )


def remove_reaction(tx: Tx, message_id: MessageId, user_id: UserId, emoji: str) -> bool:
    return (
        tx.execute(
            "DELETE FROM reactions WHERE message_id = ? AND user_id = ? AND emoji = ?",
            (message_id, user_id, emoji),
        )
        == 1
    )


# -- the event log ----------------------------------------------------------------------------


def insert_event(tx: Tx, event: Event) -> None:
    tx.execute(
        "INSERT INTO events (conversation_id, seq, type, actor_id, created_at, data)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (
            event.conversation_id,
            event.seq,
            event.type.value,
            event.actor_id,
            event.created_at,
            tx.sealer.seal(
                tx,
                conversation_scope(event.conversation_id),
                event.created_at,
                event_aad(event.conversation_id, event.seq),
                codec.dumps_text(event.data),
            ),
        ),
    )


def events_after(tx: Tx, conv_id: ConversationId, after_seq: int, limit: int) -> list[Event]:
    return [
        Event(
            conversation_id=ConversationId(r["conversation_id"]),
            seq=r["seq"],
            actor_id=UserId(r["actor_id"]),
            created_at=r["created_at"],
            payload=payload_from_json(
                EventType(r["type"]),
                codec.loads(
                    tx.sealer.open(tx, event_aad(r["conversation_id"], r["seq"]), r["data"]) or "{}"
                ),
            ),
        )
        for r in tx.fetchall(
            # Events up to the retention cut are not replayed (under legal hold they are kept).
            "SELECT conversation_id, seq, type, actor_id, created_at, data FROM events"
            " WHERE conversation_id = ? AND seq > ? AND seq > COALESCE((SELECT purged_seq"
            " FROM retention_state WHERE conversation_id = ?), 0) ORDER BY seq LIMIT ?",
            (conv_id, after_seq, conv_id, limit),
        )
    ]
