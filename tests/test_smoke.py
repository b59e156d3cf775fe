"""The first path a newcomer takes: log in, chat, read back."""

from __future__ import annotations

import httpx

from tests.conftest import World


async def test_login_send_and_read_back(world: World, client: httpx.AsyncClient) -> None:
    alice = await world.person("alice")
    bob = await world.person("bob")
    resp = await client.post(
        "/api/v1/conversations",
        json={"kind": "dm", "members": [bob.id]},
        headers=alice.headers,
    )
    assert resp.status_code == 201, resp.text
    conv = resp.json()["id"]
    sent = await client.post(
        f"/api/v1/conversations/{conv}/messages",
        json={"client_msg_id": "m1", "text": "hello @bob"},
        headers=alice.headers,
    )
    assert sent.status_code == 201, sent.text
    assert sent.json()["mentions"] == [bob.id]
    page = await client.get(f"/api/v1/conversations/{conv}/messages", headers=bob.headers)
    assert [m["text"] for m in page.json()["messages"]] == ["hello @bob"]
    listed = await client.get("/api/v1/conversations", headers=bob.headers)
    (summary,) = listed.json()["conversations"]
    assert summary["unread_count"] == 1
    assert summary["mention_count"] == 1
