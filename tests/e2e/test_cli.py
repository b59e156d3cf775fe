"""The admin CLI as an operator runs it: real `enclave` processes next to a real server."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import subprocess
from importlib import resources
from pathlib import Path

import httpx
import psycopg
import pytest

from enclave_client.errors import Unauthenticated
from enclave_client.stream import EventStream
from tests.e2e.conftest import Servers
from tests.e2e.harness import (
    bearer,
    describe,
    enclave,
    error_code,
    location_args,
    login,
    start_server,
)
from tests.e2e.test_acceptance import create_person, take_over_owner

pytestmark = pytest.mark.e2e

BOB_PASSWORD = "his first long passphrase"  # must not contain the username
BOB_NEW_PASSWORD = "his second long passphrase"
_OTP_LINE = re.compile(r"^\s*One-time password:\s+(\S+)\s*$", re.MULTILINE)


def succeeded(result: subprocess.CompletedProcess[str]) -> str:
    """Require exit status 0 and return stdout."""
    assert result.returncode == 0, describe(result)
    return result.stdout


def refused(result: subprocess.CompletedProcess[str], *phrases: str) -> None:
    """Require a non-zero exit and a one-line explanation on stderr naming every phrase."""
    assert result.returncode != 0, describe(result)
    assert "Traceback" not in result.stderr, describe(result)
    for phrase in phrases:
        assert phrase in result.stderr, describe(result)


def listed(stdout: str) -> dict[str, tuple[str, str]]:
    """`enclave users list` output as username -> (role, state)."""
    rows = {}
    for line in stdout.splitlines():
        _id, username, role, state = line.split()
        rows[username] = (role, state)
    return rows


def shipped_migrations(dialect: str) -> list[int]:
    folder = resources.files("enclave.storage") / "migrations" / dialect
    return sorted(int(f.name[:4]) for f in folder.iterdir() if re.match(r"^\d{4}_", f.name))


def applied_migrations(data_dir: Path, database_url: str) -> list[tuple[int, int]]:
    """(version, applied_at) rows, read straight from the database the CLI migrated."""
    query = "SELECT version, applied_at FROM schema_migrations ORDER BY version"
    if database_url:
        with psycopg.connect(database_url) as conn:
            return [(int(v), int(t)) for v, t in conn.execute(query).fetchall()]
    conn = sqlite3.connect(f"file:{data_dir / 'enclave.db'}?mode=ro", uri=True)
    try:
        return [(int(v), int(t)) for v, t in conn.execute(query).fetchall()]
    finally:
        conn.close()


async def init_org(where: list[str]) -> str:
    """`enclave init`: print the owner's one-time password exactly once; return it."""
    out = succeeded(await enclave("init", *where))
    passwords = _OTP_LINE.findall(out)
    assert len(passwords) == 1, out
    return str(passwords[0])


async def create_bob(where: list[str]) -> None:
    create = ("users", "create", "bob", "--role", "admin", "--password-stdin", *where)
    assert "created bob (admin)" in succeeded(await enclave(*create, stdin=BOB_PASSWORD + "\n"))


async def bob_logs_in_as_admin(client: httpx.AsyncClient) -> dict[str, str]:
    resp = await client.post(
        "/api/v1/auth/login", json={"username": "bob", "password": BOB_PASSWORD}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["user"]["role"] == "admin"
    assert resp.json()["user"]["must_change_password"] is False
    bob = bearer(resp.json()["token"])
    admins_only = await client.get("/api/v1/users?include_inactive=true", headers=bob)
    assert admins_only.status_code == 200, admins_only.text
    return bob


async def deactivate_bob(client: httpx.AsyncClient, where: list[str], bob: dict[str, str]) -> None:
    """After `users deactivate` the running server refuses bob's token and password."""
    assert "bob is now deactivated" in succeeded(
        await enclave("users", "deactivate", "bob", *where)
    )
    me = await client.get("/api/v1/users/me", headers=bob)
    assert me.status_code == 401, "a deactivated account's token still works"
    await assert_login_refused(client, "bob", BOB_PASSWORD)


async def assert_login_refused(client: httpx.AsyncClient, username: str, password: str) -> None:
    resp = await client.post(
        "/api/v1/auth/login", json={"username": username, "password": password}
    )
    assert resp.status_code == 401, resp.text
    assert error_code(resp) == "invalid_credentials"


async def test_operator_manages_accounts(servers: Servers) -> None:
    """On SQLite: migrate, init twice, users create (and refusals), deactivate, list --all,
    activate, reset-password, migrate again; a server on the same data dir notices every change.
    (test_users_commands_on_postgres covers the plain `users list`.)"""
    where = location_args(servers.data_dir)
    succeeded(await enclave("migrate", *where))
    fresh = applied_migrations(servers.data_dir, "")
    assert [v for v, _ in fresh] == shipped_migrations("sqlite")

    one_time_password = await init_org(where)
    again = await enclave("init", *where)
    assert "already initialized" in succeeded(again)
    assert "One-time password" not in again.stdout + again.stderr
    assert one_time_password not in again.stdout + again.stderr

    await create_bob(where)
    weak, taken = await asyncio.gather(
        enclave("users", "create", "carol", "--password-stdin", *where, stdin="short\n"),
        enclave("users", "create", "bob", "--password-stdin", *where, stdin=BOB_NEW_PASSWORD),
    )
    refused(weak, "weak_password", "at least 12 characters")
    refused(taken, "username_taken", "bob")

    server = servers.start()
    assert server.one_time_password is None, "serve printed a second one-time password"
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30.0) as client:
        owner = await client.post(
            "/api/v1/auth/login", json={"username": "admin", "password": one_time_password}
        )
        assert owner.status_code == 200, "the password `init` printed does not log in"
        assert owner.json()["user"]["must_change_password"] is True
        bob = await bob_logs_in_as_admin(client)  # the refused duplicate changed nothing
        await deactivate_bob(client, where, bob)
        everyone = listed(succeeded(await enclave("users", "list", "--all", *where)))
        assert everyone == {"admin": ("owner", "active"), "bob": ("admin", "deactivated")}

        assert "bob is now active" in succeeded(await enclave("users", "activate", "bob", *where))
        bob = bearer(await login(client, "bob", BOB_PASSWORD))

        reset = ("users", "reset-password", "bob", "--password-stdin", *where)
        succeeded(await enclave(*reset, stdin=BOB_NEW_PASSWORD + "\n"))
        me = await client.get("/api/v1/users/me", headers=bob)
        assert me.status_code == 401, "a password reset left the old session signed in"
        await assert_login_refused(client, "bob", BOB_PASSWORD)
        await login(client, "bob", BOB_NEW_PASSWORD)

        succeeded(await enclave("migrate", *where))
        assert applied_migrations(servers.data_dir, "") == fresh, "migrations ran twice"
        await login(client, "bob", BOB_NEW_PASSWORD)


async def test_users_commands_on_postgres(pg_schema_url: str, servers: Servers) -> None:
    """init, users create/list/deactivate against PostgreSQL via --database-url, with a server
    sharing the database."""
    where = location_args(servers.data_dir, pg_schema_url)
    await init_org(where)
    await create_bob(where)
    server = servers.start(database_url=pg_schema_url)
    assert server.one_time_password is None, "serve printed a second one-time password"
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30.0) as client:
        bob = await bob_logs_in_as_admin(client)
        users = listed(succeeded(await enclave("users", "list", *where)))
        assert users == {"admin": ("owner", "active"), "bob": ("admin", "active")}
        await deactivate_bob(client, where, bob)
    assert [v for v, _ in applied_migrations(servers.data_dir, pg_schema_url)] == (
        shipped_migrations("postgres")
    )


async def test_bad_configuration_names_the_option(tmp_path: Path) -> None:
    """Configuration mistakes stop the command before it touches anything, naming the option."""
    data_dir = tmp_path / "data"
    unknown = tmp_path / "unknown-option.toml"
    unknown.write_text('[server]\nlisten = "0.0.0.0"\n')
    where = location_args(data_dir)
    results = await asyncio.gather(
        enclave("serve", *where, env={"ENCLAVE_SERVER_PORT": "abc"}),
        enclave("serve", "--config", str(unknown), *where),
        enclave("migrate", *where, env={"ENCLAVE_DATABASE_POOLSIZE": "4"}),
        # A valid configuration, but no `enclave init` yet.
        enclave("users", "list", *location_args(tmp_path / "empty")),
    )
    bad_port, bad_option, bad_env, not_initialized = results
    refused(bad_port, "server.port")
    refused(bad_option, "server.listen")
    refused(bad_env, "database.poolsize", "ENCLAVE_DATABASE_POOLSIZE")
    for result in (bad_port, bad_option, bad_env):
        assert "listening" not in result.stdout, describe(result)
    assert not data_dir.exists(), "a command with a bad configuration created the data directory"
    refused(not_initialized, "not_initialized", "enclave init")


async def test_deactivation_from_the_cli_closes_the_users_open_socket(tmp_path: Path) -> None:
    """The CLI is another process: the server notices within realtime.session_check_seconds."""
    data = tmp_path / "data"
    server = start_server(data, env={"ENCLAVE_REALTIME_SESSION_CHECK_SECONDS": "1"})
    try:
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            assert server.one_time_password is not None
            owner = await take_over_owner(client, server.one_time_password)
            bob = await create_person(client, owner, "bob")
        token = bob.headers["Authorization"].removeprefix("Bearer ")
        async with EventStream(server.base_url, token) as stream:
            await stream.wait_synced()
            result = await enclave("users", "deactivate", "bob", *location_args(data))
            assert result.returncode == 0, describe(result)

            async def until_closed() -> None:
                async for _ in stream:
                    pass

            with pytest.raises(Unauthenticated):
                await asyncio.wait_for(until_closed(), 10)
    finally:
        server.stop()
