"""Enclave's benchmark (issue 3's S1-S5): `make bench`, or `.venv/bin/python bench/run.py`.

One server process (SQLite, durable commits) pinned to CPU 0; the load generator
(bench/loadgen.py) in its own process pinned to CPU 1; loopback only. Each scenario runs
`--runs` times (default 3); the table shows the median and the min-max. Server CPU time is read
from /proc during each measuring window, so figures compare across machines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

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


@contextmanager
def server(data_dir: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    env = {
        **os.environ,
        "ENCLAVE_AUTH_ARGON2_TIME_COST": "2",
        "ENCLAVE_AUTH_ARGON2_MEMORY_KIB": "19456",
        "ENCLAVE_REALTIME_RATE_PER_SECOND": "100000",
        "ENCLAVE_REALTIME_RATE_BURST": "1000000",
        # The load generator is one address and few users: request limits would measure
        # themselves rather than the server.
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
    cmd = [
        *pinned(0),
        str(ROOT / ".venv/bin/enclave"),
        "serve",
        "--port",
        "0",
        "--data-dir",
        str(data_dir),
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, text=True, env=env, preexec_fn=_raise_fd_limit
    )
    assert proc.stdout is not None
    password = url = None
    deadline = time.time() + 60
    while url is None and time.time() < deadline:
        line = proc.stdout.readline()
        if m := re.search(r"One-time password:\s+(\S+)", line):
            password = m.group(1)
        if m := re.search(r"listening on (http://\S+)", line):
            url = m.group(1)
    if url is None:
        proc.kill()
        raise RuntimeError("server did not start")
    try:
        yield proc, f"{url}|{password or ''}"
    finally:
        proc.terminate()
        proc.wait(10)


def _raise_fd_limit() -> None:
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def setup(url: str, one_time: str, users: int) -> dict[str, Any]:
    """Owner, `users` people with tokens, and the conversations every scenario uses."""
    async with httpx.AsyncClient(base_url=url + "/api/v1", timeout=120) as http:
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


def run_loadgen(spec: dict[str, Any], server_pid: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(spec, fh)
    proc = subprocess.Popen(
        [*pinned(1), PY, str(ROOT / "bench/loadgen.py"), fh.name],
        stdout=subprocess.PIPE,
        stdin=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdin is not None
    cpu0 = cpu1 = 0.0
    rss_before = rss_bytes(server_pid)
    result: dict[str, Any] = {}
    for line in proc.stdout:
        line = line.strip()
        if line == "WINDOW_START":
            cpu0 = cpu_seconds(server_pid)
        elif line == "WINDOW_END":
            cpu1 = cpu_seconds(server_pid)
        elif line == "CONNECTED":
            time.sleep(2.0)  # let the server settle before reading its memory
            result["rss_per_connection"] = (rss_bytes(server_pid) - rss_before) / len(spec["idle"])
            proc.stdin.write("done\n")
            proc.stdin.flush()
        elif line.startswith("RESULT "):
            result.update(json.loads(line[7:]))
    proc.wait(60)
    os.unlink(fh.name)
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed ({proc.returncode})")
    result["server_cpu_seconds"] = cpu1 - cpu0
    return result


def scenarios(
    ws: str, world: dict[str, Any], run_id: str, quick: bool
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
    base = {"url": ws, "run_id": run_id}
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


def names_of(url: str, world: dict[str, Any], args: argparse.Namespace) -> list[str]:
    ws = url.replace("http://", "ws://") + "/api/v1/ws"
    names = list(scenarios(ws, world, "x", args.quick))
    return [n for n in names if not args.only or args.only in n]


def measure(
    name: str,
    url: str,
    world: dict[str, Any],
    pid: int,
    args: argparse.Namespace,
    runs: int | None = None,
) -> dict[str, Any]:
    ws = url.replace("http://", "ws://") + "/api/v1/ws"
    results = []
    for i in range(runs or args.runs):
        spec = scenarios(ws, world, f"r{i}{int(time.time() * 1000)}", args.quick)[name]
        results.append(run_loadgen(spec, pid))
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="short windows, 2,000 idle clients")
    parser.add_argument("--only", help="run only scenarios whose name contains this")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        with server(data) as (proc, info):
            url, one_time = info.split("|")
            print(
                f"server {url} pid {proc.pid}; setting up people and conversations...", flush=True
            )
            world = asyncio.run(setup(url, one_time, 508))
            for name in names_of(url, world, args):
                if not name.startswith("S5"):
                    rows.append(measure(name, url, world, proc.pid, args))
        # S5 measures memory, so each run gets a fresh server process on the same data.
        for name in names_of(url, world, args):
            if name.startswith("S5"):
                runs = []
                for i in range(args.runs):
                    with server(data) as (proc, info):
                        url = info.split("|")[0]
                        time.sleep(1.0)
                        runs.append(measure(name, url, world, proc.pid, args, runs=1)["runs"][0])
                        print(f"  {name} run {i + 1}: {json.dumps(runs[-1])}", flush=True)
                rows.append(summarize(name, runs))
    print()
    print(f"Machine: {machine()}")
    print("Median (min-max) of", args.runs, "runs")
    header = (
        "scenario",
        "msg/s",
        "deliveries/s",
        "p50 ms",
        "p99 ms",
        "server CPU µs/msg",
        "server CPU µs/delivery",
        "connect/s",
        "KiB/conn",
    )
    print(" | ".join(header))
    for r in rows:
        print(
            " | ".join(
                [
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
            )
        )
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
