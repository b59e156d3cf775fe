"""Versioned schema migrations: numbered SQL files per dialect, applied in order, once each."""

from __future__ import annotations

import re
import sqlite3
import time
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# Any 64-bit constant works; it keeps two nodes from migrating the same database at once.
_PG_LOCK_KEY = 0x656E636C617665


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(dialect: str) -> list[Migration]:
    """Every migration shipped for `dialect`, in version order."""
    folder = resources.files("enclave.storage") / "migrations" / dialect
    found = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"{dialect} migrations are not numbered 1..n: {versions}")
    return found


_CREATE_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)"
)


def apply_sqlite_migrations(conn: sqlite3.Connection) -> list[int]:
    """Apply pending migrations; return the versions applied."""
    conn.execute(_CREATE_TABLE)
    applied: list[int] = []
    for mig in load_migrations("sqlite"):
        conn.execute("BEGIN IMMEDIATE")
        try:
            done = conn.execute(
                "SELECT 1 FROM schema_migrations WHERE version = ?", (mig.version,)
            ).fetchone()
            if done:
                conn.execute("COMMIT")
                continue
            for statement in _statements(mig.sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (mig.version, mig.name, int(time.time() * 1000)),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        applied.append(mig.version)
    return applied


def apply_postgres_migrations(conn: psycopg.Connection[Any]) -> list[int]:
    """Apply pending migrations under an advisory lock; return the versions applied."""
    applied: list[int] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_LOCK_KEY,))
        conn.execute(_CREATE_TABLE)
        for mig in load_migrations("postgres"):
            row = conn.execute(
                "SELECT 1 FROM schema_migrations WHERE version = %s", (mig.version,)
            ).fetchone()
            if row:
                continue
            for statement in _statements(mig.sql):
                conn.execute(statement.encode("utf-8"))
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
                (mig.version, mig.name, int(time.time() * 1000)),
            )
            applied.append(mig.version)
    return applied


def _statements(script: str) -> list[str]:
    """Split a migration file on ';' at line ends (our files keep one statement per block)."""
    body = "\n".join(line for line in script.splitlines() if not line.strip().startswith("--"))
    return [part.strip() for part in re.split(r";\s*\n", body + "\n") if part.strip()]
