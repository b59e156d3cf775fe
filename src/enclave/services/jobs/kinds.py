"""Job kinds and the registry a node's workers run: what a kind of job is and how it runs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from enclave.services.context import Context
from enclave.storage.jobs import Job

__all__ = ["Handler", "Kind", "Permanent", "Registry"]

Handler = Callable[[Context, Job], Awaitable[None]]
"""Runs one job. Returning completes it; raising `Permanent` fails it for good; any other
exception is retried with backoff until the job's attempts are spent. A handler may run more
than once for one job (a node that dies mid-job loses its lease, and another node runs the job
again), so its effects must be idempotent: keyed by the job's id or idempotency key."""


class Permanent(Exception):
    """Raised by a handler for an error that retrying cannot fix: the job ends `failed`."""


@dataclass(frozen=True, slots=True)
class Kind:
    """A kind of job. `None` limits take the node's defaults (the `jobs` configuration)."""

    name: str
    handler: Handler
    concurrency: int | None = None
    """Jobs of this kind one node runs at once (`jobs.concurrency`)."""
    max_attempts: int | None = None
    """Attempts before a job is dead (`jobs.max_attempts`); stored with each job."""
    lease_seconds: float | None = None
    """How long a claim lasts without renewal (`jobs.lease_seconds`)."""
    sealed: bool = False
    """The payload holds chat data: it is sealed at rest, and `enqueue` needs a `seal_scope`."""
    every_seconds: int | None = None
    """A periodic kind: one job per period of this many seconds, across the whole cluster."""

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > 64:
            raise ValueError("a job kind's name is 1-64 characters")
        for what, value in (
            ("concurrency", self.concurrency),
            ("max_attempts", self.max_attempts),
            ("every_seconds", self.every_seconds),
        ):
            if value is not None and value < 1:
                raise ValueError(f"{self.name}: {what} must be at least 1")
        if self.lease_seconds is not None and self.lease_seconds <= 0:
            raise ValueError(f"{self.name}: lease_seconds must be positive")


class Registry:
    """The kinds a node runs, by name. Each node builds its own (nothing process-wide)."""

    def __init__(self, kinds: tuple[Kind, ...] = ()) -> None:
        self._kinds: dict[str, Kind] = {}
        for kind in kinds:
            self.add(kind)

    def add(self, kind: Kind) -> Kind:
        if kind.name in self._kinds:
            raise ValueError(f"job kind {kind.name!r} is registered twice")
        self._kinds[kind.name] = kind
        return kind

    def get(self, name: str) -> Kind | None:
        return self._kinds.get(name)

    def __iter__(self) -> Iterator[Kind]:
        return iter(self._kinds.values())

    def __len__(self) -> int:
        return len(self._kinds)

    def periodic(self) -> list[Kind]:
        return [k for k in self._kinds.values() if k.every_seconds is not None]
