"""Retention: policies, what a run would delete, the deletion itself, run progress, job leases.

Which messages a run removes from a conversation, given its cutoff `c` (a time; everything
created before it is past retention):

- **expired**: created before `c`, and its whole thread is too: a top-level message whose newest
  reply (`last_reply_at`) is before `c`, or a reply whose root's newest reply is. A thread is
  therefore kept as a whole until its newest reply is past retention, then goes as a whole: no
  reply ever points at a deleted root, and reply counts stay right.
- **held**: an active legal hold preserves it (see `enclave.storage.holds`): its conversation is
  wholly held (the `wholly` parameter, decided by the caller), its sender is a held person, or
  it is a root with a reply by a held person (so that the reply keeps its root).
- expired and not held: **deleted** with its versions, mentions and reactions;
  expired and held: **hidden** (`retention_hidden_at`), kept for compliance.

The SQL below repeats those two conditions literally (statements are constant strings).
"""

from __future__ import annotations

from dataclasses import dataclass

from enclave.storage import leases
from enclave.storage import messages as message_store
from enclave.storage.base import Row, Tx

# -- policies ----------------------------------------------------------------------------------


def org_days(tx: Tx, org_id: str) -> int | None:
    """The organization's default in days; None: keep forever (also when never set)."""
    row = tx.fetchone("SELECT days FROM retention_org WHERE org_id = ?", (org_id,))
    return None if row is None or row["days"] is None else int(row["days"])


def set_org_days(tx: Tx, org_id: str, days: int | None, by: str | None, now: int) -> None:
    tx.execute(
        "INSERT INTO retention_org (org_id, days, updated_by, updated_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (org_id) DO UPDATE SET days = excluded.days,"
        " updated_by = excluded.updated_by, updated_at = excluded.updated_at",
        (org_id, days, by, now),
    )


@dataclass(frozen=True, slots=True)
class Override:
    conversation_id: str
    days: int | None
    """None: keep forever."""
    updated_at: int


def override_of(tx: Tx, conv_id: str) -> Override | None:
    row = tx.fetchone(
        "SELECT conversation_id, days, updated_at FROM retention_conversation"
        " WHERE conversation_id = ?",
        (conv_id,),
    )
    if row is None:
        return None
    return Override(row["conversation_id"], _days(row["days"]), int(row["updated_at"]))


def set_override(tx: Tx, conv_id: str, days: int | None, by: str | None, now: int) -> None:
    tx.execute(
        "INSERT INTO retention_conversation (conversation_id, days, updated_by, updated_at)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (conversation_id) DO UPDATE SET days = excluded.days,"
        " updated_by = excluded.updated_by, updated_at = excluded.updated_at",
        (conv_id, days, by, now),
    )


def clear_override(tx: Tx, conv_id: str) -> bool:
    return (
        tx.execute("DELETE FROM retention_conversation WHERE conversation_id = ?", (conv_id,)) == 1
    )


def overrides_of_org(tx: Tx, org_id: str, limit: int) -> list[Override]:
    rows = tx.fetchall(
        "SELECT r.conversation_id, r.days, r.updated_at FROM retention_conversation r"
        " JOIN conversations c ON c.id = r.conversation_id WHERE c.org_id = ?"
        " ORDER BY r.conversation_id LIMIT ?",
        (org_id, limit),
    )
    return [Override(r["conversation_id"], _days(r["days"]), int(r["updated_at"])) for r in rows]


def _days(value: object) -> int | None:
    return None if value is None else int(str(value))


# -- conversations a run looks at --------------------------------------------------------------


def org_ids(tx: Tx) -> list[str]:
    return [str(r["id"]) for r in tx.fetchall("SELECT id FROM orgs ORDER BY id")]


@dataclass(frozen=True, slots=True)
class ConvPolicy:
    id: str
    kind: str
    last_seq: int
    has_override: bool
    override_days: int | None


def conversations_page(tx: Tx, org_id: str, after_id: str, limit: int) -> list[ConvPolicy]:
    """The organization's conversations in id order after `after_id`, with their override."""
    rows = tx.fetchall(
        "SELECT c.id, c.kind, c.last_seq, r.conversation_id AS has_override, r.days"
        " FROM conversations c LEFT JOIN retention_conversation r ON r.conversation_id = c.id"
        " WHERE c.org_id = ? AND c.id > ? ORDER BY c.id LIMIT ?",
        (org_id, after_id, limit),
    )
    return [
        ConvPolicy(
            id=r["id"],
            kind=r["kind"],
            last_seq=int(r["last_seq"]),
            has_override=r["has_override"] is not None,
            override_days=_days(r["days"]),
        )
        for r in rows
    ]


# -- what would go -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessageCounts:
    messages: int
    first_seq: int | None
    last_seq: int | None
    versions: int
    reactions: int
    mentions: int
    hidden: int


def planned_messages(tx: Tx, conv_id: str, cutoff: int, wholly: bool) -> MessageCounts:
    """What `delete_batch` and `hide_batch` would do to this conversation, run to the end: one
    statement, which finds the expired messages once and counts what goes with them."""
    row = tx.fetchone(
        "WITH expired AS (SELECT m.id, m.seq, m.retention_hidden_at,"
        " CASE WHEN (? = 1"
        " OR EXISTS (SELECT 1 FROM legal_holds h WHERE h.kind = 'person'"
        " AND h.released_at IS NULL AND h.target_id = m.sender_id)"
        " OR EXISTS (SELECT 1 FROM messages r JOIN legal_holds h ON h.kind = 'person'"
        " AND h.released_at IS NULL AND h.target_id = r.sender_id WHERE r.thread_root_id = m.id))"
        " THEN 1 ELSE 0 END AS held"
        " FROM messages m WHERE m.conversation_id = ? AND m.created_at < ? AND ("
        " (m.thread_root_id IS NULL AND COALESCE(m.last_reply_at, 0) < ?)"
        " OR EXISTS (SELECT 1 FROM messages r WHERE r.id = m.thread_root_id"
        " AND COALESCE(r.last_reply_at, 0) < ?)))"
        " SELECT (SELECT COUNT(*) FROM expired WHERE held = 0) AS n,"
        " (SELECT MIN(seq) FROM expired WHERE held = 0) AS lo,"
        " (SELECT MAX(seq) FROM expired WHERE held = 0) AS hi,"
        " (SELECT COUNT(*) FROM message_versions v JOIN expired e ON e.id = v.message_id"
        " WHERE e.held = 0) AS versions,"
        " (SELECT COUNT(*) FROM reactions x JOIN expired e ON e.id = x.message_id"
        " WHERE e.held = 0) AS reactions,"
        " (SELECT COUNT(*) FROM mentions x JOIN expired e ON e.id = x.message_id"
        " WHERE e.held = 0) AS mentions,"
        " (SELECT COUNT(*) FROM expired WHERE held = 1 AND retention_hidden_at IS NULL) AS hidden",
        (int(wholly), conv_id, cutoff, cutoff, cutoff),
    )
    assert row is not None
    return MessageCounts(
        messages=int(row["n"]),
        first_seq=None if row["lo"] is None else int(row["lo"]),
        last_seq=None if row["hi"] is None else int(row["hi"]),
        versions=int(row["versions"]),
        reactions=int(row["reactions"]),
        mentions=int(row["mentions"]),
        hidden=int(row["hidden"]),
    )


def _n(row: Row | None) -> int:
    return 0 if row is None else int(row["n"])


def event_cut(tx: Tx, conv_id: str, cutoff: int, last_seq: int) -> int:
    """The largest seq such that every event up to it was created before `cutoff` (the event
    log is cut as a prefix, so a cursor can always tell what it missed)."""
    row = tx.fetchone(
        "SELECT MIN(seq) AS s FROM events WHERE conversation_id = ? AND created_at >= ?",
        (conv_id, cutoff),
    )
    if row is None or row["s"] is None:
        return last_seq
    return int(row["s"]) - 1


def purged_seq(tx: Tx, conv_id: str) -> int:
    row = tx.fetchone(
        "SELECT purged_seq FROM retention_state WHERE conversation_id = ?", (conv_id,)
    )
    return 0 if row is None else int(row["purged_seq"])


def count_events_upto(tx: Tx, conv_id: str, up_to_seq: int) -> int:
    row = tx.fetchone(
        "SELECT COUNT(*) AS n FROM events WHERE conversation_id = ? AND seq <= ?",
        (conv_id, up_to_seq),
    )
    return _n(row)


def needed_key_ids(tx: Tx, conv_id: str, cutoff: int, wholly: bool, event_cut_seq: int) -> set[str]:
    """Data key ids still needed, once the plan is carried out, by what stays of the
    conversation from before `cutoff`: kept (held or thread-kept) messages and their versions,
    and events after the cut (or all of them, in a wholly held conversation)."""
    w = int(wholly)
    params = (conv_id, cutoff, cutoff, cutoff, cutoff, w)
    needed: set[str] = set()
    for r in tx.fetchall(
        "SELECT DISTINCT SUBSTR(m.text, 4, 32) AS k FROM messages m"
        " WHERE m.conversation_id = ? AND m.created_at < ? AND m.text IS NOT NULL AND NOT ("
        " ((m.thread_root_id IS NULL AND COALESCE(m.last_reply_at, 0) < ?)"
        " OR EXISTS (SELECT 1 FROM messages r WHERE r.id = m.thread_root_id"
        " AND COALESCE(r.last_reply_at, 0) < ?))"
        " AND NOT (? = 1"
        " OR EXISTS (SELECT 1 FROM legal_holds h WHERE h.kind = 'person'"
        " AND h.released_at IS NULL AND h.target_id = m.sender_id)"
        " OR EXISTS (SELECT 1 FROM messages r JOIN legal_holds h ON h.kind = 'person'"
        " AND h.released_at IS NULL AND h.target_id = r.sender_id WHERE r.thread_root_id = m.id)))",
        (conv_id, cutoff, cutoff, cutoff, w),
    ):
        needed.add(str(r["k"]))
    for r in tx.fetchall(
        "SELECT DISTINCT SUBSTR(v.text, 4, 32) AS k FROM message_versions v"
        " JOIN messages m ON m.id = v.message_id"
        " WHERE m.conversation_id = ? AND v.created_at < ? AND NOT ("
        " m.created_at < ? AND ((m.thread_root_id IS NULL AND COALESCE(m.last_reply_at, 0) < ?)"
        " OR EXISTS (SELECT 1 FROM messages r WHERE r.id = m.thread_root_id"
        " AND COALESCE(r.last_reply_at, 0) < ?))"
        " AND NOT (? = 1"
        " OR EXISTS (SELECT 1 FROM legal_holds h WHERE h.kind = 'person'"
        " AND h.released_at IS NULL AND h.target_id = m.sender_id)"
        " OR EXISTS (SELECT 1 FROM messages r JOIN legal_holds h ON h.kind = 'person'"
        " AND h.released_at IS NULL AND h.target_id = r.sender_id WHERE r.thread_root_id = m.id)))",
        params,
    ):
        needed.add(str(r["k"]))
    for r in tx.fetchall(
        "SELECT DISTINCT SUBSTR(data, 4, 32) AS k FROM events"
        " WHERE conversation_id = ? AND created_at < ? AND seq > ?",
        (conv_id, cutoff, -1 if wholly else event_cut_seq),
    ):
        needed.add(str(r["k"]))
    return needed


# -- carrying it out ---------------------------------------------------------------------------


def deletable_batch(
    tx: Tx, conv_id: str, cutoff: int, wholly: bool, limit: int
) -> list[tuple[str, int]]:
    """(id, seq) of up to `limit` expired, unheld messages, newest first (so replies go before
    their root)."""
    rows = tx.fetchall(
        "SELECT m.id, m.seq FROM messages m"
        " WHERE m.conversation_id = ? AND m.created_at < ? AND ("
        " (m.thread_root_id IS NULL AND COALESCE(m.last_reply_at, 0) < ?)"
        " OR EXISTS (SELECT 1 FROM messages r WHERE r.id = m.thread_root_id"
        " AND COALESCE(r.last_reply_at, 0) < ?))"
        " AND NOT (? = 1"
        " OR EXISTS (SELECT 1 FROM legal_holds h WHERE h.kind = 'person'"
        " AND h.released_at IS NULL AND h.target_id = m.sender_id)"
        " OR EXISTS (SELECT 1 FROM messages r JOIN legal_holds h ON h.kind = 'person'"
        " AND h.released_at IS NULL AND h.target_id = r.sender_id WHERE r.thread_root_id = m.id))"
        " ORDER BY m.seq DESC LIMIT ?",
        (conv_id, cutoff, cutoff, cutoff, int(wholly), limit),
    )
    return [(str(r["id"]), int(r["seq"])) for r in rows]


def last_seq(tx: Tx, conv_id: str) -> int:
    row = tx.fetchone("SELECT last_seq FROM conversations WHERE id = ?", (conv_id,))
    return 0 if row is None else int(row["last_seq"])


def hide_batch(tx: Tx, conv_id: str, cutoff: int, wholly: bool, now: int, limit: int) -> list[str]:
    """Hide up to `limit` expired messages that a hold preserves; return their ids."""
    rows = tx.fetchall(
        "SELECT m.id FROM messages m"
        " WHERE m.conversation_id = ? AND m.retention_hidden_at IS NULL AND m.created_at < ? AND ("
        " (m.thread_root_id IS NULL AND COALESCE(m.last_reply_at, 0) < ?)"
        " OR EXISTS (SELECT 1 FROM messages r WHERE r.id = m.thread_root_id"
        " AND COALESCE(r.last_reply_at, 0) < ?))"
        " AND (? = 1"
        " OR EXISTS (SELECT 1 FROM legal_holds h WHERE h.kind = 'person'"
        " AND h.released_at IS NULL AND h.target_id = m.sender_id)"
        " OR EXISTS (SELECT 1 FROM messages r JOIN legal_holds h ON h.kind = 'person'"
        " AND h.released_at IS NULL AND h.target_id = r.sender_id WHERE r.thread_root_id = m.id))"
        " ORDER BY m.seq LIMIT ?",
        (conv_id, cutoff, cutoff, cutoff, int(wholly), limit),
    )
    ids = [str(r["id"]) for r in rows]
    for message_id in ids:
        tx.execute(
            "UPDATE messages SET retention_hidden_at = ?"
            " WHERE id = ? AND retention_hidden_at IS NULL",
            (now, message_id),
        )
    return ids


@dataclass
class Deleted:
    messages: int = 0
    versions: int = 0
    reactions: int = 0
    mentions: int = 0


def delete_messages(tx: Tx, message_ids: list[str]) -> Deleted:
    """Delete messages with everything hanging off them, in the order given. Each message's
    (sender, client_msg_id) is remembered as a digest, so that a retry of it is not posted
    again (`storage.messages.earlier_send`)."""
    done = Deleted()
    for message_id in message_ids:
        message_store.remember_spent(tx, message_id)
        done.reactions += tx.execute("DELETE FROM reactions WHERE message_id = ?", (message_id,))
        done.mentions += tx.execute("DELETE FROM mentions WHERE message_id = ?", (message_id,))
        done.versions += tx.execute(
            "DELETE FROM message_versions WHERE message_id = ?", (message_id,)
        )
        done.messages += tx.execute("DELETE FROM messages WHERE id = ?", (message_id,))
    return done


def delete_events_upto(tx: Tx, conv_id: str, up_to_seq: int, limit: int) -> int:
    """Delete up to `limit` of the conversation's oldest events with seq <= `up_to_seq`."""
    return tx.execute(
        "DELETE FROM events WHERE conversation_id = ? AND seq IN (SELECT seq FROM events"
        " WHERE conversation_id = ? AND seq <= ? ORDER BY seq LIMIT ?)",
        (conv_id, conv_id, up_to_seq, limit),
    )


def advance_purged_seq(tx: Tx, conv_id: str, up_to_seq: int, now: int) -> None:
    """Record the cut of the event log (it only ever moves forward)."""
    tx.execute(
        "INSERT INTO retention_state (conversation_id, purged_seq, purged_at) VALUES (?, ?, ?)"
        " ON CONFLICT (conversation_id) DO UPDATE SET purged_seq = excluded.purged_seq,"
        " purged_at = excluded.purged_at WHERE retention_state.purged_seq < excluded.purged_seq",
        (conv_id, up_to_seq, now),
    )


# -- runs --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunRow:
    id: str
    org_id: str
    as_of: int
    started_at: int
    actor_id: str | None
    finished_at: int | None
    progress: str


def unfinished_run(tx: Tx, org_id: str) -> RunRow | None:
    row = tx.fetchone(
        "SELECT id, org_id, as_of, started_at, actor_id, finished_at, progress"
        " FROM retention_runs WHERE org_id = ? AND finished_at IS NULL"
        " ORDER BY started_at LIMIT 1",
        (org_id,),
    )
    if row is None:
        return None
    return RunRow(
        id=row["id"],
        org_id=row["org_id"],
        as_of=int(row["as_of"]),
        started_at=int(row["started_at"]),
        actor_id=row["actor_id"],
        finished_at=None,
        progress=row["progress"],
    )


def insert_run(tx: Tx, run: RunRow) -> None:
    tx.execute(
        "INSERT INTO retention_runs (id, org_id, as_of, started_at, actor_id, finished_at,"
        " progress) VALUES (?, ?, ?, ?, ?, NULL, ?)",
        (run.id, run.org_id, run.as_of, run.started_at, run.actor_id, run.progress),
    )


def run_progress(tx: Tx, run_id: str) -> str:
    row = tx.fetchone("SELECT progress FROM retention_runs WHERE id = ?", (run_id,))
    assert row is not None
    return str(row["progress"])


def save_progress(tx: Tx, run_id: str, progress: str) -> None:
    tx.execute("UPDATE retention_runs SET progress = ? WHERE id = ?", (progress, run_id))


def finish_run(tx: Tx, run_id: str, progress: str, now: int) -> None:
    tx.execute(
        "UPDATE retention_runs SET progress = ?, finished_at = ? WHERE id = ?",
        (progress, now, run_id),
    )


# -- leases (storage.leases; named here too for the retention run) -------------------------------

take_lease = leases.take
release_lease = leases.release
