"""What the person may do in their organization (`policy.capabilities`), for clients to show
the tools that person may use; every request is still decided by the gates."""

from __future__ import annotations

from enclave.domain import policy
from enclave.domain.ids import DepartmentId
from enclave.domain.models import User
from enclave.domain.policy import Capabilities
from enclave.services.context import Context
from enclave.storage import orgs as org_store
from enclave.storage.base import Tx


async def of(ctx: Context, actor: User) -> Capabilities:
    """The actor's capabilities, with the departments their subtree-scoped actions reach."""

    def work(tx: Tx) -> list[DepartmentId]:
        return org_store.subtree_ids(tx, actor.id)

    subtree = await ctx.db.read(work) if policy.has_subtree_actions(actor) else []
    return policy.capabilities(actor, subtree)
