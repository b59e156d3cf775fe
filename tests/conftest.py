"""Shared fixtures: every backend-dependent test runs on SQLite and on PostgreSQL.

PostgreSQL comes from ENCLAVE_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/test);
each test gets its own schema. Redis comes from ENCLAVE_TEST_REDIS_URL (default
redis://127.0.0.1:6379/0); each test gets its own key and channel prefix (`redis.prefix`), so
tests running in parallel never see each other's keys or signals. Where PostgreSQL or Redis is
missing the runs that need it are skipped locally, and fail when CI=true (a skipped backend is a
failure in CI).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import secrets
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from enclave.app import create_app, open_context
from enclave.bus.redis.link import RedisLink
from enclave.config import Config, load_config
from enclave.services import accounts
from enclave.services.context import Context
from tests.redis_server import RedisServer

PG_URL = os.environ.get("ENCLAVE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("ENCLAVE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
TEST_PASSWORD = "correct horse battery staple"

# httpx logs every request at INFO. Clients on background threads (the web tests' next
# organization is built while a test runs) would write those lines into a test's log capture
# after it closed ("--- Logging error ---"). Tests put the response in their assertion messages.
logging.getLogger("httpx").setLevel(logging.WARNING)

# The cheapest Argon2id settings the configuration accepts: fast tests, same code path. Tests
# make many requests quickly from one address, so the rate limits and the login lockout are set
# out of reach here; tests/api/test_abuse.py tightens them where they are the subject.
FAST_AUTH: dict[str, Any] = {
    "auth.argon2_time_cost": 2,
    "auth.argon2_memory_kib": 19456,
    "auth.lockout_failures": 1_000_000,
    "auth.lockout_ip_failures": 1_000_000,
    "auth.lockout_account_failures": 10_000_000,
    "limits.ip_per_second": 1_000_000,
    "limits.ip_burst": 10_000_000,
    "limits.user_per_second": 1_000_000,
    "limits.user_burst": 10_000_000,
    "limits.login_per_minute": 1_000_000,
    "limits.login_burst": 10_000_000,
    "limits.send_per_second": 1_000_000,
    "limits.send_burst": 10_000_000,
}


def _postgres_available() -> str | None:
    try:
        with psycopg.connect(PG_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return str(exc)
    return None


@pytest.fixture(scope="session")
def postgres_url() -> str:
    problem = _postgres_available()
    if problem is not None:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI but unreachable: {problem}")
        pytest.skip(f"PostgreSQL unavailable: {problem}")
    return PG_URL


@contextlib.contextmanager
def fresh_schema(postgres_url: str, prefix: str = "t_") -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a new schema, dropped on exit."""
    schema = prefix + secrets.token_hex(6)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in postgres_url else "?"
    try:
        yield f"{postgres_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def pg_schema_url(postgres_url: str) -> Iterator[str]:
    """A fresh schema for one test."""
    with fresh_schema(postgres_url) as url:
        yield url


def redis_ping(host: str, port: int) -> str | None:
    """None if a Redis answers PING at host:port, else what went wrong."""
    try:
        with socket.create_connection((host, port), timeout=3) as sock:
            sock.sendall(b"PING\r\n")
            answer = sock.recv(64)
    except OSError as exc:
        return str(exc)
    return None if answer.startswith(b"+PONG") else f"unexpected answer {answer!r}"


@pytest.fixture(scope="session")
def redis_url() -> str:
    rest = REDIS_URL.removeprefix("redis://").split("/", 1)[0]
    host, _, port = rest.rpartition(":")
    problem = redis_ping(host or "127.0.0.1", int(port or 6379))
    if problem is not None:
        if IN_CI:
            pytest.fail(f"Redis is required in CI but unreachable at {REDIS_URL}: {problem}")
        pytest.skip(f"Redis unavailable at {REDIS_URL}: {problem}")
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key and channel prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"test-{secrets.token_hex(6)}:"
    yield prefix
    RedisLink(redis_url, prefix=prefix).delete_prefixed()


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own, which the test may kill and start again."""
    directory = Path(tempfile.mkdtemp(prefix="enclave-redis-"))
    server = RedisServer(directory)
    server.start()
    yield server
    server.kill()
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_config(tmp_path: Path, database_url: str = "", **extra: Any) -> Config:
    overrides: dict[str, Any] = {
        "server.data_dir": tmp_path / "data",
        "database.url": database_url,
        **FAST_AUTH,
        **extra,
    }
    return load_config(None, env={}, overrides=overrides)


@pytest.fixture
def config(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Config:
    url = request.getfixturevalue("pg_schema_url") if backend == "postgres" else ""
    return make_config(tmp_path, url)


@pytest.fixture
async def ctx(config: Config) -> AsyncIterator[Context]:
    async with open_context(config) as context:
        yield context


@pytest.fixture
async def client(ctx: Context) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(ctx))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@dataclass
class Person:
    """A logged-in account, as a test sees it."""

    id: str
    username: str
    token: str
    headers: dict[str, str] = field(default_factory=dict)


class World:
    """Builds an organization through the public API: an owner, then people."""

    def __init__(self, ctx: Context, client: httpx.AsyncClient) -> None:
        self.ctx = ctx
        self.client = client
        self._owner: Person | None = None

    async def owner(self) -> Person:
        if self._owner is None:
            boot = await accounts.bootstrap(self.ctx)
            assert boot is not None
            token = await self.login(boot.owner.username, boot.one_time_password)
            resp = await self.client.post(
                "/api/v1/users/me/password",
                json={"current_password": boot.one_time_password, "new_password": TEST_PASSWORD},
                headers=_auth(token),
            )
            assert resp.status_code == 204, resp.text
            self._owner = Person(boot.owner.id, boot.owner.username, token, _auth(token))
        return self._owner

    async def login(self, username: str, password: str = TEST_PASSWORD) -> str:
        resp = await self.client.post(
            "/api/v1/auth/login", json={"username": username, "password": password}
        )
        assert resp.status_code == 200, resp.text
        return str(resp.json()["token"])

    async def person(self, username: str, role: str = "member") -> Person:
        owner = await self.owner()
        resp = await self.client.post(
            "/api/v1/users",
            json={
                "username": username,
                "password": TEST_PASSWORD,
                "display_name": username,
                "role": role,
            },
            headers=owner.headers,
        )
        assert resp.status_code == 201, resp.text
        token = await self.login(username)
        return Person(resp.json()["id"], username, token, _auth(token))


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def world(ctx: Context, client: httpx.AsyncClient) -> World:
    return World(ctx, client)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI a skipped test (such as a backend that was not reachable) fails the run."""
    if not IN_CI:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped:
        print(f"\n{len(skipped)} test(s) skipped, and CI=true allows no skips:")
        for report in skipped[:20]:
            print(f"  {report.nodeid}: {report.longrepr}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# How long one callback or task step may hold the event loop. CPU time is what counts: on a loaded
# CI machine (xdist workers, servers and a browser on two cores) the wall time of a 0.1 s step can
# pass a second, while its CPU time stays 0.1 s. A step that waits (a sleep, a synchronous query
# on a socket) burns no CPU, so wall time still counts, with a bound no busy machine reaches.
BLOCKED_LOOP_CPU = float(os.environ.get("BLOCKED_LOOP_CPU", "0.5"))
BLOCKED_LOOP_WALL = float(os.environ.get("BLOCKED_LOOP_WALL", "5.0"))

_loop_reports: list[str] | None = None
_handle_run = asyncio.events.Handle._run
# CPU seconds each thread spent in the garbage collector. A collection runs inside whatever
# step allocated last, and is this test process's heap at work, not the step's code: it is
# taken out of the step's time.
_gc_seconds: dict[int, float] = {}
_gc_started: dict[int, float] = {}


def _gc_clock(phase: str, info: dict[str, int]) -> None:
    me = threading.get_ident()
    if phase == "start":
        _gc_started[me] = time.thread_time()
    elif me in _gc_started:
        spent = time.thread_time() - _gc_started.pop(me)
        _gc_seconds[me] = _gc_seconds.get(me, 0.0) + spent


gc.callbacks.append(_gc_clock)


def _timed_handle_run(handle: asyncio.events.Handle) -> None:
    """asyncio.events.Handle._run, measured: every callback and task step runs through it."""
    reports = _loop_reports
    if reports is None:
        _handle_run(handle)
        return
    me = threading.get_ident()
    gc_before = _gc_seconds.get(me, 0.0)
    cpu, wall = time.thread_time(), time.monotonic()
    try:
        _handle_run(handle)
    finally:
        collecting = _gc_seconds.get(me, 0.0) - gc_before
        cpu = time.thread_time() - cpu - collecting
        wall = time.monotonic() - wall - collecting
        if cpu > BLOCKED_LOOP_CPU or wall > BLOCKED_LOOP_WALL:
            what = asyncio.base_events._format_handle(handle)  # type: ignore[attr-defined]
            reports.append(f"{what} held the loop for {cpu:.3f} s of CPU ({wall:.3f} s)")


asyncio.events.Handle._run = _timed_handle_run  # type: ignore[method-assign]

# asyncio's debug mode is off (pyproject.toml): it records the creation stack of every callback,
# future and task, a quarter of an in-process test's CPU. Of what it checks, the blocked loop
# is measured above, and a call from a thread other than the loop's is refused here, as debug
# mode would: such a call corrupts the loop's state without any error.
_call_soon = asyncio.base_events.BaseEventLoop.call_soon
_call_at = asyncio.base_events.BaseEventLoop.call_at


def _on_loop_thread(loop: asyncio.AbstractEventLoop) -> None:
    owner = getattr(loop, "_thread_id", None)
    if owner is not None and owner != threading.get_ident():
        raise RuntimeError(
            "Non-thread-safe operation invoked on an event loop other than the current one"
        )


def _checked_call_soon(
    self: asyncio.base_events.BaseEventLoop, callback: Any, *args: Any, context: Any = None
) -> asyncio.Handle:
    _on_loop_thread(self)
    return _call_soon(self, callback, *args, context=context)


def _checked_call_at(
    self: asyncio.base_events.BaseEventLoop,
    when: float,
    callback: Any,
    *args: Any,
    context: Any = None,
) -> asyncio.TimerHandle:
    _on_loop_thread(self)
    return _call_at(self, when, callback, *args, context=context)


asyncio.base_events.BaseEventLoop.call_soon = _checked_call_soon  # type: ignore[method-assign]
asyncio.base_events.BaseEventLoop.call_at = _checked_call_at  # type: ignore[method-assign]


def pytest_collection_finish(session: pytest.Session) -> None:
    """Move everything loaded so far (the libraries, the collected tests: some 450,000 objects)
    out of the garbage collector's sight. Each full collection scanned them all, 0.3-0.4 s of
    CPU a time, hundreds of times per run."""
    gc.collect()
    gc.freeze()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Fail an in-process test if, while it runs, one step holds the event loop longer than the
    bounds above (password hashing or a synchronous query on the loop, a document built on it).
    Set-up work (building the app) is not counted; tests of real processes or a browser opt out,
    since they wait on a subprocess on purpose."""
    global _loop_reports
    if item.get_closest_marker("e2e") or item.get_closest_marker("web"):
        return (yield)
    reports: list[str] = []
    _loop_reports = reports
    try:
        result = yield
    finally:
        _loop_reports = None
    if reports:
        # No traceback: the report says what blocked, and formatting a deep one can crash CPython
        # 3.11.7 ("AST constructor recursion depth mismatch"), taking the xdist worker with it.
        pytest.fail("the event loop was blocked:\n" + "\n".join(reports[:5]), pytrace=False)
    return result
