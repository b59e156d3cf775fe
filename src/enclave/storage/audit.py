"""The append-only audit log and its chain head."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from enclave import codec
from enclave.domain.audit import GENESIS, AuditEntry
from enclave.storage.base import Row, Tx


def _entry(row: Row) -> AuditEntry:
    return AuditEntry(
        seq=row["seq"],
        at=row["at"],
        action=row["action"],
        org_id=row["org_id"],
        actor_id=row["actor_id"],
        target_type=row["target_type"],
        target_id=row["target_id"],
        ip=row["ip"],
        outcome=row["outcome"],
        details=codec.loads(row["details"]),
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )


def entry_of(row: Row) -> AuditEntry:
    """An entry from a row of `SELECT * FROM audit_log` (for other storage modules)."""
    return _entry(row)


def lock_head(tx: Tx) -> tuple[int, str]:
    """The last entry's (seq, hash), locking the head row until the transaction ends."""
    tx.execute(
        "INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, ?) ON CONFLICT (id) DO NOTHING",
        (GENESIS,),
    )
    # An UPDATE takes the row lock on PostgreSQL; SQLite has a single writer anyway.
    tx.execute("UPDATE audit_head SET seq = seq WHERE id = 1")
    row = tx.fetchone("SELECT seq, hash FROM audit_head WHERE id = 1")
    assert row is not None
    return int(row["seq"]), str(row["hash"])


def append(tx: Tx, entry: AuditEntry) -> None:
    """Insert an entry whose seq and prev_hash came from `lock_head`, and move the head."""
    tx.execute(
        "INSERT INTO audit_log (seq, org_id, at, actor_id, action, target_type, target_id, ip,"
        " outcome, details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            entry.seq,
            entry.org_id,
            entry.at,
            entry.actor_id,
            entry.action,
            entry.target_type,
            entry.target_id,
            entry.ip,
            entry.outcome,
            codec.dumps_text(entry.details),
            entry.prev_hash,
            entry.hash,
        ),
    )
    tx.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", (entry.seq, entry.hash))


def head(tx: Tx) -> tuple[int, str]:
    row = tx.fetchone("SELECT seq, hash FROM audit_head WHERE id = 1")
    if row is None:
        return 0, GENESIS
    return int(row["seq"]), str(row["hash"])


def scan(tx: Tx, after_seq: int, limit: int) -> list[AuditEntry]:
    """Entries in seq order after `after_seq`, every organization (for verification)."""
    rows = tx.fetchall(
        "SELECT * FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)
    )
    return [_entry(r) for r in rows]


@dataclass(frozen=True)
class AuditFilter:
    org_id: str
    before_seq: int | None = None
    action: str | None = None
    actor_id: str | None = None
    target_id: str | None = None
    since: int | None = None
    until: int | None = None
    hidden_prefixes: tuple[str, ...] = ()
    """Leave out entries whose action starts with one of these (at most `HIDDEN_SLOTS`)."""


_NO_BOUND = 2**62
HIDDEN_SLOTS = 4
"""How many action prefixes `page` can leave out: the statement is constant, with one
placeholder per slot; an unused slot gets the pattern '', which no action matches."""


def _like_prefix(text: str) -> str:
    """A LIKE pattern (with ESCAPE '\\') matching everything that starts with `text`."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def page(tx: Tx, f: AuditFilter, limit: int) -> list[AuditEntry]:
    """An organization's entries, newest first, filtered. One constant statement: an absent
    bound becomes a value that admits everything and an absent text filter an empty string, so
    `seq < ?` always bounds the (org_id, seq) index walk on both backends."""
    prefix = "" if f.action is None else _like_prefix(f.action + ".")
    if len(f.hidden_prefixes) > HIDDEN_SLOTS:
        raise ValueError(f"at most {HIDDEN_SLOTS} hidden action prefixes")
    hidden = [_like_prefix(p) for p in f.hidden_prefixes]
    hidden += [""] * (HIDDEN_SLOTS - len(hidden))
    rows = tx.fetchall(
        "SELECT * FROM audit_log WHERE org_id = ? AND seq < ? AND at >= ? AND at < ?"
        " AND (? = '' OR action = ? OR action LIKE ? ESCAPE '\\')"
        " AND (? = '' OR actor_id = ?)"
        " AND (? = '' OR target_id = ?)"
        " AND action NOT LIKE ? ESCAPE '\\' AND action NOT LIKE ? ESCAPE '\\'"
        " AND action NOT LIKE ? ESCAPE '\\' AND action NOT LIKE ? ESCAPE '\\'"
        " ORDER BY seq DESC LIMIT ?",
        (
            f.org_id,
            _NO_BOUND if f.before_seq is None else f.before_seq,
            -_NO_BOUND if f.since is None else f.since,
            _NO_BOUND if f.until is None else f.until,
            f.action or "",
            f.action or "",
            prefix,
            f.actor_id or "",
            f.actor_id or "",
            f.target_id or "",
            f.target_id or "",
            *hidden,
            limit,
        ),
    )
    return [_entry(r) for r in rows]


def iterate(tx: Tx, batch: int = 1000) -> Iterator[AuditEntry]:
    after = 0
    while True:
        entries = scan(tx, after, batch)
        if not entries:
            return
        yield from entries
        after = entries[-1].seq
