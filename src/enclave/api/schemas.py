"""Wire models for the REST API (request validation and the OpenAPI document)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# Hard ceilings in the schema; the configured limits (docs/config.md) are checked by services.
MAX_TEXT = 100_000
MAX_ID = 64
MAX_SEQ = 2**53


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- errors -------------------------------------------------------------------------------------


class ErrorDetail(_Out):
    field: str
    problem: str


class ErrorInfo(_Out):
    code: str = Field(description="Stable machine-readable code; see docs/errors.md.")
    message: str
    details: list[ErrorDetail] | None = None
    request_id: str | None = None


class ErrorBody(_Out):
    error: ErrorInfo


# -- accounts -----------------------------------------------------------------------------------


MAX_CODE = 64


class LoginIn(_In):
    username: str = Field(max_length=256)
    password: str = Field(max_length=1024)
    otp: str | None = Field(
        None,
        max_length=MAX_CODE,
        description="The 6-digit code of the authenticator app, for an account with MFA.",
    )
    recovery_code: str | None = Field(
        None,
        max_length=MAX_CODE,
        description="Instead of `otp`: one of the account's one-time recovery codes.",
    )


OrgRoleName = Literal["owner", "admin", "compliance_officer", "department_admin", "member", "guest"]
MemberRoleName = Literal["owner", "moderator", "member", "reader"]


class UserOut(_Out):
    id: str
    username: str
    display_name: str
    role: OrgRoleName
    is_active: bool
    must_change_password: bool
    created_at: int = Field(description="Unix time in milliseconds.")
    department_id: str | None = Field(description="The department the person belongs to.")


ScopeName = Literal["none", "subtree", "org"]


class CapabilitiesOut(_Out):
    """What you may do in your organization (docs/permissions.md); the server still decides
    every request, this only tells a client which tools to show."""

    actions: dict[str, ScopeName] = Field(
        description="Every org action (as in docs/permissions.md) and how far it reaches for "
        "you: the whole organization, your department subtree, or not at all."
    )
    grant_roles: list[OrgRoleName] = Field(description="Roles you may give a new account.")
    set_roles: list[OrgRoleName] = Field(
        description="Roles a role change of yours may take away and give (both must be listed)."
    )
    administered_roles: list[OrgRoleName] = Field(
        description="Roles of the accounts you may deactivate, reactivate, sign out and move "
        "(where the action reaches)."
    )
    department_ids: list[str] = Field(
        description="Where your subtree-scoped actions reach: the departments you administer "
        "and those below them (empty when none of your actions is subtree-scoped)."
    )


class LoginOut(_Out):
    token: str = Field(description="Opaque bearer token; send as `Authorization: Bearer <token>`.")
    user: UserOut


class PasswordChangeIn(_In):
    current_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024)


class SessionOut(_Out):
    id: str
    user_agent: str
    device: str = Field(description='A short label from the User-Agent, e.g. "Firefox on Linux".')
    ip: str | None = Field(description="The client address of the last use, if known.")
    created_at: int
    last_used_at: int
    current: bool = Field(description="True for the session making this request.")


class SessionList(_Out):
    sessions: list[SessionOut]


class SessionsRevokedOut(_Out):
    revoked: int = Field(description="How many sessions were signed out.")


class MfaStatusOut(_Out):
    enrolled: bool = Field(description="A confirmed authenticator is required at log-in.")
    pending: bool = Field(description="An enrolment was started and awaits its first code.")
    confirmed_at: int | None
    recovery_codes_left: int
    required: bool = Field(description="The organization requires MFA of everyone.")


class MfaEnrolmentOut(_Out):
    secret: str = Field(description="The TOTP secret in base32, for typing into an app.")
    otpauth_uri: str = Field(description="The `otpauth://totp/...` URI of the secret.")
    qr_svg: str = Field(description="The URI as a QR code: an SVG `data:` URI for an <img>.")


class MfaCodeIn(_In):
    code: str = Field(
        min_length=1,
        max_length=MAX_CODE,
        description="A code of the authenticator app (or, except to confirm, a recovery code).",
    )


class MfaDisableIn(_In):
    password: str = Field(max_length=1024)
    code: str = Field(min_length=1, max_length=MAX_CODE)


class RecoveryCodesOut(_Out):
    recovery_codes: list[str] = Field(
        description="One-time codes, shown only now: each logs in once instead of `otp`."
    )


class OrgSettingsOut(_Out):
    require_mfa: bool
    updated_at: int
    erasure_mode: Literal["pseudonymize", "delete"] = Field(
        description="What erasing a person does to their messages: keep them under the "
        "pseudonym, or delete their text (docs/compliance.md)."
    )


class OrgSettingsIn(_In):
    require_mfa: bool | None = None
    erasure_mode: Literal["pseudonymize", "delete"] | None = None


class UserCreateIn(_In):
    username: str = Field(max_length=64)
    password: str = Field(max_length=1024)
    display_name: str = Field("", max_length=200)
    role: OrgRoleName = "member"
    department_id: str | None = Field(
        None, max_length=MAX_ID, description="Put the new person into this department."
    )


class UserList(_Out):
    users: list[UserOut]


class UserRoleIn(_In):
    role: OrgRoleName


class UserDepartmentIn(_In):
    department_id: str | None = Field(
        max_length=MAX_ID, description="The department to move the person into; null: none."
    )


# -- departments --------------------------------------------------------------------------------


class DepartmentOut(_Out):
    id: str
    parent_id: str | None = Field(description="null for a top-level department.")
    name: str
    created_at: int
    admin_ids: list[str] = Field(description="Department admins of this department (and below).")


class DepartmentList(_Out):
    departments: list[DepartmentOut] = Field(description="Every department, by name.")


class DepartmentCreateIn(_In):
    name: str = Field(max_length=200)
    parent_id: str | None = Field(None, max_length=MAX_ID)


class DepartmentUpdateIn(_In):
    name: str | None = Field(None, max_length=200)
    parent_id: str | None = Field(
        None, max_length=MAX_ID, description="Move under this department; null: to the top."
    )


# -- conversations ------------------------------------------------------------------------------


class ConversationCreateIn(_In):
    kind: Literal["dm", "group", "channel"]
    members: list[str] = Field(default_factory=list, max_length=1000)
    name: str | None = Field(None, max_length=200)
    topic: str = Field("", max_length=1000)
    visibility: Literal["public", "private"] | None = None
    announcement: bool = Field(
        False, description="Channels only: only owners and moderators may post."
    )


class ConversationUpdateIn(_In):
    name: str | None = Field(None, max_length=200)
    topic: str | None = Field(None, max_length=1000)
    announcement: bool | None = Field(
        None, description="Channels only (moderators): only owners and moderators may post."
    )


class ReactionOut(_Out):
    emoji: str
    count: int
    user_ids: list[str]


class MessageOut(_Out):
    id: str
    conversation_id: str
    seq: int
    sender_id: str
    client_msg_id: str
    text: str | None = Field(description="null once the message is recalled.")
    thread_root_id: str | None
    created_at: int
    edited_at: int | None
    recalled: bool
    recalled_at: int | None
    reply_count: int
    last_reply_at: int | None
    mentions: list[str]
    reactions: list[ReactionOut]


class ConversationOut(_Out):
    id: str
    kind: Literal["dm", "group", "channel"]
    name: str | None
    topic: str
    visibility: Literal["public", "private"]
    archived: bool
    created_by: str
    created_at: int
    last_seq: int = Field(description="Sequence number of the conversation's newest event.")
    announcement: bool = Field(description="Only owners and moderators may post.")
    my_role: MemberRoleName | None
    last_read_seq: int
    unread_count: int
    mention_count: int
    last_message: MessageOut | None
    dm_peer_id: str | None


class ConversationList(_Out):
    conversations: list[ConversationOut]


class ChannelOut(_Out):
    id: str
    name: str | None
    topic: str
    created_at: int
    joined: bool


class ChannelList(_Out):
    channels: list[ChannelOut]


class MemberOut(_Out):
    user_id: str
    role: MemberRoleName = Field(description="`reader`: a read-only member.")
    joined_at: int
    last_read_seq: int = Field(description="The member's read marker: 'seen' up to this seq.")


class MemberList(_Out):
    members: list[MemberOut]


class MembersAddIn(_In):
    user_ids: list[str] = Field(min_length=1, max_length=1000)


class MemberRoleIn(_In):
    role: MemberRoleName


class ReadIn(_In):
    seq: int = Field(ge=0, le=MAX_SEQ)


class ReadOut(_Out):
    last_read_seq: int


# -- messages -----------------------------------------------------------------------------------


class MessageCreateIn(_In):
    client_msg_id: str = Field(max_length=MAX_ID, description="Client-chosen idempotency key.")
    text: str = Field(max_length=MAX_TEXT)
    thread_root_id: str | None = Field(None, max_length=MAX_ID)


class MessageEditIn(_In):
    text: str = Field(max_length=MAX_TEXT)


class MessageList(_Out):
    messages: list[MessageOut]


class VersionOut(_Out):
    version: int
    text: str
    created_at: int


class VersionList(_Out):
    versions: list[VersionOut]


class ThreadOut(_Out):
    root: MessageOut
    replies: list[MessageOut]


class ReactionList(_Out):
    reactions: list[ReactionOut]


class Health(_Out):
    status: Literal["ok"]


# -- audit log (admins) -------------------------------------------------------------------------


class AuditEntryOut(_Out):
    seq: int = Field(description="Position in the installation-wide chain; the paging cursor.")
    at: int = Field(description="Unix time in milliseconds.")
    action: str = Field(description="What happened, e.g. `auth.login`, `message.recalled`.")
    actor_id: str | None = Field(description="Who did it; null for the operator (CLI) or none.")
    actor_username: str | None
    target_type: str | None = Field(description="`user`, `message`, `conversation`, `ip`...")
    target_id: str | None
    target_username: str | None = Field(description="Set when the target is a user.")
    ip: str | None = Field(description="Source address, when there was one.")
    outcome: str = Field(description="`success`, `failure` or `alert`.")
    details: dict[str, Any]
    hash: str = Field(description="The entry's chain hash (HMAC-SHA256, hex).")


class AuditPageOut(_Out):
    entries: list[AuditEntryOut] = Field(description="Newest first.")
    next_before_seq: int | None = Field(
        description="Pass as `before_seq` for older entries; null on the last page."
    )


class AuditProblemOut(_Out):
    seq: int
    kind: Literal["altered", "missing", "reordered", "broken_link", "truncated", "head", "anchor"]
    detail: str


class AuditVerifyOut(_Out):
    ok: bool
    checked: int = Field(description="Entries checked (the whole installation's chain).")
    head_seq: int
    head_hash: str = Field(description="Record (head_seq, head_hash) elsewhere as an anchor.")
    problem_count: int
    problems: list[AuditProblemOut] = Field(description="The first 100 problems.")
