"""Multi-factor log-in: TOTP enrolment, its one-time recovery codes, and checking a second
factor. Every change is audited in its own transaction (docs/security.md, "Accounts").

A TOTP code is accepted once: the time step it belongs to is stored, and a code of that or an
earlier step is refused, so a code read over someone's shoulder cannot be replayed. Wrong codes
count as failed log-ins in the lockout (`services.lockout`), on the log-in form and on the
authenticated endpoints alike, so that six digits cannot be guessed by brute force.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from enclave.crypto import recovery_codes, totp
from enclave.domain.errors import Conflict, InvalidInput, Unauthenticated
from enclave.domain.models import User
from enclave.services import audit, lockout
from enclave.services.context import Changes, Context, write
from enclave.storage import accounts as account_store
from enclave.storage import mfa as store
from enclave.storage.base import Tx

ISSUER = "Enclave"


@dataclass(frozen=True)
class Status:
    enrolled: bool
    """A confirmed second factor exists."""
    pending: bool
    """An enrolment was started but not yet confirmed with a first code."""
    confirmed_at: int | None
    recovery_codes_left: int
    required: bool
    """The organization requires MFA of everyone."""


@dataclass(frozen=True)
class Enrolment:
    secret: str
    uri: str
    qr_svg: str
    """The URI as a QR code: an SVG `data:` URI."""


async def status(ctx: Context, user: User) -> Status:
    def work(tx: Tx) -> Status:
        state = store.get(tx, user.id)
        required = account_store.org_settings(tx, user.org_id).require_mfa
        confirmed = state.confirmed_at if state else None
        return Status(
            enrolled=confirmed is not None,
            pending=state is not None and confirmed is None,
            confirmed_at=confirmed,
            recovery_codes_left=store.recovery_codes_left(tx, user.id) if confirmed else 0,
            required=required,
        )

    return await ctx.db.read(work)


async def start_enrolment(ctx: Context, user: User) -> Enrolment:
    """A new secret for an authenticator app; MFA is on only once `confirm` gets a code of it.
    Starting again replaces an unconfirmed secret; a confirmed one must be disabled first."""
    secret = totp.new_secret()

    def work(ch: Changes) -> str:
        if store.confirmed_at(ch.tx, user.id) is not None:
            raise Conflict("mfa_already_enrolled", "disable the current authenticator first")
        store.start(ch.tx, user.id, secret, ch.now)
        org = account_store.org_by_id(ch.tx, user.org_id)
        return f"{ISSUER} ({org.name})" if org else ISSUER

    issuer = await write(ctx, work)
    uri = totp.provisioning_uri(secret, user.username, issuer)
    return Enrolment(secret=secret, uri=uri, qr_svg=totp.qr_svg_data_uri(uri))


def _new_codes(user: User) -> tuple[list[str], list[str]]:
    codes = recovery_codes.new_codes()
    hashes = []
    for code in codes:
        normalized = recovery_codes.normalize(code)
        assert normalized is not None
        hashes.append(recovery_codes.code_hash(user.id, normalized))
    return codes, hashes


async def confirm(ctx: Context, user: User, code: str, ip: str | None = None) -> list[str]:
    """Turn MFA on with a first code of the new secret; return the recovery codes (shown once,
    stored only as hashes)."""
    codes, hashes = _new_codes(user)

    def work(ch: Changes) -> bool:
        state = store.get(ch.tx, user.id)
        if state is None:
            raise Conflict("mfa_not_enrolled", "start the enrolment first")
        if state.confirmed_at is not None:
            raise Conflict("mfa_already_enrolled", "MFA is already on")
        step = (
            totp.matching_step(state.secret, code, ch.now, after_step=state.last_step)
            if state.secret
            else None
        )
        if step is None or not store.use_step(ch.tx, user.id, step, confirm_at=ch.now):
            return False
        store.replace_recovery_codes(ch.tx, user.id, hashes)
        audit.record(
            ctx,
            ch,
            "mfa.enrolled",
            audit.Actor.of(user, ip),
            target=audit.Target.user(user),
            details={"method": "totp"},
        )
        return True

    await _guarded(ctx, user, ip, work)
    return codes


async def disable(
    ctx: Context, user: User, password: str, code: str, ip: str | None = None
) -> None:
    """Turn MFA off: needs the current password and a code (TOTP or a recovery code)."""
    await lockout.check(ctx, user.username, ip)
    stored = await ctx.db.read(lambda tx: account_store.password_hash(tx, user.id))
    if not await ctx.cpu(ctx.passwords.verify, stored, password):
        await lockout.failed(ctx, user.username, ip)
        raise Unauthenticated("invalid_credentials", "the current password is wrong")

    def work(ch: Changes) -> bool:
        _require_enrolled(ch, user)
        method = second_factor(ctx, ch, user, code, ip=ip)
        if method is None:
            return False
        store.delete(ch.tx, user.id)
        audit.record(
            ctx,
            ch,
            "mfa.disabled",
            audit.Actor.of(user, ip),
            target=audit.Target.user(user),
            details={"verified_with": method},
        )
        return True

    await _guarded(ctx, user, ip, work)


async def regenerate_codes(ctx: Context, user: User, code: str, ip: str | None = None) -> list[str]:
    """New recovery codes (the old ones stop working); needs a code (TOTP or recovery code)."""
    codes, hashes = _new_codes(user)

    def work(ch: Changes) -> bool:
        _require_enrolled(ch, user)
        method = second_factor(ctx, ch, user, code, ip=ip)
        if method is None:
            return False
        store.replace_recovery_codes(ch.tx, user.id, hashes)
        audit.record(
            ctx,
            ch,
            "mfa.recovery_codes_regenerated",
            audit.Actor.of(user, ip),
            target=audit.Target.user(user),
            details={"verified_with": method},
        )
        return True

    await _guarded(ctx, user, ip, work)
    return codes


def _require_enrolled(ch: Changes, user: User) -> None:
    if store.confirmed_at(ch.tx, user.id) is None:
        raise Conflict("mfa_not_enrolled", "MFA is not on for this account")


async def _guarded(
    ctx: Context, user: User, ip: str | None, work: Callable[[Changes], bool]
) -> None:
    """Run a code-checking unit of work under the lockout: while locked, refuse at once; a wrong
    code counts as a failed log-in (and is audited) before `invalid_mfa_code` is raised."""
    await lockout.check(ctx, user.username, ip)
    if await write(ctx, work):
        return
    await lockout.failed(ctx, user.username, ip)

    def failed(ch: Changes) -> None:
        audit.record(
            ctx,
            ch,
            "mfa.code_rejected",
            audit.Actor.of(user, ip),
            target=audit.Target.user(user),
            outcome="failure",
            details={"reason": "bad_code"},
        )

    await write(ctx, failed)
    raise InvalidInput("invalid_mfa_code", "the code is wrong, expired or already used")


def second_factor(
    ctx: Context,
    ch: Changes,
    user: User,
    otp: str | None,
    recovery_code: str | None = None,
    *,
    ip: str | None = None,
) -> str | None:
    """Check a TOTP code or a recovery code inside a write transaction; return which one was
    accepted (`totp`, `recovery_code`) or None. A TOTP code's step is used up and a recovery code
    is burnt (and audited) in this transaction. `otp` that does not look like a TOTP code is
    tried as a recovery code, so that one field can take either."""
    if otp and recovery_code is None and recovery_codes.normalize(otp) is not None:
        otp, recovery_code = None, otp
    if otp:
        state = store.get(ch.tx, user.id)
        if state is None or state.confirmed_at is None or state.secret is None:
            return None
        step = totp.matching_step(state.secret, otp, ch.now, after_step=state.last_step)
        if step is None or not store.use_step(ch.tx, user.id, step):
            return None
        return "totp"
    if recovery_code:
        normalized = recovery_codes.normalize(recovery_code)
        if normalized is None:
            return None
        digest = recovery_codes.code_hash(user.id, normalized)
        if not store.burn_recovery_code(ch.tx, user.id, digest, ch.now):
            return None
        left = store.recovery_codes_left(ch.tx, user.id)
        audit.record(
            ctx,
            ch,
            "mfa.recovery_code_used",
            audit.Actor.of(user, ip),
            target=audit.Target.user(user),
            details={"codes_left": left},
        )
        return "recovery_code"
    return None
