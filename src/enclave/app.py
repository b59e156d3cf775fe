"""Composition root: picks the storage backend and bus from configuration and wires services."""

from __future__ import annotations

import asyncio
import os
import secrets
import stat
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from enclave.api.app import create_api
from enclave.bus.memory import InProcessBus
from enclave.bus.redis.bus import RedisBus
from enclave.bus.redis.link import RedisLink
from enclave.bus.shared import RedisAlertWindows, RedisPresence, RedisRateLimiter
from enclave.config import Config
from enclave.crypto.keyring import EnvKeyring, FileKeyring, KeyProvider, KeyringError
from enclave.crypto.passwords import Passwords
from enclave.services import alerts, metrics
from enclave.services.context import Context
from enclave.services.limits import FallbackRateLimiter, MemoryRateLimiter, RateLimiter
from enclave.services.presence import FallbackPresence, MemoryPresence, PresenceStore
from enclave.services.sealer import DataKeys
from enclave.storage import keys as key_store
from enclave.storage.base import Database, NoSealer, Sealer
from enclave.storage.postgres import PostgresDatabase
from enclave.storage.sqlite import SqliteDatabase

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def make_private(data_dir: Path) -> None:
    """The data directory 0700 and everything in it 0700 (folders) or 0600 (files), whatever
    the umask was when they were made: the database, its WAL, the keyring and exports are the
    organization's chat data. Symbolic links are left alone (never followed)."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    data_dir.chmod(PRIVATE_DIR)
    for root, dirs, files in os.walk(data_dir):
        here = Path(root)
        for name in dirs:
            if not (here / name).is_symlink():
                (here / name).chmod(PRIVATE_DIR)
        for name in files:
            path = here / name
            if not path.is_symlink() and stat.S_IMODE(path.lstat().st_mode) != PRIVATE_FILE:
                path.chmod(PRIVATE_FILE)


def open_database(config: Config, sealer: Sealer | None = None) -> Database:
    """Open (and migrate) the configured database. Blocking: call it from a thread.

    Without a `sealer` (schema migration only) any encrypted field access fails."""
    sealer = sealer or NoSealer()
    if config.uses_postgres:
        return PostgresDatabase(
            config.database.url, sealer=sealer, pool_size=config.database.pool_size
        )
    return SqliteDatabase.open(
        config.sqlite_path(),
        sealer=sealer,
        synchronous=config.database.sqlite_synchronous,
        readers=config.database.sqlite_readers,
    )


def open_keyring(config: Config, *, create: bool = True) -> tuple[KeyProvider, bool]:
    """The configured key provider; a keyring file is created when absent and `create` is set.

    The flag says a new keyring was created, so that `init` and `serve` can say loudly that it
    must be backed up. Raises `KeyringError` if it is missing and may not be created."""
    if config.encryption.key:
        return EnvKeyring(config.encryption.key), False
    path = config.keyring_path()
    if create:
        return FileKeyring.open_or_create(path)
    return FileKeyring(path), False


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
    await asyncio.to_thread(make_private, config.server.data_dir)
    keys, created = await asyncio.to_thread(open_keyring, config)
    data_keys = DataKeys(keys, epoch_days=config.encryption.epoch_days)
    db = await asyncio.to_thread(open_database, config, data_keys)
    try:
        await _check_keyring(db, keys, config, created)
        passwords = await asyncio.to_thread(make_passwords, config)
        async with _shared_state(config) as (bus, limiter, presence, monitor, node_id):
            yield Context(
                db=db,
                bus=bus,
                passwords=passwords,
                config=config,
                keys=keys,
                data_keys=data_keys,
                limiter=limiter,
                presence=presence,
                node_id=node_id,
                alerts=monitor,
            )
    finally:
        await db.close()


SharedState = tuple[InProcessBus | RedisBus, RateLimiter, PresenceStore, alerts.Monitor, str]


@asynccontextmanager
async def _shared_state(config: Config) -> AsyncIterator[SharedState]:
    """The bus, rate limiter and presence store: this process's own on one node; with
    `redis.url`, Redis shared by the nodes (each falling back to this process's memory while
    Redis does not answer). Alert counters follow the same choice."""
    node_id = secrets.token_hex(8)
    if not config.uses_redis:
        monitor = alerts.Monitor(config.alerts)  # this context's alert counts, from zero
        yield InProcessBus(), MemoryRateLimiter(), MemoryPresence(), monitor, node_id
        return
    cfg = config.redis
    async with AsyncExitStack() as stack:
        link = RedisLink(
            cfg.url,
            prefix=cfg.prefix,
            timeout=cfg.timeout_seconds,
            on_change=metrics.redis_reachable,
        )
        stack.push_async_callback(link.close)
        bus = RedisBus(link, node_id)
        monitor = alerts.Monitor(config.alerts, RedisAlertWindows(link))
        await bus.start()  # without Redis the node starts anyway, and connects when it can
        stack.push_async_callback(bus.close)
        limiter = FallbackRateLimiter(RedisRateLimiter(link))
        yield bus, limiter, FallbackPresence(RedisPresence(link, node_id)), monitor, node_id


async def _check_keyring(db: Database, keys: KeyProvider, config: Config, created: bool) -> None:
    """Refuse to run with a keyring that cannot open this database's data keys (a lost, wrong
    or mistyped keyring), rather than serve errors for every message."""
    usage = await db.read(key_store.kek_usage)
    missing = sorted(set(usage) - set(keys.kek_ids()))
    if not missing:
        return
    if created and isinstance(keys, FileKeyring):
        await asyncio.to_thread(keys.path.unlink)  # the empty keyring made a moment ago
    where = "ENCLAVE_ENCRYPTION_KEY" if config.encryption.key else str(config.keyring_path())
    raise KeyringError(
        f"the database's data keys are wrapped by {', '.join(missing)}, which {where} does not "
        "hold: restore the keyring from its backup (docs/security.md)"
    )


def create_app(ctx: Context) -> FastAPI:
    """The ASGI application served by `enclave serve`."""
    return create_api(ctx)
