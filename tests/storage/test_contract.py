"""The storage contract: what every `Database` backend promises, checked on SQLite and on
PostgreSQL through the same tests (`ctx.db` is whichever backend the test runs on)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import psycopg
import pytest

from enclave.app import open_database
from enclave.domain.events import Event, ReadMoved
from enclave.domain.ids import ConversationId, OrgId, UserId, new_id
from enclave.domain.models import Conversation, ConversationKind, Org, OrgRole, User, Visibility
from enclave.services.context import Context
from enclave.storage import accounts, conversations, messages
from enclave.storage.base import Database, StorageUnavailable, Tx, UniqueViolation
from enclave.storage.migrate import (
    apply_postgres_migrations,
    apply_sqlite_migrations,
    load_migrations,
)
from enclave.storage.sqlite import SqliteDatabase
from tests.conftest import fresh_schema


class Boom(Exception):
    """A unit of work's own failure."""


def new_org(name: str = "org") -> Org:
    return Org(id=OrgId(new_id()), name=name, created_at=1)


def org_names(tx: Tx) -> set[str]:
    return {r["name"] for r in tx.fetchall("SELECT name FROM orgs")}


async def make_conversation(db: Database) -> ConversationId:
    """An org, a user and a channel: the rows a sequence number hangs on."""
    org = new_org()
    user = User(
        id=UserId(new_id()),
        org_id=org.id,
        username=f"u{new_id()[:10]}",
        display_name="u",
        role=OrgRole.OWNER,
        is_active=True,
        must_change_password=False,
        created_at=1,
    )
    conv = Conversation(
        id=ConversationId(new_id()),
        org_id=org.id,
        kind=ConversationKind.CHANNEL,
        name=f"c{new_id()[:10]}",
        topic="",
        visibility=Visibility.PUBLIC,
        archived=False,
        created_by=user.id,
        created_at=1,
        last_seq=0,
    )

    def work(tx: Tx) -> None:
        accounts.insert_org(tx, org)
        accounts.insert_user(tx, user, "not a real hash")
        assert conversations.insert_conversation(tx, conv, None)

    await db.write(work)
    return conv.id


# -- units of work ----------------------------------------------------------------------------


async def test_a_write_returns_its_value_and_a_read_sees_it(ctx: Context) -> None:
    org = new_org("round trip")

    def work(tx: Tx) -> str:
        accounts.insert_org(tx, org)
        return "done"

    assert await ctx.db.write(work) == "done"
    found = await ctx.db.read(accounts.first_org)
    assert found == org


async def test_a_failing_unit_of_work_leaves_no_trace(ctx: Context) -> None:
    conv = await make_conversation(ctx.db)
    before = await ctx.db.read(lambda tx: (org_names(tx), conversations.by_id(tx, conv)))

    def work(tx: Tx) -> None:
        accounts.insert_org(tx, new_org("half-done"))
        conversations.next_seq(tx, conv)
        conversations.set_archived(tx, conv, True)
        raise Boom("changed my mind")

    with pytest.raises(Boom, match="changed my mind"):
        await ctx.db.write(work)
    after = await ctx.db.read(lambda tx: (org_names(tx), conversations.by_id(tx, conv)))
    assert after == before
    # The backend is fine afterwards, and the sequence did not skip a number.
    assert await ctx.db.write(lambda tx: conversations.next_seq(tx, conv)) == 1


async def test_failing_units_do_not_disturb_their_neighbours(ctx: Context) -> None:
    """Many concurrent writes, some failing in different ways. On SQLite they are held back
    until all are queued, so they commit as one group: a failure must stay inside its unit."""
    db = ctx.db
    taken = new_org("taken")
    await db.write(lambda tx: accounts.insert_org(tx, taken))
    started, release = threading.Event(), threading.Event()

    def blocker(tx: Tx) -> None:
        started.set()
        assert release.wait(timeout=10)

    def unit(i: int) -> Callable[[Tx], int]:
        def work(tx: Tx) -> int:
            accounts.insert_org(tx, new_org(f"org-{i}"))
            accounts.insert_org(tx, new_org(f"org-{i}-again"))
            match i % 4:
                case 1:
                    raise Boom(i)
                case 2:  # a constraint failure after two good inserts
                    accounts.insert_org(tx, taken)
                case 3:  # a failure of the SQL itself
                    tx.execute("SELECT no_such_column FROM orgs")
            return i

        return work

    blocked = asyncio.ensure_future(db.write(blocker))
    assert await asyncio.to_thread(started.wait, 10)
    jobs = [asyncio.ensure_future(db.write(unit(i))) for i in range(40)]
    if isinstance(db, SqliteDatabase):
        # Wait until every unit is queued behind the blocker, so the next batch takes them all.
        for _ in range(5_000):
            if db._queue.qsize() >= len(jobs):
                break
            await asyncio.sleep(0.001)
        assert db._queue.qsize() >= len(jobs)
    else:
        await asyncio.sleep(0.05)
    release.set()
    await blocked
    results = await asyncio.gather(*jobs, return_exceptions=True)

    for i, result in enumerate(results):
        match i % 4:
            case 0:
                assert result == i
            case 1:
                assert isinstance(result, Boom)
            case 2:
                assert isinstance(result, UniqueViolation)
            case 3:
                assert isinstance(result, Exception)
                assert not isinstance(result, (Boom, UniqueViolation))
    names = await db.read(org_names)
    expected = {"taken"} | {f"org-{i}{s}" for i in range(0, 40, 4) for s in ("", "-again")}
    assert names == expected


async def test_unique_violations_raise_the_neutral_error(ctx: Context) -> None:
    org = new_org("unique")
    await ctx.db.write(lambda tx: accounts.insert_org(tx, org))

    def again(tx: Tx) -> None:
        accounts.insert_org(tx, new_org("first of two"))
        accounts.insert_org(tx, org)

    with pytest.raises(UniqueViolation) as caught:
        await ctx.db.write(again)
    assert type(caught.value) is UniqueViolation
    assert not isinstance(caught.value, (sqlite3.Error, psycopg.Error))

    def returning(tx: Tx) -> None:
        tx.fetchone(
            "INSERT INTO orgs (id, name, created_at) VALUES (?, ?, ?) RETURNING id",
            (org.id, "dup", 2),
        )

    with pytest.raises(UniqueViolation):
        await ctx.db.write(returning)
    assert await ctx.db.read(org_names) == {"unique"}


async def test_a_read_issued_after_a_write_returned_sees_it(ctx: Context) -> None:
    async def write_then_read(i: int) -> None:
        org = new_org(f"rw-{i}")
        await ctx.db.write(lambda tx: accounts.insert_org(tx, org))
        assert f"rw-{i}" in await ctx.db.read(org_names)

    for i in range(20):
        await write_then_read(i)
    await asyncio.gather(*(write_then_read(i) for i in range(20, 60)))
    assert len(await ctx.db.read(org_names)) == 60


async def test_a_closed_database_refuses_work(ctx: Context) -> None:
    await ctx.db.ping()
    await ctx.db.close()
    with pytest.raises(StorageUnavailable):
        await ctx.db.read(org_names)
    with pytest.raises(StorageUnavailable):
        await ctx.db.write(org_names)


# -- sequence numbers -------------------------------------------------------------------------


async def test_next_seq_is_gap_free_under_concurrent_writers(ctx: Context) -> None:
    """50 concurrent writers on each of two conversations, some failing after taking a number:
    each conversation ends up with exactly 1..n for its n successful writers."""
    db = ctx.db
    convs = [await make_conversation(db), await make_conversation(db)]

    def fails(i: int) -> bool:
        return i % 7 == 3

    def writer(i: int) -> Callable[[Tx], int]:
        conv = convs[i % 2]

        def work(tx: Tx) -> int:
            seq = conversations.next_seq(tx, conv)
            # Stored under the number it took: the event log's key rejects any duplicate.
            messages.insert_event(tx, Event(conv, seq, UserId("w"), 1, ReadMoved(UserId("w"), i)))
            if fails(i):
                raise Boom(i)  # a number taken by a unit that rolls back is handed out again
            return seq

        return work

    results = await asyncio.gather(
        *(db.write(writer(i)) for i in range(100)), return_exceptions=True
    )
    assert all(isinstance(r, Boom) == fails(i) for i, r in enumerate(results)), results
    for k, conv in enumerate(convs):
        mine = [r for i, r in enumerate(results) if i % 2 == k and not fails(i)]
        expected = list(range(1, len(mine) + 1))
        assert sorted(r for r in mine if isinstance(r, int)) == expected, mine

        def stored(tx: Tx, conv: ConversationId = conv) -> tuple[list[int], int]:
            found = conversations.by_id(tx, conv)
            assert found is not None
            return [e.seq for e in messages.events_after(tx, conv, 0, 1000)], found.last_seq

        assert await db.read(stored) == (expected, len(mine))


async def test_next_seq_of_a_missing_conversation_fails(ctx: Context) -> None:
    with pytest.raises(LookupError):
        await ctx.db.write(lambda tx: conversations.next_seq(tx, ConversationId(new_id())))


# -- migrations -------------------------------------------------------------------------------


@pytest.fixture
async def fresh_url(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[str]:
    """A database no migration has touched: a new file, or a new PostgreSQL schema."""
    if backend == "sqlite":
        yield str(tmp_path / "fresh.db")
        return
    base: str = request.getfixturevalue("postgres_url")
    with fresh_schema(base, "t_fresh_") as url:
        yield url


def migrate(backend: str, url: str) -> list[int]:
    """Run the migration runner once on its own connection; return the versions it applied."""
    if backend == "sqlite":
        conn = sqlite3.connect(url, isolation_level=None)
        try:
            return apply_sqlite_migrations(conn)
        finally:
            conn.close()
    with psycopg.connect(url, autocommit=True) as pg:
        return apply_postgres_migrations(pg)


def url_of(ctx: Context) -> str:
    return str(ctx.config.sqlite_path()) if ctx.db.dialect == "sqlite" else ctx.config.database.url


async def recorded(db: Database) -> list[tuple[int, str, int]]:
    rows = await db.read(
        lambda tx: tx.fetchall("SELECT version, name, applied_at FROM schema_migrations")
    )
    return sorted((r["version"], r["name"], r["applied_at"]) for r in rows)


async def test_migrations_apply_once_each(backend: str, fresh_url: str) -> None:
    shipped = load_migrations(backend)
    assert shipped, "no migrations shipped"
    assert migrate(backend, fresh_url) == [m.version for m in shipped]
    assert migrate(backend, fresh_url) == []


async def test_reopening_a_database_applies_nothing(ctx: Context, backend: str) -> None:
    before = await recorded(ctx.db)
    assert [(v, n) for v, n, _ in before] == [(m.version, m.name) for m in load_migrations(backend)]

    assert migrate(backend, url_of(ctx)) == []
    second = await asyncio.to_thread(open_database, ctx.config)
    try:
        assert await recorded(second) == before
    finally:
        await second.close()
    assert await recorded(ctx.db) == before
