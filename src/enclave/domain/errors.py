"""Errors with stable machine-readable codes.

Services raise these; the transport maps each *kind* to an HTTP status in exactly one place
(`enclave.api.errors`). Codes are listed in docs/errors.md and checked by a test.
"""

from __future__ import annotations

from typing import ClassVar


class EnclaveError(Exception):
    """Base of every error that reaches a client."""

    kind: ClassVar[str] = "invalid"
    code: str = "error"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class InvalidInput(EnclaveError):
    """The request is well-formed but a value breaks a rule (422)."""

    kind = "invalid"


class NotFound(EnclaveError):
    """The resource does not exist, or the caller may not see it (404): the two look alike."""

    kind = "not_found"

    def __init__(self, what: str = "resource") -> None:
        super().__init__("not_found", f"{what} not found")


class Unauthenticated(EnclaveError):
    """No valid credentials (401)."""

    kind = "unauthenticated"


class Forbidden(EnclaveError):
    """The caller can see the resource but may not do this to it (403)."""

    kind = "forbidden"


class Conflict(EnclaveError):
    """The request conflicts with the current state (409)."""

    kind = "conflict"


class Gone(Conflict):
    """The data was crypto-shredded: its key no longer exists, so it cannot be written (409)."""

    def __init__(
        self, message: str = "the encryption key of this conversation or person was destroyed"
    ) -> None:
        super().__init__("data_destroyed", message)


class Unavailable(EnclaveError):
    """A dependency is down (503)."""

    kind = "unavailable"


class RateLimited(EnclaveError):
    """Too many requests or failed logins (429); `retry_after_s` says when to try again."""

    kind = "rate_limited"

    def __init__(self, code: str, message: str, *, retry_after_s: int = 1) -> None:
        super().__init__(code, message)
        self.retry_after_s = max(1, retry_after_s)


# Every code a client can receive, with its meaning. docs/errors.md is checked against this.
ERROR_CODES: dict[str, str] = {
    "invalid_json": "The request body is not valid JSON.",
    "validation_error": "A field is missing, has the wrong type, or is out of range; "
    "`details` names each field.",
    "payload_too_large": "The request body exceeds the configured limit.",
    "unsupported_media_type": "The request body is not sent as `Content-Type: application/json`.",
    "invalid_text": "Text is empty, too long, or contains forbidden characters.",
    "invalid_username": "A username must be 3–32 characters of a–z, 0–9, '.', '_' or '-'.",
    "weak_password": "The password does not meet the password policy.",
    "invalid_members": "The member list does not fit the conversation kind.",
    "invalid_emoji": "A reaction must be 1–64 visible characters without spaces.",
    "invalid_thread_root": "The thread root is not a top-level message of this conversation.",
    "invalid_filter": "The filters of a list contradict each other (such as `until` not after "
    "`since`).",
    "not_found": "The resource does not exist or is not visible to the caller.",
    "unauthenticated": "The request has no valid bearer token.",
    "invalid_credentials": "Wrong username or password.",
    "forbidden": "The caller may see the resource but may not perform this action.",
    "password_change_required": "The account must set a new password before doing anything else.",
    "mfa_required": "The password is right and the account has MFA: log in again with `otp` "
    "(the authenticator code) or a `recovery_code`.",
    "mfa_enrollment_required": "The organization requires MFA and the account has none yet: "
    "only /users/me, the MFA endpoints, log-out and the session endpoints work until it enrols.",
    "invalid_mfa_code": "The authenticator or recovery code is wrong, malformed, expired or "
    "already used (it counts as a failed log-in).",
    "mfa_already_enrolled": "MFA is already on for the account; disable it first to change it.",
    "mfa_not_enrolled": "MFA is not on (or no enrolment was started) for the account.",
    "username_taken": "Another account already uses this username.",
    "name_taken": "Another channel in the organization already uses this name.",
    "idempotency_conflict": "This client_msg_id was already used for a different conversation.",
    "message_expired": "A message with this client_msg_id was sent earlier and retention has "
    "removed it since; it is not sent again.",
    "conversation_archived": "The conversation is archived and read-only.",
    "message_recalled": "The message was recalled and cannot be changed.",
    "not_a_member": "Only members may do this in the conversation.",
    "last_owner": "The last owner cannot leave, be removed or be demoted.",
    "read_only_member": "The caller is a read-only member of this conversation: they may read it "
    "but not post or react.",
    "announcement_channel": "Only the owners and moderators of an announcement channel may post "
    "in it; the others read and react.",
    "department_name_taken": "Another department with the same parent already uses this name.",
    "department_not_empty": "A department with sub-departments or people in it cannot be deleted; "
    "move them first.",
    "department_cycle": "A department cannot be moved under itself or one of its own "
    "sub-departments.",
    "department_too_deep": "Departments nest at most 10 levels deep.",
    "too_many_departments": "An organization has at most 1000 departments.",
    "not_department_admin": "Only a person whose role is `department_admin` can be assigned to "
    "administer a department.",
    "data_destroyed": "The encryption key of this conversation or person was destroyed "
    "(crypto-shredded); nothing more can be written there.",
    "not_initialized": "No organization exists yet; run `enclave init` or `enclave serve`.",
    "org_required": "The installation has several organizations: name the one meant (the "
    "CLI's `--org`, by id or name).",
    "method_not_allowed": "The HTTP method is not supported on this path.",
    "http_error": "An HTTP error without a more specific code; the HTTP status says which.",
    "unavailable": "A dependency (such as the database) is unavailable.",
    "websocket_required": "GET /api/v1/ws must be a WebSocket upgrade.",
    "bad_frame": "A WebSocket frame is not valid JSON or not a known frame (see docs/protocol.md).",
    "rate_limited": "Too many requests, failed logins or WebSocket frames; retry after the "
    "`Retry-After` header's seconds (REST) or slow down (WebSocket).",
    "too_many_subscriptions": "A connection may watch the presence of at most 1000 people.",
    "terms_acceptance_required": "The organization published terms of use this account has not "
    "accepted yet: only /users/me, reading and accepting the terms, the password, MFA and session "
    "endpoints and log-out work until it accepts them.",
    "terms_outdated": "The version accepted is not the organization's current terms of use (or "
    "none are published): read GET /api/v1/org/terms again.",
    "terms_version_exists": "Terms of use with this version were published already; give the new "
    "terms a new version.",
    "legal_hold": "The person is under legal hold: their data may not be erased until the hold "
    "is released.",
    "export_not_ready": "The export has not finished, failed, or its files expired and were "
    "deleted; its status says which.",
    "invalid_retention": "A retention setting is out of range: days must be 1–36500, or null "
    "(keep forever); a conversation's mode is default, forever or days.",
    "retention_running": "A retention run is in progress (on this or another server); try again "
    "when it has finished.",
    "hold_released": "The legal hold was released already.",
    "job_not_retryable": "Only a dead, failed or cancelled job can be retried; this one is queued, "
    "running or done.",
    "job_finished": "Only a queued or running job can be cancelled; this one has finished.",
    "internal_error": "An unexpected error; the server log has the request id.",
}
