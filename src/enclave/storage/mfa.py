"""A person's second factor: the TOTP secret (sealed at rest) and hashed recovery codes.

The secret is the one value here that must never be readable from the database alone: it is
sealed with the person's data key (`tx.sealer`, scope `user:<id>`), with the row identity bound
in as associated data. This module is the one place that seals and opens it.
"""

from __future__ import annotations

from dataclasses import dataclass

from enclave.domain.ids import UserId, user_scope
from enclave.storage.base import Tx


@dataclass(frozen=True, slots=True)
class Mfa:
    user_id: UserId
    secret: str | None
    """The TOTP secret in base32; None if the person's data key was shredded."""
    confirmed_at: int | None
    last_step: int
    """The last TOTP time step accepted; a code of this or an earlier step is refused."""
    created_at: int


def _aad(user_id: str) -> str:
    return f"user_mfa.secret|{user_id}"


def get(tx: Tx, user_id: UserId) -> Mfa | None:
    row = tx.fetchone(
        "SELECT secret, confirmed_at, last_step, created_at FROM user_mfa WHERE user_id = ?",
        (user_id,),
    )
    if row is None:
        return None
    return Mfa(
        user_id=user_id,
        secret=tx.sealer.open(tx, _aad(user_id), row["secret"]),
        confirmed_at=row["confirmed_at"],
        last_step=row["last_step"],
        created_at=row["created_at"],
    )


def confirmed_at(tx: Tx, user_id: UserId) -> int | None:
    """When the person's MFA was confirmed (None: not enrolled), without opening the secret."""
    row = tx.fetchone("SELECT confirmed_at FROM user_mfa WHERE user_id = ?", (user_id,))
    return row["confirmed_at"] if row else None


def start(tx: Tx, user_id: UserId, secret: str, now: int) -> None:
    """A new, unconfirmed enrolment, replacing any earlier unconfirmed one."""
    sealed = tx.sealer.seal(tx, user_scope(user_id), now, _aad(user_id), secret)
    tx.execute("DELETE FROM user_mfa WHERE user_id = ?", (user_id,))
    tx.execute(
        "INSERT INTO user_mfa (user_id, secret, confirmed_at, last_step, created_at)"
        " VALUES (?, ?, NULL, 0, ?)",
        (user_id, sealed, now),
    )


def use_step(tx: Tx, user_id: UserId, step: int, *, confirm_at: int | None = None) -> bool:
    """Record `step` as used, only if it is later than the last one used (so that two requests
    racing with the same code cannot both pass); optionally confirm the enrolment too."""
    if confirm_at is not None:
        changed = tx.execute(
            "UPDATE user_mfa SET last_step = ?, confirmed_at = ?"
            " WHERE user_id = ? AND last_step < ? AND confirmed_at IS NULL",
            (step, confirm_at, user_id, step),
        )
    else:
        changed = tx.execute(
            "UPDATE user_mfa SET last_step = ? WHERE user_id = ? AND last_step < ?",
            (step, user_id, step),
        )
    return changed == 1


def delete(tx: Tx, user_id: UserId) -> None:
    tx.execute("DELETE FROM recovery_codes WHERE user_id = ?", (user_id,))
    tx.execute("DELETE FROM user_mfa WHERE user_id = ?", (user_id,))


def replace_recovery_codes(tx: Tx, user_id: UserId, code_hashes: list[str]) -> None:
    tx.execute("DELETE FROM recovery_codes WHERE user_id = ?", (user_id,))
    for code_hash in code_hashes:
        tx.execute(
            "INSERT INTO recovery_codes (user_id, code_hash, used_at) VALUES (?, ?, NULL)",
            (user_id, code_hash),
        )


def burn_recovery_code(tx: Tx, user_id: UserId, code_hash: str, now: int) -> bool:
    """Mark an unused code used; False if there is no such unused code."""
    changed = tx.execute(
        "UPDATE recovery_codes SET used_at = ?"
        " WHERE user_id = ? AND code_hash = ? AND used_at IS NULL",
        (now, user_id, code_hash),
    )
    return changed == 1


def recovery_codes_left(tx: Tx, user_id: UserId) -> int:
    row = tx.fetchone(
        "SELECT COUNT(*) AS n FROM recovery_codes WHERE user_id = ? AND used_at IS NULL",
        (user_id,),
    )
    return int(row["n"]) if row else 0
