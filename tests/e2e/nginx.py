"""nginx in front of real Enclave nodes: the shipped site configuration
(deploy/nginx/enclave.conf.in, rendered by deploy/nginx/render.py for free local ports) run by
Debian's nginx as a child process in the foreground, never the system service, with its own
prefix, pid file, logs and temporary directories in a test's directory.

nginx comes from `scripts/ensure-nginx.sh` (run by `make test`); where it is missing the tests
that need it are skipped locally and fail in CI.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
RENDER = ROOT / "deploy" / "nginx" / "render.py"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
START_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0

# The main context the site file is included into. Workers never write files: request bodies
# fit in memory (the site sets client_body_buffer_size to the body limit) and responses are
# passed on without temporary files, so the unprivileged worker user needs no access here.
_MAIN = """\
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log notice;
events {{
    worker_connections 4096;
}}
http {{
    client_body_temp_path {dir}/temp/body;
    proxy_temp_path {dir}/temp/proxy;
    fastcgi_temp_path {dir}/temp/fastcgi;
    uwsgi_temp_path {dir}/temp/uwsgi;
    scgi_temp_path {dir}/temp/scgi;
    proxy_max_temp_file_size 0;
    include {dir}/enclave.conf;
}}
"""


def nginx_binary() -> str:
    """Debian's nginx (in /usr/sbin, which a non-root PATH may lack); skip, or fail in CI."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        message = "nginx is not installed (scripts/ensure-nginx.sh installs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def nginx_command(binary: str, directory: Path, *args: str) -> list[str]:
    """nginx with the prefix, configuration and error log in `directory`."""
    conf, errors = directory / "nginx.conf", directory / "error.log"
    return [binary, "-p", str(directory), "-c", str(conf), "-e", str(errors), *args]


@dataclass
class Nginx:
    proc: subprocess.Popen[bytes]
    binary: str
    directory: Path
    https_port: int
    http_port: int
    ca_file: Path

    def command(self, *args: str) -> list[str]:
        """`nginx ARGS...` for this instance (`-t` to check its configuration, `-s reload`)."""
        return nginx_command(self.binary, self.directory, *args)

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    def verify(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def logs(self) -> str:
        parts = []
        for name in ("error.log", "access.log", "nginx.out"):
            path = self.directory / name
            if path.exists():
                parts.append(f"--- {name}\n{path.read_text('utf-8', errors='replace')[-4000:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # fast shutdown: open sockets are cut
        try:
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"nginx did not exit within {STOP_TIMEOUT} s of SIGTERM\n{self.logs()}")


def render_site(
    out: Path,
    nodes: list[int],
    *,
    cert: Path,
    key: Path,
    https_port: int,
    http_port: int,
    access_log: Path,
) -> None:
    """deploy/nginx/render.py, run as an operator runs it."""
    args = [sys.executable, str(RENDER), "--server-name", "127.0.0.1"]
    for port in nodes:
        args += ["--node", f"127.0.0.1:{port}"]
    args += [
        "--cert",
        str(cert),
        "--key",
        str(key),
        "--listen",
        f"127.0.0.1:{https_port}",
        "--http-listen",
        f"127.0.0.1:{http_port}",
        "--access-log",
        str(access_log),
        "--out",
        str(out),
    ]
    done = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr


def start_nginx(directory: Path, nodes: list[int], cert: Path, key: Path, ca: Path) -> Nginx:
    """nginx on two free ports (HTTPS, and plain HTTP that redirects) in front of the nodes on
    127.0.0.1 at `nodes`; returns once a request through it reaches a node."""
    binary = nginx_binary()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "temp").mkdir(exist_ok=True)
    (directory / "nginx.conf").write_text(_MAIN.format(dir=directory))
    problem = ""
    for _ in range(3):  # a free port can be taken by someone else before nginx binds it
        https_port, http_port = free_port(), free_port()
        render_site(
            directory / "enclave.conf",
            nodes,
            cert=cert,
            key=key,
            https_port=https_port,
            http_port=http_port,
            access_log=directory / "access.log",
        )
        with (directory / "nginx.out").open("wb") as out:
            proc = subprocess.Popen(
                nginx_command(binary, directory),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        found = Nginx(proc, binary, directory, https_port, http_port, ca)
        problem = _wait_until_serving(found)
        if not problem:
            return found
        found.stop()
        if "Address already in use" not in found.logs():
            break
    pytest.fail(f"nginx did not start: {problem}\n{found.logs()}")


def _wait_until_serving(nginx: Nginx) -> str:
    deadline = time.monotonic() + START_TIMEOUT
    last = "no answer"
    with httpx.Client(base_url=nginx.base_url, verify=nginx.verify(), timeout=5.0) as client:
        while time.monotonic() < deadline:
            if nginx.proc.poll() is not None:
                return f"exited with status {nginx.proc.returncode}"
            try:
                resp = client.get("/readyz")
            except httpx.TransportError as exc:
                last = repr(exc)
            else:
                if resp.status_code == 200:
                    return ""
                last = f"{resp.status_code} {resp.text}"
            time.sleep(0.05)  # a poll interval: the deadline bounds the wait
    return f"/readyz through nginx never answered 200 (last: {last})"
