"""Request dependencies: the service context, the client's address, the authenticated caller,
and the request rate limits (token buckets per address, per user and per route)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from enclave.domain.errors import RateLimited, Unauthenticated
from enclave.domain.models import User
from enclave.services import auth, limits, metrics
from enclave.services.auth import Authenticated
from enclave.services.context import Context

_bearer = HTTPBearer(auto_error=False, description="The token from POST /api/v1/auth/login.")


def get_ctx(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


Ctx = Annotated[Context, Depends(get_ctx)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def _token(creds: Credentials) -> str:
    if creds is None or creds.scheme.lower() != "bearer":
        raise Unauthenticated("unauthenticated", "send Authorization: Bearer <token>")
    return creds.credentials


def client_ip(request: Request) -> str | None:
    """The peer's address as the transport gives it (the HTTP layer resolves trusted proxies)."""
    return request.client.host if request.client else None


ClientIp = Annotated[str | None, Depends(client_ip)]


async def _enforce(ctx: Context, key: str, per_second: float, burst: int) -> None:
    try:
        await limits.enforce(
            ctx.limiter, key, per_second=per_second, burst=burst, now_ms=ctx.clock.now_ms()
        )
    except RateLimited:
        metrics.rate_limited(key.rsplit(":", 1)[0])  # the limit's name, without the address/user
        raise


async def limit_ip(ctx: Ctx, ip: ClientIp) -> None:
    """Every REST request: the per-address bucket (`limits.ip_*`)."""
    cfg = ctx.config.limits
    await _enforce(ctx, f"rest:ip:{ip or '-'}", cfg.ip_per_second, cfg.ip_burst)


async def limit_login(ctx: Ctx, ip: ClientIp) -> None:
    """Login attempts per address (`limits.login_*`), on top of the lockout."""
    cfg = ctx.config.limits
    await _enforce(ctx, f"login:rate:{ip or '-'}", cfg.login_per_minute / 60.0, cfg.login_burst)


async def _limit_user(ctx: Context, user: User) -> None:
    cfg = ctx.config.limits
    await _enforce(ctx, f"rest:user:{user.id}", cfg.user_per_second, cfg.user_burst)


async def current_session(
    ctx: Ctx, token: Annotated[str, Depends(_token)], ip: ClientIp
) -> Authenticated:
    """Any valid session, including one that must still change its password, enrol in MFA or
    accept the terms of use (reading /users/me, log-out, the password change, the session
    endpoints, reading and accepting the terms)."""
    session = await auth.authenticate(
        ctx,
        token,
        allow_password_change=True,
        allow_mfa_enrollment=True,
        allow_terms_pending=True,
        ip=ip,
    )
    await _limit_user(ctx, session.user)
    return session


async def mfa_session(
    ctx: Ctx, token: Annotated[str, Depends(_token)], ip: ClientIp
) -> Authenticated:
    """A session whose password is set, that may still have to enrol in MFA (the MFA
    endpoints: how a person gets out of `mfa_enrollment_required`), whatever the state of their
    consent to the terms of use."""
    session = await auth.authenticate(
        ctx, token, allow_mfa_enrollment=True, allow_terms_pending=True, ip=ip
    )
    await _limit_user(ctx, session.user)
    return session


async def current_user(ctx: Ctx, token: Annotated[str, Depends(_token)], ip: ClientIp) -> User:
    """A valid session whose account is fully set up."""
    user = (await auth.authenticate(ctx, token, ip=ip)).user
    await _limit_user(ctx, user)
    return user


Session = Annotated[Authenticated, Depends(current_session)]
MfaSession = Annotated[Authenticated, Depends(mfa_session)]
Actor = Annotated[User, Depends(current_user)]
