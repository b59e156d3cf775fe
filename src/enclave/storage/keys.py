"""Data keys: one per scope and epoch, stored wrapped by a key-encryption key."""

from __future__ import annotations

from dataclasses import dataclass

from enclave.domain.ids import conversation_scope, user_scope
from enclave.storage import accounts, messages
from enclave.storage.base import Row, Tx


@dataclass(frozen=True, slots=True)
class DataKeyRow:
    id: str
    scope: str
    epoch: int
    kek_id: str | None
    wrapped: bytes | None
    """None once shredded."""
    created_at: int
    shredded_at: int | None


def _row(row: Row) -> DataKeyRow:
    wrapped = row["wrapped"]
    return DataKeyRow(
        id=row["id"],
        scope=row["scope"],
        epoch=row["epoch"],
        kek_id=row["kek_id"],
        wrapped=bytes(wrapped) if wrapped is not None else None,
        created_at=row["created_at"],
        shredded_at=row["shredded_at"],
    )


def by_id(tx: Tx, key_id: str) -> DataKeyRow | None:
    row = tx.fetchone(
        "SELECT id, scope, epoch, kek_id, wrapped, created_at, shredded_at FROM data_keys"
        " WHERE id = ?",
        (key_id,),
    )
    return _row(row) if row else None


def by_scope(tx: Tx, scope: str, epoch: int) -> DataKeyRow | None:
    row = tx.fetchone(
        "SELECT id, scope, epoch, kek_id, wrapped, created_at, shredded_at FROM data_keys"
        " WHERE scope = ? AND epoch = ?",
        (scope, epoch),
    )
    return _row(row) if row else None


def insert(tx: Tx, key: DataKeyRow) -> bool:
    """Insert unless the (scope, epoch) already has a key; False if another writer won."""
    return (
        tx.execute(
            "INSERT INTO data_keys (id, scope, epoch, kek_id, wrapped, created_at, shredded_at)"
            " VALUES (?, ?, ?, ?, ?, ?, NULL) ON CONFLICT (scope, epoch) DO NOTHING",
            (key.id, key.scope, key.epoch, key.kek_id, key.wrapped, key.created_at),
        )
        == 1
    )


def wrapped_by_other_keks(tx: Tx, kek_id: str, limit: int) -> list[DataKeyRow]:
    """Live keys not wrapped by `kek_id`, for re-wrapping during a rotation."""
    rows = tx.fetchall(
        "SELECT id, scope, epoch, kek_id, wrapped, created_at, shredded_at FROM data_keys"
        " WHERE wrapped IS NOT NULL AND kek_id <> ?"
        " ORDER BY id LIMIT ?",
        (kek_id, limit),
    )
    return [_row(r) for r in rows]


def rewrap(tx: Tx, key_id: str, old_kek_id: str, new_kek_id: str, wrapped: bytes) -> bool:
    """Replace a key's wrapping, unless it changed meanwhile (shredded, or re-wrapped)."""
    return (
        tx.execute(
            "UPDATE data_keys SET kek_id = ?, wrapped = ?"
            " WHERE id = ? AND kek_id = ? AND wrapped IS NOT NULL",
            (new_kek_id, wrapped, key_id, old_kek_id),
        )
        == 1
    )


def kek_usage(tx: Tx) -> dict[str, int]:
    """How many live data keys each KEK wraps."""
    rows = tx.fetchall(
        "SELECT kek_id, COUNT(*) AS n FROM data_keys WHERE wrapped IS NOT NULL GROUP BY kek_id"
    )
    return {str(r["kek_id"]): int(r["n"]) for r in rows}


def live_in_scope(tx: Tx, scope: str, before_epoch: int | None) -> list[DataKeyRow]:
    """A scope's unshredded keys, all of them or only epochs before `before_epoch`."""
    rows = tx.fetchall(
        "SELECT id, scope, epoch, kek_id, wrapped, created_at, shredded_at FROM data_keys"
        " WHERE scope = ? AND wrapped IS NOT NULL"
        " AND (CAST(? AS BIGINT) IS NULL OR epoch < ?) ORDER BY epoch",
        (scope, before_epoch, before_epoch),
    )
    return [_row(r) for r in rows]


def shred(tx: Tx, key_ids: list[str], now: int) -> int:
    """Destroy the wrapped keys (the row stays, so the id is known to be gone)."""
    changed = 0
    for key_id in key_ids:
        changed += tx.execute(
            "UPDATE data_keys SET wrapped = NULL, kek_id = NULL, shredded_at = ?"
            " WHERE id = ? AND wrapped IS NOT NULL",
            (now, key_id),
        )
    return changed


# -- sealing rows written before encryption at rest existed (schema version 1) ----------------


def seal_legacy_rows(tx: Tx, limit: int) -> int:
    """Seal up to `limit` plaintext values per table left from before encryption at rest;
    return how many. Run in batches until it returns 0 (`enclave.services.keys.seal_legacy`)."""
    done = 0
    for r in tx.fetchall(
        "SELECT id, conversation_id, created_at, text FROM messages"
        " WHERE text IS NOT NULL AND text NOT LIKE 'e1:%' LIMIT ?",
        (limit,),
    ):
        sealed = _seal(tx, conversation_scope(r["conversation_id"]), r, messages.text_aad(r["id"]))
        done += tx.execute("UPDATE messages SET text = ? WHERE id = ?", (sealed, r["id"]))
    for r in tx.fetchall(
        "SELECT v.message_id, v.version, v.created_at, v.text, m.conversation_id"
        " FROM message_versions v JOIN messages m ON m.id = v.message_id"
        " WHERE v.text NOT LIKE 'e1:%' LIMIT ?",
        (limit,),
    ):
        aad = messages.version_aad(r["message_id"], r["version"])
        sealed = _seal(tx, conversation_scope(r["conversation_id"]), r, aad)
        done += tx.execute(
            "UPDATE message_versions SET text = ? WHERE message_id = ? AND version = ?",
            (sealed, r["message_id"], r["version"]),
        )
    for r in tx.fetchall(
        "SELECT conversation_id, seq, created_at, data AS text FROM events"
        " WHERE data NOT LIKE 'e1:%' LIMIT ?",
        (limit,),
    ):
        aad = messages.event_aad(r["conversation_id"], r["seq"])
        sealed = _seal(tx, conversation_scope(r["conversation_id"]), r, aad)
        done += tx.execute(
            "UPDATE events SET data = ? WHERE conversation_id = ? AND seq = ?",
            (sealed, r["conversation_id"], r["seq"]),
        )
    for r in tx.fetchall(
        "SELECT id, created_at, display_name AS text FROM users"
        " WHERE display_name NOT LIKE 'e1:%' LIMIT ?",
        (limit,),
    ):
        sealed = _seal(tx, user_scope(r["id"]), r, accounts.name_aad(r["id"]))
        done += tx.execute("UPDATE users SET display_name = ? WHERE id = ?", (sealed, r["id"]))
    return done


def _seal(tx: Tx, scope: str, row: Row, aad: str) -> str:
    return tx.sealer.seal(tx, scope, row["created_at"], aad, row["text"])


def task_done(tx: Tx, name: str) -> bool:
    return tx.fetchone("SELECT 1 FROM maintenance_done WHERE name = ?", (name,)) is not None


def mark_task_done(tx: Tx, name: str, now: int) -> None:
    tx.execute(
        "INSERT INTO maintenance_done (name, done_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
        (name, now),
    )


def count_shredded(tx: Tx) -> int:
    row = tx.fetchone("SELECT COUNT(*) AS n FROM data_keys WHERE wrapped IS NULL")
    return int(row["n"]) if row else 0
