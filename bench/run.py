"""Enclave's benchmark (issue 3's S1-S5): `make bench`, or `.venv/bin/python bench/run.py`.

One server process (SQLite, durable commits) pinned to CPU 0; the load generator
(bench/loadgen.py) in its own process pinned to CPU 1; loopback only. Each scenario runs
`--runs` times (default 3); the table shows the median and the min-max. Server CPU time is read
from /proc during each measuring window, so figures compare across machines.

`--nodes 1 2 3` runs the same scenarios against clusters of that many nodes on PostgreSQL and
Redis behind nginx with TLS (bench/cluster.py), one cluster after another.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cluster import Cluster, default_database_url, default_redis_url, free_port, spawn, stop

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
PASSWORD = "benchmark password 1"
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def pinned(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") and os.cpu_count() else []


# Benchmark settings for every node. The per-connection frame rate limit is raised (a benchmark
# sender sends thousands of frames per second, a person does not), Argon2 is at its cheapest
# allowed settings (setup creates 508 accounts), and request limits are out of reach (the load
# generator is one address and few users: limits would measure themselves).
BENCH_ENV = {
    "ENCLAVE_AUTH_ARGON2_TIME_COST": "2",
    "ENCLAVE_AUTH_ARGON2_MEMORY_KIB": "19456",
    "ENCLAVE_REALTIME_RATE_PER_SECOND": "100000",
    "ENCLAVE_REALTIME_RATE_BURST": "1000000",
    "ENCLAVE_REALTIME_MAX_SOCKETS_PER_SESSION": "100000",  # S5 holds 20 sockets per token
    "ENCLAVE_REALTIME_MAX_SOCKETS_PER_USER": "100000",
    "ENCLAVE_LIMITS_IP_PER_SECOND": "1000000",
    "ENCLAVE_LIMITS_IP_BURST": "10000000",
    "ENCLAVE_LIMITS_USER_PER_SECOND": "1000000",
    "ENCLAVE_LIMITS_USER_BURST": "10000000",
    "ENCLAVE_LIMITS_LOGIN_PER_MINUTE": "1000000",
    "ENCLAVE_LIMITS_LOGIN_BURST": "10000000",
    "ENCLAVE_LIMITS_SEND_PER_SECOND": "1000000",
    "ENCLAVE_LIMITS_SEND_BURST": "10000000",
    "ENCLAVE_SERVER_LOG_LEVEL": "warning",
}


def node_cmd(data_dir: Path) -> Callable[[int], list[str]]:
    """`enclave serve` on a port, pinned to CPU 0 (every node: one core for all of them)."""

    def cmd(port: int) -> list[str]:
        enclave = str(ROOT / ".venv/bin/enclave")
        return [*pinned(0), enclave, "serve", "--port", str(port), "--data-dir", str(data_dir)]

    return cmd


@dataclass
class Target:
    """What the load generator talks to: one server, or nginx in front of a cluster."""

    url: str
    one_time_password: str
    pids: Callable[[], dict[str, list[int]]]
    restart: Callable[[], None]  # fresh server processes on the same data and address
    ca_file: str | None = None
    nodes: int = 0  # 0: one server on SQLite, without nginx
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ws(self) -> str:
        return self.url.replace("http", "ws", 1) + "/api/v1/ws"

    def verify(self) -> ssl.SSLContext | bool:
        if self.ca_file is None:
            return True
        return ssl.create_default_context(cafile=self.ca_file)


@contextmanager
def server(data_dir: Path) -> Iterator[Target]:
    """One `enclave serve` on SQLite, as issue 3 measured it."""
    env = {**os.environ, **BENCH_ENV}
    cmd = node_cmd(data_dir)
    port = free_port()
    node = spawn(cmd(port), env, _raise_fd_limit)
    current = [node]

    def restart() -> None:
        stop(current[0].proc)
        current[0] = spawn(cmd(port), env, _raise_fd_limit)

    try:
        yield Target(
            url=node.url,
            one_time_password=node.one_time_password or "",
            pids=lambda: {"nodes": [current[0].proc.pid]},
            restart=restart,
        )
    finally:
        stop(current[0].proc)


@contextmanager
def cluster(n: int, directory: Path, args: argparse.Namespace) -> Iterator[Target]:
    """`n` nodes on PostgreSQL and Redis behind nginx (bench/cluster.py)."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_")},
        **BENCH_ENV,
    }
    found = Cluster(
        n,
        directory,
        args.database_url,
        args.redis_url,
        node_cmd(directory / "data"),
        env,
        _raise_fd_limit,
    )
    try:
        password = found.start()
        yield Target(
            url=found.url,
            one_time_password=password,
            pids=found.pids,
            restart=found.restart_nodes,
            ca_file=str(found.ca_file),
            nodes=n,
        )
    finally:
        found.close()


def _raise_fd_limit() -> None:
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def setup(target: Target, users: int) -> dict[str, Any]:
    """Owner, `users` people with tokens, and the conversations every scenario uses."""
    one_time = target.one_time_password
    async with httpx.AsyncClient(
        base_url=target.url + "/api/v1", timeout=120, verify=target.verify()
    ) as http:
        r = await http.post("/auth/login", json={"username": "admin", "password": one_time})
        owner = r.json()["token"]
        h = {"Authorization": f"Bearer {owner}"}
        r = await http.post(
            "/users/me/password",
            headers=h,
            json={"current_password": one_time, "new_password": PASSWORD},
        )
        r.raise_for_status()
        sem = asyncio.Semaphore(8)

        async def person(i: int) -> dict[str, str]:
            async with sem:
                r = await http.post(
                    "/users",
                    headers=h,
                    json={
                        "username": f"u{i:05d}",
                        "password": PASSWORD,
                        "display_name": f"User {i}",
                    },
                )
                r.raise_for_status()
                uid = r.json()["id"]
                r = await http.post(
                    "/auth/login", json={"username": f"u{i:05d}", "password": PASSWORD}
                )
                return {"id": uid, "token": r.json()["token"]}

        people = await asyncio.gather(*(person(i) for i in range(users)))

        async def conv(
            creator: dict[str, str], kind: str, members: list[str], name: str | None = None
        ) -> str:
            body: dict[str, Any] = {"kind": kind, "members": members}
            if name:
                body["name"] = name
            r = await http.post(
                "/conversations", json=body, headers={"Authorization": f"Bearer {creator['token']}"}
            )
            r.raise_for_status()
            return str(r.json()["id"])

        # S1: 8 senders, each in a DM with someone who is not connected.
        s1 = [
            (people[500 + i], await conv(people[500 + i], "dm", [people[100 + i]["id"]]))
            for i in range(8)
        ]
        # S2: 250 pairs.
        s2 = [
            (
                people[2 * i],
                people[2 * i + 1],
                await conv(people[2 * i], "dm", [people[2 * i + 1]["id"]]),
            )
            for i in range(250)
        ]
        # S3: one room, 8 senders (people 500-507) and 50 receivers (people 0-49).
        s3_members = [p["id"] for p in people[:50]] + [p["id"] for p in people[501:508]]
        s3 = await conv(people[500], "group", s3_members)
        # S4: one channel, 4 senders (people 500-503) and 1,000 receiving connections
        # (people 0-499, two devices each).
        s4_members = [p["id"] for p in people[:500]] + [p["id"] for p in people[501:504]]
        s4 = await conv(people[500], "channel", s4_members, name="all-hands")
        return {"people": people, "s1": s1, "s2": s2, "s3": s3, "s4": s4}


def _cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        # A process that ended (a PostgreSQL backend) stops counting.
        with contextlib.suppress(OSError, IndexError, ValueError):
            total += cpu_seconds(pid)
    return total


def _rss(pids: list[int]) -> int:
    return sum(rss_bytes(pid) for pid in pids)


def run_loadgen(spec: dict[str, Any], target: Target) -> dict[str, Any]:
    """One scenario run. CPU is read per role ("nodes", and in a cluster "nginx", "redis",
    "postgres") at the start and the end of the measuring window."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(spec, fh)
    proc = subprocess.Popen(
        [*pinned(1), PY, str(ROOT / "bench/loadgen.py"), fh.name],
        stdout=subprocess.PIPE,
        stdin=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdin is not None
    pids = target.pids()
    cpu0: dict[str, float] = {}
    cpu1: dict[str, float] = {}
    rss_before = {role: _rss(pids[role]) for role in ("nodes", "nginx") if role in pids}
    result: dict[str, Any] = {}
    for line in proc.stdout:
        line = line.strip()
        if line == "READY":
            pids = target.pids()  # PostgreSQL backends the nodes opened meanwhile
        elif line == "WINDOW_START":
            cpu0 = {role: _cpu(p) for role, p in pids.items()}
        elif line == "WINDOW_END":
            cpu1 = {role: _cpu(p) for role, p in pids.items()}
        elif line == "CONNECTED":
            time.sleep(2.0)  # let the server settle before reading its memory
            for role, before in rss_before.items():
                key = "rss_per_connection" if role == "nodes" else f"rss_per_connection_{role}"
                result[key] = (_rss(pids[role]) - before) / len(spec["idle"])
            proc.stdin.write("done\n")
            proc.stdin.flush()
        elif line.startswith("RESULT "):
            result.update(json.loads(line[7:]))
    proc.wait(60)
    os.unlink(fh.name)
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed ({proc.returncode})")
    cpu = {role: cpu1.get(role, 0.0) - cpu0.get(role, 0.0) for role in cpu0}
    result["server_cpu_seconds"] = cpu.get("nodes", 0.0)
    if target.nodes:
        result["cpu_seconds_by_role"] = cpu
    return result


def scenarios(
    target: Target, world: dict[str, Any], run_id: str, quick: bool
) -> dict[str, dict[str, Any]]:
    people = world["people"]
    dur = 2.0 if quick else 5.0
    sweep = 3.0 if quick else 4.0
    s2_senders = [{"token": a["token"], "conv": c} for a, _, c in world["s2"]]
    s2_receivers = [{"token": b["token"], "conv": c} for _, b, c in world["s2"]]
    s3_senders = [{"token": people[500 + i]["token"], "conv": world["s3"]} for i in range(8)]
    s3_receivers = [{"token": p["token"], "conv": world["s3"]} for p in people[:50]]
    s4_senders = [{"token": people[500 + i]["token"], "conv": world["s4"]} for i in range(4)]
    s4_receivers = [
        {"token": p["token"], "conv": world["s4"]} for p in people[:500] for _ in (0, 1)
    ]
    base = {"url": target.ws, "run_id": run_id, "ca_file": target.ca_file}
    out: dict[str, dict[str, Any]] = {
        "S1 write path": {
            **base,
            "senders": [{"token": p["token"], "conv": c} for p, c in world["s1"]],
            "window": 32,
            "duration": dur,
        },
        "S2 DMs max": {
            **base,
            "senders": s2_senders,
            "receivers": s2_receivers,
            "window": 2,
            "duration": dur,
        },
        "S2 DMs @1000 msg/s": {
            **base,
            "senders": s2_senders,
            "receivers": s2_receivers,
            "rate": 1000,
            "duration": dur,
        },
        "S3 room max": {
            **base,
            "senders": s3_senders,
            "receivers": s3_receivers,
            "window": 8,
            "duration": dur,
        },
    }
    for deliveries in (10_000, 25_000, 40_000):
        out[f"S3 room @{deliveries // 1000}k deliveries/s"] = {
            **base,
            "senders": s3_senders,
            "receivers": s3_receivers,
            "rate": deliveries / 50,
            "duration": sweep,
        }
    out["S4 channel max"] = {
        **base,
        "senders": s4_senders,
        "receivers": s4_receivers,
        "window": 4,
        "duration": dur,
        "concurrency": 200,
    }
    for deliveries in (10_000, 40_000, 70_000):
        out[f"S4 channel @{deliveries // 1000}k deliveries/s"] = {
            **base,
            "senders": s4_senders,
            "receivers": s4_receivers,
            "rate": deliveries / 1000,
            "duration": sweep,
            "concurrency": 200,
        }
    idle = 2000 if quick else 10_000
    out["S5 idle"] = {
        **base,
        "idle": [{"token": people[i % 500]["token"]} for i in range(idle)],
        "concurrency": 200,
    }
    return out


def names_of(target: Target, world: dict[str, Any], args: argparse.Namespace) -> list[str]:
    names = list(scenarios(target, world, "x", args.quick))
    return [n for n in names if not args.only or args.only in n]


def measure(
    name: str,
    target: Target,
    world: dict[str, Any],
    args: argparse.Namespace,
    runs: int | None = None,
) -> dict[str, Any]:
    results = []
    for i in range(runs or args.runs):
        spec = scenarios(target, world, f"r{i}{int(time.time() * 1000)}", args.quick)[name]
        results.append(run_loadgen(spec, target))
        if runs is None:
            print(f"  {name} run {i + 1}: {json.dumps(results[-1])}", flush=True)
    row = summarize(name, results)
    row["runs"] = results
    return row


def summarize(name: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    def agg(key: str) -> dict[str, float] | None:
        vals = [r[key] for r in runs if r.get(key) is not None]
        if not vals:
            return None
        return {"median": statistics.median(vals), "min": min(vals), "max": max(vals)}

    row: dict[str, Any] = {"scenario": name}
    for key in (
        "acked_per_s",
        "deliveries_per_s",
        "latency_p50_ms",
        "latency_p99_ms",
        "connect_rate",
        "rss_per_connection",
        "errors",
    ):
        row[key] = agg(key)
    cpu_msg, cpu_del = [], []
    for r in runs:
        if r.get("seconds") and r.get("server_cpu_seconds"):
            msgs = r["acked_per_s"] * r["seconds"] or (r["deliveries_per_s"] * r["seconds"])
            if r["acked_per_s"]:
                cpu_msg.append(r["server_cpu_seconds"] / (r["acked_per_s"] * r["seconds"]) * 1e6)
            if r["deliveries_per_s"]:
                cpu_del.append(
                    r["server_cpu_seconds"] / (r["deliveries_per_s"] * r["seconds"]) * 1e6
                )
            del msgs
    row["server_cpu_us_per_message"] = (
        {"median": statistics.median(cpu_msg), "min": min(cpu_msg), "max": max(cpu_msg)}
        if cpu_msg
        else None
    )
    row["server_cpu_us_per_delivery"] = (
        {"median": statistics.median(cpu_del), "min": min(cpu_del), "max": max(cpu_del)}
        if cpu_del
        else None
    )
    # In a cluster: CPU of nginx, Redis and PostgreSQL per message (or per delivery when
    # nothing is acknowledged in the window), medians over the runs.
    by_role: dict[str, list[float]] = {}
    for r in runs:
        count = (r.get("acked_per_s") or r.get("deliveries_per_s") or 0) * r.get("seconds", 0)
        for role, seconds in (r.get("cpu_seconds_by_role") or {}).items():
            if count:
                by_role.setdefault(role, []).append(seconds / count * 1e6)
    row["cpu_us_per_message_by_role"] = {
        role: statistics.median(vals) for role, vals in by_role.items()
    } or None
    row["rss_per_connection_nginx"] = agg("rss_per_connection_nginx")
    return row


def fmt(cell: dict[str, float] | None, scale: float = 1.0, digits: int = 0) -> str:
    if cell is None:
        return "-"
    m, lo, hi = (cell[k] * scale for k in ("median", "min", "max"))
    return f"{m:,.{digits}f} ({lo:,.{digits}f}-{hi:,.{digits}f})"


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    return (
        f"{cpu}, {os.cpu_count()} cores, {int(mem) // 1024 // 1024} GiB, "
        f"Linux {platform.release()}, Python {platform.python_version()}"
    )


def run_all(target: Target, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every selected scenario against one target; S5 on fresh server processes per run."""
    rows = []
    where = f"{target.nodes} node(s) behind nginx" if target.nodes else "one server"
    print(f"{where} at {target.url}; setting up people and conversations...", flush=True)
    world = asyncio.run(setup(target, 508))
    for name in names_of(target, world, args):
        if not name.startswith("S5"):
            rows.append(measure(name, target, world, args))
    # S5 measures memory, so each run gets fresh server processes on the same data.
    for name in names_of(target, world, args):
        if name.startswith("S5"):
            runs = []
            for i in range(args.runs):
                target.restart()
                time.sleep(1.0)
                runs.append(measure(name, target, world, args, runs=1)["runs"][0])
                print(f"  {name} run {i + 1}: {json.dumps(runs[-1])}", flush=True)
            rows.append(summarize(name, runs))
    for row in rows:
        row["nodes"] = target.nodes
    return rows


def print_table(rows: list[dict[str, Any]], runs: int) -> None:
    print()
    print(f"Machine: {machine()}")
    print("Median (min-max) of", runs, "runs")
    header = [
        "nodes",
        "scenario",
        "msg/s",
        "deliveries/s",
        "p50 ms",
        "p99 ms",
        "server CPU µs/msg",
        "server CPU µs/delivery",
        "connect/s",
        "KiB/conn",
    ]
    clustered = any(r["nodes"] for r in rows)
    if clustered:
        header += ["nginx µs", "redis µs", "postgres µs", "nginx KiB/conn"]
    print(" | ".join(header))
    for r in rows:
        cells = [
            str(r["nodes"] or "single"),
            r["scenario"],
            fmt(r["acked_per_s"]),
            fmt(r["deliveries_per_s"]),
            fmt(r["latency_p50_ms"], digits=1),
            fmt(r["latency_p99_ms"], digits=1),
            fmt(r["server_cpu_us_per_message"]),
            fmt(r["server_cpu_us_per_delivery"], digits=1),
            fmt(r["connect_rate"]),
            fmt(r["rss_per_connection"], 1 / 1024, 1),
        ]
        if clustered:
            by_role = r.get("cpu_us_per_message_by_role") or {}
            cells += [
                f"{by_role[k]:,.1f}" if k in by_role else "-"
                for k in ("nginx", "redis", "postgres")
            ]
            cells.append(fmt(r.get("rss_per_connection_nginx"), 1 / 1024, 1))
        print(" | ".join(cells))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="short windows, 2,000 idle clients")
    parser.add_argument("--only", help="run only scenarios whose name contains this")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--nodes",
        type=int,
        nargs="+",
        metavar="N",
        help="measure clusters of N nodes (PostgreSQL + Redis + nginx) instead of one server",
    )
    parser.add_argument(
        "--database-url", default=default_database_url(), help="PostgreSQL for --nodes"
    )
    parser.add_argument("--redis-url", default=default_redis_url(), help="Redis for --nodes")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        if not args.nodes:
            with server(Path(tmp) / "data") as target:
                rows += run_all(target, args)
        for n in args.nodes or ():
            with cluster(n, Path(tmp) / f"cluster-{n}", args) as target:
                rows += run_all(target, args)
    print_table(rows, args.runs)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
