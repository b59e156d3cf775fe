"""Accounts: first-run bootstrap, user administration (create, list, deactivate and
reactivate), password change and operator reset, and the organization's settings. Logging in
is `services.auth`; the list and revocation of sessions `services.sessions`."""

from __future__ import annotations

from dataclasses import dataclass, replace

from enclave.crypto import tokens
from enclave.domain.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from enclave.domain.ids import OrgId, UserId, is_valid_id, new_id
from enclave.domain.models import Org, OrgRole, OrgSettings, User
from enclave.domain.policy import OrgAction, Scope
from enclave.domain.signals import AccessChanged, SessionsRevoked
from enclave.services import audit, gates, validate
from enclave.services.auth import Authenticated
from enclave.services.context import Changes, Context, write
from enclave.storage import accounts as store
from enclave.storage import orgs as org_store
from enclave.storage.base import Tx, UniqueViolation

ERASURE_MODES = ("pseudonymize", "delete")
"""What erasing a person does to their messages (an organization setting; services.erasure)."""


@dataclass(frozen=True)
class Bootstrap:
    """Printed once on first start: who the owner is and their one-time password."""

    org: Org
    owner: User
    one_time_password: str


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


# -- passwords ---------------------------------------------------------------------------------


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


def _by_name(tx: Tx, username: str) -> User | None:
    if not validate.is_username(username):
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
