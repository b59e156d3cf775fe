"""Conversations and their members."""

from __future__ import annotations

from enclave.domain.ids import ConversationId, OrgId, UserId
from enclave.domain.models import (
    Conversation,
    ConversationKind,
    Member,
    MemberRole,
    Visibility,
)
from enclave.storage.base import Row, Tx


def _conversation(row: Row) -> Conversation:
    return Conversation(
        id=ConversationId(row["id"]),
        org_id=OrgId(row["org_id"]),
        kind=ConversationKind(row["kind"]),
        name=row["name"],
        topic=row["topic"],
        visibility=Visibility(row["visibility"]),
        archived=bool(row["archived"]),
        created_by=UserId(row["created_by"]),
        created_at=row["created_at"],
        last_seq=row["last_seq"],
        announcement=bool(row["announcement"]),
    )


def _member(row: Row) -> Member:
    return Member(
        conversation_id=ConversationId(row["conversation_id"]),
        user_id=UserId(row["user_id"]),
        role=MemberRole(row["role"]),
        joined_at=row["joined_at"],
        last_read_seq=row["last_read_seq"],
    )


def insert_conversation(tx: Tx, conv: Conversation, dm_key: str | None) -> bool:
    """Insert; False when a DM for the same pair (or a channel of the same name) exists."""
    name_key = conv.name.casefold() if conv.kind is ConversationKind.CHANNEL and conv.name else None
    changed = tx.execute(
        "INSERT INTO conversations (id, org_id, kind, name, name_key, topic, visibility, archived,"
        " dm_key, created_by, created_at, last_seq, announcement)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (
            conv.id,
            conv.org_id,
            conv.kind.value,
            conv.name,
            name_key,
            conv.topic,
            conv.visibility.value,
            int(conv.archived),
            dm_key,
            conv.created_by,
            conv.created_at,
            conv.last_seq,
            int(conv.announcement),
        ),
    )
    return changed == 1


def by_id(tx: Tx, conv_id: str) -> Conversation | None:
    row = tx.fetchone(
        "SELECT id, org_id, kind, name, topic, visibility, archived, created_by, created_at,"
        " last_seq, announcement FROM conversations WHERE id = ?",
        (conv_id,),
    )
    return _conversation(row) if row else None


def by_dm_key(tx: Tx, dm_key: str) -> Conversation | None:
    row = tx.fetchone(
        "SELECT id, org_id, kind, name, topic, visibility, archived, created_by, created_at,"
        " last_seq, announcement FROM conversations WHERE dm_key = ?",
        (dm_key,),
    )
    return _conversation(row) if row else None


def channel_name_taken(tx: Tx, org_id: OrgId, name: str, *, except_id: str = "") -> bool:
    row = tx.fetchone(
        "SELECT 1 AS x FROM conversations WHERE org_id = ? AND name_key = ? AND id <> ?",
        (org_id, name.casefold(), except_id),
    )
    return row is not None


def update_details(tx: Tx, conv_id: ConversationId, name: str | None, topic: str) -> None:
    tx.execute(
        "UPDATE conversations SET name = ?, name_key = CASE WHEN kind = 'channel' THEN ? END,"
        " topic = ? WHERE id = ?",
        (name, name.casefold() if name else None, topic, conv_id),
    )


def set_announcement(tx: Tx, conv_id: ConversationId, announcement: bool) -> None:
    tx.execute(
        "UPDATE conversations SET announcement = ? WHERE id = ?", (int(announcement), conv_id)
    )


def set_archived(tx: Tx, conv_id: ConversationId, archived: bool) -> None:
    tx.execute("UPDATE conversations SET archived = ? WHERE id = ?", (int(archived), conv_id))


def next_seq(tx: Tx, conv_id: ConversationId) -> int:
    """Take the conversation's next sequence number. The row stays locked until commit."""
    row = tx.fetchone(
        "UPDATE conversations SET last_seq = last_seq + 1 WHERE id = ? RETURNING last_seq",
        (conv_id,),
    )
    if row is None:
        raise LookupError(conv_id)
    return int(row["last_seq"])


def public_channels(tx: Tx, org_id: OrgId, *, after: str, limit: int) -> list[Conversation]:
    return [
        _conversation(r)
        for r in tx.fetchall(
            "SELECT id, org_id, kind, name, topic, visibility, archived, created_by, created_at,"
            " last_seq, announcement FROM conversations WHERE org_id = ? AND kind = 'channel'"
            " AND visibility = 'public' AND archived = 0 AND name_key > ?"
            " ORDER BY name_key LIMIT ?",
            (org_id, after, limit),
        )
    ]


# -- members ----------------------------------------------------------------------------------


def member(tx: Tx, conv_id: str, user_id: str) -> Member | None:
    row = tx.fetchone(
        "SELECT conversation_id, user_id, role, joined_at, last_read_seq FROM members"
        " WHERE conversation_id = ? AND user_id = ?",
        (conv_id, user_id),
    )
    return _member(row) if row else None


def members(tx: Tx, conv_id: ConversationId, *, after: str, limit: int) -> list[Member]:
    return [
        _member(r)
        for r in tx.fetchall(
            "SELECT conversation_id, user_id, role, joined_at, last_read_seq FROM members"
            " WHERE conversation_id = ? AND user_id > ? ORDER BY user_id LIMIT ?",
            (conv_id, after, limit),
        )
    ]


def member_ids(tx: Tx, conv_id: ConversationId) -> list[UserId]:
    return [
        UserId(r["user_id"])
        for r in tx.fetchall("SELECT user_id FROM members WHERE conversation_id = ?", (conv_id,))
    ]


def add_member(tx: Tx, m: Member) -> bool:
    """Add a member; False if already one."""
    return (
        tx.execute(
            "INSERT INTO members (conversation_id, user_id, role, joined_at, last_read_seq)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (m.conversation_id, m.user_id, m.role.value, m.joined_at, m.last_read_seq),
        )
        == 1
    )


def remove_member(tx: Tx, conv_id: ConversationId, user_id: UserId) -> bool:
    return (
        tx.execute(
            "DELETE FROM members WHERE conversation_id = ? AND user_id = ?", (conv_id, user_id)
        )
        == 1
    )


def set_member_role(tx: Tx, conv_id: ConversationId, user_id: UserId, role: MemberRole) -> None:
    tx.execute(
        "UPDATE members SET role = ? WHERE conversation_id = ? AND user_id = ?",
        (role.value, conv_id, user_id),
    )


def count_role(tx: Tx, conv_id: ConversationId, role: MemberRole) -> int:
    row = tx.fetchone(
        "SELECT COUNT(*) AS n FROM members WHERE conversation_id = ? AND role = ?",
        (conv_id, role.value),
    )
    return int(row["n"]) if row else 0


def move_read_marker(tx: Tx, conv_id: ConversationId, user_id: UserId, seq: int) -> bool:
    """Move the marker forward only; True if it moved."""
    return (
        tx.execute(
            "UPDATE members SET last_read_seq = ? WHERE conversation_id = ? AND user_id = ?"
            " AND last_read_seq < ?",
            (seq, conv_id, user_id, seq),
        )
        == 1
    )


def my_conversations(tx: Tx, user_id: UserId) -> list[tuple[Conversation, Member]]:
    rows = tx.fetchall(
        "SELECT c.id, c.org_id, c.kind, c.name, c.topic, c.visibility, c.archived, c.created_by,"
        " c.created_at, c.last_seq, c.announcement, m.conversation_id, m.user_id, m.role,"
        " m.joined_at, m.last_read_seq FROM members m"
        " JOIN conversations c ON c.id = m.conversation_id"
        " WHERE m.user_id = ?"
        # Most recently active first: by the newest message (else creation) time. last_seq
        # counts each conversation's own events and cannot be compared across conversations.
        " ORDER BY COALESCE((SELECT msg.created_at FROM messages msg"
        " WHERE msg.conversation_id = c.id AND msg.retention_hidden_at IS NULL"
        " ORDER BY msg.seq DESC LIMIT 1), c.created_at) DESC,"
        " c.id",
        (user_id,),
    )
    return [(_conversation(r), _member(r)) for r in rows]


def unread_counts(tx: Tx, user_id: UserId) -> dict[ConversationId, tuple[int, int]]:
    """Per conversation: (unread messages from others, unread mentions of the user)."""
    counts: dict[ConversationId, tuple[int, int]] = {}
    for r in tx.fetchall(
        "SELECT msg.conversation_id AS cid, COUNT(*) AS n FROM members m"
        " JOIN messages msg ON msg.conversation_id = m.conversation_id"
        " AND msg.seq > m.last_read_seq"
        " WHERE m.user_id = ? AND msg.sender_id <> ? AND msg.recalled_at IS NULL"
        " AND msg.retention_hidden_at IS NULL GROUP BY msg.conversation_id",
        (user_id, user_id),
    ):
        counts[ConversationId(r["cid"])] = (int(r["n"]), 0)
    for r in tx.fetchall(
        "SELECT mn.conversation_id AS cid, COUNT(*) AS n FROM members m"
        " JOIN mentions mn ON mn.conversation_id = m.conversation_id AND mn.user_id = m.user_id"
        " AND mn.seq > m.last_read_seq"
        " JOIN messages msg ON msg.id = mn.message_id AND msg.recalled_at IS NULL"
        " AND msg.retention_hidden_at IS NULL WHERE m.user_id = ? GROUP BY mn.conversation_id",
        (user_id,),
    ):
        cid = ConversationId(r["cid"])
        counts[cid] = (counts.get(cid, (0, 0))[0], int(r["n"]))
    return counts


def dm_peer(tx: Tx, conv_id: ConversationId, user_id: UserId) -> UserId | None:
    row = tx.fetchone(
        "SELECT user_id FROM members WHERE conversation_id = ? AND user_id <> ? LIMIT 1",
        (conv_id, user_id),
    )
    return UserId(row["user_id"]) if row else None


def membership_seqs(tx: Tx, user_id: UserId) -> dict[ConversationId, int]:
    """Every conversation the user belongs to, with its newest event seq."""
    return {
        ConversationId(r["id"]): int(r["last_seq"])
        for r in tx.fetchall(
            "SELECT c.id, c.last_seq FROM members m JOIN conversations c"
            " ON c.id = m.conversation_id WHERE m.user_id = ?",
            (user_id,),
        )
    }


def last_seqs(tx: Tx, conv_ids: list[ConversationId]) -> dict[ConversationId, int]:
    """The newest event seq of each of these conversations (missing ones are left out)."""
    found: dict[ConversationId, int] = {}
    for conv_id in conv_ids:
        row = tx.fetchone("SELECT last_seq FROM conversations WHERE id = ?", (conv_id,))
        if row is not None:
            found[conv_id] = int(row["last_seq"])
    return found


def with_member(tx: Tx, conv_id: str, user_id: str) -> tuple[Conversation | None, Member | None]:
    """A conversation and the user's membership row, in one query."""
    row = tx.fetchone(
        "SELECT c.id, c.org_id, c.kind, c.name, c.topic, c.visibility, c.archived, c.created_by,"
        " c.created_at, c.last_seq, c.announcement, m.conversation_id, m.user_id, m.role,"
        " m.joined_at, m.last_read_seq FROM conversations c LEFT JOIN members m"
        " ON m.conversation_id = c.id AND m.user_id = ? WHERE c.id = ?",
        (user_id, conv_id),
    )
    if row is None:
        return None, None
    return _conversation(row), _member(row) if row["user_id"] is not None else None
