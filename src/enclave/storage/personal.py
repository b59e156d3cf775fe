"""Reads for a person's own data export (GDPR Art. 15 and 20) not covered elsewhere: their
reactions and the audit entries about them."""

from __future__ import annotations

from dataclasses import dataclass

from enclave.domain.audit import AuditEntry
from enclave.domain.ids import ConversationId, MessageId, OrgId, UserId
from enclave.storage import audit as audit_store
from enclave.storage.base import Tx


@dataclass(frozen=True, slots=True)
class OwnReaction:
    message_id: MessageId
    conversation_id: ConversationId
    emoji: str
    created_at: int


def reactions_by(tx: Tx, user_id: UserId, after: tuple[str, str], limit: int) -> list[OwnReaction]:
    """A person's reactions in (message id, emoji) order after `after`; not those on messages
    retention hid for a legal hold (like those it deleted)."""
    last_msg, last_emoji = after
    rows = tx.fetchall(
        "SELECT r.message_id, m.conversation_id, r.emoji, r.created_at FROM reactions r"
        " JOIN messages m ON m.id = r.message_id"
        " WHERE r.user_id = ? AND m.retention_hidden_at IS NULL"
        " AND (r.message_id > ? OR (r.message_id = ? AND r.emoji > ?))"
        " ORDER BY r.message_id, r.emoji LIMIT ?",
        (user_id, last_msg, last_msg, last_emoji, limit),
    )
    return [
        OwnReaction(
            MessageId(r["message_id"]),
            ConversationId(r["conversation_id"]),
            r["emoji"],
            int(r["created_at"]),
        )
        for r in rows
    ]


def audit_about(
    tx: Tx, org_id: OrgId, user_id: UserId, username: str, after_seq: int, limit: int
) -> list[AuditEntry]:
    """Audit entries of the organization whose actor or target is the person (by id, or by the
    username for failed logins), in seq order after `after_seq`."""
    rows = tx.fetchall(
        "SELECT * FROM audit_log WHERE org_id = ? AND seq > ?"
        " AND (actor_id = ? OR target_id = ? OR (target_type = 'username' AND target_id = ?))"
        " ORDER BY seq LIMIT ?",
        (org_id, after_seq, user_id, user_id, username, limit),
    )
    return [audit_store.entry_of(r) for r in rows]
