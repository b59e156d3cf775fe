"""Exceptions raised by the SDK, mapped from the server's stable error codes.

Every exception derives from `EnclaveError`. A response is mapped by its `code` first and by
its HTTP status only when the code is unknown to this SDK version, so a server that adds a
code still produces the right family of exception.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ErrorDetail:
    """One rejected field of a `validation_error`."""

    field: str
    problem: str


class EnclaveError(Exception):
    """Base of every error the SDK raises. `status` is None when no HTTP response arrived."""

    def __init__(
        self,
        code: str,
        message: str,
        status: int | None,
        *,
        request_id: str | None = None,
        details: tuple[ErrorDetail, ...] = (),
    ) -> None:
        super().__init__(code, message, status)
        self.code = code
        self.message = message
        self.status = status
        self.request_id = request_id
        self.details = details

    def __str__(self) -> str:
        where = f"HTTP {self.status}" if self.status is not None else "no response"
        rid = f", request {self.request_id}" if self.request_id else ""
        return f"{self.code}: {self.message} ({where}{rid})"


class ValidationFailed(EnclaveError):
    """The request was malformed or a value broke a rule (400, 413, 415, 422)."""


class Unauthenticated(EnclaveError):
    """The bearer token is missing, invalid or expired (401): log in again."""


class InvalidCredentials(EnclaveError):
    """Wrong username or password, at login or when changing the password (401)."""


class Forbidden(EnclaveError):
    """The caller can see the resource but may not do this (403)."""


class PasswordChangeRequired(EnclaveError):
    """The account must set a new password (`change_password`) before anything else (403)."""


class MfaRequired(EnclaveError):
    """The password was right but the account has MFA: call `login` again with `otp` (the
    authenticator app's code) or a `recovery_code` (401, code `mfa_required`)."""


class NotFound(EnclaveError):
    """The resource does not exist or is not visible to the caller: the two look alike (404)."""


class Conflict(EnclaveError):
    """The request conflicts with the current state (409), e.g. `username_taken`."""


class RateLimited(EnclaveError):
    """Too many requests (429); `retry_after` is the server's hint in seconds, if it sent one."""

    def __init__(
        self,
        code: str,
        message: str,
        status: int | None,
        *,
        request_id: str | None = None,
        details: tuple[ErrorDetail, ...] = (),
        retry_after: float | None = None,
    ) -> None:
        super().__init__(code, message, status, request_id=request_id, details=details)
        self.retry_after = retry_after


class ServerError(EnclaveError):
    """The server failed or a dependency of it is down (5xx)."""


class ConnectionFailed(EnclaveError):
    """No response arrived: the server is unreachable, or the connection broke or timed out."""

    def __init__(self, message: str) -> None:
        super().__init__("connection_failed", message, None)


class ProtocolError(EnclaveError):
    """The server answered with something that does not match the API contract."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__("unexpected_response", message, status)


_BY_CODE: dict[str, type[EnclaveError]] = {
    "invalid_json": ValidationFailed,
    "validation_error": ValidationFailed,
    "payload_too_large": ValidationFailed,
    "invalid_text": ValidationFailed,
    "invalid_username": ValidationFailed,
    "weak_password": ValidationFailed,
    "invalid_members": ValidationFailed,
    "invalid_emoji": ValidationFailed,
    "invalid_thread_root": ValidationFailed,
    "not_found": NotFound,
    "unauthenticated": Unauthenticated,
    "invalid_credentials": InvalidCredentials,
    "forbidden": Forbidden,
    "not_a_member": Forbidden,
    "password_change_required": PasswordChangeRequired,
    "mfa_required": MfaRequired,
    "mfa_enrollment_required": Forbidden,
    "invalid_mfa_code": ValidationFailed,
    "mfa_already_enrolled": Conflict,
    "mfa_not_enrolled": Conflict,
    "username_taken": Conflict,
    "name_taken": Conflict,
    "idempotency_conflict": Conflict,
    "message_expired": Conflict,
    "conversation_archived": Conflict,
    "message_recalled": Conflict,
    "last_owner": Conflict,
    "not_initialized": Conflict,
    "rate_limited": RateLimited,
    "unavailable": ServerError,
    "internal_error": ServerError,
}

_BY_STATUS: dict[int, type[EnclaveError]] = {
    400: ValidationFailed,
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: ValidationFailed,
    415: ValidationFailed,
    422: ValidationFailed,
    429: RateLimited,
}


def error_class(code: str, status: int) -> type[EnclaveError]:
    """The exception class for an error response: by code, else by status."""
    found = _BY_CODE.get(code) or _BY_STATUS.get(status)
    if found is not None:
        return found
    return ServerError if status >= 500 else EnclaveError


def from_response(status: int, body: bytes, headers: Mapping[str, str]) -> EnclaveError:
    """Build the exception for a non-2xx response (`headers` keys in lower case)."""
    code, message, request_id, details = _parse_body(body)
    if code is None:  # not our JSON shape, e.g. a proxy's HTML error page
        code, message = "http_error", f"HTTP {status} without an Enclave error body"
    request_id = request_id or headers.get("x-request-id")
    cls = error_class(code, status)
    if issubclass(cls, RateLimited):
        return cls(
            code,
            message,
            status,
            request_id=request_id,
            details=details,
            retry_after=_seconds(headers.get("retry-after")),
        )
    return cls(code, message, status, request_id=request_id, details=details)


def _parse_body(body: bytes) -> tuple[str | None, str, str | None, tuple[ErrorDetail, ...]]:
    try:
        data = json.loads(body)
    except ValueError:
        return None, "", None, ()
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("code"), str):
        return None, "", None, ()
    message = error.get("message")
    request_id = error.get("request_id")
    details = tuple(
        ErrorDetail(d["field"], d["problem"])
        for d in error.get("details") or ()
        if isinstance(d, dict)
        and isinstance(d.get("field"), str)
        and isinstance(d.get("problem"), str)
    )
    return (
        error["code"],
        message if isinstance(message, str) else "",
        request_id if isinstance(request_id, str) else None,
        details,
    )


def _seconds(value: str | None) -> float | None:
    # Retry-After may also be an HTTP date; the server sends seconds, so anything else is ignored.
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
