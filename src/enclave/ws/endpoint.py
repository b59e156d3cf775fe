"""`GET /api/v1/ws`: authenticate with a `hello` frame (or an Authorization header), resume from
the client's cursors (`realtime.resume`), then serve live events and client frames until the
socket closes. Every frame sent is built by `realtime.frames`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web
from pydantic import ValidationError

from enclave import codec
from enclave.config.sections import RealtimeConfig
from enclave.domain.errors import EnclaveError, Forbidden
from enclave.domain.ids import ConversationId
from enclave.domain.signals import PresenceStatus
from enclave.realtime import frames
from enclave.realtime.connection import Connection
from enclave.realtime.frames import CloseCode
from enclave.realtime.hub import Hub
from enclave.realtime.resume import resume
from enclave.services import auth, conversations, messages, sync
from enclave.services.auth import Authenticated
from enclave.services.context import Context
from enclave.ws import schemas as f

log = logging.getLogger(__name__)

# Close handshakes in progress (kept referenced so that they are not collected mid-way).
_closing: set[asyncio.Future[bool]] = set()


class AiohttpSink:
    """Writes whole frames straight to the socket's transport (the bytes are shared)."""

    __slots__ = ("_transport", "_ws", "closing")

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.Transport) -> None:
        self._ws = ws
        self._transport = transport
        self.closing: asyncio.Future[bool] | None = None

    def write(self, frame: bytes) -> None:
        if not self._transport.is_closing():
            self._transport.write(frame)

    def buffered(self) -> int:
        return self._transport.get_write_buffer_size()

    def close(self, code: int, reason: str) -> None:
        task = asyncio.ensure_future(self._ws.close(code=code, message=reason.encode()[:120]))
        _closing.add(task)
        task.add_done_callback(_closing.discard)
        self.closing = task

    async def closed(self) -> None:
        """Wait for a close started by `close`, so that the handler returning (which closes an
        open socket with 1000) never overtakes it and the client sees the code given."""
        if self.closing is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.closing)


def make_handler(ctx: Context, hub: Hub) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    cfg: RealtimeConfig = ctx.config.realtime

    async def handle(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(
            timeout=1.0,  # how long a server-initiated close waits for the client's reply
            heartbeat=cfg.heartbeat_seconds,
            max_msg_size=cfg.max_frame_bytes,
            compress=False,
            decode_text=False,
        )
        if not ws.can_prepare(request).ok:
            body = codec.dumps(
                {"error": {"code": "websocket_required", "message": "connect with WebSocket"}}
            )
            return web.Response(status=400, body=body, content_type="application/json")
        await ws.prepare(request)
        assert request.transport is not None
        # Changes signalled while the session is checked cannot reach this connection yet:
        # `register` re-checks it if there were any.
        epoch = hub.access_epoch
        hello = await _hello(ctx, ws, request, cfg)
        if hello is None:
            return ws
        auth_user, token_hash, cursors = hello
        sink = AiohttpSink(ws, request.transport)
        conn = Connection(
            hub,
            secrets.token_hex(8),
            auth_user.user,
            token_hash,
            sink,
            max_buffer=cfg.max_buffer_bytes,
            rate_per_second=cfg.rate_per_second,
            rate_burst=cfg.rate_burst,
        )
        # Checked and registered (first thing `resume` does) with no await in between, so
        # sockets opened at once cannot all pass the cap.
        per_user, per_session = hub.sockets_of(conn)
        if per_user >= cfg.max_sockets_per_user or per_session >= cfg.max_sockets_per_session:
            await ws.close(code=CloseCode.TOO_MANY_SOCKETS, message=b"too many connections")
            return ws
        try:
            await resume(ctx, hub, conn, cursors, since=epoch)
            await _serve(ctx, hub, conn, ws)
        finally:
            conn.drop(CloseCode.NORMAL, "bye")
            await sink.closed()
        return ws

    return handle


async def _hello(
    ctx: Context, ws: web.WebSocketResponse, request: web.Request, cfg: RealtimeConfig
) -> tuple[Authenticated, bytes, dict[str, int]] | None:
    try:
        msg = await ws.receive(timeout=cfg.hello_timeout_seconds)
    except TimeoutError:
        await ws.close(code=CloseCode.UNAUTHENTICATED, message=b"send hello first")
        return None
    if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
        await ws.close(code=CloseCode.BAD_FRAME, message=b"send hello first")
        return None
    try:
        hello = f.HELLO.validate_json(msg.data)
    except ValidationError:
        await ws.close(code=CloseCode.BAD_FRAME, message=b"invalid hello frame")
        return None
    token = hello.token
    header = request.headers.get("Authorization", "")
    if token is None and header.lower().startswith("bearer "):
        token = header[7:].strip()
    try:
        session = await auth.authenticate(ctx, token or "")
    except Forbidden as exc:
        await ws.close(code=CloseCode.SET_UP_REQUIRED, message=exc.code.encode())
        return None
    except EnclaveError:
        await ws.close(code=CloseCode.UNAUTHENTICATED, message=b"unauthenticated")
        return None
    return session, session.token_hash, hello.cursors


async def _serve(ctx: Context, hub: Hub, conn: Connection, ws: web.WebSocketResponse) -> None:
    inflight = asyncio.Semaphore(ctx.config.realtime.max_inflight_sends)
    async for msg in ws:
        if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            continue
        if not conn.allow_frame():
            if conn.flooding:
                conn.drop(CloseCode.RATE_LIMITED, "too many frames")
                break
            conn.send(frames.error("rate_limited", "slow down"))
            continue
        try:
            frame = f.CLIENT_FRAME.validate_json(msg.data)
        except ValidationError as exc:
            conn.send(frames.error("bad_frame", _first_problem(exc)))
            continue
        match frame:
            case f.Send():
                await inflight.acquire()
                hub.spawn(_send(ctx, conn, frame, inflight), "ws: send")
            case f.Read():
                await _reply(conn, frame.req_id, _read(ctx, conn, frame))
            case f.TypingFrame():
                await hub.typing(conn, ConversationId(frame.conversation_id), frame.thread_root_id)
            case f.Presence():
                conn.status = PresenceStatus(frame.status)
                hub.presence_maybe_changed(conn)
            case f.PresenceSubscribe():
                await _presence_subscribe(ctx, hub, conn, frame)
            case f.Ping():
                conn.send(frames.pong(frame.req_id))


def _first_problem(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()))
    return f"{where}: {err.get('msg', 'invalid')}" if where else str(err.get("msg", "invalid"))


async def _reply(
    conn: Connection, req_id: str | int | None, work: Awaitable[dict[str, Any]]
) -> None:
    try:
        body = await work
    except EnclaveError as exc:
        conn.send(frames.error(exc.code, exc.message, req_id))
        return
    conn.send(frames.ack(req_id, body))


async def _send(ctx: Context, conn: Connection, frame: f.Send, inflight: asyncio.Semaphore) -> None:
    try:
        await _reply(conn, frame.req_id, _do_send(ctx, conn, frame))
    finally:
        inflight.release()


async def _do_send(ctx: Context, conn: Connection, frame: f.Send) -> dict[str, Any]:
    sent = await messages.send(
        ctx,
        conn.user,
        frame.conversation_id,
        client_msg_id=frame.client_msg_id,
        text=frame.text,
        thread_root_id=frame.thread_root_id,
    )
    m = sent.message
    return {
        "conversation_id": m.conversation_id,
        "message_id": m.id,
        "client_msg_id": m.client_msg_id,
        "seq": m.seq,
        "created_at": m.created_at,
        "created": sent.created,
    }


async def _read(ctx: Context, conn: Connection, frame: f.Read) -> dict[str, Any]:
    seq = await conversations.mark_read(ctx, conn.user, frame.conversation_id, frame.seq)
    return {"conversation_id": frame.conversation_id, "last_read_seq": seq}


async def _presence_subscribe(
    ctx: Context, hub: Hub, conn: Connection, frame: f.PresenceSubscribe
) -> None:
    if frame.type == "presence.unsubscribe":
        hub.unwatch(conn, [u for u in conn.watching if u in frame.user_ids])
        return
    if len(conn.watching) + len(frame.user_ids) > 1000:
        conn.send(frames.error("too_many_subscriptions", "watch at most 1000 people", frame.req_id))
        return
    visible = await sync.same_org_users(ctx, conn.user, frame.user_ids)
    hub.watch(conn, visible)
    conn.send(frames.presence_state(frame.req_id, await hub.presence_states(visible)))
