"""Legal holds on people and conversations (issue 6).

A hold is active while `released_at` is NULL. What a hold preserves (docs/compliance.md, "Legal
hold"):

- a hold on a **conversation** preserves every message of it;
- a hold on a **person** preserves every message the person sent, in any conversation, and every
  message of the direct and group conversations the person is a member of (their private
  correspondence, both sides).

Retention never deletes a preserved message (nor the data key it is sealed with), and erasure
never touches a held person (`person_held`) or a held conversation (`conversation_held`).
"""

from __future__ import annotations

from enclave.domain.models import Hold
from enclave.storage.base import Row, Tx

PERSON = "person"
CONVERSATION = "conversation"
KINDS = (PERSON, CONVERSATION)


def _hold(row: Row) -> Hold:
    return Hold(
        id=row["id"],
        org_id=row["org_id"],
        kind=row["kind"],
        target_id=row["target_id"],
        reason=row["reason"],
        created_by=row["created_by"],
        created_at=int(row["created_at"]),
        released_by=row["released_by"],
        released_at=None if row["released_at"] is None else int(row["released_at"]),
        release_reason=row["release_reason"],
    )


# -- the questions retention and erasure ask -------------------------------------------------


def person_held(tx: Tx, user_id: str) -> bool:
    """True while an active hold names this person."""
    row = tx.fetchone(
        "SELECT 1 FROM legal_holds WHERE kind = 'person' AND target_id = ?"
        " AND released_at IS NULL LIMIT 1",
        (user_id,),
    )
    return row is not None


def conversation_held(tx: Tx, conversation_id: str) -> bool:
    """True while an active hold names this conversation itself."""
    row = tx.fetchone(
        "SELECT 1 FROM legal_holds WHERE kind = 'conversation' AND target_id = ?"
        " AND released_at IS NULL LIMIT 1",
        (conversation_id,),
    )
    return row is not None


def conversation_wholly_held(tx: Tx, conversation_id: str) -> bool:
    """True if every message of the conversation is preserved: the conversation is held, or it
    is a direct or group conversation one of whose members is held."""
    if conversation_held(tx, conversation_id):
        return True
    row = tx.fetchone(
        "SELECT 1 FROM conversations c"
        " JOIN members m ON m.conversation_id = c.id"
        " JOIN legal_holds h ON h.kind = 'person' AND h.target_id = m.user_id"
        " AND h.released_at IS NULL"
        " WHERE c.id = ? AND c.kind IN ('dm', 'group') LIMIT 1",
        (conversation_id,),
    )
    return row is not None


def held_senders_in(tx: Tx, conversation_id: str) -> set[str]:
    """The held people who sent messages in this conversation (their messages are preserved)."""
    rows = tx.fetchall(
        "SELECT DISTINCT h.target_id FROM legal_holds h"
        " WHERE h.kind = 'person' AND h.released_at IS NULL"
        " AND EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = ?"
        " AND m.sender_id = h.target_id)",
        (conversation_id,),
    )
    return {str(r["target_id"]) for r in rows}


def message_held(tx: Tx, message_id: str) -> bool:
    """True if an active hold preserves this message (its sender, or its conversation)."""
    row = tx.fetchone("SELECT conversation_id, sender_id FROM messages WHERE id = ?", (message_id,))
    if row is None:
        return False
    if person_held(tx, str(row["sender_id"])):
        return True
    return conversation_wholly_held(tx, str(row["conversation_id"]))


def held_user_ids(tx: Tx, org_id: str) -> set[str]:
    rows = tx.fetchall(
        "SELECT DISTINCT target_id FROM legal_holds"
        " WHERE org_id = ? AND kind = 'person' AND released_at IS NULL",
        (org_id,),
    )
    return {str(r["target_id"]) for r in rows}


def held_conversation_ids(tx: Tx, org_id: str) -> set[str]:
    rows = tx.fetchall(
        "SELECT DISTINCT target_id FROM legal_holds"
        " WHERE org_id = ? AND kind = 'conversation' AND released_at IS NULL",
        (org_id,),
    )
    return {str(r["target_id"]) for r in rows}


# -- managing holds ----------------------------------------------------------------------------


def insert(tx: Tx, hold: Hold) -> None:
    tx.execute(
        "INSERT INTO legal_holds (id, org_id, kind, target_id, reason, created_by, created_at,"
        " released_by, released_at, release_reason) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL)",
        (
            hold.id,
            hold.org_id,
            hold.kind,
            hold.target_id,
            hold.reason,
            hold.created_by,
            hold.created_at,
        ),
    )


def get(tx: Tx, org_id: str, hold_id: str) -> Hold | None:
    """A hold of this organization (another organization's answers None, like a missing one)."""
    row = tx.fetchone(
        "SELECT id, org_id, kind, target_id, reason, created_by, created_at, released_by,"
        " released_at, release_reason FROM legal_holds WHERE id = ? AND org_id = ?",
        (hold_id, org_id),
    )
    return _hold(row) if row else None


def release(tx: Tx, hold_id: str, released_by: str | None, at: int, reason: str) -> bool:
    """Release an active hold; False if it was released already."""
    return (
        tx.execute(
            "UPDATE legal_holds SET released_by = ?, released_at = ?, release_reason = ?"
            " WHERE id = ? AND released_at IS NULL",
            (released_by, at, reason, hold_id),
        )
        == 1
    )


def list_for_org(tx: Tx, org_id: str, include_released: bool, limit: int) -> list[Hold]:
    """The organization's holds, newest first."""
    rows = tx.fetchall(
        "SELECT id, org_id, kind, target_id, reason, created_by, created_at, released_by,"
        " released_at, release_reason FROM legal_holds"
        " WHERE org_id = ? AND (? = 1 OR released_at IS NULL)"
        " ORDER BY created_at DESC, id LIMIT ?",
        (org_id, 1 if include_released else 0, limit),
    )
    return [_hold(r) for r in rows]


def active_for_target(tx: Tx, org_id: str, kind: str, target_id: str) -> list[Hold]:
    rows = tx.fetchall(
        "SELECT id, org_id, kind, target_id, reason, created_by, created_at, released_by,"
        " released_at, release_reason FROM legal_holds"
        " WHERE org_id = ? AND kind = ? AND target_id = ? AND released_at IS NULL"
        " ORDER BY created_at",
        (org_id, kind, target_id),
    )
    return [_hold(r) for r in rows]
