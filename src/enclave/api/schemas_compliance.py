"""Wire models of the compliance endpoints: eDiscovery exports, erasure, terms of use."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from enclave.api.schemas import MAX_ID, MAX_SEQ, _In, _Out

ExportStatus = Literal["queued", "running", "done", "failed", "expired"]


IdItem = Annotated[str, Field(max_length=MAX_ID)]


class ExportIn(_In):
    people: list[IdItem] = Field(
        default_factory=list,
        max_length=100,
        description="User ids: only conversations any of them is a member of or sent a "
        "message in. Empty: no restriction.",
    )
    conversations: list[IdItem] = Field(
        default_factory=list,
        max_length=1000,
        description="Conversation ids. Empty: every conversation of the organization.",
    )
    since: int | None = Field(
        None, ge=0, le=MAX_SEQ, description="Messages sent at or after this Unix time (ms)."
    )
    until: int | None = Field(
        None, ge=0, le=MAX_SEQ, description="Messages sent before this Unix time (ms)."
    )


class ExportQueryOut(_Out):
    people: list[str]
    conversations: list[str]
    since: int | None
    until: int | None


class ExportJobOut(_Out):
    id: str
    status: ExportStatus = Field(
        description="`expired`: the files were deleted (compliance.export_ttl_hours)."
    )
    done: int = Field(description="Messages exported so far.")
    total: int = Field(description="Messages the query selects (known once running).")
    query: ExportQueryOut
    requested_by: str | None
    created_at: int
    finished_at: int | None
    expires_at: int | None = Field(description="When the files are deleted.")
    error: str | None


class ExportJobItemOut(ExportJobOut):
    requested_by_username: str | None = Field(
        description="Who asked for it; null for the operator's exports (`enclave export`)."
    )


class ExportJobList(_Out):
    exports: list[ExportJobItemOut] = Field(max_length=100, description="Newest first.")
    next_before: str | None = Field(
        max_length=48,
        description="Pass as `before` for the next (older) page; null on the last page.",
    )


class ErasureOut(_Out):
    user_id: str
    username: str = Field(description="The pseudonym that replaced the username.")
    mode: Literal["pseudonymize", "delete"]
    messages_deleted: int
    messages_kept_under_hold: int
    versions_deleted: int
    events_scrubbed: int
    sessions_revoked: int
    keys_shredded: int


class TermsOut(_Out):
    version: str | None = Field(description="The current version; null: no terms published.")
    text: str | None
    published_at: int | None
    accepted: bool = Field(description="You accepted this version (true when there are none).")
    accepted_at: int | None


class TermsIn(_In):
    version: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    text: str = Field(min_length=1, max_length=50_000)


class TermsAcceptIn(_In):
    version: str = Field(min_length=1, max_length=MAX_ID)
