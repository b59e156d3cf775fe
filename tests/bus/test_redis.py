"""What only the Redis adapter does: surviving the loss of Redis, presence over the nodes of a
cluster (and nodes that die), alert windows shared by the nodes, and the wire format."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest

from enclave.bus import wire
from enclave.bus.redis.bus import RedisBus
from enclave.bus.redis.link import RedisLink, RedisUnavailable
from enclave.bus.shared import RedisAlertWindows, RedisPresence
from enclave.domain.ids import OrgId, UserId
from enclave.domain.signals import Committed, PresenceChanged, PresenceStatus
from enclave.domain.topics import conversation_topic
from tests.bus.test_contract import CONV, event, until
from tests.redis_server import RedisServer

ONLINE, AWAY, OFFLINE = PresenceStatus.ONLINE, PresenceStatus.AWAY, PresenceStatus.OFFLINE
ORG = OrgId("o" * 26)
ANN, BEN = UserId("a" * 26), UserId("b" * 26)


@contextlib.asynccontextmanager
async def bus_on(
    url: str,
    node: str,
    prefix: str = "t:",
    wait: float = 5.0,
    on_change: Callable[[bool], None] | None = None,
) -> AsyncIterator[RedisBus]:
    link = RedisLink(url, prefix=prefix, timeout=0.5, retry_seconds=0.2, on_change=on_change)
    bus = RedisBus(link, node, ping_seconds=0.2)
    await bus.start(wait=wait)
    try:
        yield bus
    finally:
        await bus.close()
        await link.close()


async def test_a_node_that_lost_redis_reconnects_and_catches_up(
    private_redis: RedisServer,
) -> None:
    """While Redis is away each node still delivers its own signals at once; when Redis is
    back both reconnect, and the receiving node is told it may have missed signals twice: its
    own subscription was down, and the other node could not publish. Each change of reach is
    reported once (it feeds the `enclave_redis_up` metric)."""
    reach: list[bool] = []
    async with (
        bus_on(private_redis.url, "a", on_change=reach.append) as a,
        bus_on(private_redis.url, "b") as b,
    ):
        assert reach == [True]
        got_a: list[object] = []
        got_b: list[object] = []
        gaps_b: list[int] = []
        a.subscribe(got_a.append)
        b.subscribe(got_b.append)
        b.on_gap(lambda: gaps_b.append(1))
        await b.follow([conversation_topic(CONV)])

        private_redis.kill()
        await a.publish(Committed((event(1),)))  # committed while Redis is away
        assert got_a == [Committed((event(1),))]  # this node's clients are served at once
        await until(lambda: not a.connected and not b.connected)
        assert got_b == []

        private_redis.start()
        await until(lambda: a.connected and b.connected, timeout=10)
        # b's subscription came back: it is told it may have missed something.
        await until(lambda: len(gaps_b) >= 1, timeout=10)
        await a.publish(Committed((event(2),)))
        await until(lambda: got_b == [Committed((event(2),))])
        assert reach == [True, False, True]


async def test_a_node_whose_publish_failed_tells_the_others(
    redis_url: str, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis stays up for b, but a's publish fails: once a reaches Redis again it says so on
    the `all` topic, and b (which missed the signal) is told to catch up."""
    async with (
        bus_on(redis_url, "a", redis_prefix) as a,
        bus_on(redis_url, "b", redis_prefix) as b,
    ):
        got_b: list[object] = []
        gaps_b: list[int] = []
        b.subscribe(got_b.append)
        b.on_gap(lambda: gaps_b.append(1))
        await b.follow([conversation_topic(CONV)])
        link = a._link
        real = link.pipeline

        async def failing(*args: object, **kwargs: object) -> list[object]:
            raise RedisUnavailable("cut off")

        monkeypatch.setattr(link, "pipeline", failing)
        await a.publish(Committed((event(1),)))
        await asyncio.sleep(0.1)
        assert got_b == [] and gaps_b == []
        monkeypatch.setattr(link, "pipeline", real)
        await until(lambda: gaps_b == [1], timeout=5)
        assert got_b == []


async def test_a_redis_that_never_answers_does_not_stop_a_node(
    private_redis: RedisServer,
) -> None:
    """Starting without Redis: the bus starts anyway, delivers locally, and connects later."""
    private_redis.kill()
    reach: list[bool] = []
    async with bus_on(private_redis.url, "a", wait=0.2, on_change=reach.append) as a:
        assert not a.connected
        got: list[object] = []
        a.subscribe(got.append)
        await a.publish(Committed((event(1),)))
        assert len(got) == 1
        private_redis.start()
        await until(lambda: a.connected, timeout=10)
        assert reach == [False, True]


# -- presence over nodes ------------------------------------------------------------------------


@pytest.fixture
async def link(redis_url: str, redis_prefix: str) -> AsyncIterator[RedisLink]:
    found = RedisLink(redis_url, prefix=redis_prefix)
    yield found
    await found.close()


async def test_presence_is_the_best_status_over_every_nodes_devices(link: RedisLink) -> None:
    a, b = RedisPresence(link, "node-a"), RedisPresence(link, "node-b")
    await a.sweep()
    await b.sweep()
    assert await a.update(ORG, ANN, ONLINE) is ONLINE  # phone on node a
    assert await b.update(ORG, ANN, AWAY) is None  # laptop on node b, away: still online
    assert await b.statuses([ANN, BEN]) == {ANN: ONLINE, BEN: OFFLINE}
    assert await a.update(ORG, ANN, OFFLINE) is AWAY  # the phone went: away is what is left
    assert await a.update(ORG, ANN, OFFLINE) is None  # nothing new
    assert await b.update(ORG, ANN, ONLINE) is ONLINE
    assert await b.update(ORG, ANN, OFFLINE) is OFFLINE
    assert await a.statuses([ANN]) == {ANN: OFFLINE}


async def test_the_devices_of_a_node_that_died_go_offline(link: RedisLink) -> None:
    a = RedisPresence(link, "node-a")
    doomed = RedisPresence(link, "node-dead", node_ttl_seconds=0.2)
    await a.sweep()
    await doomed.sweep()
    assert await doomed.update(ORG, BEN, ONLINE) is ONLINE
    assert await a.update(ORG, ANN, ONLINE) is ONLINE
    assert (await a.sweep()).changes == []  # node-dead is alive still
    await asyncio.sleep(0.3)  # node-dead stops renewing: it was SIGKILLed
    swept = await a.sweep()
    assert swept.changes == [PresenceChanged(ORG, BEN, OFFLINE)]
    assert not swept.lost_mine
    assert await a.statuses([ANN, BEN]) == {ANN: ONLINE, BEN: OFFLINE}
    assert (await a.sweep()).changes == []  # reported once
    # A node that was swept for dead but lives on learns it, and reports its people again.
    assert (await doomed.sweep()).lost_mine


# -- alert windows ------------------------------------------------------------------------------


async def test_alert_windows_count_entries_of_every_node_and_fire_once(link: RedisLink) -> None:
    nodes = [RedisAlertWindows(link), RedisAlertWindows(link)]
    t0 = 1_800_000_000_000

    def count(node: int, at: int) -> tuple[int, int, bool]:
        return nodes[node].count("failed_logins_ip:ip:192.0.2.1", at, 60_000, 3)

    results = await asyncio.to_thread(
        lambda: [count(0, t0), count(1, t0 + 1), count(0, t0 + 2), count(1, t0 + 3)]
    )
    assert results == [(1, t0, False), (2, t0, False), (3, t0, True), (3, t0 + 1, False)]
    # A window later the oldest entries left it: three new ones fire again.
    later = t0 + 120_000
    again = await asyncio.to_thread(lambda: [count(i % 2, later + i)[2] for i in range(3)])
    assert again == [False, False, True]


# -- wire ---------------------------------------------------------------------------------------


def test_the_wire_refuses_what_is_not_a_signal() -> None:
    for data in (b"{", b"[]", b'{"k": "Nope", "f": {}}', b'{"k": "Typing", "f": {"x": 1}}'):
        with pytest.raises(wire.WireError):
            wire.decode(data)
    signal = PresenceChanged(ORG, ANN, AWAY)
    assert wire.decode(wire.encode(signal)) == signal
