"""What the person may do in their organization, for clients to show the tools that person may
use; the gate computes it from the permission tables, and still decides every request."""

from __future__ import annotations

from functools import partial

from enclave.domain.models import User
from enclave.domain.policy import Capabilities
from enclave.services import gates
from enclave.services.context import Context


async def of(ctx: Context, actor: User) -> Capabilities:
    """The actor's capabilities, with the departments their subtree-scoped actions reach."""
    return await ctx.db.read(partial(gates.capabilities, actor=actor))
