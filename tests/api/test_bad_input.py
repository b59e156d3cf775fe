"""Bad input gets a clear 4xx with a stable code, never a 5xx, and nothing is half-written.

Every refused request below is checked the same way (`refused`): the exact status, the JSON
error shape, a code listed in ERROR_CODES, and, after anything but a GET, a view of the
organization (history, versions, reactions, conversations, members, users, channels) that is
unchanged since the test began.

Paths and bodies are templates: `{conv}` (a group of the owner and bob with one message),
`{channel}` (a public channel), `{msg}` (that message), `{bob}` (bob's user id), `{unknown}`
(a well-formed id that names nothing) and, in the control-character tables, `{x}`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from enclave.app import create_app
from enclave.domain.errors import ERROR_CODES
from enclave.domain.ids import new_id
from tests.conftest import TEST_PASSWORD, Person, World

C = "/api/v1/conversations"
M = "/api/v1/messages"
U = "/api/v1/users"
UNKNOWN = new_id()
JSON = {"content-type": "application/json"}


@dataclass
class Scene:
    """What each test starts from; `baseline` is the state before its first bad write."""

    owner: Person
    bob: Person
    conv: str
    channel: str
    msg: str
    baseline: list[Any] | None = None

    def fill(self, template: str) -> str:
        ids = {"conv": self.conv, "channel": self.channel, "msg": self.msg, "bob": self.bob.id}
        for name, value in {**ids, "unknown": UNKNOWN}.items():
            template = template.replace("{" + name + "}", value)
        return template

    def body(self, template: Any, x: str = "") -> bytes:
        """A JSON body from a template; `{x}` becomes `x`, escaped as JSON escapes it."""
        text = json.dumps(template).replace("{x}", json.dumps(x)[1:-1])
        return self.fill(text).encode()


@pytest.fixture
async def scene(world: World, client: httpx.AsyncClient) -> AsyncIterator[Scene]:
    owner = await world.owner()
    h = owner.headers
    # bob never logs in here (that costs a password hash); tests that need his token log in.
    made = await client.post(U, json={"username": "bob", "password": TEST_PASSWORD}, headers=h)
    assert made.status_code == 201, made.text
    bob = Person(made.json()["id"], "bob", token="")
    group = await client.post(C, json={"kind": "group", "members": [bob.id]}, headers=h)
    channel = await client.post(C, json={"kind": "channel", "name": "general"}, headers=h)
    assert group.status_code == channel.status_code == 201, (group.text, channel.text)
    conv = group.json()["id"]
    sent = await client.post(
        f"{C}/{conv}/messages", json={"client_msg_id": "first", "text": "hello"}, headers=h
    )
    assert sent.status_code == 201, sent.text
    yield Scene(owner, bob, conv, channel.json()["id"], sent.json()["id"])
    # The one write `_state` cannot see: no refused request changed the owner's password.
    await world.login(owner.username, TEST_PASSWORD)


async def _state(client: httpx.AsyncClient, s: Scene) -> list[Any]:
    """Everything a refused request could have half-written, as the owner sees it."""
    views = [
        f"{C}/{s.conv}/messages",
        f"{M}/{s.msg}/versions",
        f"{M}/{s.msg}/reactions",
        C,
        f"{C}/{s.conv}/members",
        f"{U}?include_inactive=true",
        "/api/v1/departments",
        "/api/v1/channels",
    ]
    found = []
    for path in views:
        resp = await client.get(path, headers=s.owner.headers)
        assert resp.status_code == 200, (path, resp.text)
        found.append(resp.json())
    return found


async def refused(
    client: httpx.AsyncClient,
    s: Scene,
    method: str,
    path: str,
    status: int,
    code: str,
    *,
    auth: bool = True,
    note: str = "",
    check_state: bool = True,
    **kwargs: Any,
) -> httpx.Response:
    """Send one bad request; it must fail with exactly `status` and `code`, and write nothing.

    The state is compared after every method but GET (a GET writes nothing by contract, and
    skipping it keeps the suite fast). A caller sending hundreds of requests may pass
    `check_state=False` and call `assert_state_unchanged` after a batch instead.
    """
    headers = {**(s.owner.headers if auth else {}), **kwargs.pop("headers", {})}
    writes = method != "GET" and check_state
    if writes and s.baseline is None:
        s.baseline = await _state(client, s)
    resp = await client.request(method, s.fill(path), headers=headers, **kwargs)
    where = f"{method} {path} {note} -> {resp.status_code} {resp.text[:300]}"
    assert resp.status_code == status, where
    assert resp.headers["content-type"] == "application/json", where
    body = resp.json()
    assert set(body) == {"error"}, where
    assert {"code", "message"} <= set(body["error"]), where
    assert body["error"]["code"] == code, where
    assert code in ERROR_CODES, where
    if writes:
        assert await _state(client, s) == s.baseline, f"{where}: state changed"
    return resp


async def assert_state_unchanged(client: httpx.AsyncClient, s: Scene, where: str) -> None:
    """The first call takes the baseline; later ones compare with it."""
    if s.baseline is None:
        s.baseline = await _state(client, s)
        return
    assert await _state(client, s) == s.baseline, f"{where}: state changed"


# -- malformed, mistyped and mislabelled bodies ------------------------------------------------

# Every endpoint that reads a JSON body, with a valid body for it.
BODY_ENDPOINTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "login": ("POST", "/api/v1/auth/login", {"username": "admin", "password": TEST_PASSWORD}),
    "password": (
        "POST",
        f"{U}/me/password",
        {"current_password": TEST_PASSWORD, "new_password": "another long passphrase"},
    ),
    "create-user": ("POST", U, {"username": "dave", "password": TEST_PASSWORD}),
    "create-conv": ("POST", C, {"kind": "channel", "name": "random"}),
    "update-conv": ("PATCH", C + "/{conv}", {"topic": "new topic"}),
    "create-dept": ("POST", "/api/v1/departments", {"name": "Ops"}),
    "update-dept": ("PATCH", "/api/v1/departments/{unknown}", {"name": "Ops"}),
    "user-role": ("PUT", U + "/{bob}/role", {"role": "member"}),
    "user-dept": ("PUT", U + "/{bob}/department", {"department_id": None}),
    "add-members": ("POST", C + "/{channel}/members", {"user_ids": ["{bob}"]}),
    "member-role": ("PATCH", C + "/{conv}/members/{bob}", {"role": "moderator"}),
    "read": ("POST", C + "/{conv}/read", {"seq": 1}),
    "send": ("POST", C + "/{conv}/messages", {"client_msg_id": "c2", "text": "hi"}),
    "edit": ("PATCH", M + "/{msg}", {"text": "edited"}),
    "mfa-confirm": ("POST", f"{U}/me/mfa/totp/confirm", {"code": "123456"}),
    "mfa-codes": ("POST", f"{U}/me/mfa/recovery-codes", {"code": "123456"}),
    "mfa-disable": ("DELETE", f"{U}/me/mfa", {"password": TEST_PASSWORD, "code": "123456"}),
    "org-settings": ("PATCH", "/api/v1/org/settings", {"require_mfa": False}),
    "export": ("POST", "/api/v1/compliance/exports", {"people": ["{bob}"]}),
    "terms": ("PUT", "/api/v1/org/terms", {"version": "v1", "text": "Be kind."}),
    "terms-accept": ("POST", f"{U}/me/terms/accept", {"version": "v1"}),
    "retention": ("PUT", "/api/v1/org/retention", {"default_days": 30}),
    "conv-retention": ("PUT", C + "/{conv}/retention", {"mode": "days", "days": 30}),
    "hold": (
        "POST",
        "/api/v1/compliance/holds",
        {"kind": "person", "target_id": "{bob}", "reason": "case"},
    ),
    "hold-release": ("POST", "/api/v1/compliance/holds/{unknown}/release", {"reason": "done"}),
}

MALFORMED_JSON = {
    "unclosed": b"{",
    "trailing-comma": b'{"text": "hi",}',
    "single-quotes": b"{'text': 'hi'}",
    "trailing-data": b'{"text": "hi"} more',
    "nul": b"\x00",
    "not-utf8": b'{"text": "\xff\xfe"}',
    "too-deep": b"[" * 50_000,  # deeper than the parser's recursion limit
    "huge-number": b'{"seq": ' + b"9" * 5000 + b"}",  # beyond Python's int-parsing limit
}


async def test_malformed_json_is_invalid_json(client: httpx.AsyncClient, scene: Scene) -> None:
    await assert_state_unchanged(client, scene, "before")
    for name, raw in MALFORMED_JSON.items():
        for method, path, _ in BODY_ENDPOINTS.values():
            await refused(
                client,
                scene,
                method,
                path,
                400,
                "invalid_json",
                note=name,
                content=raw,
                headers=JSON,
                check_state=False,  # once per kind of malformed body, below
            )
        await assert_state_unchanged(client, scene, f"every endpoint with {name} JSON")


# Wrong types, missing fields and extra fields, per endpoint; all are `validation_error`.
WRONG_SHAPES: dict[str, list[Any]] = {
    "login": [
        {},
        {"username": "admin"},
        {"username": 1, "password": "x"},
        {"username": ["admin"], "password": "x"},
        {"username": "admin", "password": "x", "otp": 123456},
        {"username": "admin", "password": "x", "recovery_code": ["a"]},
        {"username": "admin", "password": "x", "totp": "123456"},
    ],
    "password": [
        {"current_password": TEST_PASSWORD},
        {"current_password": TEST_PASSWORD, "new_password": 12345678901234},
        {"current_password": TEST_PASSWORD, "new_password": "a long passphrase", "x": 1},
    ],
    "create-user": [
        {"username": "dave"},
        {"password": TEST_PASSWORD},
        {"username": "dave", "password": TEST_PASSWORD, "role": "god"},
        {"username": "dave", "password": TEST_PASSWORD, "display_name": None},
        {"username": "dave", "password": TEST_PASSWORD, "is_admin": True},
    ],
    "create-conv": [
        {},
        {"kind": "room"},
        {"kind": "group", "members": "{bob}"},
        {"kind": "group", "members": [1]},
        {"kind": "channel", "name": 5},
        {"kind": "channel", "name": "x", "visibility": "secret"},
        {"kind": "channel", "name": "x", "archived": True},
    ],
    "update-conv": [{"name": 1}, {"topic": ["a"]}, {"archived": True}],
    "create-dept": [{}, {"name": 1}, {"name": "x", "parent_id": 5}, {"name": "x", "admins": []}],
    "update-dept": [{"name": 1}, {"parent_id": 1}, {"name": "x", "admin_ids": []}],
    "user-role": [{}, {"role": "god"}, {"role": None}, {"role": "member", "x": 1}],
    "user-dept": [{}, {"department_id": 5}, {"department_id": None, "x": 1}],
    "add-members": [
        {},
        {"user_ids": []},
        {"user_ids": "{bob}"},
        {"user_ids": [None]},
        {"user_ids": ["{bob}"], "role": "owner"},
    ],
    "member-role": [{}, {"role": "admin"}, {"role": None}, {"role": "member", "x": 1}],
    "read": [{}, {"seq": "1"}, {"seq": -1}, {"seq": 1.5}, {"seq": True}, {"seq": 2**63}],
    "send": [
        {"text": "hi"},
        {"client_msg_id": "c2"},
        {"client_msg_id": 2, "text": "hi"},
        {"client_msg_id": "c2", "text": ["hi"]},
        {"client_msg_id": "c2", "text": "hi", "thread_root_id": 5},
        {"client_msg_id": "c2", "text": "hi", "pinned": True},
    ],
    "edit": [{}, {"text": None}, {"text": 1}, {"text": "x", "client_msg_id": "c2"}],
    "mfa-confirm": [{}, {"code": None}, {"code": 123456}, {"code": ""}, {"code": "1", "x": 1}],
    "mfa-codes": [{}, {"code": ["123456"]}, {"code": ""}, {"otp": "123456"}],
    "mfa-disable": [
        {"code": "123456"},
        {"password": TEST_PASSWORD},
        {"password": 1, "code": "123456"},
        {"password": TEST_PASSWORD, "code": "123456", "x": 1},
    ],
    "org-settings": [
        {"require_mfa": "yes"},
        {"require_mfa": 1},
        {"name": "x"},
        {"erasure_mode": "shred"},
        {"erasure_mode": None, "x": 1},
    ],
    "export": [
        {"people": "{bob}"},
        {"people": [1]},
        {"conversations": ["{conv}"], "since": "2026-01-01"},
        {"since": -1},
        {"until": 1.5},
        {"query": "everything"},
    ],
    "terms": [
        {"version": "v1"},
        {"text": "Be kind."},
        {"version": "", "text": "Be kind."},
        {"version": "v 1", "text": "Be kind."},
        {"version": "-v1", "text": "Be kind."},
        {"version": 1, "text": "Be kind."},
        {"version": "v1", "text": ""},
        {"version": "v1", "text": "Be kind.", "accepted": True},
    ],
    "terms-accept": [{}, {"version": 1}, {"version": ""}, {"version": "v1", "x": 1}],
    "retention": [
        {},
        {"default_days": "30"},
        {"default_days": 30.5},
        {"default_days": 0},
        {"default_days": 30, "x": 1},
    ],
    "conv-retention": [
        {},
        {"mode": "weekly"},
        {"mode": "days", "days": "7"},
        {"mode": "days", "days": 36501},
        {"mode": "forever", "x": 1},
    ],
    "hold": [
        {},
        {"kind": "person", "target_id": "{bob}"},
        {"kind": "department", "target_id": "{bob}", "reason": "case"},
        {"kind": "person", "target_id": 5, "reason": "case"},
        {"kind": "person", "target_id": "{bob}", "reason": ""},
        {"kind": "person", "target_id": "{bob}", "reason": "case", "x": 1},
    ],
    "hold-release": [{}, {"reason": ""}, {"reason": 1}, {"reason": "done", "x": 1}],
}
# Valid JSON that is not an object fails the same way everywhere.
NOT_OBJECTS: list[Any] = [[], "text", 1, None, True]


@pytest.mark.parametrize("endpoint", BODY_ENDPOINTS)
async def test_wrong_types_missing_and_extra_fields(
    client: httpx.AsyncClient, scene: Scene, endpoint: str
) -> None:
    method, path, _ = BODY_ENDPOINTS[endpoint]
    for body in [*WRONG_SHAPES[endpoint], *NOT_OBJECTS]:
        resp = await refused(
            client,
            scene,
            method,
            path,
            422,
            "validation_error",
            note=repr(body),
            content=scene.body(body),
            headers=JSON,
        )
        assert resp.json()["error"]["details"], resp.text  # names the field


async def test_empty_body_is_a_validation_error(client: httpx.AsyncClient, scene: Scene) -> None:
    for method, path, _ in BODY_ENDPOINTS.values():
        await refused(
            client, scene, method, path, 422, "validation_error", content=b"", headers=JSON
        )


NOT_JSON_TYPES = [
    None,  # FastAPI parses no body without a Content-Type: it guards against form-like CSRF
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/xml",
    "application/jsonp",
]


async def test_non_json_content_type_is_unsupported(
    client: httpx.AsyncClient, scene: Scene
) -> None:
    await assert_state_unchanged(client, scene, "before")
    for content_type in NOT_JSON_TYPES:
        for method, path, body in BODY_ENDPOINTS.values():
            await refused(
                client,
                scene,
                method,
                path,
                415,
                "unsupported_media_type",
                note=repr(content_type),
                content=scene.body(body),
                headers={"content-type": content_type} if content_type else {},
                check_state=False,  # once per content type, below
            )
        await assert_state_unchanged(client, scene, f"every endpoint as {content_type!r}")


async def test_json_content_types_are_accepted(client: httpx.AsyncClient, scene: Scene) -> None:
    types = ["application/json; charset=utf-8", "APPLICATION/JSON", "application/merge-patch+json"]
    for i, content_type in enumerate(types):
        resp = await client.post(
            scene.fill(C + "/{conv}/messages"),
            content=scene.body({"client_msg_id": f"ct{i}", "text": "typed"}),
            headers={**scene.owner.headers, "content-type": content_type},
        )
        assert resp.status_code == 201, (content_type, resp.text)


# -- sizes -------------------------------------------------------------------------------------

# Over a rule of the service (its own code) and over the schema's hard ceiling (validation_error).
OVERSIZE: list[tuple[str, str, Any, int, str]] = [
    (
        "POST",
        C + "/{conv}/messages",
        {"client_msg_id": "big", "text": "a" * 100_001},
        422,
        "validation_error",
    ),
    (
        "POST",
        C + "/{conv}/messages",
        {"client_msg_id": "c" * 65, "text": "hi"},
        422,
        "validation_error",
    ),
    ("POST", C, {"kind": "channel", "name": "a" * 81}, 422, "invalid_text"),
    ("POST", C, {"kind": "channel", "name": "a" * 201}, 422, "validation_error"),
    ("PATCH", C + "/{conv}", {"topic": "a" * 251}, 422, "invalid_text"),
    ("PATCH", C + "/{conv}", {"topic": "a" * 1001}, 422, "validation_error"),
    ("POST", U, {"username": "a" * 33, "password": TEST_PASSWORD}, 422, "invalid_username"),
    ("POST", U, {"username": "a" * 65, "password": TEST_PASSWORD}, 422, "validation_error"),
    ("POST", U, {"username": "dave", "password": "a" * 1025}, 422, "validation_error"),
    (
        "POST",
        U,
        {"username": "dave", "password": TEST_PASSWORD, "display_name": "a" * 101},
        422,
        "invalid_text",
    ),
    ("POST", C, {"kind": "group", "members": [UNKNOWN] * 1001}, 422, "validation_error"),
    ("POST", C + "/{channel}/members", {"user_ids": [UNKNOWN] * 1001}, 422, "validation_error"),
    ("PUT", M + "/{msg}/reactions/" + "a" * 65, None, 422, "validation_error"),
    ("POST", U + "/me/mfa/totp/confirm", {"code": "1" * 65}, 422, "validation_error"),
    ("POST", U + "/me/mfa/recovery-codes", {"code": "a" * 65}, 422, "validation_error"),
    (
        "DELETE",
        U + "/me/mfa",
        {"password": TEST_PASSWORD, "code": "1" * 65},
        422,
        "validation_error",
    ),
    (
        "POST",
        "/api/v1/auth/login",
        {"username": "admin", "password": "x", "otp": "1" * 65},
        422,
        "validation_error",
    ),
    (
        "POST",
        "/api/v1/auth/login",
        {"username": "admin", "password": "x", "recovery_code": "a" * 65},
        422,
        "validation_error",
    ),
    # Well-formed but without an enrolment: a conflict, nothing written.
    ("POST", U + "/me/mfa/totp/confirm", {"code": "123456"}, 409, "mfa_not_enrolled"),
    ("POST", U + "/{unknown}/sessions/revoke", None, 404, "not_found"),
    ("POST", U + "/" + "a" * 65 + "/sessions/revoke", None, 422, "validation_error"),
    # Departments, roles and where people belong.
    ("POST", "/api/v1/departments", {"name": "a" * 81}, 422, "invalid_text"),
    ("POST", "/api/v1/departments", {"name": "a" * 201}, 422, "validation_error"),
    ("POST", "/api/v1/departments", {"name": " "}, 422, "invalid_text"),
    ("POST", "/api/v1/departments", {"name": "x", "parent_id": "a" * 65}, 422, "validation_error"),
    ("POST", "/api/v1/departments", {"name": "x", "parent_id": "{unknown}"}, 404, "not_found"),
    ("PATCH", "/api/v1/departments/" + "a" * 65, {"name": "x"}, 422, "validation_error"),
    ("PUT", U + "/{bob}/department", {"department_id": "a" * 65}, 422, "validation_error"),
    ("PUT", U + "/" + "a" * 65 + "/role", {"role": "member"}, 422, "validation_error"),
    ("PUT", U + "/{bob}/role", {"role": "admin "}, 422, "validation_error"),
    # Compliance: exports, erasure, terms of use.
    ("POST", "/api/v1/compliance/exports", {"people": [UNKNOWN] * 101}, 422, "validation_error"),
    (
        "POST",
        "/api/v1/compliance/exports",
        {"conversations": [UNKNOWN] * 1001},
        422,
        "validation_error",
    ),
    ("POST", "/api/v1/compliance/exports", {"people": ["a" * 65]}, 422, "validation_error"),
    ("POST", "/api/v1/compliance/exports", {"people": ["alice"]}, 404, "not_found"),
    ("POST", "/api/v1/compliance/exports", {"since": 5, "until": 5}, 422, "invalid_filter"),
    ("POST", "/api/v1/compliance/exports", {"people": [UNKNOWN]}, 404, "not_found"),
    ("POST", "/api/v1/compliance/exports", {"conversations": [UNKNOWN]}, 404, "not_found"),
    ("GET", "/api/v1/compliance/exports/{unknown}", None, 404, "not_found"),
    ("GET", "/api/v1/compliance/exports/" + "a" * 65, None, 422, "validation_error"),
    ("GET", "/api/v1/compliance/exports/{unknown}/download", None, 404, "not_found"),
    ("POST", U + "/{unknown}/erase", None, 404, "not_found"),
    ("POST", U + "/" + "a" * 65 + "/erase", None, 422, "validation_error"),
    ("PUT", "/api/v1/org/terms", {"version": "v1", "text": "a" * 50_001}, 422, "validation_error"),
    ("PUT", "/api/v1/org/terms", {"version": "v" * 33, "text": "x"}, 422, "validation_error"),
    ("PUT", "/api/v1/org/terms", {"version": "v1", "text": "a\x01b"}, 422, "invalid_text"),
    ("POST", U + "/me/terms/accept", {"version": "v1"}, 409, "terms_outdated"),
    ("POST", U + "/me/terms/accept", {"version": "v" * 65}, 422, "validation_error"),
    # Retention and legal holds.
    ("PUT", "/api/v1/org/retention", {"default_days": 36501}, 422, "validation_error"),
    ("PUT", C + "/{conv}/retention", {"mode": "days"}, 422, "invalid_retention"),
    ("PUT", C + "/{unknown}/retention", {"mode": "forever"}, 404, "not_found"),
    ("PUT", C + "/" + "a" * 65 + "/retention", {"mode": "forever"}, 422, "validation_error"),
    (
        "POST",
        "/api/v1/compliance/holds",
        {"kind": "person", "target_id": "{bob}", "reason": "a" * 501},
        422,
        "validation_error",
    ),
    (
        "POST",
        "/api/v1/compliance/holds",
        {"kind": "person", "target_id": "{bob}", "reason": "a\x01b"},
        422,
        "invalid_text",
    ),
    (
        "POST",
        "/api/v1/compliance/holds",
        {"kind": "conversation", "target_id": "{unknown}", "reason": "x"},
        404,
        "not_found",
    ),
    ("POST", "/api/v1/compliance/holds/{unknown}/release", {"reason": "x"}, 404, "not_found"),
    (
        "POST",
        "/api/v1/compliance/holds/" + "a" * 65 + "/release",
        {"reason": "x"},
        422,
        "validation_error",
    ),
]


async def test_oversized_fields(client: httpx.AsyncClient, world: World, scene: Scene) -> None:
    over = "a" * (world.ctx.config.limits.message_max_chars + 1)
    rows = [
        *OVERSIZE,
        (
            "POST",
            C + "/{conv}/messages",
            {"client_msg_id": "big", "text": over},
            422,
            "invalid_text",
        ),
        ("PATCH", M + "/{msg}", {"text": over}, 422, "invalid_text"),
    ]
    for method, path, body, status, code in rows:
        content = None if body is None else scene.body(body)
        await refused(
            client,
            scene,
            method,
            path,
            status,
            code,
            content=content,
            headers=JSON,
        )


def _over_limit(world: World, body: dict[str, Any]) -> bytes:
    return json.dumps({**body, "text": "a" * world.ctx.config.limits.max_body_bytes}).encode()


async def test_body_over_limit_by_content_length(
    client: httpx.AsyncClient, world: World, scene: Scene
) -> None:
    for method, path, body in BODY_ENDPOINTS.values():
        resp = await refused(
            client,
            scene,
            method,
            path,
            413,
            "payload_too_large",
            content=_over_limit(world, body),
            headers=JSON,
        )
        assert int(resp.request.headers["content-length"]) > world.ctx.config.limits.max_body_bytes


async def _chunks(raw: bytes, size: int = 16_384) -> AsyncIterator[bytes]:
    for i in range(0, len(raw), size):
        yield raw[i : i + size]


async def test_body_over_limit_while_streaming(
    client: httpx.AsyncClient, world: World, scene: Scene
) -> None:
    for method, path, body in BODY_ENDPOINTS.values():
        resp = await refused(
            client,
            scene,
            method,
            path,
            413,
            "payload_too_large",
            content=_chunks(_over_limit(world, body)),
            headers=JSON,
        )
        # Really streamed: no length was declared up front.
        assert "content-length" not in resp.request.headers
        assert resp.request.headers["transfer-encoding"] == "chunked"


async def test_body_at_the_limit_is_read(
    client: httpx.AsyncClient, world: World, scene: Scene
) -> None:
    """The limit is inclusive: a body of exactly `max_body_bytes` reaches validation."""
    limit = world.ctx.config.limits.max_body_bytes
    raw = b'{"client_msg_id": "pad", "text": "hi", "pad": ""}'
    raw = raw.replace(b'"pad": ""', b'"pad": "' + b"x" * (limit - len(raw)) + b'"')
    assert len(raw) == limit
    for content in (raw, _chunks(raw)):
        await refused(
            client,
            scene,
            "POST",
            C + "/{conv}/messages",
            422,
            "validation_error",
            content=content,
            headers=JSON,
        )


# -- control characters in every string field ----------------------------------------------------

# C0 and C1 controls and a separator; \x1f, \x85 and U+2028 are also whitespace to Python.
CONTROL = {
    "nul": "\x00",
    "esc": "\x1b",
    "unit-separator": "\x1f",
    "del": "\x7f",
    "next-line": "\x85",
    "line-separator": "\u2028",
}

CONTROL_IN_BODIES: list[tuple[str, str, Any, int, str]] = [
    ("POST", C + "/{conv}/messages", {"client_msg_id": "cc", "text": "a{x}b"}, 422, "invalid_text"),
    ("PATCH", M + "/{msg}", {"text": "a{x}"}, 422, "invalid_text"),
    ("POST", C, {"kind": "channel", "name": "ops{x}"}, 422, "invalid_text"),
    ("POST", C, {"kind": "channel", "name": "ops", "topic": "a{x}b"}, 422, "invalid_text"),
    ("POST", "/api/v1/departments", {"name": "ops{x}"}, 422, "invalid_text"),
    ("PUT", U + "/{bob}/department", {"department_id": "{x}{unknown}"}, 404, "not_found"),
    ("PATCH", C + "/{conv}", {"name": "n{x}"}, 422, "invalid_text"),
    ("PATCH", C + "/{conv}", {"topic": "{x}"}, 422, "invalid_text"),
    ("POST", U, {"username": "dave{x}", "password": TEST_PASSWORD}, 422, "invalid_username"),
    (
        "POST",
        U,
        {"username": "dave", "password": TEST_PASSWORD, "display_name": "D{x}"},
        422,
        "invalid_text",
    ),
    (
        "POST",
        C + "/{conv}/messages",
        {"client_msg_id": "c{x}", "text": "hi"},
        422,
        "validation_error",
    ),
    ("POST", C, {"kind": "group", "members": ["{bob}{x}"]}, 404, "not_found"),
    ("POST", C + "/{channel}/members", {"user_ids": ["{x}{bob}"]}, 404, "not_found"),
    (
        "POST",
        C + "/{conv}/messages",
        {"client_msg_id": "cc", "text": "hi", "thread_root_id": "{msg}{x}"},
        422,
        "invalid_thread_root",
    ),
]

CONTROL_IN_URLS: list[tuple[str, str, int, str]] = [
    ("PUT", M + "/{msg}/reactions/ok{x}", 422, "invalid_emoji"),
    ("DELETE", M + "/{msg}/reactions/{x}", 422, "invalid_emoji"),
    ("GET", C + "/{conv}{x}", 404, "not_found"),
    ("POST", C + "/{x}{conv}/join", 404, "not_found"),
    ("GET", M + "/{msg}{x}", 404, "not_found"),
    ("DELETE", M + "/{x}", 404, "not_found"),
    ("GET", U + "/{bob}{x}", 404, "not_found"),
    ("POST", U + "/{x}{bob}/deactivate", 404, "not_found"),
    ("DELETE", "/api/v1/departments/{x}{unknown}", 404, "not_found"),
    ("DELETE", C + "/{conv}/members/{bob}{x}", 404, "not_found"),
    ("GET", U + "?after=bob{x}", 422, "validation_error"),
    ("GET", "/api/v1/channels?after=gen{x}", 422, "validation_error"),
    ("GET", C + "/{conv}/members?after={x}", 422, "validation_error"),
]


@pytest.mark.parametrize("x", CONTROL.values(), ids=CONTROL)
async def test_control_characters_in_every_string_field(
    client: httpx.AsyncClient, scene: Scene, x: str
) -> None:
    for method, path, body, status, code in CONTROL_IN_BODIES:
        content = scene.body(body, x)
        await refused(client, scene, method, path, status, code, content=content, headers=JSON)
    for method, path, status, code in CONTROL_IN_URLS:
        await refused(client, scene, method, path.replace("{x}", quote(x)), status, code)
    if x.isspace():
        return  # login trims a name as Python trims whitespace; it only looks the name up
    # A login name with a control character is just a name nobody has.
    login = scene.body({"username": "admin{x}", "password": TEST_PASSWORD}, x)
    await refused(
        client,
        scene,
        "POST",
        "/api/v1/auth/login",
        401,
        "invalid_credentials",
        auth=False,
        content=login,
        headers=JSON,
    )


async def test_nul_in_passwords_and_user_agent(client: httpx.AsyncClient, scene: Scene) -> None:
    pw = TEST_PASSWORD
    cases: list[tuple[str, Any, int, str]] = [
        (U, {"username": "dave", "password": pw + "\x00"}, 422, "weak_password"),
        (
            U + "/me/password",
            {"current_password": pw, "new_password": pw + "\x00"},
            422,
            "weak_password",
        ),
        (
            "/api/v1/auth/login",
            {"username": "admin", "password": pw + "\x00"},
            401,
            "invalid_credentials",
        ),
    ]
    for path, body, status, code in cases:
        await refused(client, scene, "POST", path, status, code, json=body)
    # The User-Agent is stored with the session: control characters in it must not break login.
    resp = await client.post(
        "/api/v1/auth/login",
        json={"username": "bob", "password": pw},
        headers={"user-agent": b"evil\x00agent\x1b[31m\x85"},
    )
    assert resp.status_code == 200, resp.text


# -- ids, paging, methods ------------------------------------------------------------------------

UNKNOWN_IDS: list[tuple[str, str, Any]] = [
    ("GET", C + "/{unknown}", None),
    ("PATCH", C + "/{unknown}", {"topic": "t"}),
    ("POST", C + "/{unknown}/archive", None),
    ("POST", C + "/{unknown}/unarchive", None),
    ("POST", C + "/{unknown}/join", None),
    ("POST", C + "/{unknown}/leave", None),
    ("GET", C + "/{unknown}/members", None),
    ("POST", C + "/{unknown}/members", {"user_ids": ["{bob}"]}),
    ("DELETE", C + "/{conv}/members/{unknown}", None),
    ("PATCH", C + "/{conv}/members/{unknown}", {"role": "member"}),
    ("POST", C + "/{unknown}/read", {"seq": 1}),
    ("GET", C + "/{unknown}/messages", None),
    ("POST", C + "/{unknown}/messages", {"client_msg_id": "u", "text": "hi"}),
    ("GET", M + "/{unknown}", None),
    ("PATCH", M + "/{unknown}", {"text": "hi"}),
    ("DELETE", M + "/{unknown}", None),
    ("GET", M + "/{unknown}/versions", None),
    ("GET", M + "/{unknown}/thread", None),
    ("GET", M + "/{unknown}/reactions", None),
    ("PUT", M + "/{unknown}/reactions/👍", None),
    ("DELETE", M + "/{unknown}/reactions/👍", None),
    ("GET", U + "/{unknown}", None),
    ("POST", U + "/{unknown}/deactivate", None),
    ("POST", U + "/{unknown}/activate", None),
    ("PATCH", "/api/v1/departments/{unknown}", {"name": "x"}),
    ("DELETE", "/api/v1/departments/{unknown}", None),
    ("PUT", "/api/v1/departments/{unknown}/admins/{bob}", None),
    ("DELETE", "/api/v1/departments/{unknown}/admins/{bob}", None),
    ("PUT", U + "/{unknown}/role", {"role": "member"}),
    ("PUT", U + "/{unknown}/department", {"department_id": None}),
    ("PUT", U + "/{bob}/department", {"department_id": "{unknown}"}),
    ("POST", C, {"kind": "dm", "members": ["{unknown}"]}),
    ("POST", C + "/{channel}/members", {"user_ids": ["{bob}", "{unknown}"]}),
    ("GET", "/api/v1/no-such-endpoint", None),
]


async def test_unknown_ids_are_not_found(client: httpx.AsyncClient, scene: Scene) -> None:
    for method, path, body in UNKNOWN_IDS:
        content = None if body is None else scene.body(body)
        await refused(client, scene, method, path, 404, "not_found", content=content, headers=JSON)
    reply = {"client_msg_id": "u", "text": "hi", "thread_root_id": "{unknown}"}
    await refused(
        client,
        scene,
        "POST",
        C + "/{conv}/messages",
        422,
        "invalid_thread_root",
        content=scene.body(reply),
        headers=JSON,
    )


SEQ_PARAMS = [
    C + "/{conv}/messages?after_seq=",
    C + "/{conv}/messages?before_seq=",
    M + "/{msg}/thread?after_seq=",
]
LIMIT_PARAMS = [
    C + "/{conv}/messages?limit=",
    M + "/{msg}/thread?limit=",
    C + "/{conv}/members?limit=",
    U + "?limit=",
    "/api/v1/channels?limit=",
]
BAD_SEQS = ["-1", str(2**53 + 1), str(2**63), "1.5", "1e3", "ten", "", "0x10"]
BAD_LIMITS = ["0", "-1", "1001", str(10**9), str(2**63), "1.5", "ten", ""]


async def test_bad_paging_values(client: httpx.AsyncClient, scene: Scene) -> None:
    urls = [p + quote(v) for p in SEQ_PARAMS for v in BAD_SEQS]
    urls += [p + quote(v) for p in LIMIT_PARAMS for v in BAD_LIMITS]
    for url in urls:
        resp = await refused(client, scene, "GET", url, 422, "validation_error")
        assert resp.json()["error"]["details"], resp.text


async def test_extreme_valid_paging_values(client: httpx.AsyncClient, scene: Scene) -> None:
    h = scene.owner.headers
    page = scene.fill(C + "/{conv}/messages")
    beyond = await client.get(f"{page}?after_seq={2**53}&limit=1000", headers=h)
    assert beyond.status_code == 200, beyond.text
    assert beyond.json()["messages"] == []
    first = await client.get(f"{page}?after_seq=0&limit=1", headers=h)
    assert [m["text"] for m in first.json()["messages"]] == ["hello"]


WRONG_METHODS = [
    ("PUT", C),
    ("DELETE", U + "/me"),
    ("GET", "/api/v1/auth/login"),
    ("POST", M + "/{msg}"),
    ("PUT", C + "/{conv}/messages"),
    ("POST", M + "/{msg}/reactions/👍"),
    ("TRACE", "/api/v1/channels"),
    ("PATCH", "/healthz"),
]


async def test_wrong_method_is_method_not_allowed(client: httpx.AsyncClient, scene: Scene) -> None:
    for method, path in WRONG_METHODS:
        resp = await refused(client, scene, method, path, 405, "method_not_allowed")
        assert resp.headers["allow"], (method, path)


# -- credentials ---------------------------------------------------------------------------------

BAD_CREDENTIALS: dict[str, dict[str, str | bytes]] = {
    "none": {},
    "empty": {"Authorization": ""},
    "basic": {"Authorization": "Basic YWRtaW46cGFzc3dvcmQ="},
    "bearer-without-token": {"Authorization": "Bearer"},
    "garbage": {"Authorization": "Bearer not-a-token"},
    "forged": {"Authorization": "Bearer enc_" + "A" * 43},
    "huge": {"Authorization": "Bearer enc_" + "A" * 4000},
    "control": {"Authorization": b"Bearer enc_\x00\x1b\x7f\x85"},
}


async def test_every_operation_needs_a_valid_token(
    client: httpx.AsyncClient, world: World, scene: Scene
) -> None:
    # Building the document takes about a second of CPU: off the event loop, as a server would.
    doc = await asyncio.to_thread(lambda: create_app(world.ctx).openapi())
    ops = [
        (method.upper(), path)
        for path, methods in doc["paths"].items()
        for method, op in methods.items()
        if op.get("security")
    ]
    assert len(ops) > 25  # the document really lists the API
    ids = {
        "conv_id": scene.conv,
        "message_id": scene.msg,
        "user_id": scene.bob.id,
        "emoji": "👍",
        "session_id": "0" * 24,
        "export_id": UNKNOWN,
        "hold_id": UNKNOWN,
        "dept_id": UNKNOWN,
        "job_id": UNKNOWN,
    }
    await assert_state_unchanged(client, scene, "before")
    for name, credentials in BAD_CREDENTIALS.items():
        for method, path in ops:
            await refused(
                client,
                scene,
                method,
                path.format(**ids),
                401,
                "unauthenticated",
                auth=False,
                note=name,
                headers=credentials,
                check_state=False,  # once per kind of credential, below: 8 x 70 requests
            )
        await assert_state_unchanged(client, scene, f"every operation with {name} credentials")


async def test_ended_sessions_are_unauthenticated(
    client: httpx.AsyncClient, world: World, scene: Scene
) -> None:
    logged_out, deactivated = await world.login("bob"), await world.login("bob")
    out = await client.post(
        "/api/v1/auth/logout", headers={"Authorization": f"Bearer {logged_out}"}
    )
    assert out.status_code == 204, out.text
    gone = await client.post(f"{U}/{scene.bob.id}/deactivate", headers=scene.owner.headers)
    assert gone.status_code == 200, gone.text
    for dead in (logged_out, deactivated):
        await refused(
            client,
            scene,
            "POST",
            C + "/{conv}/messages",
            401,
            "unauthenticated",
            auth=False,
            headers={"Authorization": f"Bearer {dead}", **JSON},
            content=scene.body({"client_msg_id": "ghost", "text": "boo"}),
        )
