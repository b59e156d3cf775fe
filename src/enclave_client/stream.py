"""The live event stream: one WebSocket that reconnects with backoff, resumes from its cursors
and never yields an event twice.

    async with EventStream("http://127.0.0.1:8080", token) as stream:
        async for item in stream:
            if item.type == "message.created":
                ...

`stream.cursors` (conversation id -> seq of the last event the application has taken from the
stream) may be saved and passed to a later stream to resume exactly where this one stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import ssl
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from enclave_client.errors import ConnectionFailed, EnclaveError, Unauthenticated

# Close codes after which reconnecting cannot help (docs/protocol.md). For 4003 the close reason
# names the set-up step the account must finish first.
_FATAL_CLOSE = {4001: "unauthenticated", 4003: "password_change_required", 4010: "session ended"}
_SET_UP_STEPS = ("password_change_required", "mfa_enrollment_required", "terms_acceptance_required")


def _closed(code: int, reason: str) -> Unauthenticated:
    """What a stream closed by the server with a fatal `code` ends with."""
    if code == 4003:
        step = reason if reason in _SET_UP_STEPS else _FATAL_CLOSE[code]
        return Unauthenticated(step, "finish this step over REST, then open a new stream", 403)
    return Unauthenticated(_FATAL_CLOSE[code], "stream closed", 401)


@dataclass(frozen=True)
class StreamItem:
    """One frame from the server. Stored events have a `seq`; ephemeral ones (typing, presence,
    ready, synced, resync, ...) do not."""

    type: str
    conversation_id: str | None = None
    seq: int | None = None
    actor_id: str | None = None
    created_at: int | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Ack:
    """The server stored a message sent over the stream."""

    conversation_id: str
    message_id: str
    client_msg_id: str
    seq: int
    created: bool


def _ws_url(base_url: str) -> str:
    base = base_url.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base.removeprefix("https://") + "/api/v1/ws"
    return "ws://" + base.removeprefix("http://") + "/api/v1/ws"


class EventStream:
    """Async iterator over live events, resuming across disconnects."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        cursors: dict[str, int] | None = None,
        max_backoff: float = 10.0,
        queue_size: int = 10000,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._url = _ws_url(base_url)
        # For wss:// to a server whose certificate a private CA signed (None: the system's CAs).
        self._tls: dict[str, Any] = {"ssl": ssl_context} if ssl_context is not None else {}
        self._token = token
        self.cursors: dict[str, int] = dict(cursors or {})
        # What arrived (maybe still queued); a reconnect of this stream resumes from here.
        self._received: dict[str, int] = dict(self.cursors)
        self._max_backoff = max_backoff
        self._items: asyncio.Queue[StreamItem | BaseException] = asyncio.Queue(queue_size)
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._connected = asyncio.Event()
        self._synced = asyncio.Event()
        self.reconnects = 0

    async def __aenter__(self) -> EventStream:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._ws is not None:
            await self._ws.close()

    def __aiter__(self) -> AsyncIterator[StreamItem]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[StreamItem]:
        while True:
            item = await self._items.get()
            if isinstance(item, BaseException):
                raise item
            conv = item.conversation_id
            if conv is not None:
                if item.type in ("resync", "conversation.removed"):
                    self._apply_cursor(self.cursors, item)
                elif item.seq is not None:
                    self.cursors[conv] = item.seq
            elif item.type == "ready":
                self._apply_ready(self.cursors, item.data)
            yield item

    @staticmethod
    def _apply_ready(cursors: dict[str, int], frame: dict[str, Any]) -> None:
        # `ready.cursors` names conversations the hello did not list; one of their events may
        # have been taken already, so a cursor there only moves forward. `resync` is the
        # server's explicit reset and is taken as it is.
        for k, v in frame.get("cursors", {}).items():
            cursors[str(k)] = max(int(v), cursors.get(str(k), int(v)))
        cursors.update({str(k): int(v) for k, v in frame.get("resync", {}).items()})
        for conv in frame.get("removed", []):
            cursors.pop(str(conv), None)

    @staticmethod
    def _apply_cursor(cursors: dict[str, int], item: StreamItem) -> None:
        conv = item.conversation_id or ""
        if item.type == "resync":
            cursors[conv] = int(item.data["seq"])
        else:
            cursors.pop(conv, None)

    async def wait_synced(self, timeout: float = 30.0) -> None:
        """Wait until the current connection has delivered everything missed."""
        await asyncio.wait_for(self._synced.wait(), timeout)

    # -- client frames --------------------------------------------------------------------------

    async def send(
        self,
        conversation_id: str,
        text: str,
        *,
        client_msg_id: str | None = None,
        thread_root_id: str | None = None,
        timeout: float = 30.0,
    ) -> Ack:
        """Send a message over the stream; a retry after a reconnect reuses the same key, so the
        message is stored once."""
        cmid = client_msg_id or uuid.uuid4().hex
        frame = {
            "type": "send",
            "conversation_id": conversation_id,
            "client_msg_id": cmid,
            "text": text,
            "thread_root_id": thread_root_id,
        }
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                reply = await self._request(frame, deadline)
            except (ConnectionClosed, ConnectionError):
                await asyncio.sleep(0.05)
                continue
            return Ack(
                conversation_id=reply["conversation_id"],
                message_id=reply["message_id"],
                client_msg_id=reply["client_msg_id"],
                seq=int(reply["seq"]),
                created=bool(reply["created"]),
            )

    async def mark_read(self, conversation_id: str, seq: int) -> int:
        frame = {"type": "read", "conversation_id": conversation_id, "seq": seq}
        reply = await self._request(frame, asyncio.get_running_loop().time() + 30)
        return int(reply["last_read_seq"])

    async def typing(self, conversation_id: str, thread_root_id: str | None = None) -> None:
        frame = {"type": "typing", "conversation_id": conversation_id}
        if thread_root_id:
            frame["thread_root_id"] = thread_root_id
        await self._send_frame(frame)

    async def set_presence(self, status: str) -> None:
        await self._send_frame({"type": "presence", "status": status})

    async def watch_presence(self, user_ids: list[str]) -> dict[str, str]:
        """Follow people's presence; returns their current status."""
        frame = {"type": "presence.subscribe", "user_ids": user_ids}
        reply = await self._request(frame, asyncio.get_running_loop().time() + 30)
        return dict(reply.get("statuses", {}))

    async def _send_frame(self, frame: dict[str, Any]) -> None:
        await asyncio.wait_for(self._connected.wait(), 30)
        assert self._ws is not None
        await self._ws.send(json.dumps(frame))

    async def _request(self, frame: dict[str, Any], deadline: float) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(self._connected.wait(), max(0.0, deadline - loop.time()))
        req_id = uuid.uuid4().hex
        fut: asyncio.Future[dict[str, Any]] = loop.create_future()
        self._pending[req_id] = fut
        try:
            assert self._ws is not None
            await self._ws.send(json.dumps({**frame, "req_id": req_id}))
            return await asyncio.wait_for(fut, max(0.0, deadline - loop.time()))
        finally:
            self._pending.pop(req_id, None)

    # -- the connection loop --------------------------------------------------------------------

    async def _run(self) -> None:
        backoff = 0.05
        while True:
            code: int | None = None
            reason = ""
            try:
                async with connect(self._url, max_size=None, compression=None, **self._tls) as ws:
                    self._ws = ws
                    await ws.send(
                        json.dumps(
                            {"type": "hello", "token": self._token, "cursors": self._received}
                        )
                    )
                    async for raw in ws:
                        self._handle(json.loads(raw))
                        backoff = 0.05
                    code, reason = ws.close_code, ws.close_reason or ""
            except (OSError, InvalidHandshake, ConnectionClosed, TimeoutError) as exc:
                rcvd = exc.rcvd if isinstance(exc, ConnectionClosed) else None
                code, reason = (rcvd.code, rcvd.reason) if rcvd else (None, "")
                if isinstance(exc, InvalidStatus) and exc.response.status_code in (401, 403):
                    await self._items.put(Unauthenticated("unauthenticated", str(exc), 401))
                    return
            finally:
                self._connected.clear()
                self._synced.clear()
                self._ws = None
                for fut in self._pending.values():
                    if not fut.done():
                        fut.set_exception(ConnectionError("connection lost"))
            if code is not None and code in _FATAL_CLOSE:
                await self._items.put(_closed(code, reason))
                return
            self.reconnects += 1
            await asyncio.sleep(backoff * (0.5 + random.random()))  # noqa: S311 - jitter
            backoff = min(self._max_backoff, backoff * 2)

    def _handle(self, frame: dict[str, Any]) -> None:
        kind = str(frame.get("type"))
        if kind in ("ack", "error", "pong", "presence.state") and frame.get("req_id") is not None:
            fut = self._pending.get(str(frame["req_id"]))
            if fut is not None and not fut.done():
                if kind == "error":
                    fut.set_exception(
                        EnclaveError(str(frame.get("code")), str(frame.get("message")), None)
                    )
                else:
                    fut.set_result(frame)
            return
        seq = frame.get("seq")
        conv = frame.get("conversation_id")
        body = frame.get("data")
        if kind == "ready":
            self._apply_ready(self._received, frame)
            self._connected.set()
        elif kind == "synced":
            self._synced.set()
        elif kind == "resync":
            self._received[str(conv)] = int(frame["seq"])
        elif kind == "conversation.removed":
            self._received.pop(str(conv), None)
        elif isinstance(seq, int) and isinstance(conv, str):
            if seq <= self._received.get(conv, -1):
                return  # seen before: never yield an event twice
            self._received[conv] = seq
        self._put(
            StreamItem(
                type=kind,
                conversation_id=conv if isinstance(conv, str) else None,
                seq=seq if isinstance(seq, int) and kind != "resync" else None,
                actor_id=frame.get("actor_id"),
                created_at=frame.get("created_at"),
                data=body if isinstance(body, dict) else frame,
            )
        )

    def _put(self, item: StreamItem) -> None:
        try:
            self._items.put_nowait(item)
        except asyncio.QueueFull:
            # The application stopped reading: fail loudly rather than drop an event silently.
            self._items = asyncio.Queue(1)
            self._items.put_nowait(ConnectionFailed("event queue overflowed; resume from cursors"))
