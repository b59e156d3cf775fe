"""SQLite backend (WAL). One writer thread commits queued units of work in groups; a small pool
of reader threads serves reads from their own connections.

Group commit: the writer takes every unit of work waiting in its queue (up to `max_batch`), runs
them in one transaction, and commits once. A unit that raises fails alone: the batch is rolled
back and run again with a SAVEPOINT around each unit, so the others still commit. Every
caller's await returns only after COMMIT, so an acknowledged write is durable, and one fsync
serves many writers under load.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar, cast

from enclave.storage.base import Params, Row, Sealer, StorageUnavailable, UniqueViolation
from enclave.storage.migrate import apply_sqlite_migrations

T = TypeVar("T")

_STOP = object()


class SqliteTx:
    """`Tx` over one sqlite3 connection."""

    __slots__ = ("_conn", "sealer")
    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection, sealer: Sealer) -> None:
        self._conn = conn
        self.sealer = sealer

    def execute(self, sql: str, params: Params = ()) -> int:
        try:
            return self._conn.execute(sql, params).rowcount
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" in str(exc):
                raise UniqueViolation(str(exc)) from exc
            raise

    def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        try:
            return cast(Row | None, self._conn.execute(sql, params).fetchone())
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" in str(exc):
                raise UniqueViolation(str(exc)) from exc
            raise

    def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        return cast(list[Row], self._conn.execute(sql, params).fetchall())


def _connect(path: Path, *, synchronous: str, readonly: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=10000")
    # Deleted and overwritten content (shredded keys, purged rows) is zeroed, not left behind.
    conn.execute("PRAGMA secure_delete=ON")
    if synchronous == "full":
        conn.execute("PRAGMA synchronous=FULL")
    else:
        conn.execute("PRAGMA synchronous=NORMAL")
    if readonly:
        conn.execute("PRAGMA query_only=ON")
    return conn


class _Job:
    __slots__ = ("future", "loop", "work")

    def __init__(self, work: Callable[[SqliteTx], Any], loop: asyncio.AbstractEventLoop) -> None:
        self.work = work
        self.loop = loop
        self.future: asyncio.Future[Any] = loop.create_future()


def _resolve(fut: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if fut.done():
        return
    if ok:
        fut.set_result(value)
    else:
        fut.set_exception(value)


class SqliteDatabase:
    """The embedded default backend."""

    dialect = "sqlite"

    def __init__(
        self,
        path: Path,
        *,
        sealer: Sealer,
        synchronous: str = "full",
        readers: int = 2,
        max_batch: int = 256,
    ) -> None:
        self.path = path
        self._sealer = sealer
        self._synchronous = synchronous
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        self._local = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._readers = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="sqlite-read")
        self._writer_conn = _connect(path, synchronous=synchronous, readonly=False)
        self._writer = threading.Thread(target=self._write_loop, name="sqlite-write", daemon=True)
        self._writer.start()
        self._closed = False

    @classmethod
    def open(
        cls, path: Path, *, sealer: Sealer, synchronous: str = "full", readers: int = 2
    ) -> SqliteDatabase:
        """Create the file if needed and bring its schema up to date."""
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = _connect(path, synchronous=synchronous, readonly=False)
        try:
            apply_sqlite_migrations(conn)
        finally:
            conn.close()
        return cls(path, sealer=sealer, synchronous=synchronous, readers=readers)

    # -- writes -------------------------------------------------------------------------------

    async def write(self, work: Callable[[SqliteTx], T]) -> T:
        if self._closed:
            raise StorageUnavailable("database is closed")
        job = _Job(work, asyncio.get_running_loop())
        self._queue.put(job)
        return cast(T, await job.future)

    def _write_loop(self) -> None:
        conn = self._writer_conn
        tx = SqliteTx(conn, self._sealer)
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [cast(_Job, first)]
            stop_after = False
            while len(batch) < self._max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop_after = True
                    break
                batch.append(cast(_Job, nxt))
            self._run_batch(conn, tx, batch)
            if stop_after:
                return

    def _run_batch(self, conn: sqlite3.Connection, tx: SqliteTx, batch: list[_Job]) -> None:
        # Fast path: every unit in one transaction. Units rarely fail; when one does, the whole
        # batch is rolled back and run again with a savepoint around each unit.
        outcomes = self._attempt(conn, tx, batch, isolated=False)
        if outcomes is None:
            outcomes = self._attempt(conn, tx, batch, isolated=True)
        assert outcomes is not None
        for job, (ok, value) in zip(batch, outcomes, strict=True):
            with contextlib.suppress(RuntimeError):  # loop already closed
                job.loop.call_soon_threadsafe(_resolve, job.future, ok, value)

    @staticmethod
    def _attempt(
        conn: sqlite3.Connection, tx: SqliteTx, batch: list[_Job], *, isolated: bool
    ) -> list[tuple[bool, Any]] | None:
        """Run the batch in one transaction; None if a unit failed on the fast path."""
        outcomes: list[tuple[bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for job in batch:
                if isolated:
                    conn.execute("SAVEPOINT unit")
                try:
                    value = job.work(tx)
                except BaseException as exc:  # the unit fails alone
                    if not isolated:
                        conn.execute("ROLLBACK")
                        return None
                    conn.execute("ROLLBACK TO unit")
                    conn.execute("RELEASE unit")
                    outcomes.append((False, exc))
                else:
                    if isolated:
                        conn.execute("RELEASE unit")
                    outcomes.append((True, value))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            failure = StorageUnavailable(f"sqlite commit failed: {exc}")
            return [(False, failure)] * len(batch)
        return outcomes

    # -- reads --------------------------------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path, synchronous=self._synchronous, readonly=True)
            self._local.conn = conn
            self._reader_conns.append(conn)
        return conn

    def _run_read(self, work: Callable[[SqliteTx], T]) -> T:
        conn = self._reader()
        conn.execute("BEGIN")  # one consistent snapshot for the whole unit
        try:
            return work(SqliteTx(conn, self._sealer))
        finally:
            conn.execute("COMMIT")

    async def read(self, work: Callable[[SqliteTx], T]) -> T:
        if self._closed:
            raise StorageUnavailable("database is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self._run_read, work)

    async def ping(self) -> None:
        try:
            await self.read(lambda tx: tx.fetchone("SELECT 1"))
        except sqlite3.Error as exc:
            raise StorageUnavailable(str(exc)) from exc

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        await asyncio.get_running_loop().run_in_executor(None, self._writer.join)
        self._readers.shutdown(wait=True)
        for conn in [*self._reader_conns, self._writer_conn]:
            conn.close()
