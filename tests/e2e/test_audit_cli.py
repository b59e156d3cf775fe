"""`enclave audit verify | head` as an operator runs them, against a log a real server wrote and
an attacker with database access (but not the keyring) then changed with raw SQL."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.e2e.conftest import Servers
from tests.e2e.harness import describe, enclave, location_args
from tests.e2e.test_acceptance import take_over_owner

pytestmark = pytest.mark.e2e

_HEAD = re.compile(r"^(\d+):([0-9a-f]{64})$")
_INTACT = re.compile(r"^audit log intact: (\d+) entries checked.*; head (\d+):([0-9a-f]{64})$")


def raw_sql(data_dir: Path, database_url: str, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    """Run one statement straight on the database, as someone with only database access."""
    if database_url:
        with psycopg.connect(database_url) as conn:
            cur = conn.execute(sql.replace("?", "%s"), params)
            return list(cur.fetchall()) if cur.description else []
    conn = sqlite3.connect(data_dir / "enclave.db")
    try:
        with conn:
            return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


async def write_a_log(servers: Servers, database_url: str) -> None:
    """A server's real audit entries: ten recalls (and whatever else the account flows record)."""
    server = servers.start(database_url=database_url)
    assert server.one_time_password is not None
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        owner = await take_over_owner(client, server.one_time_password)
        resp = await client.post(
            "/api/v1/conversations",
            json={"kind": "channel", "name": "audited"},
            headers=owner.headers,
        )
        assert resp.status_code == 201, resp.text
        conv = resp.json()["id"]
        for i in range(10):
            resp = await client.post(
                f"/api/v1/conversations/{conv}/messages",
                json={"client_msg_id": f"m{i}", "text": f"message {i}"},
                headers=owner.headers,
            )
            assert resp.status_code == 201, resp.text
            gone = await client.delete(
                f"/api/v1/messages/{resp.json()['id']}", headers=owner.headers
            )
            assert gone.status_code == 200, gone.text
    server.stop()


async def head(where: list[str]) -> tuple[int, str]:
    result = await enclave("audit", "head", *where)
    assert result.returncode == 0, describe(result)
    match = _HEAD.match(result.stdout.strip())
    assert match, describe(result)
    return int(match.group(1)), match.group(2)


async def test_verify_passes_then_finds_every_kind_of_tampering(
    database_url: str, servers: Servers
) -> None:
    data_dir = servers.data_dir
    where = location_args(data_dir, database_url)
    await write_a_log(servers, database_url)

    def sql(statement: str, *params: Any) -> list[Any]:
        return raw_sql(data_dir, database_url, statement, params)

    # Intact: exit 0, the count and the head, which `audit head` prints as an anchor.
    intact = await enclave("audit", "verify", *where)
    assert intact.returncode == 0, describe(intact)
    match = _INTACT.match(intact.stdout.strip())
    assert match, describe(intact)
    count = int(match.group(1))
    assert count >= 10
    anchor = await head(where)
    assert anchor == (int(match.group(2)), match.group(3)) and anchor[0] == count
    anchor_arg = f"{anchor[0]}:{anchor[1]}"
    ok = await enclave("audit", "verify", "--anchor", anchor_arg, *where)
    assert ok.returncode == 0 and "1 anchor(s) found" in ok.stdout, describe(ok)

    # The last two entries deleted: the head row still says otherwise.
    sql("DELETE FROM audit_log WHERE seq > ?", count - 2)
    cut = await enclave("audit", "verify", *where)
    assert cut.returncode == 1, describe(cut)
    assert f"seq {count - 1}: truncated" in cut.stdout, describe(cut)
    assert "NOT intact: 1 problem(s)" in cut.stderr, describe(cut)

    # ... and the head rewound to match: a valid shorter chain, which only the anchor exposes.
    [(last_hash,)] = sql("SELECT hash FROM audit_log WHERE seq = ?", count - 2)
    sql("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", count - 2, last_hash)
    rewound = await enclave("audit", "verify", *where)
    assert rewound.returncode == 0, describe(rewound)
    anchored = await enclave("audit", "verify", "--anchor", anchor_arg, *where)
    assert anchored.returncode == 1, describe(anchored)
    assert f"seq {count}: anchor" in anchored.stdout, describe(anchored)

    # An edited entry, a deleted one, and two entries whose contents were swapped.
    sql("UPDATE audit_log SET details = '{}' WHERE seq = 2")
    sql("DELETE FROM audit_log WHERE seq = 4")
    columns = "at, action, actor_id, target_type, target_id, ip, outcome, details, prev_hash, hash"
    [six] = sql(f"SELECT {columns} FROM audit_log WHERE seq = 6")  # noqa: S608
    [eight] = sql(f"SELECT {columns} FROM audit_log WHERE seq = 8")  # noqa: S608
    assignments = ", ".join(f"{c.strip()} = ?" for c in columns.split(","))
    sql(f"UPDATE audit_log SET {assignments} WHERE seq = 6", *eight)  # noqa: S608
    sql(f"UPDATE audit_log SET {assignments} WHERE seq = 8", *six)  # noqa: S608
    tampered = await enclave("audit", "verify", *where)
    assert tampered.returncode == 1, describe(tampered)
    reported = [line.split(":")[:2] for line in tampered.stdout.splitlines()]
    assert reported == [
        ["seq 2", " altered"],
        ["seq 4", " missing"],
        ["seq 6", " reordered"],
        ["seq 8", " reordered"],
    ], describe(tampered)
    assert "holds the entry of seq 8" in tampered.stdout, describe(tampered)
    assert "NOT intact: 4 problem(s)" in tampered.stderr, describe(tampered)


async def test_verify_refuses_bad_anchors_and_a_missing_keyring(servers: Servers) -> None:
    await write_a_log(servers, "")
    where = location_args(servers.data_dir)
    bad = await enclave("audit", "verify", "--anchor", "5:not-a-hash", *where)
    assert bad.returncode == 2 and "SEQ:HASH" in bad.stderr, describe(bad)
    keyring = servers.data_dir / "keys" / "keyring.json"
    keyring.rename(keyring.with_name("elsewhere.json"))
    missing = await enclave("audit", "verify", *where)
    assert missing.returncode != 0 and "keyring" in missing.stderr, describe(missing)
    assert "Traceback" not in missing.stderr, describe(missing)
    assert not keyring.exists()  # verification never makes a new keyring
    assert (await head(where))[0] >= 10  # the head needs no key
