"""PostgreSQL backend: a psycopg connection pool used from a bounded pool of threads.

Each unit of work is one transaction (READ COMMITTED). Per-conversation sequence numbers are taken
with `UPDATE conversations ... RETURNING last_seq`, whose row lock is held until commit, so within
a conversation sequence order equals commit order on every node.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any, TypeVar, cast

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from enclave.storage.base import Params, Row, Sealer, StorageUnavailable, UniqueViolation
from enclave.storage.migrate import apply_postgres_migrations

T = TypeVar("T")

_PLACEHOLDER = re.compile(r"\?")
_RETRIES = 5


@lru_cache(maxsize=1024)
def _to_pyformat(sql: str) -> str:
    """Turn the project's neutral `?` placeholders into psycopg's `%s` (SQL text is constant)."""
    return _PLACEHOLDER.sub("%s", sql.replace("%", "%%"))


class PostgresTx:
    """`Tx` over one psycopg connection inside a transaction."""

    __slots__ = ("_conn", "sealer")
    dialect = "postgres"

    def __init__(self, conn: psycopg.Connection[Any], sealer: Sealer) -> None:
        self._conn = conn
        self.sealer = sealer

    def execute(self, sql: str, params: Params = ()) -> int:
        try:
            cur = self._conn.execute(_to_pyformat(sql), params, prepare=True)
        except pg_errors.UniqueViolation as exc:
            raise UniqueViolation(str(exc)) from exc
        return cur.rowcount

    def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        try:
            cur = self._conn.cursor(row_factory=dict_row)
            cur.execute(_to_pyformat(sql), params, prepare=True)
        except pg_errors.UniqueViolation as exc:
            raise UniqueViolation(str(exc)) from exc
        return cast(Row | None, cur.fetchone())

    def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        cur = self._conn.cursor(row_factory=dict_row)
        cur.execute(_to_pyformat(sql), params, prepare=True)
        return cast(list[Row], cur.fetchall())


class PostgresDatabase:
    """The scale-out backend."""

    dialect = "postgres"

    def __init__(
        self, url: str, *, sealer: Sealer, pool_size: int = 8, migrate: bool = True
    ) -> None:
        self.url = url
        self._sealer = sealer
        try:
            if migrate:
                with psycopg.connect(url, autocommit=True) as conn:
                    apply_postgres_migrations(conn)
            self._pool = ConnectionPool(
                url, min_size=1, max_size=pool_size, open=True, timeout=10.0
            )
            self._pool.wait(timeout=10.0)
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise StorageUnavailable(f"cannot connect to PostgreSQL: {exc}") from exc
        self._threads = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="pg")
        self._closed = False

    def _run(self, work: Callable[[PostgresTx], T]) -> T:
        for attempt in range(_RETRIES):
            try:
                with self._pool.connection() as conn, conn.transaction():
                    return work(PostgresTx(conn, self._sealer))
            except (pg_errors.SerializationFailure, pg_errors.DeadlockDetected):
                if attempt == _RETRIES - 1:
                    raise
            except (psycopg.OperationalError, PoolTimeout) as exc:
                raise StorageUnavailable(str(exc)) from exc
        raise StorageUnavailable("unreachable")  # pragma: no cover

    async def read(self, work: Callable[[PostgresTx], T]) -> T:
        return await self._submit(work)

    async def write(self, work: Callable[[PostgresTx], T]) -> T:
        return await self._submit(work)

    async def _submit(self, work: Callable[[PostgresTx], T]) -> T:
        if self._closed:
            raise StorageUnavailable("database is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, self._run, work)

    async def ping(self) -> None:
        await self.read(lambda tx: tx.fetchone("SELECT 1"))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._threads.shutdown)
        await loop.run_in_executor(None, self._pool.close)
