"""Resume: a newly authenticated connection joins the hub, is subscribed to its person's
conversations from the client's cursors, gets `ready`, every event it missed, then `synced`
(docs/protocol.md, "Connecting"). The WebSocket endpoint calls `resume` between `hello` and
its frame loop; everything the connection is sent before the loop is decided here.
"""

from __future__ import annotations

from collections.abc import Mapping

from enclave.domain.ids import ConversationId
from enclave.realtime import frames
from enclave.realtime.connection import Connection
from enclave.realtime.hub import Hub
from enclave.services import sync
from enclave.services.context import Context

__all__ = ["resume"]


async def resume(
    ctx: Context, hub: Hub, conn: Connection, cursors: Mapping[str, int], *, since: int
) -> None:
    """Register `conn` (`since`: the hub's `access_epoch` from before its session was
    checked), wait until the bus follows its person, subscribe it from `cursors` and send what
    it missed, exactly once and in order; then report its presence."""
    hub.register(conn, since=since)
    await hub.settle(conn)
    await _subscribe_and_replay(ctx, hub, conn, cursors)
    hub.presence_maybe_changed(conn)


async def _subscribe_and_replay(
    ctx: Context, hub: Hub, conn: Connection, cursors: Mapping[str, int]
) -> None:
    max_replay = ctx.config.realtime.max_replay_events
    seqs = await sync.membership_seqs(ctx, conn.user_id)
    started: dict[str, int] = {}
    resync: dict[str, int] = {}
    for conv, last in seqs.items():
        cursor = cursors.get(conv)
        if cursor is None:
            hub.subscribe(conn, conv, last)
            started[conv] = last
        elif cursor > last or last - cursor > max_replay:
            hub.subscribe(conn, conv, last)
            resync[conv] = last
        else:
            hub.subscribe(conn, conv, cursor)
    removed = [c for c in cursors if c not in seqs]
    # Read again now that we are subscribed: whatever committed in between is caught up below.
    seqs = await sync.membership_seqs(ctx, conn.user_id)
    for conv, last in seqs.items():
        if conv not in conn.delivered:
            hub.subscribe(conn, conv, last)
            started[conv] = last
    behind: list[ConversationId] = [
        c for c, last in seqs.items() if conn.delivered.get(c, last) < last
    ]
    # Live events offered since the subscriptions above were held by the connection: `start`
    # writes `ready` first and then replays them through the usual seq checks.
    conn.start(
        frames.ready(
            connection_id=conn.id,
            user_id=conn.user_id,
            cursors=started,
            resync=resync,
            removed=removed,
            heartbeat_seconds=ctx.config.realtime.heartbeat_seconds,
        ),
        catching=behind,
    )
    await hub.replay(conn, behind)
    conn.send(frames.synced())
