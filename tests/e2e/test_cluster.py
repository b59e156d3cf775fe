"""Issue 7 with real processes: three `enclave serve` nodes on one PostgreSQL schema and one
Redis (through an account made from the ACL of deploy/redis/enclave.conf), behind nginx running
the shipped configuration (deploy/nginx/enclave.conf.in, rendered by deploy/nginx/render.py).

Clients reach the nodes only through nginx (TLS, least-connections balancing). Acceptance 1: one
node is killed with SIGKILL while senders keep sending; its clients reconnect through nginx to
the others with their cursors, and every client ends with every message exactly once and in
order. Acceptance 4: a lockout and a rate limit hold over attempts spread across all nodes.
Also: the client address the nodes see, and the active health checks of
deploy/nginx/enclave-health.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import shlex
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
import redis

from enclave_client.stream import EventStream
from tests.conftest import fresh_schema
from tests.e2e.harness import ServerProcess, bearer, login, send_until_stored, start_server
from tests.e2e.nginx import Nginx, start_nginx
from tests.e2e.test_acceptance import OWNER_PASSWORD, PASSWORD, take_over_owner
from tests.e2e.test_tls import write_ca_and_leaf

pytestmark = pytest.mark.e2e

NODES = 3
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
ACL_SAMPLE = DEPLOY / "redis" / "enclave.conf"
HEALTH = DEPLOY / "nginx" / "enclave-health.py"
LOCKOUT_AFTER = 4  # failed logins for one account from one address
LOGIN_BURST = 30  # login attempts per address before the rate limit (one more per minute)
PER_SENDER = 100  # messages each sender sends; five senders
SEND_PAUSE = 0.002  # seconds between one sender's messages: the kill lands mid-stream


@dataclass
class Person:
    id: str
    username: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)


@dataclass
class Cluster:
    nodes: list[ServerProcess]
    nginx: Nginx
    owner: Person
    killed: set[int] = field(default_factory=set)  # indexes of nodes killed on purpose

    def client(self, transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
        """An HTTP client that reaches the cluster only through nginx, over TLS."""
        return httpx.AsyncClient(
            base_url=self.nginx.base_url,
            verify=self.nginx.verify(),
            transport=transport,
            timeout=30.0,
        )

    async def metric(self, name: str) -> list[float | None]:
        """One unlabelled sample from each node's own /metrics (loopback, no proxy); None for
        a node killed on purpose."""
        values: list[float | None] = []
        pattern = re.compile(rf"^{name} ([0-9.e+]+)$", re.MULTILINE)
        async with httpx.AsyncClient(timeout=10.0) as direct:
            for i, node in enumerate(self.nodes):
                if i in self.killed:
                    values.append(None)
                    continue
                resp = await direct.get(f"{node.base_url}/metrics")
                assert resp.status_code == 200, resp.text
                found = pattern.search(resp.text)
                assert found, f"no {name} on node {i}"
                values.append(float(found.group(1)))
        return values

    async def connections(self) -> list[int]:
        """WebSockets open on each live node (0 for a killed one)."""
        return [int(v or 0) for v in await self.metric("enclave_websocket_connections")]

    async def assert_redis_kept(self) -> None:
        """No live node ever fell back to its own memory (a Redis command refused or lost),
        as its log and its metrics tell."""
        for i, node in enumerate(self.nodes):
            if i not in self.killed:
                assert "Redis lost" not in node.stderr(), node.stderr()[-3000:]
        live = [v for v in await self.metric("enclave_redis_up") if v is not None]
        assert live and set(live) == {1.0}
        lost = [v for v in await self.metric("enclave_redis_lost_total") if v is not None]
        assert set(lost) == {0.0}

    def live_urls(self) -> list[str]:
        """Each live node's own address (not through nginx)."""
        return [n.base_url for i, n in enumerate(self.nodes) if i not in self.killed]

    def kill(self, index: int) -> None:
        self.killed.add(index)
        self.nodes[index].proc.send_signal(signal.SIGKILL)
        self.nodes[index].proc.wait(timeout=10)

    async def person(self, client: httpx.AsyncClient, username: str) -> Person:
        resp = await client.post(
            "/api/v1/users",
            json={"username": username, "password": PASSWORD, "display_name": username},
            headers=self.owner.headers,
        )
        assert resp.status_code == 201, resp.text
        return Person(resp.json()["id"], username, await login(client, username, PASSWORD))


@pytest.fixture(scope="module")
def cluster_database(postgres_url: str) -> Iterator[str]:
    """One PostgreSQL schema shared by the nodes of this module's cluster."""
    with fresh_schema(postgres_url, "t_cluster_") as url:
        yield url


def node_env(tmp: Path, redis_url: str, prefix: str) -> dict[str, str]:
    """What every node of the cluster shares: Redis, the keyring, the proxy it trusts."""
    return {
        "ENCLAVE_REDIS_URL": redis_url,
        "ENCLAVE_REDIS_PREFIX": prefix,  # this cluster's keys and channels, apart from others'
        # One keyring file for the nodes of this host (docs/scaling.md, "Keys").
        "ENCLAVE_ENCRYPTION_KEY_FILE": str(tmp / "keyring.json"),
        # nginx connects from loopback; X-Forwarded-For is believed from it only.
        "ENCLAVE_SERVER_TRUSTED_PROXIES": "127.0.0.1/32",
        # The senders here send hundreds of frames a second on one socket.
        "ENCLAVE_REALTIME_RATE_PER_SECOND": "100000",
        "ENCLAVE_REALTIME_RATE_BURST": "1000000",
        # Within reach of test_limits_and_lockouts_hold_on_every_node (which uses addresses of
        # its own); the other tests log in about a dozen times from 127.0.0.1, far below.
        "ENCLAVE_AUTH_LOCKOUT_FAILURES": str(LOCKOUT_AFTER),
        "ENCLAVE_LIMITS_LOGIN_BURST": str(LOGIN_BURST),
        "ENCLAVE_LIMITS_LOGIN_PER_MINUTE": "1",
    }


@pytest.fixture(scope="module")
def cluster(
    cluster_database: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("cluster")
    prefix = f"test-cluster-{secrets.token_hex(6)}:"
    user, nodes_redis_url = _redis_account(redis_url, prefix)
    env = node_env(tmp, nodes_redis_url, prefix)
    ca, cert, key = write_ca_and_leaf(tmp / "pki")

    def start(i: int) -> ServerProcess:
        return start_server(
            tmp / f"node{i}", database_url=cluster_database, env=env, log_dir=tmp / f"node{i}"
        )

    nodes: list[ServerProcess] = []
    nginx = None
    found = None
    try:
        # The first node creates the schema, the keyring and the owner; the others join it.
        nodes.append(start(0))
        with ThreadPoolExecutor(NODES - 1) as pool:
            joining = [pool.submit(start, i) for i in range(1, NODES)]
        nodes += [f.result() for f in joining if f.exception() is None]
        for f in joining:
            f.result()  # the first failure, once every started node is known (and stopped)
        nginx = start_nginx(tmp / "nginx", [n.port for n in nodes], cert, key, ca)
        assert nodes[0].one_time_password is not None
        owner = asyncio.run(_take_over(nginx, nodes[0].one_time_password))
        found = Cluster(nodes, nginx, owner)
        yield found
    finally:
        if nginx is not None:
            nginx.stop()
        problems = []
        for i, node in enumerate(nodes):
            if found is not None and i in found.killed:
                continue
            try:
                node.stop()
            except pytest.fail.Exception as exc:
                problems.append(str(exc))
        _forget(redis_url, prefix, user)
        if problems:
            pytest.fail("\n\n".join(problems))


def _redis_account(redis_url: str, prefix: str) -> tuple[str, str]:
    """An account made from the ACL line of deploy/redis/enclave.conf, for this cluster's
    prefix: the nodes use it, so a command the sample forgets to allow fails this test.
    Returns (user name, the URL the nodes use)."""
    line = next(x for x in ACL_SAMPLE.read_text().splitlines() if x.startswith("user enclave "))
    user, password = f"enclave-{secrets.token_hex(6)}", secrets.token_hex(16)
    rules = [
        f">{password}" if rule.startswith(">") else rule.replace("enclave:", prefix)
        for rule in line.split()[2:]
    ]
    client = redis.Redis.from_url(redis_url)
    try:
        client.execute_command("ACL", "SETUSER", user, "reset", *rules)
    finally:
        client.close()
    parts = urlsplit(redis_url)
    netloc = f"{user}:{password}@{parts.hostname}:{parts.port or 6379}"
    return user, urlunsplit(parts._replace(netloc=netloc))


def _forget(redis_url: str, prefix: str, user: str) -> None:
    """Delete the cluster's Redis keys (rate limits, lockouts, presence) and its account."""
    client = redis.Redis.from_url(redis_url)
    try:
        for key in client.scan_iter(match=f"{prefix}*", count=500):
            client.delete(key)
        client.execute_command("ACL", "DELUSER", user)
    finally:
        client.close()


async def _take_over(nginx: Nginx, one_time_password: str) -> Person:
    async with httpx.AsyncClient(
        base_url=nginx.base_url, verify=nginx.verify(), timeout=30.0
    ) as client:
        owner = await take_over_owner(client, one_time_password)
        token = await login(client, "admin", OWNER_PASSWORD)
    return Person(owner.id, "admin", token)


def _upstreams(nginx: Nginx) -> Counter[str]:
    """Which node answered each request, from nginx's access log (`upstream=` field)."""
    text = (nginx.directory / "access.log").read_text("utf-8", errors="replace")
    return Counter(m.group(1) for m in re.finditer(r" upstream=(\S+) us=200 ", text))


async def test_requests_are_spread_over_the_nodes_and_see_the_real_client(
    cluster: Cluster,
) -> None:
    """REST through nginx reaches every node; each node sees the address nginx saw (not one a
    client made up); HSTS is sent; plain HTTP only redirects; /metrics is not public."""
    async with cluster.client() as client:
        before = _upstreams(cluster.nginx)
        for _ in range(3 * NODES):
            resp = await client.get("/api/v1/users/me", headers=cluster.owner.headers)
            assert resp.status_code == 200, resp.text
            assert resp.headers["strict-transport-security"] == "max-age=31536000"
        answered = _upstreams(cluster.nginx) - before
        assert {f"127.0.0.1:{n.port}" for n in cluster.nodes} <= set(answered), answered

        assert (await client.get("/metrics")).status_code == 404
        plain = await client.get(f"http://127.0.0.1:{cluster.nginx.http_port}/api/v1/users/me")
        assert plain.status_code == 308
        assert plain.headers["location"].startswith("https://")

        person = await cluster.person(client, "proxied")

    # A client at 127.0.0.7 claims to be 198.51.100.7; every node must see 127.0.0.7.
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.7", verify=cluster.nginx.verify())
    async with cluster.client(transport=transport) as far:
        spoof = {"X-Forwarded-For": "198.51.100.7"}
        resp = await far.post(
            "/api/v1/auth/login",
            json={"username": person.username, "password": PASSWORD},
            headers=spoof,
        )
        assert resp.status_code == 200, resp.text
        token = resp.json()["token"]
        for _ in range(NODES):  # asked of every node in turn
            sessions = await far.get("/api/v1/users/me/sessions", headers=bearer(token) | spoof)
            assert sessions.status_code == 200, sessions.text
            (current,) = [s for s in sessions.json()["sessions"] if s["current"]]
            assert current["ip"] == "127.0.0.7"
    await cluster.assert_redis_kept()


async def test_limits_and_lockouts_hold_on_every_node(cluster: Cluster) -> None:
    """Issue 7, acceptance 4: attempts spread over all the nodes count together. Each attempt
    goes to the next node directly, with the X-Forwarded-For header nginx would set (nodes
    trust loopback as their proxy), so the spread is exact; with per-node counters every node
    would still let the client in at the end."""
    async with cluster.client() as client:
        victim = await cluster.person(client, "lockout-victim")
        regular = await cluster.person(client, "login-regular")
    nodes = cluster.live_urls()
    assert len(nodes) > 1

    async def login_at(node: str, address: str, username: str, password: str) -> httpx.Response:
        async with httpx.AsyncClient(base_url=node, timeout=30.0) as direct:
            return await direct.post(
                "/api/v1/auth/login",
                json={"username": username, "password": password},
                headers={"X-Forwarded-For": address},
            )

    # A login lockout: LOCKOUT_AFTER wrong passwords from one address, over all the nodes...
    for i in range(LOCKOUT_AFTER):
        wrong = await login_at(
            nodes[i % len(nodes)], "127.0.0.11", victim.username, "wrong guess 1"
        )
        assert wrong.status_code == 401, wrong.text
    # ...lock that address out of the account on every node, even with the right password.
    for node in nodes:
        locked = await login_at(node, "127.0.0.11", victim.username, PASSWORD)
        assert locked.status_code == 429, (node, locked.text)
        assert locked.json()["error"]["code"] == "rate_limited"
        assert int(locked.headers["retry-after"]) >= 1
    # Other addresses are not locked out of it.
    assert (await login_at(nodes[0], "127.0.0.12", victim.username, PASSWORD)).status_code == 200

    # A rate limit: LOGIN_BURST logins from one address, over all the nodes, use its burst...
    for i in range(LOGIN_BURST):
        ok = await login_at(nodes[i % len(nodes)], "127.0.0.10", regular.username, PASSWORD)
        assert ok.status_code == 200, (i, ok.text)
    # ...and every node refuses the next one.
    for node in nodes:
        limited = await login_at(node, "127.0.0.10", regular.username, PASSWORD)
        assert limited.status_code == 429, (node, limited.text)
        assert limited.json()["error"]["code"] == "rate_limited"
    await cluster.assert_redis_kept()


async def test_the_health_check_takes_a_hung_node_out_and_back(cluster: Cluster) -> None:
    """deploy/nginx/enclave-health.py: a node that stops answering (SIGSTOP: it still accepts
    connections, so nginx's passive checks would hand it requests that hang) is marked down
    and nginx reloaded; once it answers again it is marked up."""
    index = len(cluster.nodes) - 1
    node = cluster.nodes[index]
    address = f"127.0.0.1:{node.port}"
    conf = cluster.nginx.directory / "enclave.conf"
    nginx = cluster.nginx

    def check_once() -> None:
        done = subprocess.run(
            [
                sys.executable,
                str(HEALTH),
                "--conf",
                str(conf),
                "--once",
                "--timeout",
                "1",
                "--test-cmd",
                shlex.join(nginx.command("-t", "-q")),
                "--reload-cmd",
                shlex.join(nginx.command("-s", "reload")),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr

    async def answered_by(requests: int) -> Counter[str]:
        before = _upstreams(nginx)
        async with httpx.AsyncClient(
            base_url=nginx.base_url, verify=nginx.verify(), timeout=5.0
        ) as fresh:  # new connections: none left on a worker from before a reload
            for _ in range(requests):
                resp = await fresh.get("/api/v1/users/me", headers=cluster.owner.headers)
                assert resp.status_code == 200, resp.text
        return _upstreams(nginx) - before

    node.proc.send_signal(signal.SIGSTOP)
    try:
        await asyncio.to_thread(check_once)
        assert f"server {address} max_fails=2 fail_timeout=10s down;" in conf.read_text()
        await asyncio.sleep(0.5)  # the reloaded workers take over
        answered = await answered_by(3 * NODES)
        assert address not in answered, answered
    finally:
        node.proc.send_signal(signal.SIGCONT)
    await asyncio.to_thread(check_once)
    assert f"server {address} max_fails=2 fail_timeout=10s;" in conf.read_text()
    await asyncio.sleep(0.5)
    assert address in await answered_by(3 * NODES)


@dataclass
class Device:
    """One person's stream, and every message event it yielded."""

    person: Person
    stream: EventStream
    expected: dict[str, int]  # conversation id -> messages it must receive
    got: list[tuple[str, int, str]] = field(default_factory=list)  # (conversation, seq, text)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def watch(self) -> None:
        total = sum(self.expected.values())
        async for item in self.stream:
            if item.type == "message.created" and item.conversation_id in self.expected:
                self.got.append((item.conversation_id, item.seq or 0, item.data["message"]["text"]))
                if len(self.got) == total:
                    self.done.set()


@contextlib.asynccontextmanager
async def _devices(
    cluster: Cluster, people: list[Person], convs: dict[str, tuple[int, list[Person], int]]
) -> AsyncIterator[list[Device]]:
    """Two devices per person, connected one after another through nginx, each synced before
    the next connects (so least-connections balancing spreads them over the nodes)."""
    devices: list[Device] = []
    async with contextlib.AsyncExitStack() as stack:
        for person in people:
            mine = {c: spec for c, spec in convs.items() if person in spec[1]}
            for _ in range(2):
                stream = EventStream(
                    cluster.nginx.base_url,
                    person.token,
                    cursors={c: created for c, (created, _, _) in mine.items()},
                    ssl_context=cluster.nginx.verify(),
                )
                await stack.enter_async_context(stream)
                await stream.wait_synced()
                devices.append(Device(person, stream, {c: n for c, (_, _, n) in mine.items()}))
        watchers = [asyncio.ensure_future(d.watch()) for d in devices]
        try:
            yield devices
        finally:
            for w in watchers:
                w.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)


async def test_a_node_killed_mid_stream_loses_and_doubles_nothing(cluster: Cluster) -> None:
    async with cluster.client() as client:
        people = [await cluster.person(client, f"kill{i}") for i in range(6)]
        p0, p1, p2, p3 = people[:4]
        room = await client.post(
            "/api/v1/conversations",
            json={"kind": "group", "name": "war room", "members": [p.id for p in people[1:]]},
            headers=p0.headers,
        )
        assert room.status_code == 201, room.text
        dm = await client.post(
            "/api/v1/conversations", json={"kind": "dm", "members": [p1.id]}, headers=p0.headers
        )
        assert dm.status_code == 201, dm.text
        room_id, dm_id = room.json()["id"], dm.json()["id"]
        # Who sends where, and how: three over their WebSocket, two over REST.
        ws_plan = [(p0, room_id, "ws-room-0"), (p2, room_id, "ws-room-2"), (p1, dm_id, "ws-dm-1")]
        rest_plan = [(p3, room_id, "rest-room-3"), (p0, dm_id, "rest-dm-0")]
        plan = ws_plan + rest_plan
        convs = {
            room_id: (room.json()["last_seq"], people, 3 * PER_SENDER),
            dm_id: (dm.json()["last_seq"], [p0, p1], 2 * PER_SENDER),
        }

        async with _devices(cluster, people, convs) as devices:
            before = await cluster.connections()
            assert sum(before) == len(devices), before
            assert all(before), f"clients not on every node: {before}"
            victim = before.index(max(before))

            async def ws_sender(who: Person, conv: str, tag: str) -> None:
                (device,) = [d for d in devices if d.person is who][:1]
                for n in range(PER_SENDER):
                    await device.stream.send(conv, f"{tag}:{n}", client_msg_id=f"{tag}-{n}")
                    await asyncio.sleep(SEND_PAUSE)

            async def rest_sender(who: Person, conv: str, tag: str) -> None:
                for n in range(PER_SENDER):
                    # nginx never retries a POST that reached a node: its death shows as a 503.
                    await send_until_stored(
                        client, who.headers, conv, f"{tag}-{n}", f"{tag}:{n}", attempts=400
                    )
                    await asyncio.sleep(SEND_PAUSE)

            senders = asyncio.gather(
                *(ws_sender(*p) for p in ws_plan), *(rest_sender(*p) for p in rest_plan)
            )
            # Mid-stream: once a third of the room's messages reached a device, kill a node.
            room_total = convs[room_id][2]
            for _ in range(1200):
                if max(sum(c == room_id for c, _, _ in d.got) for d in devices) >= room_total / 3:
                    break
                await asyncio.sleep(0.025)
            else:
                pytest.fail("the senders made no progress before the kill")
            await asyncio.to_thread(cluster.kill, victim)
            assert not senders.done(), "the senders finished before the node was killed"

            try:
                await asyncio.wait_for(senders, 180)
                await asyncio.wait_for(asyncio.gather(*(d.done.wait() for d in devices)), 60)
            except TimeoutError:
                progress = [
                    f"{d.person.username}: {len(d.got)}/{sum(d.expected.values())}" for d in devices
                ]
                pytest.fail(f"not everything arrived after node {victim} died: {progress}")
            after = await cluster.connections()
            reconnected = sum(1 for d in devices if d.stream.reconnects)

        # The victim's clients are on the surviving nodes now; the others never had to move.
        assert after[victim] == 0
        assert sum(after) == len(devices), after
        assert reconnected >= before[victim], (before, reconnected)
        assert reconnected < len(devices), "every client reconnected: nothing stayed live"

        # Every device: each message exactly once, per conversation in seq order with no gap,
        # and each sender's messages in the order sent.
        for d in devices:
            for conv, (created, _, count) in convs.items():
                if conv not in d.expected:
                    continue
                seqs = [s for c, s, _ in d.got if c == conv]
                assert seqs == list(range(created + 1, created + 1 + count)), (
                    f"{d.person.username}: {len(seqs)} of {count} events, "
                    f"{len(seqs) - len(set(seqs))} doubled"
                )
            texts = [t for _, _, t in d.got]
            assert len(texts) == len(set(texts)) == sum(d.expected.values())
            for _, conv, tag in plan:
                if conv in d.expected:
                    mine = [int(t.split(":")[1]) for t in texts if t.startswith(f"{tag}:")]
                    assert mine == list(range(PER_SENDER)), f"{tag} out of order"

        await cluster.assert_redis_kept()
        # And the database holds each message once.
        for conv, (created, members, count) in convs.items():
            stored = await _history(client, members[0], conv)
            assert [m["seq"] for m in stored] == list(range(created + 1, created + 1 + count))
            keys = Counter(m["client_msg_id"] for m in stored)
            assert len(keys) == count and max(keys.values()) == 1


async def _history(client: httpx.AsyncClient, reader: Person, conv: str) -> list[dict[str, object]]:
    found: list[dict[str, object]] = []
    after = 0
    while True:
        resp = await client.get(
            f"/api/v1/conversations/{conv}/messages",
            params={"after_seq": after, "limit": 200},
            headers=reader.headers,
        )
        assert resp.status_code == 200, resp.text
        page = resp.json()["messages"]
        if not page:
            return found
        found += page
        after = int(page[-1]["seq"])
