"""Encryption at rest, on both backends: nothing readable in the database file or a dump, key
rotation that keeps everything readable, and crypto-shredding that reaches backups made before
it. The database files and dumps are read as raw bytes, as a thief with a copy would."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import psycopg
import pytest

from enclave.config import Config
from enclave.crypto.keyring import FileKeyring, KeyringError
from enclave.domain.ids import ConversationId, conversation_scope
from enclave.domain.models import Message
from enclave.services import audit
from enclave.services import keys as key_service
from enclave.services.context import Context
from enclave.services.sealer import DataKeys
from enclave.storage import audit as audit_store
from enclave.storage import keys as key_store
from enclave.storage import messages as msg_store
from enclave.storage.base import Database, Tx
from enclave.storage.postgres import PostgresDatabase
from enclave.storage.sqlite import SqliteDatabase
from tests.api.helpers import API, new_conv, people, send
from tests.conftest import Person, World

# Words that appear nowhere but in what the test sends; each must stay out of the stored bytes.
SECRET_WORDS = ["quixotryllium", "marzipanvortex", "zebradactyl", "紫禁城秘密"]
NAME_WORD = "Aurelianthus"


def _schema_of(url: str) -> str:
    options = parse_qs(urlsplit(url).query)["options"][0]
    return options.split("search_path=", 1)[1]


def _base_url(url: str) -> str:
    return url.split("?", 1)[0]


def _pg_dump(config: Config) -> bytes:
    url = config.database.url
    return subprocess.run(
        ["pg_dump", "--no-owner", "-n", _schema_of(url), _base_url(url)],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout


def _sqlite_bytes(config: Config) -> bytes:
    path = config.sqlite_path()
    found = b""
    for suffix in ("", "-wal", "-shm", "-journal"):
        extra = Path(str(path) + suffix)
        if extra.exists():
            found += extra.read_bytes()
    return found


def _stored_bytes(config: Config) -> bytes:
    return _pg_dump(config) if config.uses_postgres else _sqlite_bytes(config)


async def _chat(world: World, client: httpx.AsyncClient) -> tuple[Person, Person, str]:
    """Two people (one with a distinctive display name) and a group with messages in every
    encrypted place: text, an edit (version history), a thread reply, and the event log."""
    alice, bob = await people(world, "alice", "bob")
    owner = await world.owner()
    resp = await client.post(
        f"{API}/users",
        json={
            "username": "carol",
            "password": "correct horse battery staple 9",
            "display_name": f"Carol {NAME_WORD}",
        },
        headers=owner.headers,
    )
    assert resp.status_code == 201, resp.text
    conv = await new_conv(client, alice, "group", [bob.id])
    first = await send(client, alice, conv, f"the plan is {SECRET_WORDS[0]}")
    edited = await client.patch(
        f"{API}/messages/{first['id']}",
        json={"text": f"the plan is now {SECRET_WORDS[1]}"},
        headers=alice.headers,
    )
    assert edited.status_code == 200, edited.text
    await send(client, bob, conv, f"reply {SECRET_WORDS[2]}", root=first["id"])
    await send(client, bob, conv, SECRET_WORDS[3])
    return alice, bob, conv


async def _texts(client: httpx.AsyncClient, who: Person, conv: str) -> list[str | None]:
    resp = await client.get(f"{API}/conversations/{conv}/messages", headers=who.headers)
    assert resp.status_code == 200, resp.text
    return [m["text"] for m in resp.json()["messages"]]


async def test_nothing_readable_in_the_database_file_or_dump(
    world: World, client: httpx.AsyncClient, ctx: Context, config: Config
) -> None:
    alice, _, conv = await _chat(world, client)
    texts = await _texts(client, alice, conv)
    # The words do come back to members: the check below is not vacuous.
    assert any(SECRET_WORDS[1] in (t or "") for t in texts)
    assert SECRET_WORDS[3] in texts
    versions = await client.get(
        f"{API}/messages/{(await _first_id(client, alice, conv))}/versions",
        headers=alice.headers,
    )
    assert SECRET_WORDS[0] in versions.text
    carol = await client.get(f"{API}/users", headers=alice.headers)
    assert NAME_WORD in carol.text

    stored = await asyncio.to_thread(_stored_bytes, config)
    assert b"alice" in stored  # usernames are not encrypted: the bytes are really the data
    for word in [*SECRET_WORDS, NAME_WORD]:
        assert word.encode("utf-8") not in stored, word
        assert word.encode("utf-16-le") not in stored, word
    # Nor is the keyring beside the data in the database.
    keyring = FileKeyring(config.keyring_path())
    assert keyring.active_id().encode() in stored  # the KEK's id is, as the wrapping's label
    raw = config.keyring_path().read_text()
    assert raw.split('"keys": {', 1)[1].split('"', 3)[3].encode() not in stored


async def _first_id(client: httpx.AsyncClient, who: Person, conv: str) -> str:
    resp = await client.get(f"{API}/conversations/{conv}/messages", headers=who.headers)
    return str(resp.json()["messages"][0]["id"])


async def test_rotation_rewraps_keys_and_everything_still_reads(
    world: World, client: httpx.AsyncClient, ctx: Context, config: Config
) -> None:
    alice, _, conv = await _chat(world, client)
    before = await _texts(client, alice, conv)
    keyring = ctx.keys
    assert isinstance(keyring, FileKeyring)
    old = keyring.active_id()

    done = await key_service.rotate(ctx, ctx.clock.now_ms(), audit.Actor(), grace_seconds=0)
    assert done.rewrapped >= 2  # the conversation's key and the people's
    assert done.retired == [old]
    assert old not in FileKeyring(config.keyring_path()).kek_ids()
    usage = await ctx.db.read(key_store.kek_usage)
    assert set(usage) == {done.new_kek_id}

    # A fresh process (no cached keys) reads everything with the rotated keyring.
    fresh = DataKeys(FileKeyring(config.keyring_path()), epoch_days=30)
    db = await _reopen(config, fresh)
    try:
        page = await _read_page(db, conv)
    finally:
        await db.close()
    assert [m.text for m in page] == before
    assert await _texts(client, alice, conv) == before
    entries = await ctx.db.read(lambda tx: audit_store.scan(tx, 0, 1000))
    assert any(e.action == "keys.rotated" and e.target_id == done.new_kek_id for e in entries)


async def test_a_key_wrapped_with_the_old_kek_during_rotation_does_not_keep_it_alive(
    ctx: Context, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another server that read the keyring just before the switch wraps a new data key with the
    old KEK after the first sweep: the rotation sweeps again, so the old KEK is still destroyed
    and the late key reads under the new one."""
    keyring = ctx.keys
    assert isinstance(keyring, FileKeyring)
    old = keyring.active_id()
    stale_ring = FileKeyring(config.keyring_path())
    monkeypatch.setattr(stale_ring, "refresh", lambda: None)  # never sees the new file
    stale = DataKeys(stale_ring, epoch_days=30)
    now = ctx.clock.now_ms()
    sealed: list[str] = []
    sweep = key_service._rewrap_all

    async def sweep_then_late_write(db: Database, keys: DataKeys, new_kek: str) -> int:
        done = await sweep(db, keys, new_kek)
        if not sealed:
            sealed.append(
                await db.write(lambda tx: stale.seal(tx, "conv:late", now, "t.c|1", "late"))
            )
        return done

    monkeypatch.setattr(key_service, "_rewrap_all", sweep_then_late_write)
    done = await key_service.rotate(ctx, now, audit.Actor(), grace_seconds=0)
    assert sealed, "the late write happened"
    assert done.retired == [old]
    assert done.remaining == [] and done.complete
    usage = await ctx.db.read(key_store.kek_usage)
    assert set(usage) == {done.new_kek_id}
    fresh = DataKeys(FileKeyring(config.keyring_path()), epoch_days=30)
    assert await ctx.db.read(lambda tx: fresh.open(tx, "t.c|1", sealed[0])) == "late"


async def _read_page(db: Database, conv: str) -> list[Message]:
    """A conversation's messages read straight from storage, as a restore script would."""
    return await db.read(
        lambda tx: msg_store.page(
            tx,
            ConversationId(conv),
            after_seq=None,
            before_seq=None,
            limit=50,
            include_replies=True,
        )
    )


async def _reopen(config: Config, sealer: DataKeys, url: str | None = None) -> Database:
    if config.uses_postgres:
        target = url or config.database.url
        return await asyncio.to_thread(PostgresDatabase, target, sealer=sealer, migrate=False)
    return await asyncio.to_thread(SqliteDatabase.open, config.sqlite_path(), sealer=sealer)


def _backup(config: Config, tmp_path: Path) -> Path:
    """A backup as an operator takes one: SQLite's online backup, or a pg_dump."""
    target = tmp_path / ("backup.sql" if config.uses_postgres else "backup.db")
    if config.uses_postgres:
        target.write_bytes(_pg_dump(config))
    else:
        src = sqlite3.connect(config.sqlite_path())
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            src.close()
            dst.close()
    return target


def _checkpoint(path: Path) -> None:
    conn = sqlite3.connect(path)
    try:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0
    finally:
        conn.close()


def _renamed_dump(dump: Path, old_schema: str, new_schema: str) -> str:
    """The dump, restoring into another schema (the schema names are unique random words)."""
    return dump.read_text("utf-8").replace(old_schema, new_schema)


def _drop_schema(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def _open_backup(
    config: Config, backup: Path, sealer: DataKeys, postgres_url: str
) -> tuple[Database, str | None]:
    if not config.uses_postgres:
        return await asyncio.to_thread(SqliteDatabase.open, backup, sealer=sealer), None
    old_schema = _schema_of(config.database.url)
    restored = old_schema + "_r"
    sql = _renamed_dump(backup, old_schema, restored)
    await asyncio.to_thread(_drop_schema, postgres_url, restored)
    await asyncio.to_thread(
        subprocess.run,
        ["psql", "-q", "-v", "ON_ERROR_STOP=1", "-f", "-", postgres_url],
        input=sql.encode("utf-8"),
        check=True,
        capture_output=True,
        timeout=60,
    )
    url = f"{postgres_url}?options=-csearch_path%3D{restored}"
    db = await asyncio.to_thread(PostgresDatabase, url, sealer=sealer, migrate=False)
    return db, restored


async def test_shredding_reaches_backups_made_before_it(
    world: World,
    client: httpx.AsyncClient,
    ctx: Context,
    config: Config,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    alice, bob, doomed = await _chat(world, client)
    kept = await new_conv(client, alice, "dm", [bob.id])
    await send(client, alice, kept, "this one stays")
    backup = await asyncio.to_thread(_backup, config, tmp_path)

    result = await key_service.shred(
        ctx,
        ctx.clock.now_ms(),
        audit.Actor(),
        conversation_scope(doomed),
    )
    assert result.key_ids and result.backups_protected

    # Live: the shredded conversation's texts are gone; the other one reads as before.
    assert await _texts(client, alice, doomed) == [None, None, None]
    assert await _texts(client, alice, kept) == ["this one stays"]
    refused = await client.post(
        f"{API}/conversations/{doomed}/messages",
        json={"client_msg_id": "after-shred", "text": "hello?"},
        headers=alice.headers,
    )
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "data_destroyed")
    live_bytes = await asyncio.to_thread(_stored_bytes, config)
    for word in SECRET_WORDS:
        assert word.encode() not in live_bytes

    # The backup taken before the shred, read with today's keyring, yields nothing either.
    pg_url = request.getfixturevalue("postgres_url") if config.uses_postgres else ""
    reader = DataKeys(FileKeyring(config.keyring_path()), epoch_days=30)
    db, restored = await _open_backup(config, backup, reader, pg_url)
    try:
        with pytest.raises(KeyringError):
            await _read_page(db, doomed)
    finally:
        await db.close()
        if restored:
            await asyncio.to_thread(_drop_schema, pg_url, restored)
    entries = await ctx.db.read(lambda tx: audit_store.scan(tx, 0, 1000))
    shredded = [e for e in entries if e.action == "keys.shredded"]
    assert shredded and shredded[0].target_id == conversation_scope(doomed)
    assert sorted(shredded[0].details["key_ids"]) == sorted(result.key_ids)


async def test_a_value_moved_to_another_row_does_not_open(
    world: World, client: httpx.AsyncClient, ctx: Context
) -> None:
    """The row identity is bound into each ciphertext: copying one message's sealed text over
    another's (as someone with write access to the database might) is detected, not shown."""
    alice, bob = await people(world, "alice", "bob")
    conv = await new_conv(client, alice, "group", [bob.id])
    one = await send(client, alice, conv, "first")
    two = await send(client, alice, conv, "second")

    def copy_over(tx: Tx) -> None:
        row = tx.fetchone("SELECT text FROM messages WHERE id = ?", (one["id"],))
        assert row is not None
        tx.execute("UPDATE messages SET text = ? WHERE id = ?", (row["text"], two["id"]))

    await ctx.db.write(copy_over)
    assert (await ctx.db.read(lambda tx: msg_store.by_id(tx, one["id"]))) is not None
    with pytest.raises(KeyringError, match="altered"):
        await ctx.db.read(lambda tx: msg_store.by_id(tx, two["id"]))


async def test_plaintext_left_by_an_earlier_version_is_sealed_once(
    world: World, client: httpx.AsyncClient, ctx: Context, config: Config
) -> None:
    """A database upgraded from before encryption at rest: its plaintext rows are encrypted by
    `seal_legacy` (which `serve`, `init` and `migrate` run), and read back the same."""
    alice, bob = await people(world, "alice", "bob")
    conv = await new_conv(client, alice, "group", [bob.id])
    msg = await send(client, alice, conv, "sealed from the start")

    def write_plaintext(tx: Tx) -> None:
        old = "legacy plaintext " + SECRET_WORDS[0]
        tx.execute("UPDATE messages SET text = ? WHERE id = ?", (old, msg["id"]))
        tx.execute("UPDATE users SET display_name = ? WHERE id = ?", (NAME_WORD, bob.id))
        tx.execute("DELETE FROM maintenance_done", ())

    await ctx.db.write(write_plaintext)
    assert SECRET_WORDS[0].encode() in await asyncio.to_thread(_stored_bytes, config)

    assert await key_service.seal_legacy(ctx.db, ctx.clock.now_ms()) == 2
    assert await key_service.seal_legacy(ctx.db, ctx.clock.now_ms()) == 0  # done: one lookup
    assert await _texts(client, alice, conv) == ["legacy plaintext " + SECRET_WORDS[0]]
    me = await client.get(f"{API}/users/me", headers=bob.headers)
    assert me.json()["display_name"] == NAME_WORD
    if not config.uses_postgres:
        # The write-ahead log still holds the page images of the plaintext era until SQLite
        # checkpoints it (docs/security.md says so); after that, nothing is left.
        await asyncio.to_thread(_checkpoint, config.sqlite_path())
    stored = await asyncio.to_thread(_stored_bytes, config)
    assert SECRET_WORDS[0].encode() not in stored
    assert NAME_WORD.encode() not in stored
