"""Catch-up: sending a connection the stored events it is missing, exactly once and in order.

A connection that sees a gap (an event whose seq is not its next) asks its owner for a
catch-up (`request`); a resuming connection is replayed from its cursors (`replay`). Both read
the stored event log after the connection's cursor until it is current. Reads for the same
(conversation, cursor) are shared between connections, so a gap seen by 1,000 sockets costs
one query. `conn.catching[conv]` exists while a pass runs; set to True it asks for one more
pass, so gaps seen meanwhile are coalesced into the running one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from enclave.domain.events import Event, EventType
from enclave.domain.ids import ConversationId
from enclave.realtime import frames
from enclave.realtime.connection import Connection
from enclave.realtime.frames import CloseCode
from enclave.services import sync
from enclave.services.context import Context

__all__ = ["CATCH_UP_PAGE", "CatchUp"]

log = logging.getLogger(__name__)

CATCH_UP_PAGE = 500
"""Stored events one read fetches."""
Fetched = list[tuple[Event, bytes]]


class CatchUp:
    """The hub's catch-up of its connections from the stored log. `spawn` runs background work
    owned by the hub."""

    def __init__(self, ctx: Context, spawn: Callable[[Coroutine[Any, Any, None]], None]) -> None:
        self._ctx = ctx
        self._spawn = spawn
        self._fetches: dict[tuple[ConversationId, int], asyncio.Future[Fetched]] = {}

    def request(self, conn: Connection, conv: ConversationId) -> None:
        """Fill a gap of `conn` in `conv` in the background (coalesced while one runs)."""
        if conv in conn.catching:
            conn.catching[conv] = True  # run once more when the current pass ends
            return
        conn.catching[conv] = False
        self._spawn(self._run(conn, conv))

    async def replay(self, conn: Connection, convs: list[ConversationId]) -> None:
        """Send a resuming `conn` what it missed in each of `convs`; return when it is current.
        Gaps seen meanwhile join these passes instead of starting their own."""
        for conv in convs:
            conn.catching[conv] = False
        await asyncio.gather(*(self._run(conn, conv) for conv in convs))

    async def _run(self, conn: Connection, conv: ConversationId) -> None:
        """Send `conn` the stored events of `conv` after its cursor until it is current."""
        check_membership = False
        try:
            while conn.alive and conv in conn.delivered:
                conn.catching[conv] = False
                after = conn.delivered[conv]
                fetched = await self._fetch(conv, after)
                if conv not in conn.delivered:
                    return
                if fetched and fetched[0][0].seq != after + 1:
                    # The log no longer holds what this cursor needs: say so, never skip.
                    conn.delivered[conv] = fetched[0][0].seq - 1
                    conn.send(frames.resync(conv, conn.delivered[conv]))
                for event, frame in fetched:
                    conn.offer(event, frame, replay=True)
                    if event.type is EventType.MEMBER_LEFT and event.data.get("user_id") == (
                        conn.user_id
                    ):
                        check_membership = True
                if len(fetched) < CATCH_UP_PAGE and not conn.catching.get(conv):
                    break
            recheck = check_membership and conn.alive and conv in conn.delivered
            if recheck and not await sync.is_member(self._ctx, conn.user_id, conv):
                conn.owner.unsubscribe(conn, conv)
                conn.send(frames.conversation_removed(conv))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("catch-up failed; dropping the connection so that it resumes")
            conn.drop(CloseCode.INTERNAL, "try again")
        finally:
            conn.catching.pop(conv, None)

    async def _fetch(self, conv: ConversationId, after: int) -> Fetched:
        key = (conv, after)
        fut = self._fetches.get(key)
        if fut is None:
            fut = asyncio.ensure_future(self._load(conv, after))
            self._fetches[key] = fut
            fut.add_done_callback(lambda _f: self._fetches.pop(key, None))
        return await asyncio.shield(fut)

    async def _load(self, conv: ConversationId, after: int) -> Fetched:
        events = await sync.events_for_member(self._ctx, conv, after, CATCH_UP_PAGE)
        return [(e, frames.event(e)) for e in events]
