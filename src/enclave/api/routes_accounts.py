"""Login, logout, the current user, and user administration."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from enclave.api import schemas as s
from enclave.api.deps import Actor, ClientIp, Ctx, Session, limit_login
from enclave.api.errors import ERROR_RESPONSES
from enclave.domain import wire
from enclave.domain.models import OrgRole
from enclave.services import accounts

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)


@router.post(
    "/auth/login",
    response_model=s.LoginOut,
    tags=["auth"],
    dependencies=[Depends(limit_login)],
)
async def login(body: s.LoginIn, ctx: Ctx, request: Request, ip: ClientIp) -> dict[str, Any]:
    """Exchange a username and password for a bearer token. Repeated failures lock the account
    for this address (and the address) for a while: 429 `rate_limited` with `Retry-After`."""
    result = await accounts.login(ctx, body.username, body.password, _user_agent(request), ip)
    return {"token": result.token, "user": wire.user(result.user)}


def _user_agent(request: Request) -> str:
    """The User-Agent as a printable label: it is stored with the session, and PostgreSQL
    refuses text with NUL bytes."""
    return "".join(ch for ch in request.headers.get("user-agent", "") if ch.isprintable())


@router.post("/auth/logout", status_code=204, tags=["auth"])
async def logout(ctx: Ctx, session: Session) -> Response:
    """End this session; the token stops working at once."""
    await accounts.logout(ctx, session)
    return Response(status_code=204)


@router.get("/users/me", response_model=s.UserOut, tags=["users"])
async def me(session: Session) -> dict[str, Any]:
    return wire.user(session.user)


@router.post("/users/me/password", status_code=204, tags=["users"])
async def change_password(body: s.PasswordChangeIn, ctx: Ctx, session: Session) -> Response:
    """Change your password; your other sessions are signed out."""
    await accounts.change_password(ctx, session, body.current_password, body.new_password)
    return Response(status_code=204)


@router.get("/users/me/sessions", response_model=s.SessionList, tags=["users"])
async def my_sessions(ctx: Ctx, session: Session) -> dict[str, Any]:
    """Your open sessions (devices), most recently used first."""
    found = await accounts.my_sessions(ctx, session)
    return {"sessions": [dataclasses.asdict(x) for x in found]}


@router.delete("/users/me/sessions/{session_id}", status_code=204, tags=["users"])
async def revoke_session(
    session_id: Annotated[str, Path(max_length=64)], ctx: Ctx, session: Session
) -> Response:
    """Sign out one of your sessions; its live connections close."""
    await accounts.revoke_session(ctx, session, session_id)
    return Response(status_code=204)


@router.get("/users", response_model=s.UserList, tags=["users"])
async def list_users(
    ctx: Ctx,
    actor: Actor,
    after: Annotated[str, Query(max_length=32, pattern=r"^[a-z0-9._-]*$")] = "",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    include_inactive: bool = False,
) -> dict[str, Any]:
    """People of your organization by username; page with `after` = the last username."""
    limit = min(limit, ctx.config.limits.page_max)
    users = await accounts.list_users(
        ctx, actor, include_inactive=include_inactive, after=after, limit=limit
    )
    return {"users": [wire.user(u) for u in users]}


@router.post("/users", status_code=201, response_model=s.UserOut, tags=["users"])
async def create_user(body: s.UserCreateIn, ctx: Ctx, actor: Actor) -> dict[str, Any]:
    """Create an account (admins and owners)."""
    user = await accounts.create_user(
        ctx,
        actor,
        username=body.username,
        password=body.password,
        display_name=body.display_name,
        role=OrgRole(body.role),
    )
    return wire.user(user)


@router.get("/users/{user_id}", response_model=s.UserOut, tags=["users"])
async def get_user(user_id: str, ctx: Ctx, actor: Actor) -> dict[str, Any]:
    return wire.user(await accounts.get_user(ctx, actor, user_id))


@router.post("/users/{user_id}/deactivate", response_model=s.UserOut, tags=["users"])
async def deactivate_user(user_id: str, ctx: Ctx, actor: Actor) -> dict[str, Any]:
    """Deactivate an account and sign it out everywhere (admins and owners)."""
    return wire.user(await accounts.set_active(ctx, actor, user_id, active=False))


@router.post("/users/{user_id}/activate", response_model=s.UserOut, tags=["users"])
async def activate_user(user_id: str, ctx: Ctx, actor: Actor) -> dict[str, Any]:
    return wire.user(await accounts.set_active(ctx, actor, user_id, active=True))
