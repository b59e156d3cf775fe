"""What erasing a person (GDPR Art. 17) changes in the database, beyond shredding their key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from enclave import codec
from enclave.domain.ids import ConversationId, MessageId, UserId, conversation_scope
from enclave.storage.base import Tx
from enclave.storage.messages import event_aad


def erased_at(tx: Tx, user_id: UserId) -> int | None:
    row = tx.fetchone("SELECT erased_at FROM users WHERE id = ?", (user_id,))
    return row["erased_at"] if row else None


def mark_erased(tx: Tx, user_id: UserId, pseudonym: str, at: int) -> None:
    """Pseudonymize the username, make the password unusable and deactivate the account."""
    tx.execute(
        "UPDATE users SET username = ?, password_hash = '', is_active = 0,"
        " must_change_password = 0, erased_at = COALESCE(erased_at, ?) WHERE id = ?",
        (pseudonym, at, user_id),
    )


@dataclass(frozen=True, slots=True)
class SentRef:
    id: MessageId
    conversation_id: ConversationId


def texts_after(tx: Tx, sender_id: UserId, after_id: str, limit: int) -> list[SentRef]:
    """A person's messages that still hold text, in id order after `after_id`."""
    rows = tx.fetchall(
        "SELECT id, conversation_id FROM messages WHERE sender_id = ? AND text IS NOT NULL"
        " AND id > ? ORDER BY id LIMIT ?",
        (sender_id, after_id, limit),
    )
    return [SentRef(MessageId(r["id"]), ConversationId(r["conversation_id"])) for r in rows]


def delete_text(tx: Tx, message_id: MessageId, at: int) -> int:
    """Remove a message's text and earlier versions; the row stays (a tombstone shown like a
    recalled message), so threads, reply counts and seqs are unchanged. Returns how many
    earlier versions were deleted."""
    tx.execute(
        "UPDATE messages SET text = NULL, recalled_at = COALESCE(recalled_at, ?) WHERE id = ?",
        (at, message_id),
    )
    return tx.execute("DELETE FROM message_versions WHERE message_id = ?", (message_id,))


@dataclass(frozen=True, slots=True)
class TextEvent:
    conversation_id: ConversationId
    seq: int
    created_at: int
    data: dict[str, Any] | None
    """None if the event's key was shredded (nothing left to remove)."""


def text_events_after(
    tx: Tx, actor_id: UserId, after: tuple[str, int], limit: int
) -> list[TextEvent]:
    """The person's `message.created` and `message.edited` events (which carry the text), in
    (conversation, seq) order after `after`."""
    conv, seq = after
    rows = tx.fetchall(
        "SELECT conversation_id, seq, created_at, data FROM events WHERE actor_id = ?"
        " AND type IN ('message.created', 'message.edited')"
        " AND (conversation_id > ? OR (conversation_id = ? AND seq > ?))"
        " ORDER BY conversation_id, seq LIMIT ?",
        (actor_id, conv, conv, seq, limit),
    )
    found = []
    for r in rows:
        opened = tx.sealer.open(tx, event_aad(r["conversation_id"], r["seq"]), r["data"])
        data = codec.loads(opened) if opened is not None else None
        found.append(
            TextEvent(
                ConversationId(r["conversation_id"]),
                int(r["seq"]),
                int(r["created_at"]),
                data if isinstance(data, dict) else None,
            )
        )
    return found


def rewrite_event(tx: Tx, event: TextEvent, data: dict[str, Any]) -> None:
    """Replace an event's body (sealed again under its conversation's key of its epoch)."""
    sealed = tx.sealer.seal(
        tx,
        conversation_scope(event.conversation_id),
        event.created_at,
        event_aad(event.conversation_id, event.seq),
        codec.dumps_text(data),
    )
    tx.execute(
        "UPDATE events SET data = ? WHERE conversation_id = ? AND seq = ?",
        (sealed, event.conversation_id, event.seq),
    )
