"""eDiscovery export jobs, and the reads an export makes: messages with their recalled text,
earlier versions and reactions, and the membership events of conversations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from enclave import codec
from enclave.domain.exports import (
    DONE,
    EXPIRED,
    FAILED,
    QUEUED,
    RUNNING,
    UNFINISHED,
    ExportJob,
)
from enclave.domain.ids import ConversationId, MessageId, OrgId, UserId
from enclave.storage.base import Row, Tx
from enclave.storage.messages import event_aad, text_aad, version_aad

__all__ = [
    "DONE",
    "EXPIRED",
    "FAILED",
    "MEMBERSHIP_TYPES",
    "QUEUED",
    "RUNNING",
    "UNFINISHED",
    "ConversationRef",
    "ExportJob",
    "ExportedMessage",
    "ExportedReaction",
    "ExportedVersion",
    "MembershipEvent",
    "abandoned_jobs",
    "conversations_of_person",
    "count_messages",
    "expired_jobs",
    "finish",
    "insert_job",
    "job",
    "job_by_id",
    "jobs_of_org",
    "mark_expired",
    "membership_events",
    "messages_by_sender",
    "messages_page",
    "org_conversations",
    "set_progress",
    "unfinished_count",
    "usernames",
]


def _job(row: Row) -> ExportJob:
    return ExportJob(
        id=row["id"],
        org_id=OrgId(row["org_id"]),
        requested_by=UserId(row["requested_by"]) if row["requested_by"] else None,
        query=codec.loads(row["query"]),
        status=row["status"],
        done=int(row["done"]),
        total=int(row["total"]),
        error=row["error"],
        created_at=int(row["created_at"]),
        finished_at=row["finished_at"],
        expires_at=row["expires_at"],
    )


def insert_job(tx: Tx, job: ExportJob) -> None:
    tx.execute(
        "INSERT INTO export_jobs (id, org_id, requested_by, query, status, done, total, error,"
        " created_at, finished_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            job.id,
            job.org_id,
            job.requested_by,
            codec.dumps_text(job.query),
            job.status,
            job.done,
            job.total,
            job.error,
            job.created_at,
            job.finished_at,
            job.expires_at,
        ),
    )


def job(tx: Tx, org_id: OrgId, job_id: str) -> ExportJob | None:
    """A job of this organization; another organization's answers None, like a missing one."""
    row = tx.fetchone(
        "SELECT id, org_id, requested_by, query, status, done, total, error, created_at,"
        " finished_at, expires_at FROM export_jobs WHERE id = ? AND org_id = ?",
        (job_id, org_id),
    )
    return _job(row) if row else None


def job_by_id(tx: Tx, job_id: str) -> ExportJob | None:
    """A job of any organization (for the job that runs it, and the operator)."""
    row = tx.fetchone(
        "SELECT id, org_id, requested_by, query, status, done, total, error, created_at,"
        " finished_at, expires_at FROM export_jobs WHERE id = ?",
        (job_id,),
    )
    return _job(row) if row else None


def jobs_of_org(
    tx: Tx, org_id: OrgId, limit: int, before: tuple[int, str] | None = None
) -> list[ExportJob]:
    """The organization's jobs, newest first; `before` is (created_at, id) of the last job of
    the previous page."""
    at, last_id = before if before is not None else (2**62, "")
    rows = tx.fetchall(
        "SELECT id, org_id, requested_by, query, status, done, total, error, created_at,"
        " finished_at, expires_at FROM export_jobs WHERE org_id = ?"
        " AND (created_at < ? OR (created_at = ? AND id > ?))"
        " ORDER BY created_at DESC, id LIMIT ?",
        (org_id, at, at, last_id, limit),
    )
    return [_job(r) for r in rows]


def set_progress(tx: Tx, job_id: str, status: str, done: int, total: int) -> None:
    tx.execute(
        "UPDATE export_jobs SET status = ?, done = ?, total = ? WHERE id = ?"
        " AND status IN ('queued', 'running')",
        (status, done, total, job_id),
    )


def finish(
    tx: Tx, job_id: str, status: str, at: int, expires_at: int | None, error: str | None
) -> bool:
    """End an unfinished job (done or failed); False if it had ended already, so that a job
    run twice (its node died after finishing it) is finished, and audited, once."""
    return (
        tx.execute(
            "UPDATE export_jobs SET status = ?, finished_at = ?, expires_at = ?, error = ?"
            " WHERE id = ? AND status IN ('queued', 'running')",
            (status, at, expires_at, error, job_id),
        )
        == 1
    )


def unfinished_count(tx: Tx, org_id: OrgId) -> int:
    """The organization's jobs of the API (not the CLI's) that are queued or running."""
    row = tx.fetchone(
        "SELECT COUNT(*) AS n FROM export_jobs WHERE org_id = ? AND requested_by IS NOT NULL"
        " AND status IN ('queued', 'running')",
        (org_id,),
    )
    return int(row["n"]) if row else 0


def abandoned_jobs(tx: Tx, kind: str, limit: int) -> list[tuple[str, str]]:
    """Unfinished jobs whose queue job ended without finishing them (dead after a node died
    on its last attempt, failed, or cancelled by an operator): (export id, the queue job's
    state and last error)."""
    rows = tx.fetchall(
        "SELECT e.id, j.state, j.last_error FROM export_jobs e"
        " JOIN jobs j ON j.idempotency_key = e.id AND j.kind = ?"
        " WHERE e.status IN ('queued', 'running') AND j.state IN ('dead', 'failed', 'cancelled')"
        " ORDER BY e.id LIMIT ?",
        (kind, limit),
    )
    return [(str(r["id"]), f"{r['state']}: {r['last_error'] or 'no error recorded'}") for r in rows]


def expired_jobs(tx: Tx, now: int, limit: int) -> list[str]:
    """Finished jobs whose files are due for deletion."""
    rows = tx.fetchall(
        "SELECT id FROM export_jobs WHERE status IN ('done', 'failed')"
        " AND expires_at IS NOT NULL AND expires_at <= ? ORDER BY expires_at LIMIT ?",
        (now, limit),
    )
    return [str(r["id"]) for r in rows]


def mark_expired(tx: Tx, job_id: str) -> None:
    tx.execute("UPDATE export_jobs SET status = 'expired' WHERE id = ?", (job_id,))


# -- what an export reads ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConversationRef:
    id: ConversationId
    kind: str
    name: str | None
    created_at: int


def org_conversations(tx: Tx, org_id: OrgId) -> list[ConversationRef]:
    rows = tx.fetchall(
        "SELECT id, kind, name, created_at FROM conversations WHERE org_id = ? ORDER BY id",
        (org_id,),
    )
    return [
        ConversationRef(ConversationId(r["id"]), r["kind"], r["name"], int(r["created_at"]))
        for r in rows
    ]


def conversations_of_person(tx: Tx, org_id: OrgId, user_id: str) -> set[ConversationId]:
    """The organization's conversations a person is a member of or has sent a message in."""
    rows = tx.fetchall(
        "SELECT c.id FROM conversations c WHERE c.org_id = ? AND ("
        " EXISTS (SELECT 1 FROM members m WHERE m.conversation_id = c.id AND m.user_id = ?)"
        " OR EXISTS (SELECT 1 FROM messages x WHERE x.conversation_id = c.id"
        " AND x.sender_id = ?))",
        (org_id, user_id, user_id),
    )
    return {ConversationId(r["id"]) for r in rows}


def count_messages(tx: Tx, conv_id: ConversationId, since: int, until: int) -> int:
    row = tx.fetchone(
        "SELECT COUNT(*) AS n FROM messages WHERE conversation_id = ?"
        " AND created_at >= ? AND created_at < ?",
        (conv_id, since, until),
    )
    return int(row["n"]) if row else 0


@dataclass(frozen=True, slots=True)
class ExportedVersion:
    version: int
    text: str | None
    created_at: int


@dataclass(frozen=True, slots=True)
class ExportedReaction:
    user_id: UserId
    emoji: str
    created_at: int


@dataclass(frozen=True, slots=True)
class ExportedMessage:
    """A message as the record holds it: the text even when recalled (the row keeps it
    sealed), None only when its key was shredded or the text was erased."""

    id: MessageId
    conversation_id: ConversationId
    seq: int
    sender_id: UserId
    text: str | None
    thread_root_id: MessageId | None
    created_at: int
    edited_at: int | None
    recalled_at: int | None
    reply_count: int
    mentions: list[str]
    versions: list[ExportedVersion]
    reactions: list[ExportedReaction]


def messages_page(
    tx: Tx, conv_id: ConversationId, after_seq: int, since: int, until: int, limit: int
) -> list[ExportedMessage]:
    """Up to `limit` messages after `after_seq` created in [since, until), in seq order, with
    their earlier versions and reactions."""
    rows = tx.fetchall(
        "SELECT id, conversation_id, seq, sender_id, text, thread_root_id, created_at, edited_at,"
        " recalled_at, reply_count, mentions FROM messages WHERE conversation_id = ? AND seq > ?"
        " AND created_at >= ? AND created_at < ? ORDER BY seq LIMIT ?",
        (conv_id, after_seq, since, until, limit),
    )
    if not rows:
        return []
    first, last = int(rows[0]["seq"]), int(rows[-1]["seq"])
    versions: dict[str, list[ExportedVersion]] = {}
    for v in tx.fetchall(
        "SELECT v.message_id, v.version, v.text, v.created_at FROM message_versions v"
        " JOIN messages m ON m.id = v.message_id"
        " WHERE m.conversation_id = ? AND m.seq >= ? AND m.seq <= ?"
        " ORDER BY v.message_id, v.version",
        (conv_id, first, last),
    ):
        text = tx.sealer.open(tx, version_aad(v["message_id"], v["version"]), v["text"])
        versions.setdefault(v["message_id"], []).append(
            ExportedVersion(int(v["version"]), text, int(v["created_at"]))
        )
    reactions: dict[str, list[ExportedReaction]] = {}
    for r in tx.fetchall(
        "SELECT r.message_id, r.user_id, r.emoji, r.created_at FROM reactions r"
        " JOIN messages m ON m.id = r.message_id"
        " WHERE m.conversation_id = ? AND m.seq >= ? AND m.seq <= ?"
        " ORDER BY r.created_at, r.user_id, r.emoji",
        (conv_id, first, last),
    ):
        reactions.setdefault(r["message_id"], []).append(
            ExportedReaction(UserId(r["user_id"]), r["emoji"], int(r["created_at"]))
        )
    return [_exported(tx, row, versions, reactions) for row in rows]


def _exported(
    tx: Tx,
    row: Row,
    versions: dict[str, list[ExportedVersion]],
    reactions: dict[str, list[ExportedReaction]],
) -> ExportedMessage:
    stored = row["text"]
    text = None if stored is None else tx.sealer.open(tx, text_aad(row["id"]), stored)
    return ExportedMessage(
        id=MessageId(row["id"]),
        conversation_id=ConversationId(row["conversation_id"]),
        seq=int(row["seq"]),
        sender_id=UserId(row["sender_id"]),
        text=text,
        thread_root_id=MessageId(row["thread_root_id"]) if row["thread_root_id"] else None,
        created_at=int(row["created_at"]),
        edited_at=row["edited_at"],
        recalled_at=row["recalled_at"],
        reply_count=int(row["reply_count"]),
        mentions=list(codec.loads(row["mentions"])),
        versions=versions.get(row["id"], []),
        reactions=reactions.get(row["id"], []),
    )


def messages_by_sender(
    tx: Tx, sender_id: UserId, after: tuple[int, str], limit: int
) -> list[ExportedMessage]:
    """A person's messages in (created_at, id) order after `after`, with versions and
    reactions (for their GDPR export). Messages retention hid because a legal hold keeps them
    are left out, like the ones it deleted: the person must not learn of the hold."""
    at, last_id = after
    rows = tx.fetchall(
        "SELECT id, conversation_id, seq, sender_id, text, thread_root_id, created_at, edited_at,"
        " recalled_at, reply_count, mentions FROM messages WHERE sender_id = ?"
        " AND retention_hidden_at IS NULL"
        " AND (created_at > ? OR (created_at = ? AND id > ?)) ORDER BY created_at, id LIMIT ?",
        (sender_id, at, at, last_id, limit),
    )
    found = []
    for row in rows:
        versions = [
            ExportedVersion(
                int(v["version"]),
                tx.sealer.open(tx, version_aad(row["id"], v["version"]), v["text"]),
                int(v["created_at"]),
            )
            for v in tx.fetchall(
                "SELECT version, text, created_at FROM message_versions WHERE message_id = ?"
                " ORDER BY version",
                (row["id"],),
            )
        ]
        reactions = [
            ExportedReaction(UserId(r["user_id"]), r["emoji"], int(r["created_at"]))
            for r in tx.fetchall(
                "SELECT user_id, emoji, created_at FROM reactions WHERE message_id = ?"
                " ORDER BY created_at, user_id, emoji",
                (row["id"],),
            )
        ]
        found.append(_exported(tx, row, {row["id"]: versions}, {row["id"]: reactions}))
    return found


@dataclass(frozen=True, slots=True)
class MembershipEvent:
    conversation_id: ConversationId
    seq: int
    type: str
    actor_id: UserId
    created_at: int
    data: dict[str, Any] | None
    """None if the event's key was shredded."""


MEMBERSHIP_TYPES = ("conversation.created", "member.joined", "member.left", "member.role_changed")


def membership_events(
    tx: Tx, conv_id: ConversationId, since: int, until: int, after_seq: int, limit: int
) -> list[MembershipEvent]:
    """Creation and membership changes of a conversation in [since, until), in seq order."""
    rows = tx.fetchall(
        "SELECT conversation_id, seq, type, actor_id, created_at, data FROM events"
        " WHERE conversation_id = ? AND seq > ? AND created_at >= ? AND created_at < ?"
        " AND type IN ('conversation.created', 'member.joined', 'member.left',"
        " 'member.role_changed') ORDER BY seq LIMIT ?",
        (conv_id, after_seq, since, until, limit),
    )
    found = []
    for r in rows:
        opened = tx.sealer.open(tx, event_aad(r["conversation_id"], r["seq"]), r["data"])
        data = codec.loads(opened) if opened is not None else None
        found.append(
            MembershipEvent(
                conversation_id=ConversationId(r["conversation_id"]),
                seq=int(r["seq"]),
                type=r["type"],
                actor_id=UserId(r["actor_id"]),
                created_at=int(r["created_at"]),
                data=data if isinstance(data, dict) else None,
            )
        )
    return found


def usernames(tx: Tx, org_id: OrgId, user_ids: list[str]) -> dict[str, str]:
    """Usernames of the organization's people among `user_ids` (others are left out)."""
    names: dict[str, str] = {}
    for uid in dict.fromkeys(user_ids):
        row = tx.fetchone("SELECT username FROM users WHERE id = ? AND org_id = ?", (uid, org_id))
        if row is not None:
            names[uid] = str(row["username"])
    return names
