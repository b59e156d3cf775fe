"""Load generator for bench/run.py: WebSocket clients (picows, uvloop) in their own process.

Reads a JSON spec on argv[1], prints progress markers (READY, WINDOW_START, WINDOW_END) on
stdout as they happen, and a final line `RESULT {json}`. Loopback only; every loop is bounded
by the spec's duration and counts. With `ca_file` in the spec it connects over wss:// (nginx).
"""

from __future__ import annotations

import asyncio
import json
import resource
import ssl
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvloop
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

TEXT = "x" * 128


@dataclass
class Stats:
    sent: int = 0
    acked: int = 0
    deliveries: int = 0
    latencies: list[float] = field(default_factory=list)
    measuring: bool = False


class Client(WSListener):
    def __init__(self, gen: Gen, token: str, conv: str, role: str, idx: int) -> None:
        self.gen = gen
        self.token = token
        self.conv = conv
        self.role = role
        self.idx = idx
        self.transport: WSTransport | None = None
        self.synced = asyncio.get_running_loop().create_future()
        self.inflight = 0
        self.n = 0

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        # No cursors: every conversation starts at its newest event (no replay in a benchmark).
        hello = {"type": "hello", "token": self.token, "cursors": {}}
        transport.send(WSMsgType.TEXT, orjson.dumps(hello))

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type != WSMsgType.TEXT:
            return
        data = orjson.loads(frame.get_payload_as_bytes())
        kind = data["type"]
        if kind == "message.created":
            if self.role == "receiver":
                self.gen.delivered(data)
        elif kind == "ack":
            self.inflight -= 1
            self.gen.acked(self)
        elif kind == "synced" and not self.synced.done():
            self.synced.set_result(None)
        elif kind == "error":
            self.gen.errors += 1

    def send(self) -> None:
        assert self.transport is not None
        self.n += 1
        cmid = f"{self.gen.run_id}-{self.idx}-{self.n}"
        self.gen.sent_at[cmid] = time.perf_counter()
        frame = {
            "type": "send",
            "req_id": self.n,
            "conversation_id": self.conv,
            "client_msg_id": cmid,
            "text": TEXT,
        }
        self.inflight += 1
        self.transport.send(WSMsgType.TEXT, orjson.dumps(frame))
        self.gen.stats.sent += 1


class Gen:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.run_id = spec["run_id"]
        self.stats = Stats()
        self.sent_at: dict[str, float] = {}
        self.window: int | None = spec.get("window")
        self.running = False
        self.errors = 0

    def delivered(self, data: dict[str, Any]) -> None:
        if not self.stats.measuring:
            return
        self.stats.deliveries += 1
        sent = self.sent_at.get(data["data"]["message"]["client_msg_id"])
        if sent is not None:
            self.stats.latencies.append(time.perf_counter() - sent)

    def acked(self, client: Client) -> None:
        if self.stats.measuring:
            self.stats.acked += 1
        if self.running and self.window is not None and client.inflight < self.window:
            client.send()


async def connect_all(
    gen: Gen, items: list[tuple[str, str, str]], concurrency: int
) -> list[Client]:
    url = gen.spec["url"]
    # wss:// through nginx (bench/run.py --nodes): trust the benchmark's own certificate.
    ca_file = gen.spec.get("ca_file")
    tls = {"ssl_context": ssl.create_default_context(cafile=ca_file)} if ca_file else {}
    sem = asyncio.Semaphore(concurrency)
    clients: list[Client] = []

    async def one(i: int, token: str, conv: str, role: str) -> None:
        async with sem:
            _, client = await ws_connect(
                lambda: Client(gen, token, conv, role, i),
                url,
                websocket_handshake_timeout=30,
                **tls,
            )
            assert isinstance(client, Client)
            await asyncio.wait_for(client.synced, 60)
            clients.append(client)

    await asyncio.gather(*(one(i, *it) for i, it in enumerate(items)))
    return clients


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))] * 1000.0


async def main(spec: dict[str, Any]) -> dict[str, Any]:
    gen = Gen(spec)
    senders = [(s["token"], s["conv"], "sender") for s in spec.get("senders", [])]
    receivers = [(r["token"], r["conv"], "receiver") for r in spec.get("receivers", [])]
    idle = [(r["token"], "", "idle") for r in spec.get("idle", [])]
    started = time.perf_counter()
    clients = await connect_all(gen, senders + receivers + idle, spec.get("concurrency", 100))
    connect_seconds = time.perf_counter() - started
    say("READY")
    result: dict[str, Any] = {
        "connections": len(clients),
        "connect_seconds": connect_seconds,
        "connect_rate": len(clients) / connect_seconds if connect_seconds else None,
    }
    if idle:
        say("CONNECTED")
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        return result
    sending = [c for c in clients if c.role == "sender"]
    warmup, duration = spec.get("warmup", 1.0), spec["duration"]
    rate = spec.get("rate")
    gen.running = True
    loop = asyncio.get_running_loop()
    if rate is None:
        for c in sending:
            for _ in range(gen.window or 1):
                c.send()
    else:

        async def pace() -> None:
            t0 = loop.time()
            done = 0
            while gen.running:
                due = int((loop.time() - t0) * rate) - done
                for _ in range(max(0, due)):
                    sending[done % len(sending)].send()
                    done += 1
                await asyncio.sleep(0.001)

        pacer = asyncio.ensure_future(pace())
    await asyncio.sleep(warmup)
    gen.stats.measuring = True
    say("WINDOW_START")
    t_start = time.perf_counter()
    await asyncio.sleep(duration)
    gen.stats.measuring = False
    measured = time.perf_counter() - t_start
    say("WINDOW_END")
    gen.running = False
    if rate is not None:
        await pacer
    await asyncio.sleep(spec.get("drain", 1.0))
    lat = gen.stats.latencies
    result.update(
        {
            "seconds": measured,
            "sent": gen.stats.sent,
            "acked_per_s": gen.stats.acked / measured,
            "deliveries_per_s": gen.stats.deliveries / measured,
            "latency_p50_ms": pct(lat, 0.50),
            "latency_p99_ms": pct(lat, 0.99),
            "errors": gen.errors,
        }
    )
    for c in clients:
        if c.transport is not None:
            c.transport.disconnect()
    return result


if __name__ == "__main__":
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with open(sys.argv[1], "rb") as fh:
        the_spec = json.load(fh)
    out = uvloop.run(main(the_spec))
    say("RESULT " + json.dumps(out))
