"""The data directory is its owner's alone: under a permissive umask, `enclave serve` leaves the
directory 0700 and every file in it (the database, its WAL and shared memory, the keyring, TLS
keys) 0600, and mends a directory that an earlier, careless start left readable."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import start_server

pytestmark = pytest.mark.e2e


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def modes(data_dir: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(data_dir.stat().st_mode)}
    for path in data_dir.rglob("*"):
        if not path.is_symlink():
            found[str(path.relative_to(data_dir))] = stat.S_IMODE(path.stat().st_mode)
    return found


async def test_the_data_directory_and_its_files_are_private_whatever_the_umask(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    stray = data_dir / "notes.txt"  # left by an earlier start or by hand, world-readable
    stray.write_text("x")
    stray.chmod(0o644)
    with umask(0o022):
        server = start_server(data_dir, log_dir=tmp_path)
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30.0) as client:
            # A write, so that the WAL and the shared-memory file exist.
            resp = await client.post(
                "/api/v1/auth/login", json={"username": "admin", "password": "wrong password 1"}
            )
            assert resp.status_code == 401, resp.text
        seen = modes(data_dir)
    finally:
        server.stop()
    assert any(name.endswith(".db-wal") for name in seen), seen
    assert any(name.endswith(".db") for name in seen), seen
    for name, mode in seen.items():
        is_dir = (data_dir / name).is_dir()
        assert mode == (0o700 if is_dir else 0o600), (name, oct(mode))
