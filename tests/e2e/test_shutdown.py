"""SIGTERM on a real `enclave serve` with sockets open and a job running: the node shuts down in
its one order (stop accepting, close the sockets with 1001, stop the hub's work, release the
jobs) and the process exits 0, quickly. The running job goes back to the queue with its attempt
not spent, and the next server runs it."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from enclave.app import open_context
from enclave.services import jobs
from enclave.services.context import Context
from enclave.storage import jobs as job_store
from tests.conftest import make_config
from tests.e2e.harness import STOP_TIMEOUT, ServerProcess, start_server
from tests.e2e.test_acceptance import build_org
from tests.services.jobs_worker import EFFECT

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = (sys.executable, "-m", "tests.e2e.serve_with_test_job")
ENV = {
    "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    "ENCLAVE_JOBS_POLL_SECONDS": "0.05",
}


def _start(data_dir: Path, database_url: str, tmp_path: Path) -> ServerProcess:
    return start_server(
        data_dir, database_url=database_url, env=ENV, log_dir=tmp_path, program=LAUNCHER
    )


async def _job(ctx: Context, job_id: str) -> job_store.Job:
    found = await ctx.db.read(lambda tx: job_store.get(tx, job_id))
    assert found is not None
    return found


async def _until(what: str, check: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.05)


async def _open_socket(base_url: str, token: str) -> ClientConnection:
    ws = await connect(base_url.replace("http://", "ws://") + "/api/v1/ws", compression=None)
    await ws.send(json.dumps({"type": "hello", "token": token, "cursors": {}}))
    while json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] != "synced":
        pass
    return ws


async def _close_code(ws: ClientConnection) -> int | None:
    try:
        while True:
            await asyncio.wait_for(ws.recv(), STOP_TIMEOUT)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd is not None else None


async def test_sigterm_with_open_sockets_and_a_running_job_exits_cleanly(
    database_url: str, tmp_path: Path
) -> None:
    config = make_config(tmp_path, database_url)
    where = tmp_path / "effects"
    where.mkdir()
    (where / "hang").touch()  # the job runs until this file goes
    async with open_context(config) as ctx:
        server = _start(config.server.data_dir, database_url, tmp_path)
        try:
            assert server.one_time_password is not None
            async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
                org = await build_org(client, server.one_time_password)
            sockets = [
                await _open_socket(server.base_url, p.headers["Authorization"][7:])
                for p in (org.alice, org.bob, org.bob)
            ]
            job = await jobs.enqueue(ctx, EFFECT, {"dir": str(where)}, key="shutdown-1")

            async def running() -> bool:
                return (await _job(ctx, job.id)).state == "running"

            await _until("the server runs the job", running)
            closing = [asyncio.ensure_future(_close_code(ws)) for ws in sockets]
            began = time.monotonic()
            assert server.stop() == 0  # SIGTERM; fails unless it exits 0 within STOP_TIMEOUT
            took = time.monotonic() - began
        finally:
            if server.running:
                server.proc.kill()
                server.proc.wait()
        assert took < STOP_TIMEOUT
        assert await asyncio.gather(*closing) == [1001, 1001, 1001]  # going away: resume
        back = await _job(ctx, job.id)
        assert (back.state, back.attempts, back.lease_owner, back.last_error) == (
            "queued",
            0,
            None,
            None,
        )
        # Released, not lost: the next server runs it at once, as its first attempt.
        (where / "hang").unlink()
        again = _start(config.server.data_dir, database_url, tmp_path)
        try:

            async def done() -> bool:
                return (await _job(ctx, job.id)).state == "done"

            await _until("the next server finishes the job", done)
            assert (await _job(ctx, job.id)).attempts == 1
            assert again.stop() == 0
        finally:
            if again.running:
                again.proc.kill()
                again.proc.wait()
