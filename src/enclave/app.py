"""Composition root: picks the storage backend and bus from configuration and wires services."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from enclave.api.app import create_api
from enclave.bus.memory import InProcessBus
from enclave.config import Config
from enclave.crypto.passwords import Passwords
from enclave.services.context import Context
from enclave.storage.base import Database
from enclave.storage.postgres import PostgresDatabase
from enclave.storage.sqlite import SqliteDatabase


def open_database(config: Config) -> Database:
    """Open (and migrate) the configured database. Blocking: call it from a thread."""
    if config.uses_postgres:
        return PostgresDatabase(config.database.url, pool_size=config.database.pool_size)
    return SqliteDatabase.open(
        config.sqlite_path(),
        synchronous=config.database.sqlite_synchronous,
        readers=config.database.sqlite_readers,
    )


def make_passwords(config: Config) -> Passwords:
    auth = config.auth
    return Passwords(
        time_cost=auth.argon2_time_cost,
        memory_kib=auth.argon2_memory_kib,
        parallelism=auth.argon2_parallelism,
    )


@asynccontextmanager
async def open_context(config: Config) -> AsyncIterator[Context]:
    """The service context for one process; the database closes on exit."""
    db = await asyncio.to_thread(open_database, config)
    try:
        passwords = await asyncio.to_thread(make_passwords, config)
        yield Context(db=db, bus=InProcessBus(), passwords=passwords, config=config)
    finally:
        await db.close()


def create_app(ctx: Context) -> FastAPI:
    """The ASGI application served by `enclave serve`."""
    return create_api(ctx)
