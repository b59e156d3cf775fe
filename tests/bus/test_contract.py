"""The bus contract, run on the in-process bus and on the Redis bus (two nodes).

For the in-process bus "both nodes" are the same bus: one node is all there is. For Redis they
are two buses on two connections under the test's own prefix, as two processes of a cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import typing
from collections.abc import AsyncIterator, Callable

import pytest

from enclave.bus.base import Bus
from enclave.bus.memory import InProcessBus
from enclave.bus.redis.bus import RedisBus
from enclave.bus.redis.link import RedisLink
from enclave.domain.events import (
    Event,
    MemberJoined,
    MessageCreated,
    MessageEdited,
    MessageSnapshot,
)
from enclave.domain.ids import ConversationId, MessageId, OrgId, UserId
from enclave.domain.models import MemberRole
from enclave.domain.signals import (
    AccessChanged,
    Committed,
    PresenceChanged,
    PresenceStatus,
    SessionsRevoked,
    Signal,
    Typing,
)
from enclave.domain.topics import Topic, conversation_topic, topics_of

CONV = ConversationId("c" * 26)
OTHER = ConversationId("d" * 26)
ALICE = UserId("a" * 26)
ORG = OrgId("o" * 26)


def event(seq: int, conv: ConversationId = CONV, *, edited: bool = False) -> Event:
    at = 1_800_000_000_000 + seq
    message = MessageSnapshot(
        MessageId(f"{seq:026d}"), conv, seq, ALICE, f"k{seq}", f"m{seq}", None, at,
        at if edited else None, False, None, 0, None, (), (),
    )  # fmt: skip
    payload = MessageEdited(message) if edited else MessageCreated(message)
    return Event(conv, seq, ALICE, at, payload)


# One of every signal type; the test below fails when a type is added without a sample here.
SAMPLES: list[Signal] = [
    Committed((event(1), event(2, edited=True))),
    Committed((Event(CONV, 3, ALICE, 5, MemberJoined(UserId("b" * 26), MemberRole.MEMBER)),)),
    Typing(CONV, ALICE, None),
    Typing(CONV, ALICE, "r" * 26),
    PresenceChanged(ORG, ALICE, PresenceStatus.AWAY),
    SessionsRevoked(ALICE, b"\x00\xffhash", keep=None),
    SessionsRevoked(ALICE, None, keep=b"kept"),
    AccessChanged(ORG, ALICE),
    AccessChanged(ORG, None),
]


class Nodes:
    def __init__(self, a: Bus, b: Bus) -> None:
        self.a, self.b = a, b
        self.got_a: list[Signal] = []
        self.got_b: list[Signal] = []
        a.subscribe(self.got_a.append)
        b.subscribe(self.got_b.append)

    async def follow(self, topics: list[Topic]) -> None:
        """Node b follows `topics` and waits until they are in place."""
        await self.b.follow(topics)


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail("timed out")
        await asyncio.sleep(0.005)


@pytest.fixture(params=["memory", "redis"])
def kind(request: pytest.FixtureRequest) -> tuple[str, str] | None:
    if request.param == "memory":
        return None
    return request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")


@contextlib.asynccontextmanager
async def redis_nodes(url: str, prefix: str) -> AsyncIterator[Nodes]:
    """Two Redis buses, as two nodes of one cluster."""
    links = [RedisLink(url, prefix=prefix) for _ in range(2)]
    buses = [RedisBus(link, f"node{i}") for i, link in enumerate(links)]
    for bus in buses:
        await bus.start(wait=5.0)
        assert bus.connected
    try:
        yield Nodes(*buses)
    finally:
        for bus in buses:
            await bus.close()
        for link in links:
            await link.close()


@pytest.fixture
async def nodes(kind: tuple[str, str] | None) -> AsyncIterator[Nodes]:
    if kind is None:
        bus = InProcessBus()
        yield Nodes(bus, bus)
        return
    async with redis_nodes(*kind) as found:
        yield found


def test_samples_cover_every_signal_type() -> None:
    assert {type(s) for s in SAMPLES} == set(typing.get_args(Signal))


async def test_local_subscribers_get_each_signal_at_once_and_in_order(nodes: Nodes) -> None:
    for seq in range(1, 101):
        await nodes.a.publish(Committed((event(seq),)))
        # Delivered before publish returned: the publishing node's clients never wait on Redis.
        assert nodes.got_a[-1] == Committed((event(seq),))
    assert [s.events[0].seq for s in nodes.got_a if isinstance(s, Committed)] == list(range(1, 101))


async def test_every_signal_type_reaches_a_node_that_follows_its_topic(nodes: Nodes) -> None:
    for sample in SAMPLES:
        await nodes.follow(topics_of(sample))
    for sample in SAMPLES:
        await nodes.a.publish(sample)
    await until(lambda: len(nodes.got_b) >= len(SAMPLES))
    assert nodes.got_b == SAMPLES


async def test_one_publishers_order_is_kept_on_other_nodes(nodes: Nodes) -> None:
    await nodes.follow([conversation_topic(CONV), conversation_topic(OTHER)])
    for seq in range(1, 301):
        await nodes.a.publish(Committed((event(seq), event(seq, OTHER))))
    await until(lambda: sum(len(s.events) for s in nodes.got_b if isinstance(s, Committed)) >= 600)
    for conv in (CONV, OTHER):
        seqs = [
            e.seq
            for s in nodes.got_b
            if isinstance(s, Committed)
            for e in s.events
            if e.conversation_id == conv
        ]
        assert seqs == list(range(1, 301))


async def test_a_node_receives_only_the_topics_it_follows(
    redis_url: str, redis_prefix: str
) -> None:
    """Redis only: the in-process bus, alone on its node, has everything anyway."""
    async with redis_nodes(redis_url, redis_prefix) as nodes:
        topic = conversation_topic(CONV)
        await nodes.a.follow([topic])  # its own signals must not come back to it twice
        await nodes.follow([topic, topic])  # followed twice
        await nodes.a.publish(Committed((event(1, OTHER),)))  # not followed
        await nodes.a.publish(Committed((event(1),)))
        await until(lambda: len(nodes.got_b) == 1)
        nodes.b.unfollow([topic])  # still followed once
        await nodes.a.publish(Committed((event(2),)))
        await until(lambda: len(nodes.got_b) == 2)
        nodes.b.unfollow([topic])
        await nodes.b.follow([conversation_topic(OTHER)])  # sent after the UNSUBSCRIBE
        await nodes.a.publish(Committed((event(3),)))
        await nodes.a.publish(Committed((event(2, OTHER),)))
        await until(lambda: len(nodes.got_b) == 3)
        await asyncio.sleep(0.05)
        got = [s.events[0] for s in nodes.got_b if isinstance(s, Committed)]
        assert [(e.conversation_id, e.seq) for e in got] == [(CONV, 1), (CONV, 2), (OTHER, 2)]
        assert len(nodes.got_a) == 5


async def test_a_follow_unfollowed_before_redis_confirmed_it_leaves_nobody_waiting(
    redis_url: str, redis_prefix: str
) -> None:
    """A socket that closes at once: its subscription is never made, and nobody waits for it."""
    async with redis_nodes(redis_url, redis_prefix) as nodes:
        topic = conversation_topic(OTHER)
        done = nodes.b.follow([topic])
        nodes.b.unfollow([topic])
        await asyncio.wait_for(done, 2)
