"""Helpers shared by the REST API tests: people, conversations, messages, error codes."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import httpx

from tests.conftest import Person, World

API = "/api/v1"


async def people(world: World, *names: str) -> list[Person]:
    """Accounts made side by side: password hashing dominates test set-up time."""
    await world.owner()
    return list(await asyncio.gather(*(world.person(n) for n in names)))


async def new_conv(
    client: httpx.AsyncClient, who: Person, kind: str, members: list[str], **extra: Any
) -> str:
    resp = await client.post(
        f"{API}/conversations",
        json={"kind": kind, "members": members, **extra},
        headers=who.headers,
    )
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


async def post(
    client: httpx.AsyncClient,
    who: Person,
    conv: str,
    text: str,
    *,
    cmid: str | None = None,
    root: str | None = None,
) -> httpx.Response:
    body: dict[str, Any] = {"client_msg_id": cmid or secrets.token_hex(8), "text": text}
    if root is not None:
        body["thread_root_id"] = root
    return await client.post(f"{API}/conversations/{conv}/messages", json=body, headers=who.headers)


async def send(
    client: httpx.AsyncClient, who: Person, conv: str, text: str, *, root: str | None = None
) -> dict[str, Any]:
    resp = await post(client, who, conv, text, root=root)
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


def code(resp: httpx.Response) -> tuple[int, str]:
    return resp.status_code, str(resp.json()["error"]["code"])
