"""Accounts: first-run bootstrap, login and sessions, user administration."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

from enclave.crypto import tokens
from enclave.domain.devices import device_label
from enclave.domain.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    RateLimited,
    Unauthenticated,
)
from enclave.domain.ids import OrgId, UserId, is_valid_id, new_id
from enclave.domain.models import Org, OrgRole, OrgSettings, Session, User
from enclave.domain.policy import OrgAction, Scope
from enclave.domain.signals import AccessChanged, SessionsRevoked
from enclave.services import audit, gates, lockout, mfa, validate
from enclave.services.context import Changes, Context, write
from enclave.storage import accounts as store
from enclave.storage import mfa as mfa_store
from enclave.storage import orgs as org_store
from enclave.storage.base import Tx, UniqueViolation

_TOUCH_EVERY_MS = 60_000
ERASURE_MODES = ("pseudonymize", "delete")
"""What erasing a person does to their messages (an organization setting; services.erasure)."""


@dataclass(frozen=True)
class Bootstrap:
    """Printed once on first start: who the owner is and their one-time password."""

    org: Org
    owner: User
    one_time_password: str


@dataclass(frozen=True)
class LoginResult:
    token: str
    user: User


@dataclass(frozen=True)
class Authenticated:
    user: User
    token_hash: bytes


# -- first run --------------------------------------------------------------------------------


async def bootstrap(ctx: Context) -> Bootstrap | None:
    """Create the first organization and its owner with a one-time password, once ever."""
    existing = await ctx.db.read(store.first_org)
    if existing is not None:
        return None
    password = tokens.new_password()
    pw_hash = await ctx.cpu(ctx.passwords.hash, password)
    cfg = ctx.config.org
    username = validate.username(cfg.owner_username)

    def work(ch: Changes) -> Bootstrap | None:
        if store.first_org(ch.tx) is not None:  # another node won the race
            return None
        org, owner = insert_org_with_owner(ch, cfg.name, username, pw_hash)
        return Bootstrap(org=org, owner=owner, one_time_password=password)

    return await write(ctx, work)


def insert_org_with_owner(ch: Changes, name: str, username: str, pw_hash: str) -> tuple[Org, User]:
    """Store a new organization and its owner, who must change the one-time password first (the
    first run, and `enclave orgs create`); a taken username raises UniqueViolation."""
    org = Org(id=OrgId(new_id()), name=name, created_at=ch.now)
    store.insert_org(ch.tx, org)
    owner = User(
        id=UserId(new_id()),
        org_id=org.id,
        username=username,
        display_name="Administrator",
        role=OrgRole.OWNER,
        is_active=True,
        must_change_password=True,
        created_at=ch.now,
    )
    store.insert_user(ch.tx, owner, pw_hash)
    return org, owner


# -- sessions ---------------------------------------------------------------------------------


async def login(
    ctx: Context,
    username: str,
    password: str,
    user_agent: str = "",
    ip: str | None = None,
    *,
    otp: str | None = None,
    recovery_code: str | None = None,
) -> LoginResult:
    """Check a password (and the second factor of an account with MFA) and open a session;
    wrong name and wrong password look the same.

    `ip` is the client's address, for the lockout (see `services.lockout`): while locked, every
    attempt is refused with `rate_limited` before the password is looked at. With MFA on and the
    password right, a missing code answers `mfa_required`; a wrong code answers like a wrong
    password and counts as a failure. Every outcome but `mfa_required` is audited."""
    name = username.strip(" \t\r\n").lower()
    try:
        attempt = await lockout.begin(ctx, name, ip)
    except RateLimited:
        await _login_failed(ctx, name, ip, None, "locked_out")
        raise
    try:
        return await _checked_login(ctx, name, password, user_agent, ip, otp, recovery_code)
    finally:
        await attempt.end()


async def _checked_login(
    ctx: Context,
    name: str,
    password: str,
    user_agent: str,
    ip: str | None,
    otp: str | None,
    recovery_code: str | None,
) -> LoginResult:
    """`login` once this attempt holds its lockout slots."""
    found = (
        await ctx.db.read(lambda tx: store.user_with_hash(tx, name)) if _plausible(name) else None
    )
    stored_hash = found[1] if found else None
    ok = await ctx.cpu(ctx.passwords.verify, stored_hash, password)
    if not ok or found is None or not found[0].is_active:
        await lockout.failed(ctx, name, ip)
        reason = "unknown_user" if found is None else "wrong_password" if not ok else "inactive"
        await _login_failed(ctx, name, ip, found[0] if found else None, reason)
        raise Unauthenticated("invalid_credentials", "wrong username or password")
    user = found[0]
    has_mfa = await ctx.db.read(lambda tx: mfa_store.confirmed_at(tx, user.id)) is not None
    if has_mfa and not otp and not recovery_code:
        # Only now that the password is known to be right: the code is the missing piece.
        raise Unauthenticated("mfa_required", "enter the code of your authenticator app")
    token = tokens.new_token()
    auth = ctx.config.auth
    # Hashes made under older Argon2 settings are upgraded while the password is at hand.
    upgraded = (
        await ctx.cpu(ctx.passwords.hash, password)
        if stored_hash and ctx.passwords.needs_rehash(stored_hash)
        else None
    )

    def work(ch: Changes) -> str | None:
        method = "password"
        if has_mfa:
            second = mfa.second_factor(ctx, ch, user, otp, recovery_code, ip=ip)
            if second is None:
                reason = "bad_otp" if otp else "bad_recovery_code"
                _record_login_failure(ctx, ch, name, ip, user, reason)
                return reason
            method = second
        if upgraded is not None:
            store.replace_hash(ch.tx, user.id, stored_hash or "", upgraded)
        session = Session(
            token_hash=tokens.token_hash(token),
            user_id=user.id,
            created_at=ch.now,
            last_used_at=ch.now,
            expires_at=ch.now + auth.session_absolute_days * 86_400_000,
            user_agent=user_agent[:256],
            last_ip=ip,
        )
        store.insert_session(ch.tx, session)
        audit.record(
            ctx,
            ch,
            "auth.login",
            audit.Actor.of(user, ip),
            target=audit.Target.user(user),
            details={"method": method},
        )
        return None

    if await write(ctx, work) is not None:
        await lockout.failed(ctx, name, ip)
        raise Unauthenticated("invalid_credentials", "wrong or already used code")
    await lockout.succeeded(ctx, name, ip)
    return LoginResult(token=token, user=user)


def _record_login_failure(
    ctx: Context, ch: Changes, name: str, ip: str | None, user: User | None, reason: str
) -> None:
    # The attempted name, normalized, printable only (PostgreSQL refuses NUL in text) and cut
    # to a sane length; never the password.
    shown = "".join(c for c in name if c.isprintable())[:64]
    audit.record(
        ctx,
        ch,
        "auth.login",
        audit.Actor(org_id=user.org_id if user else None, ip=ip),
        target=audit.Target("username", shown),
        outcome="failure",
        details={"reason": reason},
    )


async def _login_failed(
    ctx: Context, name: str, ip: str | None, user: User | None, reason: str
) -> None:
    await write(ctx, lambda ch: _record_login_failure(ctx, ch, name, ip, user, reason))


def _set_up_step(password: bool, mfa_missing: bool, terms_pending: bool) -> str | None:
    """The first set-up step an account must still finish, as the error code `authenticate`
    raises for it (in the same order)."""
    if password:
        return "password_change_required"
    if mfa_missing:
        return "mfa_enrollment_required"
    if terms_pending:
        return "terms_acceptance_required"
    return None


async def authenticate(
    ctx: Context,
    token: str,
    *,
    allow_password_change: bool = False,
    allow_mfa_enrollment: bool = False,
    allow_terms_pending: bool = False,
    ip: str | None = None,
) -> Authenticated:
    """Resolve a bearer token to its active user, enforcing session expiry.

    An account that must still set a new password gets `password_change_required`, one whose
    organization requires MFA and that has none yet `mfa_enrollment_required`, and one that has
    not accepted its organization's current terms of use `terms_acceptance_required` (checked in
    this order), unless the caller allows that state (the few endpoints that let the person get
    out of it)."""
    if not token.startswith(tokens.TOKEN_PREFIX) or len(token) > 128:
        raise Unauthenticated("unauthenticated", "invalid or expired token")
    digest = tokens.token_hash(token)
    found = await ctx.db.read(lambda tx: store.session_state(tx, digest))
    now = ctx.clock.now_ms()
    idle_ms = ctx.config.auth.session_idle_minutes * 60_000
    if found is None:
        raise Unauthenticated("unauthenticated", "invalid or expired token")
    session, user, mfa_missing, terms_pending = found
    if not user.is_active or now >= session.expires_at or now - session.last_used_at >= idle_ms:
        raise Unauthenticated("unauthenticated", "invalid or expired token")
    if user.must_change_password and not allow_password_change:
        raise Forbidden("password_change_required", "set a new password first")
    if mfa_missing and not allow_mfa_enrollment:
        raise Forbidden("mfa_enrollment_required", "your organization requires MFA: enrol first")
    if terms_pending and not allow_terms_pending:
        raise Forbidden(
            "terms_acceptance_required", "accept your organization's terms of use first"
        )
    moved = ip is not None and ip != session.last_ip
    if moved or now - session.last_used_at >= _TOUCH_EVERY_MS:
        await write(ctx, lambda ch: store.touch_session(ch.tx, digest, ch.now, ip))
    return Authenticated(user=user, token_hash=digest)


@dataclass(frozen=True)
class LiveState:
    """What the session of an open WebSocket allows now."""

    user: User
    """The account as stored now (role, department, ...)."""
    set_up_step: str | None
    """`password_change_required`, `mfa_enrollment_required` or `terms_acceptance_required`
    when the account must finish that first (the socket must not serve it until then)."""


async def live_states(ctx: Context, token_hashes: list[bytes]) -> dict[bytes, LiveState]:
    """The current state of the sessions of open WebSockets. Sessions that ended (logged out,
    expired, account deactivated) are absent. Sockets are re-checked with this regularly (so
    that a change made by another process such as the CLI, or plain expiry, also reaches them)
    and at once on `AccessChanged`; an open socket is a session in use, so the usable ones
    count as used."""
    idle_ms = ctx.config.auth.session_idle_minutes * 60_000

    def work(ch: Changes) -> dict[bytes, LiveState]:
        states: dict[bytes, LiveState] = {}
        for digest in token_hashes:
            found = store.session_state(ch.tx, digest)
            if found is None:
                continue
            session, user, mfa_missing, terms_pending = found
            fresh = ch.now < session.expires_at and ch.now - session.last_used_at < idle_ms
            if not (fresh and user.is_active):
                continue
            step = _set_up_step(user.must_change_password, mfa_missing, terms_pending)
            states[digest] = LiveState(user, step)
            if step is None and ch.now - session.last_used_at >= _TOUCH_EVERY_MS:
                store.touch_session(ch.tx, digest, ch.now)
        return states

    return await write(ctx, work)


@dataclass(frozen=True)
class SessionInfo:
    """One of the caller's sessions, as they may see it (never the token or its hash)."""

    id: str
    user_agent: str
    device: str
    """A short label such as "Firefox on Linux" (see `domain.devices`)."""
    ip: str | None
    """The address of the last use."""
    created_at: int
    last_used_at: int
    current: bool


def _public_session_id(token_hash: bytes) -> str:
    # Derived from the stored hash, not the hash itself: the lookup key never leaves the server.
    return hashlib.sha256(b"session-id:" + token_hash).hexdigest()[:24]


async def my_sessions(ctx: Context, auth: Authenticated) -> list[SessionInfo]:
    """The caller's open sessions, most recently used first."""
    found = await ctx.db.read(lambda tx: store.user_sessions(tx, auth.user.id))
    return [
        SessionInfo(
            id=_public_session_id(s.token_hash),
            user_agent=s.user_agent,
            device=device_label(s.user_agent),
            ip=s.last_ip,
            created_at=s.created_at,
            last_used_at=s.last_used_at,
            current=s.token_hash == auth.token_hash,
        )
        for s in found
    ]


async def revoke_session(
    ctx: Context, auth: Authenticated, session_id: str, ip: str | None = None
) -> None:
    """End one of the caller's own sessions (its live sockets close too)."""

    def work(ch: Changes) -> bytes:
        for session in store.user_sessions(ch.tx, auth.user.id):
            if _public_session_id(session.token_hash) == session_id:
                store.delete_session(ch.tx, session.token_hash)
                audit.record(
                    ctx,
                    ch,
                    "session.revoked",
                    audit.Actor.of(auth.user, ip),
                    target=audit.Target("session", session_id),
                    details={
                        "scope": "one",
                        "user_id": auth.user.id,
                        "current": session.token_hash == auth.token_hash,
                    },
                )
                return session.token_hash
        raise NotFound("session")

    digest = await write(ctx, work)
    await ctx.bus.publish(SessionsRevoked(auth.user.id, digest))


async def revoke_other_sessions(ctx: Context, auth: Authenticated, ip: str | None = None) -> int:
    """Sign out everywhere else: every session of the caller but this one; returns how many."""

    def work(ch: Changes) -> int:
        count = store.delete_user_sessions(ch.tx, auth.user.id, keep=auth.token_hash)
        audit.record(
            ctx,
            ch,
            "session.revoked",
            audit.Actor.of(auth.user, ip),
            target=audit.Target.user(auth.user),
            details={"scope": "others", "count": count},
        )
        return count

    count = await write(ctx, work)
    await ctx.bus.publish(SessionsRevoked(auth.user.id, None, keep=auth.token_hash))
    return count


async def revoke_user_sessions(
    ctx: Context, actor: User, user_id: str, ip: str | None = None
) -> int:
    """An admin signs a person of their organization out everywhere; returns how many."""
    gates.require_scope(actor, OrgAction.REVOKE_USER_SESSIONS)

    def work(ch: Changes) -> tuple[User, int]:
        # Only an owner signs out an owner; department admins only within their departments.
        user = gates.user_admin(ch.tx, actor, OrgAction.REVOKE_USER_SESSIONS, user_id)
        count = store.delete_user_sessions(ch.tx, user.id)
        audit.record(
            ctx,
            ch,
            "session.revoked",
            audit.Actor.of(actor, ip),
            target=audit.Target.user(user),
            details={"scope": "all", "by_admin": True, "count": count},
        )
        return user, count

    user, count = await write(ctx, work)
    await ctx.bus.publish(SessionsRevoked(user.id, None))
    return count


async def logout(ctx: Context, auth: Authenticated, ip: str | None = None) -> None:
    def work(ch: Changes) -> None:
        store.delete_session(ch.tx, auth.token_hash)
        audit.record(
            ctx,
            ch,
            "auth.logout",
            audit.Actor.of(auth.user, ip),
            target=audit.Target.user(auth.user),
        )

    await write(ctx, work)
    await ctx.bus.publish(SessionsRevoked(auth.user.id, auth.token_hash))


async def change_password(
    ctx: Context, auth: Authenticated, current: str, new: str, ip: str | None = None
) -> None:
    """Change one's own password; every other session of the account is signed out."""
    user = auth.user
    validate.password(new, min_length=ctx.config.auth.min_password_length, username_=user.username)
    stored = await ctx.db.read(lambda tx: store.password_hash(tx, user.id))
    if not await ctx.cpu(ctx.passwords.verify, stored, current):
        raise Unauthenticated("invalid_credentials", "the current password is wrong")
    if current == new:
        raise InvalidInput("weak_password", "the new password must differ from the current one")
    new_hash = await ctx.cpu(ctx.passwords.hash, new)

    def work(ch: Changes) -> None:
        store.set_password(ch.tx, user.id, new_hash, must_change=False)
        count = store.delete_user_sessions(ch.tx, user.id, keep=auth.token_hash)
        audit.record(
            ctx,
            ch,
            "auth.password_changed",
            audit.Actor.of(user, ip),
            target=audit.Target.user(user),
            details={"sessions_revoked": count, "was_required": user.must_change_password},
        )

    await write(ctx, work)
    await ctx.bus.publish(SessionsRevoked(user.id, None, keep=auth.token_hash))


# -- administration ---------------------------------------------------------------------------


async def create_user(
    ctx: Context,
    actor: User | None,
    *,
    username: str,
    password: str,
    display_name: str,
    role: OrgRole = OrgRole.MEMBER,
    department_id: str | None = None,
    ip: str | None = None,
    org_id: OrgId | None = None,
) -> User:
    """Create an account, in `department_id` if given. `actor` None is the operator at the
    server's shell (the CLI), who creates it in `org_id` (default: the only organization;
    with several, one must be named: `org_required`). Department admins create members and
    guests, and only into their own departments (docs/permissions.md)."""
    if actor is not None:
        gates.require_scope(actor, OrgAction.CREATE_USER)
    name = validate.username(username)
    shown = validate.line(display_name or name, field="display_name", max_chars=100)
    validate.password(password, min_length=ctx.config.auth.min_password_length, username_=name)
    pw_hash = await ctx.cpu(ctx.passwords.hash, password)

    def work(ch: Changes) -> User:
        into = actor.org_id if actor is not None else _operator_org(ch.tx, org_id)
        dept = (
            gates.placement(ch.tx, actor, OrgAction.CREATE_USER, department_id, role)
            if actor is not None
            else None
        )
        user = User(
            id=UserId(new_id()),
            org_id=into,
            username=name,
            display_name=shown,
            role=role,
            is_active=True,
            must_change_password=False,
            created_at=ch.now,
            department_id=dept.id if dept else None,
        )
        try:
            store.insert_user(ch.tx, user, pw_hash)
        except UniqueViolation:
            raise Conflict("username_taken", f"username {name!r} is taken") from None
        audit.record(
            ctx,
            ch,
            "user.created",
            audit.Actor.of(actor, ip) if actor else audit.Actor.operator(user.org_id, ip),
            target=audit.Target.user(user),
            details={
                "username": name,
                "role": role.value,
                "department_id": user.department_id,
                "via": "api" if actor else "cli",
            },
        )
        return user

    return await write(ctx, work)


async def list_users(
    ctx: Context,
    actor: User | None,
    *,
    include_inactive: bool,
    after: str,
    limit: int,
    org_id: OrgId | None = None,
) -> list[User]:
    """People of the actor's organization by username (the operator, `actor` None: of `org_id`,
    default the only organization). Guests see only themselves and the people they share a
    conversation with; with `include_inactive`, department admins see the deactivated
    accounts of their own departments only."""
    scope = Scope.ORG
    if actor is not None and include_inactive:
        scope = gates.require_scope(actor, OrgAction.LIST_INACTIVE_USERS)

    def work(tx: Tx) -> list[User]:
        if actor is not None and not gates.may_browse_directory(actor):
            return org_store.users_sharing_conversations(tx, actor, after=after, limit=limit)
        if actor is not None and scope is Scope.SUBTREE:
            return org_store.users_with_inactive_in_subtree(tx, actor, after=after, limit=limit)
        of = actor.org_id if actor else _operator_org(tx, org_id)
        return store.users_in_org(
            tx, of, include_inactive=include_inactive, after=after, limit=limit
        )

    return await ctx.db.read(work)


async def get_user(ctx: Context, actor: User, user_id: str) -> User:
    return await ctx.db.read(lambda tx: gates.org_user(tx, actor, user_id))


async def set_active(
    ctx: Context, actor: User | None, target: str, *, active: bool, ip: str | None = None
) -> User:
    """Deactivate (signing out every session) or reactivate an account."""
    if actor is not None:
        gates.require_scope(actor, OrgAction.DEACTIVATE_USER)

    def work(ch: Changes) -> User:
        if actor is not None:
            # Only an owner acts on an owner; department admins only within their departments.
            user = gates.user_admin(ch.tx, actor, OrgAction.DEACTIVATE_USER, target)
        else:
            by_id = store.user_by_id(ch.tx, target) if is_valid_id(target) else None
            found = by_id or _by_name(ch.tx, target)
            if found is None:
                raise NotFound("user")
            user = found
        demoting_owner = not active and user.role is OrgRole.OWNER and user.is_active
        if demoting_owner and store.count_owners(ch.tx, user.org_id) <= 1:
            raise Conflict("last_owner", "the last owner cannot be deactivated")
        store.set_active(ch.tx, user.id, active)
        count = store.delete_user_sessions(ch.tx, user.id) if not active else 0
        audit.record(
            ctx,
            ch,
            "user.activated" if active else "user.deactivated",
            audit.Actor.of(actor, ip) if actor else audit.Actor.operator(user.org_id, ip),
            target=audit.Target.user(user),
            details={
                "username": user.username,
                "was_active": user.is_active,
                "sessions_revoked": count,
                "via": "api" if actor else "cli",
            },
        )
        return replace(user, is_active=active)

    changed = await write(ctx, work)
    if not active:
        await ctx.bus.publish(SessionsRevoked(changed.id, None))
    return changed


async def reset_password(ctx: Context, username: str, password: str) -> User:
    """Operator reset from the CLI: sets a password and signs the account out everywhere."""
    found = await ctx.db.read(lambda tx: _by_name(tx, username))
    if found is None:
        raise NotFound("user")
    validate.password(
        password, min_length=ctx.config.auth.min_password_length, username_=found.username
    )
    pw_hash = await ctx.cpu(ctx.passwords.hash, password)

    def work(ch: Changes) -> User:
        store.set_password(ch.tx, found.id, pw_hash, must_change=False)
        count = store.delete_user_sessions(ch.tx, found.id)
        audit.record(
            ctx,
            ch,
            "auth.password_reset",
            audit.Actor.operator(found.org_id),
            target=audit.Target.user(found),
            details={"username": found.username, "sessions_revoked": count, "via": "cli"},
        )
        return replace(found, must_change_password=False)

    changed = await write(ctx, work)
    await ctx.bus.publish(SessionsRevoked(changed.id, None))
    return changed


async def org_settings(ctx: Context, actor: User) -> OrgSettings:
    gates.require_org(actor, OrgAction.VIEW_ORG_SETTINGS)
    return await ctx.db.read(lambda tx: store.org_settings(tx, actor.org_id))


async def update_org_settings(
    ctx: Context,
    actor: User,
    *,
    require_mfa: bool | None = None,
    erasure_mode: str | None = None,
    ip: str | None = None,
) -> OrgSettings:
    """Change organization settings (admins and owners); each change is audited."""
    gates.require_org(actor, OrgAction.CHANGE_ORG_SETTINGS)

    def work(ch: Changes) -> OrgSettings:
        before = store.org_settings(ch.tx, actor.org_id)
        after = before
        if require_mfa is not None:
            after = replace(after, require_mfa=require_mfa)
        if erasure_mode is not None:
            if erasure_mode not in ERASURE_MODES:
                raise InvalidInput("validation_error", "erasure_mode: pseudonymize or delete")
            after = replace(after, erasure_mode=erasure_mode)
        changed = {
            name: {"from": getattr(before, name), "to": getattr(after, name)}
            for name in ("require_mfa", "erasure_mode")
            if getattr(before, name) != getattr(after, name)
        }
        if not changed:
            return before
        after = replace(after, updated_at=ch.now)
        store.put_org_settings(ch.tx, after)
        audit.record(
            ctx,
            ch,
            "org.settings_changed",
            audit.Actor.of(actor, ip),
            target=audit.Target("org", actor.org_id),
            details={"changed": changed},
        )
        return after

    after = await write(ctx, work)
    if require_mfa:
        # Live connections of accounts without MFA stop until they enrol (re-checked at once).
        await ctx.bus.publish(AccessChanged(actor.org_id))
    return after


def _plausible(username: str) -> bool:
    try:
        validate.username(username)
    except InvalidInput:
        return False
    return True


def _by_name(tx: Tx, username: str) -> User | None:
    if not _plausible(username):
        return None
    found = store.user_with_hash(tx, username.strip(" \t\r\n").lower())
    return found[0] if found else None


ORGS_LISTED = 20
"""Organizations an `org_required` error names."""


def org_required(orgs: list[Org], why: str = "") -> InvalidInput:
    """The error for an operator who must say which of several organizations they mean."""
    names = ", ".join(f"{o.id} ({o.name})" for o in orgs[:ORGS_LISTED])
    more = f" and {len(orgs) - ORGS_LISTED} more" if len(orgs) > ORGS_LISTED else ""
    why = why or f"there are {len(orgs)} organizations; name one by its id or name"
    return InvalidInput("org_required", f"{why}: {names}{more}")


def _operator_org(tx: Tx, org_id: OrgId | None) -> OrgId:
    """The organization the operator acts on: `org_id`, or else the only one there is."""
    if org_id is not None:
        found = store.org_by_id(tx, org_id)
        if found is None:
            raise NotFound("organization")
        return found.id
    orgs = [org for org, _people in org_store.all_orgs(tx)]
    if not orgs:
        raise Conflict("not_initialized", "run `enclave init` first")
    if len(orgs) > 1:
        raise org_required(orgs)
    return orgs[0].id
