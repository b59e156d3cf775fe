"""How failures reach SDK users: typed exceptions mapped from the server's error codes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest

from enclave_client import (
    Conflict,
    ConnectionFailed,
    EnclaveClient,
    EnclaveError,
    ErrorDetail,
    Forbidden,
    InvalidCredentials,
    NotFound,
    ProtocolError,
    RateLimited,
    ServerError,
    Unauthenticated,
    ValidationFailed,
)
from tests.sdk.conftest import Connect, People

MISSING_ID = "a" * 26  # shaped like a real id, but nothing has it

Probe = Callable[[EnclaveClient, str], Awaitable[object]]

CONVERSATION_PROBES: dict[str, Probe] = {
    "get_conversation": lambda c, i: c.get_conversation(i),
    "messages": lambda c, i: c.messages(i),
    "iter_messages": lambda c, i: anext(aiter(c.iter_messages(i))),
    "members": lambda c, i: c.members(i),
    "send_message": lambda c, i: c.send_message(i, "let me in"),
    "join": lambda c, i: c.join(i),
    "mark_read": lambda c, i: c.mark_read(i, 1),
    "update_conversation": lambda c, i: c.update_conversation(i, topic="x"),
}
MESSAGE_PROBES: dict[str, Probe] = {
    "get_message": lambda c, i: c.get_message(i),
    "thread": lambda c, i: c.thread(i),
    "reactions": lambda c, i: c.reactions(i),
    "add_reaction": lambda c, i: c.add_reaction(i, "👀"),
    "message_versions": lambda c, i: c.message_versions(i),
    "edit_message": lambda c, i: c.edit_message(i, "mine now"),
}


async def _failure(call: Awaitable[object]) -> tuple[type[EnclaveError], str, str, int | None]:
    with pytest.raises(EnclaveError) as info:
        await call
    e = info.value
    return type(e), e.code, e.message, e.status


@pytest.mark.parametrize("probe", sorted(CONVERSATION_PROBES))
async def test_a_private_conversation_looks_exactly_like_a_missing_one(
    people: People, probe: str
) -> None:
    alice = await people.add("alice")
    bob = await people.add("bob")
    eve = await people.add("eve")
    private = await alice.sdk.create_conversation("group", [bob.id], name="Private")
    await alice.sdk.send_message(private.id, "secret")
    call = CONVERSATION_PROBES[probe]

    hidden = await _failure(call(eve.sdk, private.id))
    assert hidden == (NotFound, "not_found", "conversation not found", 404)
    assert await _failure(call(eve.sdk, MISSING_ID)) == hidden
    assert await _failure(call(eve.sdk, "nonsense")) == hidden
    await call(bob.sdk, private.id)  # a member gets an answer


@pytest.mark.parametrize("probe", sorted(MESSAGE_PROBES))
async def test_a_message_of_a_private_conversation_looks_exactly_like_a_missing_one(
    people: People, probe: str
) -> None:
    alice = await people.add("alice")
    bob = await people.add("bob")
    eve = await people.add("eve")
    private = await alice.sdk.create_conversation("group", [bob.id], name="Private")
    secret = (await bob.sdk.send_message(private.id, "secret")).message
    call = MESSAGE_PROBES[probe]

    hidden = await _failure(call(eve.sdk, secret.id))
    assert hidden == (NotFound, "not_found", "message not found", 404)
    assert await _failure(call(eve.sdk, MISSING_ID)) == hidden
    assert await _failure(call(eve.sdk, "nonsense")) == hidden
    await call(bob.sdk, secret.id)  # the sender gets an answer


async def test_ids_cannot_escape_their_path_segment(people: People) -> None:
    alice = await people.add("alice")
    for sneaky in ("../users/me", "..", ".", "me?x=1", "me#x"):
        with pytest.raises(NotFound):
            await alice.sdk.get_user(sneaky)
    with pytest.raises(ValueError, match="empty"):
        await alice.sdk.get_user("")


async def test_visible_but_not_allowed_is_forbidden(people: People) -> None:
    alice = await people.add("alice")
    bob = await people.add("bob")
    channel = await alice.sdk.create_conversation("channel", [], name="general")
    with pytest.raises(Forbidden) as outsider:
        await bob.sdk.send_message(channel.id, "hi")
    assert (outsider.value.code, outsider.value.status) == ("not_a_member", 403)
    assert await bob.sdk.members(channel.id)  # yet the public channel is visible


async def test_validation_errors_carry_the_field(people: People) -> None:
    alice = await people.add("alice")
    with pytest.raises(ValidationFailed) as info:
        await alice.sdk.list_users(limit=0)
    assert (info.value.code, info.value.status) == ("validation_error", 422)
    assert [d.field for d in info.value.details] == ["query.limit"]
    assert all(isinstance(d, ErrorDetail) and d.problem for d in info.value.details)
    assert info.value.request_id  # from the X-Request-Id header
    bob = await people.add("bob")
    group = await alice.sdk.create_conversation("group", [bob.id])
    with pytest.raises(ValidationFailed) as empty:
        await alice.sdk.send_message(group.id, "   ")
    assert empty.value.code == "invalid_text"


async def test_an_unreachable_server_is_connection_failed() -> None:
    # Port 1 on the loopback interface refuses connections at once.
    async with EnclaveClient("http://127.0.0.1:1", timeout=5.0, retry_backoff=0) as sdk:
        with pytest.raises(ConnectionFailed) as info:
            await sdk.me()
        assert (info.value.code, info.value.status) == ("connection_failed", None)
        assert isinstance(info.value.__cause__, httpx.ConnectError)
        with pytest.raises(ConnectionFailed):
            await sdk.login("alice", "whatever")


async def test_a_timeout_is_connection_failed_and_only_send_message_retries(
    connect: Connect,
) -> None:
    attempts: list[str] = []

    def hang(request: httpx.Request) -> httpx.Response:
        attempts.append(request.method)
        raise httpx.ReadTimeout("no answer", request=request)

    sdk = connect("t", transport=httpx.MockTransport(hang), retry_backoff=0, max_retries=2)
    with pytest.raises(ConnectionFailed):
        await sdk.get_message(MISSING_ID)
    assert attempts == ["GET"]
    with pytest.raises(ConnectionFailed):
        await sdk.send_message(MISSING_ID, "hi")
    assert attempts == ["GET", "POST", "POST", "POST"]


def _answer(status: int, body: bytes, headers: dict[str, str] | None = None) -> EnclaveClient:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers=headers)

    return EnclaveClient("http://test", token="t", transport=httpx.MockTransport(handler))


def _error(code: str, message: str = "m", request_id: str | None = None) -> bytes:
    extra = f', "request_id": "{request_id}"' if request_id else ""
    return f'{{"error": {{"code": "{code}", "message": "{message}"{extra}}}}}'.encode()


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        # Known codes decide, whatever the status.
        (401, "invalid_credentials", InvalidCredentials),
        (401, "unauthenticated", Unauthenticated),
        (400, "not_found", NotFound),
        (409, "last_owner", Conflict),
        (503, "unavailable", ServerError),
        (500, "internal_error", ServerError),
        # Unknown codes fall back to the status.
        (404, "some_new_code", NotFound),
        (409, "some_new_code", Conflict),
        (422, "some_new_code", ValidationFailed),
        (403, "some_new_code", Forbidden),
        (429, "some_new_code", RateLimited),
        (502, "some_new_code", ServerError),
        (418, "some_new_code", EnclaveError),
    ],
)
async def test_error_mapping_by_code_then_status(
    status: int, code: str, expected: type[EnclaveError]
) -> None:
    async with _answer(status, _error(code, "what happened", "req-1")) as sdk:
        with pytest.raises(EnclaveError) as info:
            await sdk.me()
    assert type(info.value) is expected
    e = info.value
    assert (e.code, e.message, e.status, e.request_id) == (code, "what happened", status, "req-1")
    assert "what happened" in str(e)


async def test_rate_limited_carries_retry_after() -> None:
    async with _answer(429, _error("rate_limited"), {"Retry-After": "7"}) as sdk:
        with pytest.raises(RateLimited) as info:
            await sdk.list_conversations()
    assert info.value.retry_after == 7.0
    async with _answer(429, _error("rate_limited")) as sdk:
        with pytest.raises(RateLimited) as bare:
            await sdk.list_conversations()
    assert bare.value.retry_after is None


async def test_a_non_json_error_page_is_mapped_by_status() -> None:
    headers = {"content-type": "text/html", "x-request-id": "proxy-9"}
    async with _answer(502, b"<html>Bad Gateway</html>", headers) as sdk:
        with pytest.raises(ServerError) as info:
            await sdk.me()
    assert (info.value.code, info.value.status, info.value.request_id) == (
        "http_error",
        502,
        "proxy-9",
    )


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"id": "x"}',
        b'{"id": "x", "username": "a", "display_name": "a", "role": "emperor", "is_active": true,'
        b' "must_change_password": false, "created_at": 1}',
        b'{"id": "x", "username": "a", "display_name": "a", "role": "member", "is_active": 1,'
        b' "must_change_password": false, "created_at": 1}',
    ],
)
async def test_a_response_breaking_the_contract_is_a_protocol_error(body: bytes) -> None:
    async with _answer(200, body) as sdk:
        with pytest.raises(ProtocolError) as info:
            await sdk.me()
    assert info.value.code == "unexpected_response"
