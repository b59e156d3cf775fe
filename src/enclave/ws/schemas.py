"""Frames a client may send. Each is validated; a bad one gets an `error` frame back."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

MAX_ID = 64
MAX_CURSORS = 10000


class _Frame(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Hello(_Frame):
    type: Literal["hello"]
    token: str | None = Field(None, max_length=256)
    cursors: dict[Annotated[str, Field(max_length=MAX_ID)], Annotated[int, Field(ge=0)]] = Field(
        default_factory=dict, max_length=MAX_CURSORS
    )


class Send(_Frame):
    type: Literal["send"]
    req_id: str | int | None = None
    conversation_id: str = Field(max_length=MAX_ID)
    client_msg_id: str = Field(max_length=MAX_ID)
    text: str = Field(max_length=100_000)
    thread_root_id: str | None = Field(None, max_length=MAX_ID)


class Read(_Frame):
    type: Literal["read"]
    req_id: str | int | None = None
    conversation_id: str = Field(max_length=MAX_ID)
    seq: int = Field(ge=0, le=2**53)


class TypingFrame(_Frame):
    type: Literal["typing"]
    conversation_id: str = Field(max_length=MAX_ID)
    thread_root_id: str | None = Field(None, max_length=MAX_ID)


class Presence(_Frame):
    type: Literal["presence"]
    status: Literal["online", "away"]


class PresenceSubscribe(_Frame):
    type: Literal["presence.subscribe", "presence.unsubscribe"]
    req_id: str | int | None = None
    user_ids: list[Annotated[str, Field(max_length=MAX_ID)]] = Field(max_length=500)


class Ping(_Frame):
    type: Literal["ping"]
    req_id: str | int | None = None


ClientFrame = Annotated[
    Send | Read | TypingFrame | Presence | PresenceSubscribe | Ping, Field(discriminator="type")
]
CLIENT_FRAME: TypeAdapter[Send | Read | TypingFrame | Presence | PresenceSubscribe | Ping] = (
    TypeAdapter(ClientFrame)
)
HELLO = TypeAdapter(Hello)
