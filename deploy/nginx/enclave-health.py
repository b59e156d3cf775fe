#!/usr/bin/env python3
"""Active health checks for open-source nginx (standard library only).

nginx without the commercial `health_check` directive only learns that a node is bad from
failed requests (max_fails/fail_timeout). That misses a node that accepts connections but is
not ready (its database unreachable: it upgrades a WebSocket, then closes it, and with
least_conn such a node would draw every reconnect) or one that hangs. This script probes each
node of the `upstream enclave` block in nginx's Enclave file (deploy/nginx/enclave.conf.in)
with `GET /readyz`, marks the nodes that fail `down` in that file (and up again when they
answer 200), checks the configuration and reloads nginx when something changed.

    enclave-health.py --conf /etc/nginx/conf.d/enclave.conf            # every 5 s, forever
    enclave-health.py --conf /etc/nginx/conf.d/enclave.conf --once     # one round (cron, tests)

In the loop a node changes state after `--rise`/`--fall` consecutive results (2 each), so one
slow answer does not reload nginx. It never marks every node down: when no node answers,
nginx's own passive checks decide (an outage is not made worse by the checker).
deploy/systemd/enclave-nginx-health.service runs it; docs/operations.md explains it.
"""

from __future__ import annotations

import argparse
import http.client
import logging
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

log = logging.getLogger("enclave-health")

_UPSTREAM = re.compile(r"upstream\s+enclave\s*\{(?P<body>[^}]*)\}")
_SERVER = re.compile(
    r"^(?P<head>\s*server\s+)(?P<node>\S+)(?P<params>[^;\n]*?)(?P<down>\s+down)?;", re.MULTILINE
)


def nodes_in(conf: str) -> dict[str, bool]:
    """The upstream's nodes and whether each is marked down, in file order."""
    found = _UPSTREAM.search(conf)
    if found is None:
        raise ValueError("no `upstream enclave { ... }` block")
    return {
        m.group("node"): m.group("down") is not None for m in _SERVER.finditer(found.group("body"))
    }


def with_down(conf: str, down: set[str]) -> str:
    """`conf` with exactly the nodes in `down` marked down in the upstream block."""
    found = _UPSTREAM.search(conf)
    if found is None:
        raise ValueError("no `upstream enclave { ... }` block")

    def mark(m: re.Match[str]) -> str:
        suffix = " down" if m.group("node") in down else ""
        return f"{m.group('head')}{m.group('node')}{m.group('params')}{suffix};"

    body = _SERVER.sub(mark, found.group("body"))
    return conf[: found.start("body")] + body + conf[found.end("body") :]


def ready(node: str, timeout: float) -> bool:
    """GET http://NODE/readyz answers 200 within `timeout` seconds."""
    host, _, port = node.rpartition(":")
    conn = http.client.HTTPConnection(host.strip("[]"), int(port), timeout=timeout)
    try:
        conn.request("GET", "/readyz", headers={"User-Agent": "enclave-health"})
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def apply(conf_path: Path, down: set[str], test_cmd: list[str], reload_cmd: list[str]) -> bool:
    """Write the new marks, check the configuration, reload nginx; on a failed check put the
    previous file back. Returns whether nginx now runs the new marks."""
    old = conf_path.read_text("utf-8")
    new = with_down(old, down)
    if new == old:
        return True
    _write_atomic(conf_path, new)
    # The commands are the operator's own (--test-cmd, --reload-cmd), run without a shell.
    if subprocess.run(test_cmd, capture_output=True, check=False).returncode != 0:  # noqa: S603
        _write_atomic(conf_path, old)
        log.error("nginx rejected the new configuration; kept the old one")
        return False
    subprocess.run(reload_cmd, check=True)  # noqa: S603
    log.warning("nodes marked down: %s", ", ".join(sorted(down)) or "none")
    return True


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp, path.stat().st_mode & 0o777)
    os.replace(tmp, path)


def decide(results: dict[str, bool], marked_down: set[str]) -> set[str]:
    """Nodes to mark down: those that failed, unless that would be every node."""
    failing = {node for node, ok in results.items() if not ok}
    if failing == set(results):
        return marked_down & failing  # keep what was already down; add nothing
    return failing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conf", type=Path, required=True, help="nginx's Enclave file")
    parser.add_argument("--once", action="store_true", help="one round, then exit")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between rounds")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds per probe")
    parser.add_argument("--rise", type=int, default=2, help="passes before a node is up")
    parser.add_argument("--fall", type=int, default=2, help="failures before a node is down")
    parser.add_argument("--test-cmd", default="nginx -t -q", help="checks the configuration")
    parser.add_argument("--reload-cmd", default="nginx -s reload", help="reloads nginx")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    test_cmd, reload_cmd = shlex.split(args.test_cmd), shlex.split(args.reload_cmd)
    streak: dict[str, int] = {}  # >0: consecutive passes, <0: consecutive failures
    while True:
        marked = nodes_in(args.conf.read_text("utf-8"))
        down = {node for node, is_down in marked.items() if is_down}
        probed = {node: ready(node, args.timeout) for node in marked}
        if args.once:
            results = probed
        else:
            results = {}
            for node, ok in probed.items():
                before = streak.get(node, 0)
                streak[node] = (max(before, 0) + 1) if ok else (min(before, 0) - 1)
                # A node keeps its mark until its streak is long enough to change it.
                if ok:
                    results[node] = node not in down or streak[node] >= args.rise
                else:
                    results[node] = node not in down and -streak[node] < args.fall
        apply(args.conf, decide(results, down), test_cmd, reload_cmd)
        if args.once:
            return 0
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
