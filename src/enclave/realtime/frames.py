"""Server-to-client frames. An event is encoded once and the same bytes go to every recipient:
server frames are unmasked, so one serialized WebSocket frame fits every connection."""

from __future__ import annotations

from typing import Any

from websockets.frames import Frame, Opcode

from enclave import codec
from enclave.domain.events import Event


def event_payload(event: Event) -> dict[str, Any]:
    return {
        "type": event.type.value,
        "conversation_id": event.conversation_id,
        "seq": event.seq,
        "actor_id": event.actor_id,
        "created_at": event.created_at,
        "data": event.data,
    }


def ws_frame(payload: dict[str, Any]) -> bytes:
    """A complete text frame (header and JSON body), ready to write to any socket."""
    return Frame(Opcode.TEXT, codec.dumps(payload)).serialize(mask=False)


def event_frame(event: Event) -> bytes:
    return ws_frame(event_payload(event))
