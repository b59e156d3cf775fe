"""Login, logout, the current user, and user administration."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from enclave.api import schemas as s
from enclave.api.deps import Actor, ClientIp, Ctx, MfaSession, Session, limit_login
from enclave.api.errors import ERROR_RESPONSES
from enclave.domain import wire
from enclave.domain.models import OrgRole, OrgSettings
from enclave.services import accounts, auth, capabilities, mfa, sessions

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)


@router.post(
    "/auth/login",
    response_model=s.LoginOut,
    tags=["auth"],
    dependencies=[Depends(limit_login)],
)
async def login(body: s.LoginIn, ctx: Ctx, request: Request, ip: ClientIp) -> dict[str, Any]:
    """Exchange a username and password for a bearer token. Repeated failures lock the account
    for this address (and the address) for a while: 429 `rate_limited` with `Retry-After`.

    An account with MFA also needs `otp` (or a `recovery_code`): with the password right and
    neither given, the answer is 401 `mfa_required`; a wrong code is `invalid_credentials`."""
    result = await auth.login(
        ctx,
        body.username,
        body.password,
        _user_agent(request),
        ip,
        otp=body.otp,
        recovery_code=body.recovery_code,
    )
    return {"token": result.token, "user": wire.user(result.user)}


def _user_agent(request: Request) -> str:
    """The User-Agent as a printable label: it is stored with the session, and PostgreSQL
    refuses text with NUL bytes."""
    return "".join(ch for ch in request.headers.get("user-agent", "") if ch.isprintable())


@router.post("/auth/logout", status_code=204, tags=["auth"])
async def logout(ctx: Ctx, session: Session, ip: ClientIp) -> Response:
    """End this session; the token stops working at once."""
    await auth.logout(ctx, session, ip)
    return Response(status_code=204)


@router.get("/users/me", response_model=s.UserOut, tags=["users"])
async def me(session: Session) -> dict[str, Any]:
    return wire.user(session.user)


@router.get("/users/me/capabilities", response_model=s.CapabilitiesOut, tags=["users"])
async def my_capabilities(ctx: Ctx, session: Session) -> dict[str, Any]:
    """What you may do in your organization, computed from the permission tables
    (docs/permissions.md): which org actions reach how far, which roles you may give and to
    whom, and over which departments. Clients show their tools from it."""
    return wire.capabilities(await capabilities.of(ctx, session.user))


@router.post("/users/me/password", status_code=204, tags=["users"])
async def change_password(
    body: s.PasswordChangeIn, ctx: Ctx, session: Session, ip: ClientIp
) -> Response:
    """Change your password; your other sessions are signed out."""
    await accounts.change_password(ctx, session, body.current_password, body.new_password, ip)
    return Response(status_code=204)


@router.get("/users/me/sessions", response_model=s.SessionList, tags=["users"])
async def my_sessions(ctx: Ctx, session: Session) -> dict[str, Any]:
    """Your open sessions (devices), most recently used first."""
    found = await sessions.my_sessions(ctx, session)
    return {"sessions": [dataclasses.asdict(x) for x in found]}


@router.delete("/users/me/sessions", response_model=s.SessionsRevokedOut, tags=["users"])
async def revoke_other_sessions(ctx: Ctx, session: Session, ip: ClientIp) -> dict[str, Any]:
    """Sign out everywhere else: every session but this one; their live connections close."""
    return {"revoked": await sessions.revoke_other_sessions(ctx, session, ip)}


@router.delete("/users/me/sessions/{session_id}", status_code=204, tags=["users"])
async def revoke_session(
    session_id: Annotated[str, Path(max_length=64)], ctx: Ctx, session: Session, ip: ClientIp
) -> Response:
    """Sign out one of your sessions; its live connections close."""
    await sessions.revoke_session(ctx, session, session_id, ip)
    return Response(status_code=204)


# -- MFA ----------------------------------------------------------------------------------------


def _mfa_status(found: mfa.Status) -> dict[str, Any]:
    return dataclasses.asdict(found)


@router.get("/users/me/mfa", response_model=s.MfaStatusOut, tags=["mfa"])
async def mfa_status(ctx: Ctx, session: MfaSession) -> dict[str, Any]:
    """Whether your account has MFA, how many recovery codes are left, and whether your
    organization requires MFA."""
    return _mfa_status(await mfa.status(ctx, session.user))


@router.post("/users/me/mfa/totp", response_model=s.MfaEnrolmentOut, tags=["mfa"])
async def mfa_start(ctx: Ctx, session: MfaSession) -> dict[str, Any]:
    """Start enrolling an authenticator app: a new secret, its `otpauth://` URI and a QR code.
    MFA is on only after `POST /users/me/mfa/totp/confirm` with a first code. 409
    `mfa_already_enrolled` if MFA is on already (disable it first to change the app)."""
    found = await mfa.start_enrolment(ctx, session.user)
    return {"secret": found.secret, "otpauth_uri": found.uri, "qr_svg": found.qr_svg}


@router.post("/users/me/mfa/totp/confirm", response_model=s.RecoveryCodesOut, tags=["mfa"])
async def mfa_confirm(
    body: s.MfaCodeIn, ctx: Ctx, session: MfaSession, ip: ClientIp
) -> dict[str, Any]:
    """Turn MFA on with a first code of the app; returns 10 one-time recovery codes, shown
    only now. A wrong code: 422 `invalid_mfa_code` (it counts as a failed log-in)."""
    return {"recovery_codes": await mfa.confirm(ctx, session.user, body.code, ip)}


@router.delete("/users/me/mfa", status_code=204, tags=["mfa"])
async def mfa_disable(
    body: s.MfaDisableIn, ctx: Ctx, session: MfaSession, ip: ClientIp
) -> Response:
    """Turn MFA off: needs your password and a code (of the app, or a recovery code)."""
    await mfa.disable(ctx, session.user, body.password, body.code, ip)
    return Response(status_code=204)


@router.post("/users/me/mfa/recovery-codes", response_model=s.RecoveryCodesOut, tags=["mfa"])
async def mfa_regenerate(
    body: s.MfaCodeIn, ctx: Ctx, session: MfaSession, ip: ClientIp
) -> dict[str, Any]:
    """New recovery codes (the old ones stop working); needs a code."""
    return {"recovery_codes": await mfa.regenerate_codes(ctx, session.user, body.code, ip)}


# -- organization -------------------------------------------------------------------------------


@router.get("/org/settings", response_model=s.OrgSettingsOut, tags=["org"])
async def get_org_settings(ctx: Ctx, actor: Actor) -> dict[str, Any]:
    """Your organization's security settings (admins and owners)."""
    found = await accounts.org_settings(ctx, actor)
    return _org_settings(found)


@router.patch("/org/settings", response_model=s.OrgSettingsOut, tags=["org"])
async def patch_org_settings(
    body: s.OrgSettingsIn, ctx: Ctx, actor: Actor, ip: ClientIp
) -> dict[str, Any]:
    """Change settings (admins and owners). `require_mfa`: everyone without MFA is limited to
    enrolling (403 `mfa_enrollment_required` everywhere else) until they have it.
    `erasure_mode`: what erasing a person does to their messages (`pseudonymize` or
    `delete`)."""
    found = await accounts.update_org_settings(
        ctx, actor, require_mfa=body.require_mfa, erasure_mode=body.erasure_mode, ip=ip
    )
    return _org_settings(found)


def _org_settings(found: OrgSettings) -> dict[str, Any]:
    return {
        "require_mfa": found.require_mfa,
        "updated_at": found.updated_at,
        "erasure_mode": found.erasure_mode,
    }


@router.get("/users", response_model=s.UserList, tags=["users"])
async def list_users(
    ctx: Ctx,
    actor: Actor,
    after: Annotated[str, Query(max_length=32, pattern=r"^[a-z0-9._-]*$")] = "",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    include_inactive: bool = False,
) -> dict[str, Any]:
    """People of your organization by username; page with `after` = the last username. A guest
    sees only themselves and the people they share a conversation with."""
    limit = min(limit, ctx.config.limits.page_max)
    users = await accounts.list_users(
        ctx, actor, include_inactive=include_inactive, after=after, limit=limit
    )
    return {"users": [wire.user(u) for u in users]}


@router.post("/users", status_code=201, response_model=s.UserOut, tags=["users"])
async def create_user(body: s.UserCreateIn, ctx: Ctx, actor: Actor, ip: ClientIp) -> dict[str, Any]:
    """Create an account (owners and admins; department admins create members and guests in
    their own departments: `department_id` is then required)."""
    user = await accounts.create_user(
        ctx,
        actor,
        username=body.username,
        password=body.password,
        display_name=body.display_name,
        role=OrgRole(body.role),
        department_id=body.department_id,
        ip=ip,
    )
    return wire.user(user)


@router.get("/users/{user_id}", response_model=s.UserOut, tags=["users"])
async def get_user(user_id: str, ctx: Ctx, actor: Actor) -> dict[str, Any]:
    return wire.user(await accounts.get_user(ctx, actor, user_id))


@router.post("/users/{user_id}/deactivate", response_model=s.UserOut, tags=["users"])
async def deactivate_user(user_id: str, ctx: Ctx, actor: Actor, ip: ClientIp) -> dict[str, Any]:
    """Deactivate an account and sign it out everywhere (admins and owners)."""
    return wire.user(await accounts.set_active(ctx, actor, user_id, active=False, ip=ip))


@router.post("/users/{user_id}/activate", response_model=s.UserOut, tags=["users"])
async def activate_user(user_id: str, ctx: Ctx, actor: Actor, ip: ClientIp) -> dict[str, Any]:
    return wire.user(await accounts.set_active(ctx, actor, user_id, active=True, ip=ip))


@router.post(
    "/users/{user_id}/sessions/revoke", response_model=s.SessionsRevokedOut, tags=["users"]
)
async def revoke_user_sessions(
    user_id: Annotated[str, Path(max_length=64)], ctx: Ctx, actor: Actor, ip: ClientIp
) -> dict[str, Any]:
    """Sign a person of your organization out everywhere (admins and owners; only an owner may
    sign out an owner). Their live connections close."""
    return {"revoked": await sessions.revoke_user_sessions(ctx, actor, user_id, ip)}
