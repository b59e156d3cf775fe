"""The storage interface every backend implements, and its neutral errors."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

Param = str | int | bytes | None
Params = Sequence[Param]


class Row(Protocol):
    """A result row readable by column name (sqlite3.Row or a psycopg dict row)."""

    def __getitem__(self, key: str, /) -> Any: ...


class Tx(Protocol):
    """A transaction. SQL uses `?` placeholders on every backend; values are always parameters.

    `sealer` encrypts and decrypts the fields kept encrypted at rest (see `Sealer`); `dialect`
    ("sqlite" or "postgres") lets a storage module pick the one clause that differs (the job
    queue's `FOR UPDATE SKIP LOCKED`)."""

    @property
    def sealer(self) -> Sealer: ...

    @property
    def dialect(self) -> str: ...

    def execute(self, sql: str, params: Params = ()) -> int:
        """Run a statement; return the number of rows it changed."""
        ...

    def fetchone(self, sql: str, params: Params = ()) -> Row | None: ...

    def fetchall(self, sql: str, params: Params = ()) -> list[Row]: ...


class Sealer(Protocol):
    """Encryption at rest for single fields, implemented by `enclave.services.sealer.DataKeys`.

    `scope` names whose data key is used (`conv:<id>` or `user:<id>`), `at_ms` picks its time
    epoch, and `aad` is the row identity (table, column and key) bound into the ciphertext, so
    that a sealed value copied into another row or column does not open. The data keys live in
    the database too, so both methods take the transaction they run in."""

    def seal(self, tx: Tx, scope: str, at_ms: int, aad: str, plaintext: str) -> str: ...

    def open(self, tx: Tx, aad: str, stored: str) -> str | None:
        """The plaintext, or None if its data key was shredded."""
        ...


class NoSealer:
    """For processes that only migrate the schema: touching a sealed field is a bug there."""

    def seal(self, tx: Tx, scope: str, at_ms: int, aad: str, plaintext: str) -> str:
        raise StorageError("this process has no data keys")

    def open(self, tx: Tx, aad: str, stored: str) -> str | None:
        raise StorageError("this process has no data keys")


Work = Callable[[Tx], T]


class Database(Protocol):
    """A backend. `write` work runs in one transaction that has committed when the await returns."""

    dialect: str

    async def read(self, work: Callable[[Tx], T]) -> T: ...

    async def write(self, work: Callable[[Tx], T]) -> T: ...

    async def ping(self) -> None:
        """Raise `StorageUnavailable` unless the database answers."""
        ...

    async def close(self) -> None: ...


class StorageError(Exception):
    """Base of the storage layer's own errors (never carries an HTTP status)."""


class UniqueViolation(StorageError):
    """An insert or update broke a unique constraint."""


class StorageUnavailable(StorageError):
    """The database cannot be reached."""
