"""Sessions and user administration through the SDK."""

from __future__ import annotations

import pytest

from enclave.services import accounts
from enclave.services.context import Context
from enclave_client import (
    Conflict,
    Forbidden,
    InvalidCredentials,
    PasswordChangeRequired,
    Unauthenticated,
    ValidationFailed,
)
from tests.conftest import TEST_PASSWORD
from tests.sdk.conftest import Connect, People

NEW_PASSWORD = "a different long passphrase"


async def test_login_stores_the_token_and_me_returns_the_user(
    people: People, connect: Connect
) -> None:
    alice = await people.add("alice")
    sdk = connect()
    assert sdk.token is None
    user = await sdk.login("alice", TEST_PASSWORD)
    assert sdk.token is not None
    assert user.id == alice.id
    assert (user.username, user.display_name, user.role) == ("alice", "alice", "member")
    assert user.is_active
    assert not user.must_change_password
    assert user.created_at > 0
    assert await sdk.me() == user


async def test_a_token_from_the_constructor_is_used(people: People, connect: Connect) -> None:
    await people.add("alice")
    first = connect()
    await first.login("alice", TEST_PASSWORD)
    second = connect(first.token)
    assert (await second.me()).username == "alice"


async def test_logout_ends_the_session(people: People, connect: Connect) -> None:
    await people.add("alice")
    sdk = connect()
    await sdk.login("alice", TEST_PASSWORD)
    token = sdk.token
    await sdk.logout()
    assert sdk.token is None
    with pytest.raises(Unauthenticated):
        await connect(token).me()
    await sdk.logout()  # logging out twice is harmless
    with pytest.raises(Unauthenticated):
        await sdk.me()


async def test_wrong_password_or_unknown_user_is_invalid_credentials(
    people: People, connect: Connect
) -> None:
    await people.add("alice")
    sdk = connect()
    for username, password in [("alice", "not the password"), ("nobody", TEST_PASSWORD)]:
        with pytest.raises(InvalidCredentials) as info:
            await sdk.login(username, password)
        assert (info.value.code, info.value.status) == ("invalid_credentials", 401)
        assert not isinstance(info.value, Unauthenticated)
    assert sdk.token is None


async def test_requests_without_a_valid_token_are_unauthenticated(connect: Connect) -> None:
    for sdk in (connect(), connect("enc_not-a-real-token")):
        with pytest.raises(Unauthenticated) as info:
            await sdk.list_conversations()
        assert (info.value.code, info.value.status) == ("unauthenticated", 401)


async def test_change_password_signs_out_other_sessions(people: People, connect: Connect) -> None:
    alice = await people.add("alice")
    laptop = connect()
    await laptop.login("alice", TEST_PASSWORD)

    with pytest.raises(InvalidCredentials):
        await alice.sdk.change_password("wrong current password", NEW_PASSWORD)
    with pytest.raises(ValidationFailed) as weak:
        await alice.sdk.change_password(TEST_PASSWORD, "short")
    assert weak.value.code == "weak_password"

    await alice.sdk.change_password(TEST_PASSWORD, NEW_PASSWORD)
    assert (await alice.sdk.me()).id == alice.id  # this session stays
    with pytest.raises(Unauthenticated):
        await laptop.me()
    with pytest.raises(InvalidCredentials):
        await connect().login("alice", TEST_PASSWORD)
    assert (await connect().login("alice", NEW_PASSWORD)).id == alice.id


async def test_a_one_time_password_must_be_changed_first(ctx: Context, connect: Connect) -> None:
    boot = await accounts.bootstrap(ctx)
    assert boot is not None
    sdk = connect()
    user = await sdk.login(boot.owner.username, boot.one_time_password)
    assert user.must_change_password
    assert user.role == "owner"
    with pytest.raises(PasswordChangeRequired) as info:
        await sdk.list_conversations()
    assert (info.value.code, info.value.status) == ("password_change_required", 403)
    assert (await sdk.me()).must_change_password

    await sdk.change_password(boot.one_time_password, TEST_PASSWORD)
    assert not (await sdk.me()).must_change_password
    assert await sdk.list_conversations() == []


async def test_create_get_and_list_users(people: People) -> None:
    owner = await people.owner()
    carol = await owner.sdk.create_user(
        "carol", TEST_PASSWORD, display_name="Carol Ng", role="admin"
    )
    assert (carol.username, carol.display_name, carol.role) == ("carol", "Carol Ng", "admin")
    assert carol.is_active
    dave = await owner.sdk.create_user("dave", TEST_PASSWORD)
    assert (dave.display_name, dave.role) == ("dave", "member")
    assert await owner.sdk.get_user(carol.id) == carol

    everyone = await owner.sdk.list_users()
    names = [u.username for u in everyone]
    assert names == sorted(names)
    assert set(names) == {owner.username, "carol", "dave"}
    first = await owner.sdk.list_users(limit=1)
    second = await owner.sdk.list_users(after=first[0].username, limit=1)
    assert [first[0].username, second[0].username] == names[:2]


async def test_create_user_rejections(people: People) -> None:
    owner = await people.owner()
    bob = await people.add("bob")
    with pytest.raises(Conflict) as taken:
        await owner.sdk.create_user("bob", TEST_PASSWORD)
    assert (taken.value.code, taken.value.status) == ("username_taken", 409)
    with pytest.raises(ValidationFailed) as weak:
        await owner.sdk.create_user("erin", "short")
    assert (weak.value.code, weak.value.status) == ("weak_password", 422)
    with pytest.raises(ValidationFailed) as bad_name:
        await owner.sdk.create_user("x", TEST_PASSWORD)
    assert bad_name.value.code == "invalid_username"
    with pytest.raises(Forbidden) as forbidden:
        await bob.sdk.create_user("erin", TEST_PASSWORD)
    assert (forbidden.value.code, forbidden.value.status) == ("forbidden", 403)


async def test_deactivate_and_activate_a_user(people: People, connect: Connect) -> None:
    owner = await people.owner()
    bob = await people.add("bob")

    off = await owner.sdk.deactivate_user(bob.id)
    assert off.id == bob.id
    assert not off.is_active
    with pytest.raises(Unauthenticated):
        await bob.sdk.me()
    with pytest.raises(InvalidCredentials):
        await connect().login("bob", TEST_PASSWORD)
    assert "bob" not in [u.username for u in await owner.sdk.list_users()]
    listed = await owner.sdk.list_users(include_inactive=True)
    assert [u.is_active for u in listed if u.username == "bob"] == [False]

    on = await owner.sdk.activate_user(bob.id)
    assert on.is_active
    again = connect()
    await again.login("bob", TEST_PASSWORD)
    with pytest.raises(Forbidden):
        await again.deactivate_user(owner.id)
    with pytest.raises(Forbidden):
        await again.list_users(include_inactive=True)


async def test_terms_are_read_and_accepted(people: People, connect: Connect) -> None:
    bob = await people.add("bob")
    none = await bob.sdk.terms()
    assert (none.version, none.accepted) == (None, True)
    owner = await people.world.owner()  # publishing is an admin screen's job, not the SDK's
    resp = await people.world.client.put(
        "/api/v1/org/terms", json={"version": "v1", "text": "Be kind."}, headers=owner.headers
    )
    assert resp.status_code == 200, resp.text
    with pytest.raises(Forbidden) as info:
        await bob.sdk.list_conversations()
    assert info.value.code == "terms_acceptance_required"
    shown = await bob.sdk.terms()
    assert (shown.version, shown.text, shown.accepted) == ("v1", "Be kind.", False)
    with pytest.raises(Conflict) as outdated:
        await bob.sdk.accept_terms("v0")
    assert outdated.value.code == "terms_outdated"
    accepted = await bob.sdk.accept_terms("v1")
    assert accepted.accepted and accepted.accepted_at is not None
    assert await bob.sdk.list_conversations() == []
