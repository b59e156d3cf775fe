"""Every frame the server sends, and the WebSocket close codes: one constructor per frame type
(docs/protocol.md lists them), so a frame's shape is decided in exactly one place.

Each constructor returns a complete, unmasked WebSocket text frame (header and JSON body).
Server frames are unmasked, so the same bytes fit every connection: an event is encoded once
and written to all its recipients.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from websockets.frames import Frame, Opcode

from enclave import codec
from enclave.domain import wire
from enclave.domain.events import Event
from enclave.domain.ids import UserId
from enclave.domain.models import User
from enclave.domain.signals import PresenceStatus

__all__ = [
    "CloseCode",
    "ReqId",
    "account_updated",
    "ack",
    "conversation_removed",
    "error",
    "event",
    "event_payload",
    "pong",
    "presence",
    "presence_state",
    "ready",
    "resync",
    "synced",
    "typing",
]

ReqId = str | int | None
"""A client request's id, echoed in the answer (`ack`, `error`, `pong`, `presence.state`)."""


class CloseCode:
    """WebSocket close codes Enclave uses (docs/protocol.md, docs/errors.md)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    TOO_BIG = 1009
    INTERNAL = 1011
    BAD_FRAME = 4000
    UNAUTHENTICATED = 4001
    SET_UP_REQUIRED = 4003
    """The reason names the step: `password_change_required`, `mfa_enrollment_required` or
    `terms_acceptance_required`."""
    TOO_SLOW = 4008
    RATE_LIMITED = 4009
    SESSION_REVOKED = 4010
    TOO_MANY_SOCKETS = 4011
    """Over `realtime.max_sockets_per_session` or `realtime.max_sockets_per_user` on a node."""


def _frame(payload: dict[str, Any]) -> bytes:
    return Frame(Opcode.TEXT, codec.dumps(payload)).serialize(mask=False)


# -- stored events ------------------------------------------------------------------------------


def event_payload(event: Event) -> dict[str, Any]:
    """The JSON object of a stored event (protocol.md, "Events")."""
    return {
        "type": event.type.value,
        "conversation_id": event.conversation_id,
        "seq": event.seq,
        "actor_id": event.actor_id,
        "created_at": event.created_at,
        "data": event.data,
    }


def event(ev: Event) -> bytes:
    return _frame(event_payload(ev))


# -- setting up a connection --------------------------------------------------------------------


def ready(
    *,
    connection_id: str,
    user_id: str,
    cursors: Mapping[str, int],
    resync: Mapping[str, int],
    removed: list[str],
    heartbeat_seconds: float,
) -> bytes:
    """The answer to `hello`: where delivery starts for each conversation not resumed as is."""
    return _frame(
        {
            "type": "ready",
            "connection_id": connection_id,
            "user_id": user_id,
            "cursors": dict(cursors),
            "resync": dict(resync),
            "removed": removed,
            "heartbeat_seconds": heartbeat_seconds,
        }
    )


def synced() -> bytes:
    """Every missed event of the resumed conversations was sent."""
    return _frame({"type": "synced"})


def resync(conversation_id: str, seq: int) -> bytes:
    """The stored log no longer holds what the cursor needs: it continues from `seq`."""
    return _frame({"type": "resync", "conversation_id": conversation_id, "seq": seq})


def conversation_removed(conversation_id: str) -> bytes:
    """The person is no longer a member (their own `member.left` was missed)."""
    return _frame({"type": "conversation.removed", "conversation_id": conversation_id})


def account_updated(user: User) -> bytes:
    """The person's org role or department changed; the connection acts with it already."""
    return _frame({"type": "account.updated", "user": wire.user(user)})


# -- typing and presence ------------------------------------------------------------------------


def typing(conversation_id: str, user_id: str, thread_root_id: str | None) -> bytes:
    return _frame(
        {
            "type": "typing",
            "conversation_id": conversation_id,
            "user_id": user_id,
            "thread_root_id": thread_root_id,
        }
    )


def presence(user_id: str, status: PresenceStatus) -> bytes:
    return _frame({"type": "presence", "user_id": user_id, "status": status.value})


def presence_state(req_id: ReqId, statuses: Mapping[UserId, PresenceStatus]) -> bytes:
    """The answer to `presence.subscribe`."""
    return _frame(
        {
            "type": "presence.state",
            "req_id": req_id,
            "statuses": {uid: status.value for uid, status in statuses.items()},
        }
    )


# -- answers to client requests -----------------------------------------------------------------


def ack(req_id: ReqId, body: Mapping[str, Any]) -> bytes:
    """A request succeeded; `body` holds its result's fields."""
    return _frame({"type": "ack", "req_id": req_id, **body})


def error(code: str, message: str, req_id: ReqId = None) -> bytes:
    """A request (or a frame) failed; `code` is one of docs/errors.md."""
    return _frame({"type": "error", "req_id": req_id, "code": code, "message": message})


def pong(req_id: ReqId) -> bytes:
    return _frame({"type": "pong", "req_id": req_id})
