"""A job worker process for the queue's crash and shutdown tests (the test kind lives here, not
in the product):

    python -m tests.services.jobs_worker DATA_DIR DATABASE_URL [REDIS_URL REDIS_PREFIX]

With a Redis URL the node runs as a cluster node does (events, limits and presence shared through
Redis); the queue itself lives in the database either way.

It runs one node runtime with the kind `test.effect` until SIGTERM, and prints `ready` once
its worker polls. A `test.effect` job's payload names a directory: the handler appends
"<pid> <attempt>" to runs.log there, writes the effect file `effect-<job key>` unless it exists
(the effect is idempotent by the job's key), then waits while a file `hang` exists.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from enclave.app import open_context
from enclave.config import load_config
from enclave.services.context import Context
from enclave.services.jobs import Job, Kind, Registry
from enclave.services.runtime import Node

LEASE_SECONDS = 1.0


async def effect(ctx: Context, job: Job) -> None:
    assert job.payload is not None
    where = Path(job.payload["dir"])
    with (where / "runs.log").open("a") as log:
        log.write(f"{os.getpid()} {job.attempts}\n")
    try:
        fd = os.open(where / f"effect-{job.key}", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        pass  # done by an earlier attempt
    else:
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
    for _ in range(100_000):  # the test removes the file (or kills this process)
        if not (where / "hang").exists():
            break
        await asyncio.sleep(0.05)


EFFECT = Kind("test.effect", effect, max_attempts=3, lease_seconds=LEASE_SECONDS)


async def main(data_dir: str, database_url: str, redis_url: str = "", prefix: str = "") -> None:
    cluster = {"redis.url": redis_url, "redis.prefix": prefix} if redis_url else {}
    config = load_config(
        None,
        env={},
        overrides={
            "server.data_dir": data_dir,
            "database.url": database_url,
            "jobs.poll_seconds": 0.05,
            **cluster,
        },
    )
    async with open_context(config) as ctx:
        node = Node(ctx, Registry((EFFECT,)))
        await node.start()
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        print("ready", flush=True)
        await stop.wait()
        await node.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
