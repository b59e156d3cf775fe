"""Service rules that depend on configuration: hash upgrades and the member limit."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from enclave.app import open_context
from enclave.domain.errors import InvalidInput
from enclave.domain.models import ConversationKind, Visibility
from enclave.services import accounts, auth, conversations
from enclave.storage import accounts as account_store
from tests.conftest import TEST_PASSWORD, make_config


async def test_login_upgrades_a_hash_made_under_older_argon2_settings(tmp_path: Path) -> None:
    async with open_context(make_config(tmp_path)) as ctx:
        await accounts.bootstrap(ctx)
        bob = await accounts.create_user(
            ctx, None, username="bob", password=TEST_PASSWORD, display_name="Bob"
        )
        before = await ctx.db.read(lambda tx: account_store.password_hash(tx, bob.id))
    assert before is not None and ",t=2," in before

    stronger = make_config(tmp_path, **{"auth.argon2_time_cost": 3})
    async with open_context(stronger) as ctx:
        await auth.login(ctx, "bob", TEST_PASSWORD)
        after = await ctx.db.read(lambda tx: account_store.password_hash(tx, bob.id))
        assert after is not None and ",t=3," in after
        await auth.login(ctx, "bob", TEST_PASSWORD)  # the upgraded hash still verifies


async def test_joining_a_full_channel_is_refused(tmp_path: Path) -> None:
    config = make_config(tmp_path, **{"limits.group_max_members": 2})
    async with open_context(config) as ctx:
        boot = await accounts.bootstrap(ctx)
        assert boot is not None
        owner = replace(boot.owner, must_change_password=False)
        people = [
            await accounts.create_user(
                ctx, None, username=name, password=TEST_PASSWORD, display_name=name
            )
            for name in ("ann", "ben")
        ]
        created = await conversations.create(
            ctx,
            owner,
            kind=ConversationKind.CHANNEL,
            member_ids=[people[0].id],
            name="small",
            visibility=Visibility.PUBLIC,
        )
        with pytest.raises(InvalidInput) as refused:
            await conversations.join(ctx, people[1], created.conversation.conversation.id)
        assert refused.value.code == "invalid_members"
