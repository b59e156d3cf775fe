"""A person's own data export (GDPR Art. 15, access, and Art. 20, portability).

One JSON document, streamed: the profile, MFA status (never the secret), sessions, consent
records, conversations and memberships, every message the person sent (with conversation id,
thread, full edit history, reactions), their reactions, and the audit entries about them (as
actor or target). It is produced in bounded read transactions (500 rows each) as the response
is written, so memory stays flat however much the person wrote; the parts are read one after
another, not as one snapshot. Each export is audited (`export.gdpr`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from typing import Any

from enclave import codec
from enclave.domain import wire
from enclave.domain.models import User
from enclave.services import audit
from enclave.services.context import Changes, Context, write
from enclave.services.exports.files import message_record
from enclave.storage import accounts as account_store
from enclave.storage import conversations as conv_store
from enclave.storage import exports as export_store
from enclave.storage import mfa as mfa_store
from enclave.storage import personal as store
from enclave.storage import terms as terms_store
from enclave.storage.base import Tx

BATCH = 500
FORMAT = "enclave-personal-data-1"


def _head(tx: Tx, user: User) -> dict[str, Any]:
    mfa = mfa_store.get(tx, user.id)
    sessions = account_store.user_sessions(tx, user.id)
    return {
        "profile": wire.user(user),
        "mfa": {
            "enrolled": mfa is not None and mfa.confirmed_at is not None,
            "confirmed_at": mfa.confirmed_at if mfa else None,
            "recovery_codes_left": mfa_store.recovery_codes_left(tx, user.id),
        },
        "sessions": [
            {
                "created_at": s.created_at,
                "last_used_at": s.last_used_at,
                "expires_at": s.expires_at,
                "user_agent": s.user_agent,
                "ip": s.last_ip,
            }
            for s in sessions
        ],
        "consents": [
            {"terms_version": a.version, "accepted_at": a.accepted_at}
            for a in terms_store.acceptances_of(tx, user.id)
        ],
        "memberships": [
            {
                "conversation": wire.conversation(conv),
                "role": member.role.value,
                "joined_at": member.joined_at,
                "last_read_seq": member.last_read_seq,
            }
            for conv, member in conv_store.my_conversations(tx, user.id)
        ],
    }


async def export(ctx: Context, user: User, ip: str | None = None) -> AsyncIterator[bytes]:
    """Audit the export, then return the document as a stream of JSON chunks."""

    def note(ch: Changes) -> None:
        audit.record(
            ctx,
            ch,
            "export.gdpr",
            audit.Actor.of(user, ip),
            target=audit.Target("user", user.id),
            details={"format": FORMAT},
        )

    await write(ctx, note)
    return _stream(ctx, user)


async def _stream(ctx: Context, user: User) -> AsyncIterator[bytes]:
    head = await ctx.db.read(lambda tx: _head(tx, user))
    yield b'{"format":' + codec.dumps(FORMAT)
    yield b',"generated_at":' + codec.dumps(ctx.clock.now_ms())
    for key, value in head.items():
        yield b"," + codec.dumps(key) + b":" + codec.dumps(value)
    names: dict[str, str] = {user.id: user.username}

    yield b',"messages":['
    first = True
    after: tuple[int, str] = (-1, "")
    while True:
        page = await ctx.db.read(
            partial(export_store.messages_by_sender, sender_id=user.id, after=after, limit=BATCH)
        )
        for m in page:
            yield (b"" if first else b",") + codec.dumps(message_record(m, names))
            first = False
        if len(page) < BATCH:
            break
        after = (page[-1].created_at, page[-1].id)

    yield b'],"reactions":['
    first = True
    r_after: tuple[str, str] = ("", "")
    while True:
        found = await ctx.db.read(
            partial(store.reactions_by, user_id=user.id, after=r_after, limit=BATCH)
        )
        for r in found:
            item = {
                "message_id": r.message_id,
                "conversation_id": r.conversation_id,
                "emoji": r.emoji,
                "created_at": r.created_at,
            }
            yield (b"" if first else b",") + codec.dumps(item)
            first = False
        if len(found) < BATCH:
            break
        r_after = (found[-1].message_id, found[-1].emoji)

    yield b'],"audit_entries":['
    first = True
    seq = 0
    while True:
        entries = await ctx.db.read(
            partial(
                store.audit_about,
                org_id=user.org_id,
                user_id=user.id,
                username=user.username,
                after_seq=seq,
                limit=BATCH,
            )
        )
        for e in entries:
            yield (b"" if first else b",") + codec.dumps(wire.audit_entry(e, None, None))
            first = False
        if len(entries) < BATCH:
            break
        seq = entries[-1].seq
    yield b"]}"
