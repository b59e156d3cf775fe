"""Terms of use an organization publishes, and each person's consent (which version, when)."""

from __future__ import annotations

from dataclasses import dataclass

from enclave.domain.ids import OrgId, UserId
from enclave.domain.models import Terms
from enclave.storage.base import Row, Tx


@dataclass(frozen=True, slots=True)
class Acceptance:
    user_id: UserId
    version: str
    terms_seq: int
    accepted_at: int


def _terms(row: Row) -> Terms:
    return Terms(
        org_id=OrgId(row["org_id"]),
        seq=int(row["seq"]),
        version=row["version"],
        text=row["text"],
        published_by=UserId(row["published_by"]) if row["published_by"] else None,
        published_at=int(row["published_at"]),
    )


def current(tx: Tx, org_id: OrgId) -> Terms | None:
    row = tx.fetchone(
        "SELECT org_id, seq, version, text, published_by, published_at FROM terms"
        " WHERE org_id = ? ORDER BY seq DESC LIMIT 1",
        (org_id,),
    )
    return _terms(row) if row else None


def version_exists(tx: Tx, org_id: OrgId, version: str) -> bool:
    row = tx.fetchone(
        "SELECT 1 AS x FROM terms WHERE org_id = ? AND version = ?", (org_id, version)
    )
    return row is not None


def publish(tx: Tx, terms: Terms) -> None:
    tx.execute(
        "INSERT INTO terms (org_id, seq, version, text, published_by, published_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (
            terms.org_id,
            terms.seq,
            terms.version,
            terms.text,
            terms.published_by,
            terms.published_at,
        ),
    )


def accept(tx: Tx, user_id: UserId, org_id: OrgId, terms: Terms, at: int) -> bool:
    """Record consent; False if this person accepted this version before."""
    return (
        tx.execute(
            "INSERT INTO terms_acceptances (user_id, org_id, terms_seq, version, accepted_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (user_id, org_id, terms.seq, terms.version, at),
        )
        == 1
    )


def acceptance(tx: Tx, user_id: UserId, terms_seq: int) -> Acceptance | None:
    row = tx.fetchone(
        "SELECT user_id, version, terms_seq, accepted_at FROM terms_acceptances"
        " WHERE user_id = ? AND terms_seq = ?",
        (user_id, terms_seq),
    )
    return _acceptance(row) if row else None


def acceptances_of(tx: Tx, user_id: UserId) -> list[Acceptance]:
    """Every consent a person gave, oldest first (for their GDPR export)."""
    rows = tx.fetchall(
        "SELECT user_id, version, terms_seq, accepted_at FROM terms_acceptances"
        " WHERE user_id = ? ORDER BY terms_seq",
        (user_id,),
    )
    return [_acceptance(r) for r in rows]


def _acceptance(row: Row) -> Acceptance:
    return Acceptance(
        user_id=UserId(row["user_id"]),
        version=row["version"],
        terms_seq=int(row["terms_seq"]),
        accepted_at=int(row["accepted_at"]),
    )
