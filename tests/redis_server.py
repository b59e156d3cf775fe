"""A private redis-server for tests that take Redis away and bring it back.

It listens only on a Unix socket in a directory of its own (no TCP port, so parallel test
workers never collide; a short path, since socket paths are limited to about 100 bytes) and
keeps nothing on disk.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


class RedisServer:
    def __init__(self, directory: Path) -> None:
        self.socket = directory / "redis.sock"
        self.url = f"unix://{self.socket}"
        self._dir = directory
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            if IN_CI:
                pytest.fail("redis-server is required in CI")
            pytest.skip("redis-server is not installed")
        self._proc = subprocess.Popen(
            [
                binary,
                "--port",
                "0",
                "--unixsocket",
                str(self.socket),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self._dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not self.socket.exists():
            if time.monotonic() > deadline or self._proc.poll() is not None:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.01)

    def kill(self) -> None:
        """Take Redis away at once (SIGKILL), as a crash or a network cut would."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(10)
            self._proc = None
        self.socket.unlink(missing_ok=True)
