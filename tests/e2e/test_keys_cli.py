"""Key management as an operator does it: `enclave init` warns about the keyring, and
`enclave keys rotate` runs next to a live server on both backends without interrupting it."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Servers
from tests.e2e.harness import describe, enclave, location_args
from tests.e2e.test_acceptance import create_conversation, create_person, take_over_owner

pytestmark = pytest.mark.e2e


async def test_init_creates_a_private_keyring_and_says_to_back_it_up(tmp_path: Path) -> None:
    where = location_args(tmp_path / "data")
    first = await enclave("init", *where)
    assert first.returncode == 0, describe(first)
    keyring = tmp_path / "data" / "keys" / "keyring.json"
    assert f"Created the encryption keyring {keyring}" in first.stdout
    assert "Without it the data cannot be read" in first.stdout
    assert stat.S_IMODE(keyring.stat().st_mode) == 0o600
    assert stat.S_IMODE(keyring.parent.stat().st_mode) == 0o700
    again = await enclave("init", *where)
    assert "Created the encryption keyring" not in again.stdout

    keyring.unlink()  # the database exists, its keys do not: refuse rather than start blind
    lost = await enclave("keys", "status", *where)
    assert lost.returncode != 0
    # A new, empty keyring was created by `keys status`? No: status must not invent keys.
    assert "Traceback" not in lost.stderr, describe(lost)


async def test_rotation_while_the_server_runs(database_url: str, servers: Servers) -> None:
    server = servers.start(database_url=database_url)
    where = location_args(servers.data_dir, database_url)
    assert server.one_time_password is not None
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30.0) as client:
        owner = await take_over_owner(client, server.one_time_password)
        alice = await create_person(client, owner, "alice")
        conv = await create_conversation(client, owner, "group", [alice])
        for i in range(5):
            resp = await client.post(
                f"/api/v1/conversations/{conv.id}/messages",
                json={"client_msg_id": f"before-{i}", "text": f"before rotation {i}"},
                headers=owner.headers,
            )
            assert resp.status_code == 201, resp.text
        keyring = servers.data_dir / "keys" / "keyring.json"
        old_active = json.loads(keyring.read_text())["active"]

        rotated = await enclave("keys", "rotate", *where)
        assert rotated.returncode == 0, describe(rotated)
        new_active = json.loads(keyring.read_text())["active"]
        assert new_active != old_active
        assert f"destroyed old keys: {old_active}" in rotated.stdout
        assert old_active not in json.loads(keyring.read_text())["keys"]

        # The running server reads what it wrote before, and writes new conversations (new data
        # keys, wrapped under the new KEK it picks up from the file).
        history = await client.get(
            f"/api/v1/conversations/{conv.id}/messages", headers=owner.headers
        )
        assert [m["text"] for m in history.json()["messages"]] == [
            f"before rotation {i}" for i in range(5)
        ]
        other = await create_conversation(client, alice, "dm", [owner])
        resp = await client.post(
            f"/api/v1/conversations/{other.id}/messages",
            json={"client_msg_id": "after", "text": "after rotation"},
            headers=alice.headers,
        )
        assert resp.status_code == 201, resp.text

    status = await enclave("keys", "status", *where)
    assert status.returncode == 0, describe(status)
    assert f"active key: {new_active}" in status.stdout
    assert f"retired (destroyed): {old_active}" in status.stdout
    assert "(NOT IN KEYRING)" not in status.stdout
