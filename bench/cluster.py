"""The cluster that `bench/run.py --nodes N` measures: N `enclave serve` nodes on one PostgreSQL
schema and one Redis (a prefix of its own), behind nginx running the shipped configuration
(deploy/nginx/enclave.conf.in, rendered by deploy/nginx/render.py) with TLS, as in production.

Every node is pinned to CPU 0, where the single-node benchmark runs its one server, so the
nodes together get the same CPU as one server had; nginx, PostgreSQL and Redis are not pinned.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).resolve().parent.parent
RENDER = ROOT / "deploy" / "nginx" / "render.py"
APP_NAME = "enclave-bench"  # PostgreSQL application_name of the nodes' connections

# Two workers: each WebSocket holds two descriptors in nginx (client and node), and S5's 10,000
# idle clients need more than one process may open on a machine whose hard limit is 20,000.
_MAIN = """\
daemon off;
worker_processes 2;
worker_rlimit_nofile {nofile};
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{
    worker_connections 16384;
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Node:
    proc: subprocess.Popen[str]
    url: str
    one_time_password: str | None


def spawn(cmd: list[str], env: dict[str, str], preexec: Callable[[], None] | None) -> Node:
    """Start `enclave serve ...`; return once it prints its listening line."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env, preexec_fn=preexec)
    assert proc.stdout is not None
    password = url = None
    deadline = time.time() + 90
    while url is None and time.time() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        if m := re.search(r"One-time password:\s+(\S+)", line):
            password = m.group(1)
        if m := re.search(r"listening on (http://\S+)", line):
            url = m.group(1)
    if url is None:
        proc.kill()
        raise RuntimeError(f"server did not start: {' '.join(cmd)}")
    return Node(proc, url, password)


def stop(proc: subprocess.Popen[str] | subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _self_signed(directory: Path) -> tuple[Path, Path]:
    now = datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@dataclass
class Cluster:
    """`n` nodes behind nginx. `node_cmd(port)` is the node's command line without the
    database; `env` the benchmark's settings for every node."""

    n: int
    directory: Path
    database_url: str
    redis_url: str
    node_cmd: Callable[[int], list[str]]
    env: dict[str, str]
    preexec: Callable[[], None] | None = None
    nodes: list[Node] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    nginx: subprocess.Popen[bytes] | None = None
    https_port: int = 0
    schema: str = ""
    prefix: str = ""

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def ca_file(self) -> Path:
        return self.directory / "cert.pem"

    def verify(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def start(self) -> str:
        """Start everything; returns the owner's one-time password."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.schema = f"bench_{secrets.token_hex(5)}"
        self.prefix = f"bench-{secrets.token_hex(5)}:"
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{self.schema}"')
        self.ports = [free_port() for _ in range(self.n)]
        self._start_nodes()
        self._start_nginx()
        password = self.nodes[0].one_time_password
        assert password, "the first node printed no one-time password"
        return password

    def _node_env(self) -> dict[str, str]:
        sep = "&" if "?" in self.database_url else "?"
        return {
            **self.env,
            "ENCLAVE_DATABASE_URL": f"{self.database_url}{sep}options=-csearch_path%3D"
            f"{self.schema}&application_name={APP_NAME}",
            "ENCLAVE_REDIS_URL": self.redis_url,
            "ENCLAVE_REDIS_PREFIX": self.prefix,
            "ENCLAVE_ENCRYPTION_KEY_FILE": str(self.directory / "keyring.json"),
            "ENCLAVE_SERVER_TRUSTED_PROXIES": "127.0.0.1/32",
        }

    def _start_nodes(self) -> None:
        env = self._node_env()
        # The first node migrates, creates the keyring and the owner; then the others.
        self.nodes = [spawn(self.node_cmd(self.ports[0]), env, self.preexec)]
        self.nodes += [spawn(self.node_cmd(p), env, self.preexec) for p in self.ports[1:]]
        for node in self.nodes:
            _wait_ready(node.url)

    def restart_nodes(self) -> None:
        """Fresh node and nginx processes on the same ports and data (S5 measures their
        memory; a process keeps memory it once used)."""
        if self.nginx is not None:
            stop(self.nginx)
        for node in self.nodes:
            stop(node.proc)
        self._start_nodes()
        self._start_nginx()

    def _start_nginx(self) -> None:
        binary = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
        if binary is None:
            raise RuntimeError("nginx is not installed (run scripts/ensure-nginx.sh)")
        d = self.directory / "nginx"
        (d / "temp").mkdir(parents=True, exist_ok=True)
        cert, key = self.ca_file, self.directory / "key.pem"
        if not cert.exists():
            cert, key = _self_signed(self.directory)
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        (d / "nginx.conf").write_text(_MAIN.format(dir=d, nofile=nofile))
        self.https_port = self.https_port or free_port()  # a restart keeps the address
        args = [sys.executable, str(RENDER), "--server-name", "127.0.0.1"]
        for port in self.ports:
            args += ["--node", f"127.0.0.1:{port}"]
        args += ["--cert", str(cert), "--key", str(key)]
        args += ["--listen", f"127.0.0.1:{self.https_port}"]
        args += ["--http-listen", f"127.0.0.1:{free_port()}"]
        args += ["--access-log", str(d / "access.log"), "--out", str(d / "enclave.conf")]
        subprocess.run(args, check=True, timeout=30)
        self.nginx = subprocess.Popen(
            [binary, "-p", str(d), "-c", str(d / "nginx.conf"), "-e", str(d / "error.log")],
            stdin=subprocess.DEVNULL,
            preexec_fn=self.preexec,
        )
        _wait_ready(self.url, self.verify())

    def pids(self) -> dict[str, list[int]]:
        """The processes whose CPU the benchmark reads, by role."""
        found: dict[str, list[int]] = {"nodes": [n.proc.pid for n in self.nodes]}
        if self.nginx is not None:
            found["nginx"] = [self.nginx.pid, *_children(self.nginx.pid)]
        found["redis"] = _by_name("redis-server")
        try:
            with psycopg.connect(self.database_url, autocommit=True) as conn:
                rows = conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (APP_NAME,)
                ).fetchall()
            found["postgres"] = [int(r[0]) for r in rows]
        except psycopg.Error:
            found["postgres"] = []
        return found

    def close(self) -> None:
        if self.nginx is not None:
            stop(self.nginx)
        for node in self.nodes:
            stop(node.proc)
        if self.schema:
            with psycopg.connect(self.database_url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
        if self.prefix:
            client = redis.Redis.from_url(self.redis_url)
            try:
                keys = list(client.scan_iter(match=f"{self.prefix}*", count=1000))
                if keys:
                    client.delete(*keys)
            finally:
                client.close()


def _wait_ready(url: str, verify: ssl.SSLContext | bool = True) -> None:
    deadline = time.time() + 60
    with httpx.Client(base_url=url, verify=verify, timeout=5) as client:
        while time.time() < deadline:
            try:
                if client.get("/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    raise RuntimeError(f"{url} never became ready")


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                found.append(int(entry.name))
    return found


def _by_name(name: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def default_database_url() -> str:
    return os.environ.get("ENCLAVE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def default_redis_url() -> str:
    return os.environ.get("ENCLAVE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
