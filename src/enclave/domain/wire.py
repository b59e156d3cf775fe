"""The JSON shape of each record: the one module that turns records into JSON for REST
responses, the admin API and exports. Stored events carry their own payload classes
(`domain/events.py`); their message and conversation snapshots have the keys of `message` and
`conversation` here (tests/test_events.py checks that)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from enclave.domain.audit import AuditEntry
from enclave.domain.exports import ExportJob
from enclave.domain.jobs import Job
from enclave.domain.models import (
    Conversation,
    ConversationSummary,
    Department,
    Hold,
    Member,
    Message,
    MessageVersion,
    OrgRole,
    ReactionSummary,
    Terms,
    User,
)
from enclave.domain.policy import Capabilities
from enclave.domain.retention import Plan as RetentionPlan
from enclave.domain.retention import Receipt as RetentionReceipt


def user(u: User) -> dict[str, Any]:
    return {
        "id": u.id,
        "username": u.username,
        "display_name": u.display_name,
        "role": u.role.value,
        "is_active": u.is_active,
        "must_change_password": u.must_change_password,
        "created_at": u.created_at,
        "department_id": u.department_id,
    }


def conversation(c: Conversation) -> dict[str, Any]:
    return {
        "id": c.id,
        "kind": c.kind.value,
        "name": c.name,
        "topic": c.topic,
        "visibility": c.visibility.value,
        "archived": c.archived,
        "created_by": c.created_by,
        "created_at": c.created_at,
        "last_seq": c.last_seq,
        "announcement": c.announcement,
    }


def summary(s: ConversationSummary) -> dict[str, Any]:
    return {
        **conversation(s.conversation),
        "my_role": s.my_role.value if s.my_role else None,
        "last_read_seq": s.last_read_seq,
        "unread_count": s.unread_count,
        "mention_count": s.mention_count,
        "last_message": message(s.last_message) if s.last_message else None,
        "dm_peer_id": s.dm_peer_id,
    }


def department(d: Department, admin_ids: tuple[str, ...] | list[str]) -> dict[str, Any]:
    return {
        "id": d.id,
        "parent_id": d.parent_id,
        "name": d.name,
        "created_at": d.created_at,
        "admin_ids": list(admin_ids),
    }


def member(m: Member) -> dict[str, Any]:
    return {
        "user_id": m.user_id,
        "role": m.role.value,
        "joined_at": m.joined_at,
        "last_read_seq": m.last_read_seq,
    }


def reaction(r: ReactionSummary) -> dict[str, Any]:
    return {"emoji": r.emoji, "count": r.count, "user_ids": list(r.user_ids)}


def message(m: Message) -> dict[str, Any]:
    return {
        "id": m.id,
        "conversation_id": m.conversation_id,
        "seq": m.seq,
        "sender_id": m.sender_id,
        "client_msg_id": m.client_msg_id,
        "text": m.text,
        "thread_root_id": m.thread_root_id,
        "created_at": m.created_at,
        "edited_at": m.edited_at,
        "recalled": m.recalled_at is not None,
        "recalled_at": m.recalled_at,
        "reply_count": m.reply_count,
        "last_reply_at": m.last_reply_at,
        "mentions": list(m.mentions),
        "reactions": [reaction(r) for r in m.reactions],
    }


def version(v: MessageVersion) -> dict[str, Any]:
    return {"version": v.version, "text": v.text, "created_at": v.created_at}


def audit_entry(
    entry: AuditEntry, actor_username: str | None, target_username: str | None
) -> dict[str, Any]:
    """An audit log entry in the admin API and the personal-data export (the organization is
    the reader's own)."""
    return {
        "seq": entry.seq,
        "at": entry.at,
        "action": entry.action,
        "actor_id": entry.actor_id,
        "actor_username": actor_username,
        "target_type": entry.target_type,
        "target_id": entry.target_id,
        "target_username": target_username,
        "ip": entry.ip,
        "outcome": entry.outcome,
        "details": entry.details,
        "hash": entry.hash,
    }


def hold(h: Hold) -> dict[str, Any]:
    return {
        "id": h.id,
        "kind": h.kind,
        "target_id": h.target_id,
        "reason": h.reason,
        "active": h.active,
        "created_by": h.created_by,
        "created_at": h.created_at,
        "released_by": h.released_by,
        "released_at": h.released_at,
        "release_reason": h.release_reason,
    }


def terms(t: Terms | None, accepted_at: int | None) -> dict[str, Any]:
    """The organization's current terms (None: none published) and the reader's consent."""
    return {
        "version": t.version if t else None,
        "text": t.text if t else None,
        "published_at": t.published_at if t else None,
        "accepted": t is None or accepted_at is not None,
        "accepted_at": accepted_at,
    }


def capabilities(c: Capabilities) -> dict[str, Any]:
    """Roles in the order of `OrgRole`; every org action with its reach."""
    return {
        "actions": {action.value: scope.value for action, scope in c.actions.items()},
        "grant_roles": [r.value for r in OrgRole if r in c.grant_roles],
        "set_roles": [r.value for r in OrgRole if r in c.set_roles],
        "administered_roles": [r.value for r in OrgRole if r in c.administered_roles],
        "department_ids": list(c.department_ids),
    }


def job(j: Job) -> dict[str, Any]:
    """A job for its organization's admins: never its payload (which may hold chat data)."""
    return {
        "id": j.id,
        "kind": j.kind,
        "state": j.state,
        "key": j.key,
        "run_at": j.run_at,
        "attempts": j.attempts,
        "max_attempts": j.max_attempts,
        "last_error": j.last_error,
        "lease_expires_at": j.lease_expires_at,
        "created_at": j.created_at,
        "updated_at": j.updated_at,
        "finished_at": j.finished_at,
    }


def retention_plan(p: RetentionPlan) -> dict[str, Any]:
    """A retention dry run (`enclave retention run --dry-run --json`, the preview route)."""
    return {
        "org_id": p.org_id,
        "as_of": p.as_of,
        "default_days": p.default_days,
        "totals": asdict(p.totals),
        "conversations": [asdict(c) for c in p.conversations],
    }


def retention_receipt(r: RetentionReceipt) -> dict[str, Any]:
    """What a retention run did (the CLI's `--json`, the run route)."""
    return {
        "org_id": r.org_id,
        "run_id": r.run_id,
        "as_of": r.as_of,
        "default_days": r.default_days,
        "totals": asdict(r.totals),
        "conversations": [asdict(c) for c in r.conversations],
        "kek_rotated": r.kek_rotated,
        "audit_seq": r.audit_seq,
    }


def export_job(j: ExportJob) -> dict[str, Any]:
    """An eDiscovery export for its organization's compliance officers: its query, never the
    CLI's output directory."""
    return {
        "id": j.id,
        "status": j.status,
        "done": j.done,
        "total": j.total,
        "query": {
            "people": j.query.get("people", []),
            "conversations": j.query.get("conversations", []),
            "since": j.query.get("since"),
            "until": j.query.get("until"),
        },
        "requested_by": j.requested_by,
        "created_at": j.created_at,
        "finished_at": j.finished_at,
        "expires_at": j.expires_at,
        "error": j.error,
    }


def export_jobs(
    jobs: list[ExportJob], usernames: dict[str, str], next_before: str | None
) -> dict[str, Any]:
    """A page of exports, each with the username of the person who asked for it."""
    return {
        "exports": [
            {**export_job(j), "requested_by_username": usernames.get(j.requested_by or "")}
            for j in jobs
        ],
        "next_before": next_before,
    }
