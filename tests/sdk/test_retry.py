"""send_message survives a flaky network without storing a message twice."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from fastapi import FastAPI

from enclave_client import ConnectionFailed, NotFound, ServerError, ValidationFailed
from tests.sdk.conftest import Connect, People


class Flaky(httpx.AsyncBaseTransport):
    """Forwards to the app, but the first sends fail as `plan` says:
    "refused" (never reaches the server), "lost" (the server stores it, the answer is lost)
    or "503" (a proxy answers that the server is unavailable)."""

    def __init__(self, app: FastAPI, plan: list[str]) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.plan = plan
        self.sends: list[dict[str, object]] = []
        self.times: list[float] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith("/messages"):
            self.sends.append(json.loads(request.content))
            self.times.append(asyncio.get_running_loop().time())
            step = self.plan.pop(0) if self.plan else "ok"
            if step == "refused":
                raise httpx.ConnectError("connection refused", request=request)
            if step == "503":
                body = {"error": {"code": "unavailable", "message": "try later"}}
                return httpx.Response(503, json=body)
            if step == "lost":
                answer = await self.inner.handle_async_request(request)
                await answer.aread()
                raise httpx.ReadError("connection reset", request=request)
        return await self.inner.handle_async_request(request)


async def test_a_lost_answer_is_retried_with_the_same_id_and_stored_once(
    people: People, connect: Connect, app: FastAPI
) -> None:
    alice = await people.add("alice")
    bob = await people.add("bob")
    conv = (await alice.sdk.create_conversation("dm", [bob.id])).id
    flaky = Flaky(app, ["lost", "lost"])
    sdk = connect(alice.sdk.token, transport=flaky, retry_backoff=0)

    sent = await sdk.send_message(conv, "exactly once")
    assert len(flaky.sends) == 3
    assert len({str(s["client_msg_id"]) for s in flaky.sends}) == 1
    assert sent.message.client_msg_id == flaky.sends[0]["client_msg_id"]
    assert sent.created  # the id was generated, so this call is the one that stored it
    assert [m.text for m in await bob.sdk.messages(conv)] == ["exactly once"]


async def test_a_lost_answer_with_your_own_id_reports_what_the_server_knew(
    people: People, connect: Connect, app: FastAPI
) -> None:
    alice = await people.add("alice")
    bob = await people.add("bob")
    conv = (await alice.sdk.create_conversation("dm", [bob.id])).id
    flaky = Flaky(app, ["lost"])
    sdk = connect(alice.sdk.token, transport=flaky, retry_backoff=0)

    sent = await sdk.send_message(conv, "mine", client_msg_id="outbox-1")
    assert [s["client_msg_id"] for s in flaky.sends] == ["outbox-1", "outbox-1"]
    assert not sent.created  # an earlier call may have used the id: the SDK cannot tell
    assert [m.text for m in await bob.sdk.messages(conv)] == ["mine"]


async def test_refused_connections_and_5xx_are_retried(
    people: People, connect: Connect, app: FastAPI
) -> None:
    alice = await people.add("alice")
    bob = await people.add("bob")
    conv = (await alice.sdk.create_conversation("dm", [bob.id])).id
    flaky = Flaky(app, ["refused", "503", "refused"])
    sdk = connect(alice.sdk.token, transport=flaky, retry_backoff=0, max_retries=3)

    sent = await sdk.send_message(conv, "got through")
    assert sent.created
    assert len(flaky.sends) == 4
    assert [m.text for m in await bob.sdk.messages(conv)] == ["got through"]


@pytest.mark.parametrize(
    ("failure", "error"), [("refused", ConnectionFailed), ("503", ServerError)]
)
async def test_send_message_gives_up_after_max_retries(
    people: People,
    connect: Connect,
    app: FastAPI,
    failure: str,
    error: type[Exception],
) -> None:
    alice = await people.add("alice")
    bob = await people.add("bob")
    conv = (await alice.sdk.create_conversation("dm", [bob.id])).id
    flaky = Flaky(app, [failure] * 10)
    sdk = connect(alice.sdk.token, transport=flaky, retry_backoff=0, max_retries=2)

    with pytest.raises(error):
        await sdk.send_message(conv, "never arrives")
    assert len(flaky.sends) == 3
    assert await bob.sdk.messages(conv) == []


async def test_client_errors_are_not_retried(
    people: People, connect: Connect, app: FastAPI
) -> None:
    alice = await people.add("alice")
    flaky = Flaky(app, [])
    sdk = connect(alice.sdk.token, transport=flaky, retry_backoff=0)
    with pytest.raises(NotFound):
        await sdk.send_message("a" * 26, "nobody there")
    with pytest.raises(ValidationFailed):
        await sdk.send_message("a" * 26, "bad id", client_msg_id="no spaces allowed")
    assert len(flaky.sends) == 2


async def test_retries_back_off(people: People, connect: Connect, app: FastAPI) -> None:
    alice = await people.add("alice")
    bob = await people.add("bob")
    conv = (await alice.sdk.create_conversation("dm", [bob.id])).id
    flaky = Flaky(app, ["refused", "refused", "refused"])
    sdk = connect(alice.sdk.token, transport=flaky, retry_backoff=0.04, max_retries=3)

    await sdk.send_message(conv, "patience")
    gaps = [b - a for a, b in zip(flaky.times, flaky.times[1:], strict=False)]
    # Waits grow as 0.04 * 2**n with a jitter factor in [0.5, 1].
    assert len(gaps) == 3
    assert gaps[0] >= 0.018
    assert gaps[1] >= 0.038
    assert gaps[2] >= 0.078
