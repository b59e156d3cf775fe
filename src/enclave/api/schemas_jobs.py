"""Wire models of the admin job endpoints (`/api/v1/admin/jobs`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from enclave.api.schemas import _Out

JobState = Literal["queued", "running", "done", "failed", "dead", "cancelled"]

CURSOR_PATTERN = r"^[0-9]{1,16}\.[a-z2-7]{26}$"
"""A page cursor: `<created_at>.<job id>` of the previous page's last job."""


class JobOut(_Out):
    id: str
    kind: str = Field(description="What the job does, e.g. `export.run`.")
    state: JobState = Field(
        description="queued (waiting for `run_at`), running (a node holds its lease), done, "
        "failed (an error retrying cannot fix), dead (every attempt failed) or cancelled."
    )
    key: str | None = Field(description="The idempotency key it was enqueued with, if any.")
    run_at: int = Field(description="When it is (or was last) due, Unix time in ms.")
    attempts: int = Field(description="Attempts made (a released attempt does not count).")
    max_attempts: int
    last_error: str | None = Field(description="What went wrong the last time it failed.")
    lease_expires_at: int | None = Field(description="While running: when its lease ends.")
    created_at: int
    updated_at: int
    finished_at: int | None


class JobPageOut(_Out):
    jobs: list[JobOut] = Field(description="Newest first.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )
