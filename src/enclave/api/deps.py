"""Request dependencies: the service context and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from enclave.domain.errors import Unauthenticated
from enclave.domain.models import User
from enclave.services import accounts
from enclave.services.accounts import Authenticated
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


async def current_session(ctx: Ctx, token: Annotated[str, Depends(_token)]) -> Authenticated:
    """Any valid session, including one that must still change its password."""
    return await accounts.authenticate(ctx, token, allow_password_change=True)


async def current_user(ctx: Ctx, token: Annotated[str, Depends(_token)]) -> User:
    """A valid session whose account is fully set up."""
    return (await accounts.authenticate(ctx, token)).user


Session = Annotated[Authenticated, Depends(current_session)]
Actor = Annotated[User, Depends(current_user)]
