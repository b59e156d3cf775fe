"""Fixtures that start real `enclave serve` processes on port 0 in temporary data directories.

`servers` starts as many servers as a test needs and, at teardown, stops each with SIGTERM and
fails the test unless it exits cleanly within a few seconds. `server` is one fresh SQLite server.
`database_url` runs a test once on SQLite ("") and once on a fresh PostgreSQL schema.

Request `database_url` before `servers` in a test's arguments: fixtures are torn down in reverse
order, so the servers then stop before their PostgreSQL schema is dropped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import ServerProcess, start_server


class Servers:
    """Starts servers for one test and stops them all at its end."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.data_dir = tmp_path / "data"
        self.started: list[ServerProcess] = []

    def start(
        self, data_dir: Path | None = None, database_url: str = "", port: int = 0
    ) -> ServerProcess:
        server = start_server(
            data_dir or self.data_dir, database_url=database_url, log_dir=self.tmp_path, port=port
        )
        self.started.append(server)
        return server

    def stop_all(self) -> None:
        """Stop every server still running, even when one of them misbehaves."""
        problems = []
        for server in self.started:
            if server.running:
                try:
                    server.stop()
                except pytest.fail.Exception as exc:
                    problems.append(str(exc))
        if problems:
            pytest.fail("\n\n".join(problems))


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    found = Servers(tmp_path)
    try:
        yield found
    finally:
        found.stop_all()


@pytest.fixture
def server(servers: Servers) -> ServerProcess:
    """A freshly initialized SQLite server; its one-time password is `server.one_time_password`."""
    return servers.start()


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest) -> str:
    """ "" (SQLite in the data directory) or a PostgreSQL URL with a schema of its own."""
    return str(request.getfixturevalue("pg_schema_url")) if backend == "postgres" else ""
