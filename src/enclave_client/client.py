"""`EnclaveClient`: one async method per REST operation, typed results, typed errors."""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import AsyncIterator, Iterable
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx

from enclave_client import errors
from enclave_client.errors import ConnectionFailed, ProtocolError, ServerError, Unauthenticated
from enclave_client.models import (
    Channel,
    Conversation,
    ConversationKind,
    Member,
    MemberRole,
    Message,
    MessageVersion,
    Reaction,
    SentMessage,
    Terms,
    Thread,
    User,
    UserRole,
    Visibility,
    parse_list,
)
from enclave_client.stream import EventStream

_MAX_BACKOFF = 5.0

_Params = dict[str, str | int | bool | None]


def _seg(value: str) -> str:
    """One path segment, percent-encoded so an id or emoji can never change the path."""
    if not value:
        raise ValueError("an id or emoji must not be empty")
    encoded = quote(value, safe="")
    # "." and ".." would be resolved as relative paths by the URL machinery.
    return encoded.replace(".", "%2E") if encoded in (".", "..") else encoded


class EnclaveClient:
    """An async client for one Enclave server.

    Use it as `async with EnclaveClient("https://chat.example.com") as client:`. Pass
    `transport=httpx.ASGITransport(app=...)` to talk to an app in-process. `send_message`
    retries up to `max_retries` times on connection failures and 5xx answers, waiting
    about `retry_backoff * 2**n` seconds before retry n; no other method retries.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float | httpx.Timeout = 30.0,
        max_retries: int = 3,
        retry_backoff: float = 0.25,
    ) -> None:
        if max_retries < 0 or retry_backoff < 0:
            raise ValueError("max_retries and retry_backoff must not be negative")
        self._token = token
        self._base_url = base_url.rstrip("/")
        self._max_retries = max_retries
        self._retry_backoff = retry_backoff
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/api/v1",
            transport=transport,
            timeout=timeout,
            headers={"User-Agent": "enclave-client"},
        )

    @property
    def token(self) -> str | None:
        """The bearer token in use: given to the constructor or stored by `login`."""
        return self._token

    def events(self, cursors: dict[str, int] | None = None) -> EventStream:
        """The live event stream of this session (use with `async with`), resuming from
        `cursors` if given (see `EventStream`)."""
        if self._token is None:
            raise Unauthenticated("unauthenticated", "log in first", None)
        return EventStream(self._base_url, self._token, cursors=cursors)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    # -- transport ----------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: _Params | None = None,
    ) -> httpx.Response:
        """Send one request; a non-2xx answer or a broken connection raises."""
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            resp = await self._http.request(
                method, path, json=body, params=query or None, headers=headers
            )
        except httpx.TransportError as exc:
            raise ConnectionFailed(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        if not resp.is_success:
            raise errors.from_response(resp.status_code, resp.content, resp.headers)
        return resp

    async def _json(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: _Params | None = None,
    ) -> object:
        return _decode(await self._call(method, path, body=body, params=params))

    def _backoff(self, attempt: int) -> float:
        # Jitter spreads out clients that all lost the server at the same moment.
        jitter = 0.5 + random.random() / 2  # noqa: S311 - timing only, not security
        return min(self._retry_backoff * 2.0**attempt, _MAX_BACKOFF) * jitter

    # -- session ------------------------------------------------------------------------------

    async def login(
        self,
        username: str,
        password: str,
        *,
        otp: str | None = None,
        recovery_code: str | None = None,
    ) -> User:
        """Log in; the token is stored and sent with every later request.

        An account with MFA needs `otp`, the current code of its authenticator app, or one of
        its one-time `recovery_code`s; without either, `MfaRequired` is raised once the password
        is known to be right (ask for the code, then call again). A wrong code raises
        `InvalidCredentials`, like a wrong password."""
        body: dict[str, str] = {"username": username, "password": password}
        if otp is not None:
            body["otp"] = otp
        if recovery_code is not None:
            body["recovery_code"] = recovery_code
        data = _object(await self._json("POST", "/auth/login", body=body))
        token = data.get("token")
        if not isinstance(token, str):
            raise ProtocolError("login response has no token")
        user = User.from_json(data.get("user"))
        self._token = token
        return user

    async def logout(self) -> None:
        """End this session. A token that no longer works counts as logged out already."""
        with contextlib.suppress(Unauthenticated):
            await self._call("POST", "/auth/logout")
        self._token = None

    async def me(self) -> User:
        """The logged-in user (works even while a password change is required)."""
        return User.from_json(await self._json("GET", "/users/me"))

    async def change_password(self, current: str, new: str) -> None:
        """Change your password; your other sessions are signed out, this one stays."""
        await self._call(
            "POST",
            "/users/me/password",
            body={"current_password": current, "new_password": new},
        )

    async def terms(self) -> Terms:
        """Your organization's current terms of use and whether you accepted them (readable
        before accepting them)."""
        return Terms.from_json(await self._json("GET", "/org/terms"))

    async def accept_terms(self, version: str) -> Terms:
        """Accept the current terms; `version` must be the one you were shown (else `Conflict`
        `terms_outdated`: read them again). Event streams closed for want of it may reconnect."""
        body = {"version": version}
        return Terms.from_json(await self._json("POST", "/users/me/terms/accept", body=body))

    # -- users --------------------------------------------------------------------------------

    async def create_user(
        self,
        username: str,
        password: str,
        *,
        display_name: str = "",
        role: UserRole = "member",
    ) -> User:
        """Create an account (admins and owners)."""
        body = {
            "username": username,
            "password": password,
            "display_name": display_name,
            "role": role,
        }
        return User.from_json(await self._json("POST", "/users", body=body))

    async def list_users(
        self, *, after: str = "", limit: int = 100, include_inactive: bool = False
    ) -> list[User]:
        """People by username; for the next page pass `after` = the last username."""
        params: _Params = {
            "after": after or None,
            "limit": limit,
            "include_inactive": include_inactive,
        }
        return parse_list(await self._json("GET", "/users", params=params), "users", User.from_json)

    async def get_user(self, user_id: str) -> User:
        return User.from_json(await self._json("GET", f"/users/{_seg(user_id)}"))

    async def deactivate_user(self, user_id: str) -> User:
        """Deactivate an account and sign it out everywhere (admins and owners)."""
        return User.from_json(await self._json("POST", f"/users/{_seg(user_id)}/deactivate"))

    async def activate_user(self, user_id: str) -> User:
        return User.from_json(await self._json("POST", f"/users/{_seg(user_id)}/activate"))

    # -- conversations ------------------------------------------------------------------------

    async def create_conversation(
        self,
        kind: ConversationKind,
        members: Iterable[str],
        *,
        name: str | None = None,
        topic: str = "",
        visibility: Visibility | None = None,
    ) -> Conversation:
        """Create a DM, group or channel; asking for an existing DM returns that DM."""
        body = {
            "kind": kind,
            "members": list(members),
            "name": name,
            "topic": topic,
            "visibility": visibility,
        }
        return Conversation.from_json(await self._json("POST", "/conversations", body=body))

    async def list_conversations(self) -> list[Conversation]:
        """Your conversations, most recently active first."""
        data = await self._json("GET", "/conversations")
        return parse_list(data, "conversations", Conversation.from_json)

    async def get_conversation(self, conversation_id: str) -> Conversation:
        return Conversation.from_json(
            await self._json("GET", f"/conversations/{_seg(conversation_id)}")
        )

    async def update_conversation(
        self, conversation_id: str, *, name: str | None = None, topic: str | None = None
    ) -> Conversation:
        """Rename or set the topic; a field left as None is unchanged."""
        path = f"/conversations/{_seg(conversation_id)}"
        body = {"name": name, "topic": topic}
        return Conversation.from_json(await self._json("PATCH", path, body=body))

    async def archive(self, conversation_id: str) -> Conversation:
        """Make the conversation read-only."""
        path = f"/conversations/{_seg(conversation_id)}/archive"
        return Conversation.from_json(await self._json("POST", path))

    async def unarchive(self, conversation_id: str) -> Conversation:
        path = f"/conversations/{_seg(conversation_id)}/unarchive"
        return Conversation.from_json(await self._json("POST", path))

    async def browse_channels(self, *, after: str = "", limit: int = 100) -> list[Channel]:
        """Public channels by name; for the next page pass `after` = the last name."""
        params: _Params = {"after": after or None, "limit": limit}
        data = await self._json("GET", "/channels", params=params)
        return parse_list(data, "channels", Channel.from_json)

    async def join(self, conversation_id: str) -> Conversation:
        """Join a public channel (joining one you are in changes nothing)."""
        path = f"/conversations/{_seg(conversation_id)}/join"
        return Conversation.from_json(await self._json("POST", path))

    async def leave(self, conversation_id: str) -> None:
        await self._call("POST", f"/conversations/{_seg(conversation_id)}/leave")

    async def members(
        self, conversation_id: str, *, after: str = "", limit: int = 200
    ) -> list[Member]:
        """Members by user id; for the next page pass `after` = the last user id."""
        path = f"/conversations/{_seg(conversation_id)}/members"
        params: _Params = {"after": after or None, "limit": limit}
        return parse_list(await self._json("GET", path, params=params), "members", Member.from_json)

    async def add_members(self, conversation_id: str, user_ids: Iterable[str]) -> list[Member]:
        """Add people; returns only those who were not members before."""
        path = f"/conversations/{_seg(conversation_id)}/members"
        data = await self._json("POST", path, body={"user_ids": list(user_ids)})
        return parse_list(data, "members", Member.from_json)

    async def remove_member(self, conversation_id: str, user_id: str) -> None:
        await self._call(
            "DELETE", f"/conversations/{_seg(conversation_id)}/members/{_seg(user_id)}"
        )

    async def set_member_role(self, conversation_id: str, user_id: str, role: MemberRole) -> Member:
        path = f"/conversations/{_seg(conversation_id)}/members/{_seg(user_id)}"
        return Member.from_json(await self._json("PATCH", path, body={"role": role}))

    async def mark_read(self, conversation_id: str, seq: int) -> int:
        """Move your read marker forward to `seq`; returns the marker now stored."""
        path = f"/conversations/{_seg(conversation_id)}/read"
        data = _object(await self._json("POST", path, body={"seq": seq}))
        marker = data.get("last_read_seq")
        if not isinstance(marker, int) or isinstance(marker, bool):
            raise ProtocolError("read response has no last_read_seq")
        return marker

    # -- messages -----------------------------------------------------------------------------

    async def send_message(
        self,
        conversation_id: str,
        text: str,
        *,
        client_msg_id: str | None = None,
        thread_root_id: str | None = None,
    ) -> SentMessage:
        """Send a message, retrying with the same `client_msg_id` so it is stored only once.

        Without `client_msg_id` a fresh one is generated; pass your own to make retries of
        your own (for example after a restart) idempotent too.
        """
        generated = client_msg_id is None
        cmid = uuid.uuid4().hex if client_msg_id is None else client_msg_id
        path = f"/conversations/{_seg(conversation_id)}/messages"
        body = {"client_msg_id": cmid, "text": text, "thread_root_id": thread_root_id}
        attempt = 0
        while True:
            try:
                resp = await self._call("POST", path, body=body)
            except (ConnectionFailed, ServerError):
                if attempt >= self._max_retries:
                    raise
                await asyncio.sleep(self._backoff(attempt))
                attempt += 1
                continue
            message = Message.from_json(_decode(resp))
            # 200 means the server knew this id; a generated id can only be known from an
            # earlier attempt of this very call, whose answer was lost.
            created = resp.status_code == 201 or (generated and attempt > 0)
            return SentMessage(message=message, created=created)

    async def messages(
        self,
        conversation_id: str,
        *,
        after_seq: int | None = None,
        before_seq: int | None = None,
        limit: int = 50,
        include_replies: bool = True,
    ) -> list[Message]:
        """A page of history in ascending `seq`: the first `limit` after `after_seq`, else the
        last `limit` before `before_seq` (or the newest)."""
        path = f"/conversations/{_seg(conversation_id)}/messages"
        params: _Params = {
            "after_seq": after_seq,
            "before_seq": before_seq,
            "limit": limit,
            "include_replies": include_replies,
        }
        data = await self._json("GET", path, params=params)
        return parse_list(data, "messages", Message.from_json)

    async def iter_messages(
        self,
        conversation_id: str,
        *,
        after_seq: int = 0,
        page_size: int = 200,
        include_replies: bool = True,
    ) -> AsyncIterator[Message]:
        """Every message after `after_seq` in ascending `seq`, fetched `page_size` at a time."""
        cursor = after_seq
        while True:
            page = await self.messages(
                conversation_id,
                after_seq=cursor,
                limit=page_size,
                include_replies=include_replies,
            )
            # The server may cap a page below page_size, so only an empty page ends history.
            if not page:
                return
            for message in page:
                yield message
            cursor = page[-1].seq

    async def get_message(self, message_id: str) -> Message:
        return Message.from_json(await self._json("GET", f"/messages/{_seg(message_id)}"))

    async def edit_message(self, message_id: str, text: str) -> Message:
        """Replace the text of your own message; the old text is kept as a version."""
        path = f"/messages/{_seg(message_id)}"
        return Message.from_json(await self._json("PATCH", path, body={"text": text}))

    async def recall_message(self, message_id: str) -> Message:
        """Recall a message (yours, or any as a moderator of a group or channel)."""
        return Message.from_json(await self._json("DELETE", f"/messages/{_seg(message_id)}"))

    async def message_versions(self, message_id: str) -> list[MessageVersion]:
        """Earlier texts of an edited message, oldest first."""
        data = await self._json("GET", f"/messages/{_seg(message_id)}/versions")
        return parse_list(data, "versions", MessageVersion.from_json)

    async def thread(self, root_id: str, *, after_seq: int = 0, limit: int = 100) -> Thread:
        """A thread's root and its replies after `after_seq` in ascending `seq`."""
        path = f"/messages/{_seg(root_id)}/thread"
        params: _Params = {"after_seq": after_seq, "limit": limit}
        return Thread.from_json(await self._json("GET", path, params=params))

    async def reactions(self, message_id: str) -> list[Reaction]:
        data = await self._json("GET", f"/messages/{_seg(message_id)}/reactions")
        return parse_list(data, "reactions", Reaction.from_json)

    async def add_reaction(self, message_id: str, emoji: str) -> list[Reaction]:
        """React (reacting twice changes nothing); returns the message's reactions."""
        path = f"/messages/{_seg(message_id)}/reactions/{_seg(emoji)}"
        return parse_list(await self._json("PUT", path), "reactions", Reaction.from_json)

    async def remove_reaction(self, message_id: str, emoji: str) -> list[Reaction]:
        """Take back your reaction; returns the message's reactions."""
        path = f"/messages/{_seg(message_id)}/reactions/{_seg(emoji)}"
        return parse_list(await self._json("DELETE", path), "reactions", Reaction.from_json)


def _decode(resp: httpx.Response) -> object:
    try:
        data: object = resp.json()
    except ValueError as exc:
        raise ProtocolError("the response body is not JSON", resp.status_code) from exc
    return data


def _object(data: object) -> dict[str, object]:
    if not isinstance(data, dict):
        raise ProtocolError("the response is not a JSON object")
    return data
