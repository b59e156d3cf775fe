"""Changes whose signal never reaches a node (made by another process such as the CLI, or lost
on the way) still reach its open sockets at the regular re-check
(`realtime.session_check_seconds`, one second here)."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect

from enclave.config import Config
from enclave.domain.ids import UserId
from enclave.domain.models import OrgRole, Terms
from enclave.services.context import Context
from enclave.storage import accounts as account_store
from enclave.storage import orgs as org_store
from enclave.storage import terms as terms_store
from enclave.storage.base import Tx
from tests.conftest import World
from tests.realtime.conftest import Live
from tests.realtime.test_access_changes import ask, closed_with, next_frame, open_ws


@pytest.fixture
def config(config: Config) -> Config:
    """The backend's configuration, re-checking sockets every second."""
    realtime = config.realtime.model_copy(update={"session_check_seconds": 1.0})
    return config.model_copy(update={"realtime": realtime})


async def test_changes_made_without_a_signal_reach_sockets_at_the_re_check(
    world: World, live: Live, ctx: Context
) -> None:
    owner = await world.owner()
    bob, carol = await world.person("bob"), await world.person("carol")
    bob_ws, carol_ws = await open_ws(live, bob.token), await open_ws(live, carol.token)

    # Straight into the database, as another process would: no signal on this node's bus.
    await ctx.db.write(lambda tx: org_store.set_role(tx, UserId(bob.id), OrgRole.GUEST))
    updated = await next_frame(bob_ws, "account.updated", timeout=10)
    assert updated["user"]["role"] == "guest"

    def publish(tx: Tx) -> None:
        user = account_store.user_by_id(tx, owner.id)
        assert user is not None
        terms = Terms(
            org_id=user.org_id,
            seq=1,
            version="v1",
            text="Be kind.",
            published_by=owner.id,
            published_at=0,
        )
        terms_store.publish(tx, terms)
        terms_store.accept(tx, UserId(carol.id), user.org_id, terms, 0)

    await ctx.db.write(publish)
    assert await closed_with(bob_ws) == (4003, "terms_acceptance_required")
    # Carol accepted: her socket outlives more re-checks.
    await asyncio.sleep(2.5)
    assert (await ask(carol_ws, {"type": "ping"}))["type"] == "pong"
    await carol_ws.close()

    refused = await connect(live.url.replace("http://", "ws://") + "/api/v1/ws", compression=None)
    await refused.send(json.dumps({"type": "hello", "token": bob.token, "cursors": {}}))
    assert await closed_with(refused) == (4003, "terms_acceptance_required")
