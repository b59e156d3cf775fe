"""Real `enclave` processes for end-to-end tests: the CLI as a subprocess, the server on port 0.

Nothing here imports the server: the tests see Enclave the way an operator does, through its
command line, its stdout and its TCP port.
"""

from __future__ import annotations

import asyncio
import os
import queue
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest

ENCLAVE = str(Path(sys.executable).with_name("enclave"))

# The cheapest Argon2id settings the configuration accepts: fast tests, same code path. The
# tests log in and call the API often from one address, so the rate limits and the login lockout
# are out of reach (tests/api/test_abuse.py covers them).
FAST_ENV = {
    "ENCLAVE_AUTH_ARGON2_TIME_COST": "2",
    "ENCLAVE_AUTH_ARGON2_MEMORY_KIB": "19456",
    "ENCLAVE_AUTH_LOCKOUT_FAILURES": "1000000",
    "ENCLAVE_AUTH_LOCKOUT_IP_FAILURES": "1000000",
    "ENCLAVE_LIMITS_IP_PER_SECOND": "1000000",
    "ENCLAVE_LIMITS_IP_BURST": "10000000",
    "ENCLAVE_LIMITS_USER_PER_SECOND": "1000000",
    "ENCLAVE_LIMITS_USER_BURST": "10000000",
    "ENCLAVE_LIMITS_LOGIN_PER_MINUTE": "1000000",
    "ENCLAVE_LIMITS_LOGIN_BURST": "10000000",
    "ENCLAVE_LIMITS_SEND_PER_SECOND": "1000000",
    "ENCLAVE_LIMITS_SEND_BURST": "10000000",
}

START_TIMEOUT = 30.0  # seconds from spawn to a ready /readyz
STOP_TIMEOUT = 5.0  # seconds from SIGTERM to exit
CLI_TIMEOUT = 60.0

_LISTENING = re.compile(r"^Enclave \S+ listening on (https?)://(127\.0\.0\.1|0\.0\.0\.0):(\d+)$")
_FINGERPRINT = re.compile(r"^TLS certificate SHA-256: ([0-9A-F:]+)$")
_ONE_TIME_PASSWORD = re.compile(r"^\s*One-time password:\s+(\S+)\s*$")


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without any ENCLAVE_* setting, plus fast hashing and `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_")}
    env.update(FAST_ENV)
    env.update(extra or {})
    return env


def location_args(data_dir: Path, database_url: str = "") -> list[str]:
    args = ["--data-dir", str(data_dir)]
    if database_url:
        args += ["--database-url", database_url]
    return args


async def enclave(
    *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `enclave ARGS...` to completion; return its exit status and output."""
    proc = await asyncio.create_subprocess_exec(
        ENCLAVE,
        *args,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(env),
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), CLI_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        pytest.fail(f"enclave {' '.join(args)} did not finish within {CLI_TIMEOUT} s")
    assert proc.returncode is not None
    return subprocess.CompletedProcess(
        [ENCLAVE, *args], proc.returncode, out.decode("utf-8"), err.decode("utf-8")
    )


def describe(result: subprocess.CompletedProcess[str]) -> str:
    """A failure message showing what the command did."""
    return (
        f"$ {' '.join(result.args)}\nexit status {result.returncode}\n"
        f"--- stdout\n{result.stdout}--- stderr\n{result.stderr}"
    )


@dataclass
class ServerProcess:
    """One running `enclave serve --port 0`, as started by `start_server`."""

    proc: subprocess.Popen[str]
    stderr_path: Path
    base_url: str = ""
    port: int = 0
    one_time_password: str | None = None
    ca_file: Path | None = None  # the CA (or self-signed certificate) to trust over https
    tls_fingerprint: str | None = None  # from "TLS certificate SHA-256: ..." at start
    stdout_lines: list[str] = field(default_factory=list)
    _lines: queue.Queue[str | None] = field(default_factory=queue.Queue)
    _reader: threading.Thread | None = None

    @property
    def stdout(self) -> str:
        """Everything the process printed on stdout so far (complete once it has stopped)."""
        return "".join(self.stdout_lines)

    def stderr(self) -> str:
        return self.stderr_path.read_text("utf-8", errors="replace")

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.stdout_lines.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def _wait_for_listening(self, deadline: float) -> None:
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = self._lines.get(timeout=max(remaining, 0.01))
            except queue.Empty:
                self._fail("did not print its listening line in time")
            if line is None:
                self.proc.wait(timeout=STOP_TIMEOUT)
                self._fail(f"exited with status {self.proc.returncode} before listening")
            if found := _ONE_TIME_PASSWORD.match(line):
                self.one_time_password = found.group(1)
            if found := _FINGERPRINT.match(line.rstrip("\n")):
                self.tls_fingerprint = found.group(1)
            if found := _LISTENING.match(line.rstrip("\n")):
                self.port = int(found.group(3))  # on 0.0.0.0 too, the test connects to loopback
                self.base_url = f"{found.group(1)}://127.0.0.1:{self.port}"
                return

    def verify(self) -> ssl.SSLContext | bool:
        """httpx's `verify=` for this server: trust `ca_file` over https."""
        if self.ca_file is None:
            return True
        return ssl.create_default_context(cafile=str(self.ca_file))

    def _wait_until_ready(self, deadline: float) -> None:
        last = "no answer"
        with httpx.Client(base_url=self.base_url, timeout=5.0, verify=self.verify()) as client:
            # Scripts connect as soon as they read the listening line: it must be true already.
            try:
                alive = client.get("/healthz")
            except httpx.TransportError as exc:
                self._fail(f"printed its listening line before accepting connections: {exc!r}")
            if alive.status_code != 200:
                self._fail(f"answered /healthz with {alive.status_code} {alive.text}")
            while time.monotonic() < deadline:
                try:
                    resp = client.get("/readyz")
                except httpx.TransportError as exc:
                    last = repr(exc)
                else:
                    if resp.status_code == 200:
                        return
                    last = f"{resp.status_code} {resp.text}"
                if self.proc.poll() is not None:
                    self._fail(f"exited with status {self.proc.returncode} before ready")
                time.sleep(0.02)  # a poll interval: the deadline bounds the wait
        self._fail(f"/readyz never answered 200 (last: {last})")

    def _fail(self, problem: str) -> NoReturn:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        pytest.fail(
            f"enclave serve {problem}\n--- stdout\n{self.stdout}--- stderr\n{self.stderr()}"
        )

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> int:
        """SIGTERM, then require a prompt, clean exit; return the exit status."""
        if self.running:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._fail(f"did not exit within {STOP_TIMEOUT} s of SIGTERM")
        if self._reader is not None:
            self._reader.join(timeout=STOP_TIMEOUT)
        if self.proc.returncode != 0:
            pytest.fail(
                f"enclave serve exited with status {self.proc.returncode} after SIGTERM\n"
                f"--- stderr\n{self.stderr()}"
            )
        return self.proc.returncode


def start_server(
    data_dir: Path,
    *,
    database_url: str = "",
    env: dict[str, str] | None = None,
    log_dir: Path | None = None,
    port: int = 0,
    extra_args: Sequence[str] = (),
    ca_file: Path | None = None,
    program: Sequence[str] = (ENCLAVE,),
) -> ServerProcess:
    """Start `enclave serve --port PORT EXTRA_ARGS...` (0: any free port); return once it
    listens and /readyz answers 200. Over https, `ca_file` is the certificate to trust; for a
    self-signed server it is data_dir/tls/self-signed.crt, written before the listening line.
    `program` runs instead of `enclave` (a test's launcher of the same command line)."""
    deadline = time.monotonic() + START_TIMEOUT
    log_dir = log_dir or data_dir.parent
    log_dir.mkdir(parents=True, exist_ok=True)
    stderr_path = log_dir / f"serve-{time.monotonic_ns()}.stderr"
    args = [
        *program,
        "serve",
        "--port",
        str(port),
        *location_args(data_dir, database_url),
        *extra_args,
    ]
    with stderr_path.open("w") as stderr:
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            bufsize=1,
            env=cli_env(env),
        )
    server = ServerProcess(proc=proc, stderr_path=stderr_path, ca_file=ca_file)
    server._wait_for_listening(deadline)
    server._wait_until_ready(deadline)
    return server


# -- HTTP helpers ---------------------------------------------------------------------------------


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def error_code(resp: httpx.Response) -> str:
    body: Any = resp.json()
    return str(body["error"]["code"])


async def login(client: httpx.AsyncClient, username: str, password: str) -> str:
    resp = await client.post(
        "/api/v1/auth/login", json={"username": username, "password": password}
    )
    assert resp.status_code == 200, resp.text
    return str(resp.json()["token"])


async def send_until_stored(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    conv: str,
    key: str,
    text: str,
    attempts: int = 600,
) -> None:
    """What a real client does: retry a send with the same client_msg_id until the server
    has it. Only an outage (a transport error or a 5xx) may delay a valid send."""
    body = {"client_msg_id": key, "text": text}
    for _ in range(attempts):
        try:
            resp = await client.post(
                f"/api/v1/conversations/{conv}/messages", json=body, headers=headers
            )
        except httpx.TransportError:
            await asyncio.sleep(0.05)
            continue
        if resp.status_code in (200, 201):
            return
        assert resp.status_code >= 500, resp.text
        await asyncio.sleep(0.05)
    pytest.fail(f"{key} was never stored")
