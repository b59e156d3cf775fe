"""eDiscovery export: compliance officers export what people said, where and when.

A query selects conversations and a time range: `conversations` (default: every conversation of
the organization), narrowed by `people` to the conversations any of them is a member of or sent
a message in, and `since`/`until` (Unix ms, `until` exclusive) on the time a message was sent.
Everything in those conversations in that range is exported: every message with its full edit
history, reactions and thread structure; recalled messages with their last text (the row keeps
it sealed); and the conversations' creation and membership changes (`member.joined`, `left`,
`role_changed` from the event log). Files: see `services.export_files`.

Through the API an export is a background job in the server process (`start`): an asyncio task
that reads in bounded read transactions (500 messages each), writes into
`data_dir/exports/<job id>/files/` (mode 0700/0600), records progress in `export_jobs`, and
packs `export.zip` when done. The files are deleted `compliance.export_ttl_hours` after the job
finished (`sweep`). The CLI (`enclave export`) runs the same code in its own process, writing
into a directory of the operator's choice (`run_to_directory`).

In a cluster every job holds a lease (`job_leases`, `export:<job id>`) that the process running
it renews, so another node's `recover` fails only jobs whose process is gone, and the periodic
sweep runs on one node at a time (lease `exports.sweep`). The API's files must be on storage
every node sees (docs/operations.md): the download may reach any node.

Every export is audited: `export.ediscovery` when it starts (by the person who asked, with the
query; this is what the mass-export alert counts) and when it finishes (by the job, with the
counts and the manifest's SHA-256).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from enclave.domain.errors import Conflict, Forbidden, InvalidInput, NotFound, RateLimited
from enclave.domain.ids import ConversationId, OrgId, is_valid_id, new_id
from enclave.domain.models import User
from enclave.domain.policy import OrgAction
from enclave.services import audit, gates
from enclave.services.context import Changes, Context
from enclave.services.export_files import (
    ExportWriter,
    make_private_dir,
    remove_tree,
    sha256_of,
    write_zip,
)
from enclave.storage import accounts as account_store
from enclave.storage import conversations as conv_store
from enclave.storage import exports as store
from enclave.storage import leases
from enclave.storage.base import Tx

log = logging.getLogger(__name__)

BATCH = 500
"""Messages (or events) read per read transaction."""
MAX_PEOPLE = 100
MAX_CONVERSATIONS = 1000
MAX_RUNNING = 2
"""Export jobs one server process runs at a time; more are refused with `rate_limited`."""
LIST_MAX = 100
"""Jobs per page of `list_jobs`."""
_CURSOR = re.compile(r"^([0-9]{1,19})\.([a-z2-7]{26})$")
_FOREVER = 2**62
JOB_LEASE_MS = 60_000
"""A running job's lease lasts this long; its process renews it three times as often."""
SWEEP_LEASE = "exports.sweep"

ProgressFn = Callable[[int, int], None]

_tasks: dict[str, asyncio.Task[None]] = {}


@dataclass(frozen=True)
class ExportQuery:
    people: tuple[str, ...] = ()
    conversations: tuple[str, ...] = ()
    since: int | None = None
    until: int | None = None

    def wire(self) -> dict[str, Any]:
        return {
            "people": list(self.people),
            "conversations": list(self.conversations),
            "since": self.since,
            "until": self.until,
        }


@dataclass(frozen=True)
class Counts:
    conversations: int
    messages: int
    edited: int
    recalled: int
    membership_events: int
    eml_files: int


def exports_dir(ctx: Context) -> Path:
    return ctx.config.server.data_dir / "exports"


def job_dir(ctx: Context, job_id: str) -> Path:
    return exports_dir(ctx) / job_id


def zip_path(ctx: Context, job_id: str) -> Path:
    return job_dir(ctx, job_id) / "export.zip"


def _check_query(query: ExportQuery) -> ExportQuery:
    if len(query.people) > MAX_PEOPLE or len(query.conversations) > MAX_CONVERSATIONS:
        raise InvalidInput("invalid_filter", "too many people or conversations in one export")
    if query.since is not None and query.until is not None and query.until <= query.since:
        raise InvalidInput("invalid_filter", "until must be after since")
    return replace(
        query,
        people=tuple(dict.fromkeys(query.people)),
        conversations=tuple(dict.fromkeys(query.conversations)),
    )


def _resolve(tx: Tx, org_id: OrgId, query: ExportQuery) -> list[store.ConversationRef]:
    """The conversations the query selects; a person or conversation outside the organization
    fails as not found."""
    for uid in query.people:
        found = account_store.user_by_id(tx, uid) if is_valid_id(uid) else None
        if found is None or found.org_id != org_id:
            raise NotFound("user")
    every = {c.id: c for c in store.org_conversations(tx, org_id)}
    if query.conversations:
        for cid in query.conversations:
            if cid not in every:
                raise NotFound("conversation")
        chosen = {ConversationId(c) for c in query.conversations}
    else:
        chosen = set(every)
    if query.people:
        theirs: set[ConversationId] = set()
        for uid in query.people:
            theirs |= store.conversations_of_person(tx, org_id, uid)
        chosen &= theirs
    return [every[c] for c in sorted(chosen)]


def _hidden(actor: User) -> None:
    """Anyone who may not export sees no export jobs at all: 404, like a missing one."""
    try:
        gates.require_org(actor, OrgAction.EXPORT_EDISCOVERY)
    except Forbidden:
        raise NotFound("export") from None


# -- the API: background jobs -------------------------------------------------------------------


async def start(
    ctx: Context, actor: User, query: ExportQuery, ip: str | None = None
) -> store.ExportJob:
    """Start an export job (compliance officers and owners); returns it queued."""
    gates.require_org(actor, OrgAction.EXPORT_EDISCOVERY)
    query = _check_query(query)
    if sum(not t.done() for t in _tasks.values()) >= MAX_RUNNING:
        raise RateLimited("rate_limited", "exports are running; try again later", retry_after_s=30)
    await sweep(ctx)

    def work(tx: Tx) -> store.ExportJob:
        _resolve(tx, actor.org_id, query)  # refuse unknown people and conversations now
        created = store.ExportJob(
            id=new_id(),
            org_id=actor.org_id,
            requested_by=actor.id,
            query=query.wire(),
            status=store.QUEUED,
            done=0,
            total=0,
            error=None,
            created_at=ctx.clock.now_ms(),
            finished_at=None,
            expires_at=None,
        )
        store.insert_job(tx, created)
        _take_job(ctx, tx, created.id)
        audit.record(
            ctx,
            Changes(tx, created.created_at),
            "export.ediscovery",
            audit.Actor.of(actor, ip),
            target=audit.Target("export", created.id),
            details={"stage": "started", "query": query.wire()},
        )
        return created

    job = await ctx.db.write(work)
    task = asyncio.create_task(_run_job(ctx, job, query), name=f"export-{job.id}")
    _tasks[job.id] = task
    task.add_done_callback(lambda _t: _tasks.pop(job.id, None))
    return job


async def wait(job_id: str) -> None:
    """Until the job's task in this process has ended (tests; the CLI runs inline)."""
    task = _tasks.get(job_id)
    if task is not None:
        await asyncio.wait({task})


def _job_lease(job_id: str) -> str:
    return f"export:{job_id}"


def _take_job(ctx: Context, tx: Tx, job_id: str) -> bool:
    now = ctx.clock.now_ms()
    return leases.take(tx, _job_lease(job_id), ctx.node_id, now, now + JOB_LEASE_MS)


@contextlib.asynccontextmanager
async def _holding(ctx: Context, job_id: str) -> AsyncIterator[None]:
    """Renew the job's lease while it runs; give it up when it ends."""

    async def renew() -> None:
        while True:
            await asyncio.sleep(JOB_LEASE_MS / 3000)
            try:
                await ctx.db.write(lambda tx: _take_job(ctx, tx, job_id))
            except Exception:
                log.exception("export %s: renewing its lease failed", job_id)

    renewing = asyncio.create_task(renew())
    try:
        yield
    finally:
        renewing.cancel()
        with contextlib.suppress(Exception):
            await ctx.db.write(lambda tx: leases.release(tx, _job_lease(job_id), ctx.node_id))


async def _run_job(ctx: Context, job: store.ExportJob, query: ExportQuery) -> None:
    async with _holding(ctx, job.id):
        await _run_job_held(ctx, job, query)


async def _run_job_held(ctx: Context, job: store.ExportJob, query: ExportQuery) -> None:
    root = job_dir(ctx, job.id)
    files = root / "files"
    try:
        await asyncio.to_thread(make_private_dir, exports_dir(ctx))
        await asyncio.to_thread(make_private_dir, root)
        manifest = await _export(ctx, job, query, files, None)
        await asyncio.to_thread(write_zip, files, zip_path(ctx, job.id))
        await _finished(ctx, job, manifest)
    except Exception as exc:
        log.exception("export %s failed", job.id)
        await asyncio.to_thread(remove_tree, root)
        try:
            await _failed(ctx, job, type(exc).__name__)
        except Exception:  # the database is gone too (shutting down): `recover` marks it later
            log.exception("export %s: recording the failure failed", job.id)


async def _finished(ctx: Context, job: store.ExportJob, manifest: dict[str, Any]) -> None:
    ttl_ms = ctx.config.compliance.export_ttl_hours * 3_600_000
    now = ctx.clock.now_ms()
    expires = now + ttl_ms if job.requested_by is not None else None

    def work(tx: Tx) -> None:
        store.finish(tx, job.id, store.DONE, now, expires, None)
        audit.record(
            ctx,
            Changes(tx, now),
            "export.ediscovery",
            audit.Actor.operator(job.org_id),
            target=audit.Target("export", job.id),
            details={
                "stage": "finished",
                "requested_by": job.requested_by,
                "counts": manifest["counts"],
                "files": len(manifest["files"]),
                "expires_at": expires,
            },
        )

    await ctx.db.write(work)


async def _failed(ctx: Context, job: store.ExportJob, reason: str) -> None:
    now = ctx.clock.now_ms()

    def work(tx: Tx) -> None:
        store.finish(tx, job.id, store.FAILED, now, None, reason)
        audit.record(
            ctx,
            Changes(tx, now),
            "export.ediscovery",
            audit.Actor.operator(job.org_id),
            target=audit.Target("export", job.id),
            outcome="failure",
            details={"stage": "failed", "requested_by": job.requested_by, "reason": reason},
        )

    await ctx.db.write(work)


async def status(ctx: Context, actor: User, job_id: str) -> store.ExportJob:
    """A job of the caller's organization; 404 for anyone who may not export."""
    _hidden(actor)
    await sweep(ctx)
    found = (
        await ctx.db.read(lambda tx: store.job(tx, actor.org_id, job_id))
        if is_valid_id(job_id)
        else None
    )
    if found is None:
        raise NotFound("export")
    return found


@dataclass(frozen=True)
class JobPage:
    """A page of an organization's export jobs, newest first."""

    jobs: list[store.ExportJob]
    usernames: dict[str, str]
    """Usernames of the people who asked for them (the operator's jobs have nobody)."""
    next_before: str | None
    """The cursor of the next (older) page; None on the last page."""


async def list_jobs(ctx: Context, actor: User, *, before: str | None, limit: int) -> JobPage:
    """The organization's export jobs with their status and progress, newest first: the
    compliance officers' overview. 404 for anyone who may not export, like a single job."""
    _hidden(actor)
    found = _CURSOR.match(before) if before else None
    if before and found is None:
        raise InvalidInput("validation_error", "before: use next_before of the previous page")
    cursor = (int(found.group(1)), found.group(2)) if found else None
    size = max(1, min(limit, LIST_MAX))
    await sweep(ctx)

    def work(tx: Tx) -> tuple[list[store.ExportJob], dict[str, str]]:
        jobs = store.jobs_of_org(tx, actor.org_id, size, cursor)
        asked: list[str] = [j.requested_by for j in jobs if j.requested_by is not None]
        return jobs, store.usernames(tx, actor.org_id, asked)

    jobs, names = await ctx.db.read(work)
    last = jobs[-1] if len(jobs) == size else None
    return JobPage(jobs, names, f"{last.created_at}.{last.id}" if last else None)


async def download(ctx: Context, actor: User, job_id: str, ip: str | None = None) -> Path:
    """The zip of a finished job; each download is audited."""
    job = await status(ctx, actor, job_id)
    path = zip_path(ctx, job.id)
    if job.status != store.DONE or not await asyncio.to_thread(path.is_file):
        raise Conflict("export_not_ready", f"the export is {job.status}")
    digest = await asyncio.to_thread(sha256_of, path)

    def work(tx: Tx) -> None:
        audit.record(
            ctx,
            Changes(tx, ctx.clock.now_ms()),
            "compliance.export_downloaded",
            audit.Actor.of(actor, ip),
            target=audit.Target("export", job.id),
            details={"sha256": digest},
        )

    await ctx.db.write(work)
    return path


async def sweep(ctx: Context) -> int:
    """Delete the files of exports whose time is up; returns how many were deleted."""
    now = ctx.clock.now_ms()
    expired = await ctx.db.read(lambda tx: store.expired_jobs(tx, now, 100))
    for job_id in expired:
        await asyncio.to_thread(remove_tree, job_dir(ctx, job_id))
        await ctx.db.write(partial(store.mark_expired, job_id=job_id))
    return len(expired)


async def recover(ctx: Context) -> None:
    """At server start: jobs a stopped process left running failed; their partial files go.
    A job whose lease another live process holds (a node of the cluster, the CLI) is left to
    it; taking the lease of one whose process is gone makes this node the one to clean up."""
    for job_id in await ctx.db.read(store.interrupted_jobs):
        if job_id in _tasks:
            continue
        if not await ctx.db.write(partial(_take_for, ctx, job_id)):
            continue
        await asyncio.to_thread(remove_tree, job_dir(ctx, job_id))
        await ctx.db.write(
            partial(
                store.finish,
                job_id=job_id,
                status=store.FAILED,
                at=ctx.clock.now_ms(),
                expires_at=None,
                error="interrupted",
            )
        )
    await sweep(ctx)


def _take_for(ctx: Context, job_id: str, tx: Tx) -> bool:
    return _take_job(ctx, tx, job_id)


def _take_sweep(ctx: Context, every_seconds: float, tx: Tx) -> bool:
    now = ctx.clock.now_ms()
    return leases.take(tx, SWEEP_LEASE, ctx.node_id, now, now + int(every_seconds * 2000))


async def sweep_forever(ctx: Context, every_seconds: float = 600.0) -> None:
    """The server's housekeeping task: recover interrupted jobs once, then sweep regularly."""
    await recover(ctx)
    while True:
        await asyncio.sleep(every_seconds)
        try:
            # One node of a cluster at a time: the lease outlasts the pause between sweeps.
            if await ctx.db.write(partial(_take_sweep, ctx, every_seconds)):
                await sweep(ctx)
        except Exception:
            log.exception("sweeping expired exports failed")


# -- the CLI: in this process, into a directory --------------------------------------------------


async def run_to_directory(
    ctx: Context,
    org_id: OrgId,
    query: ExportQuery,
    out: Path,
    on_progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """The operator's export (`enclave export`): one organization's data (the CLI's `--org`,
    `orgs.operator_org`), written into `out` (created with mode 0700; it must be empty);
    returns the manifest."""
    query = _check_query(query)
    if await asyncio.to_thread(lambda: out.exists() and any(out.iterdir())):
        raise FileExistsError(f"{out} is not empty")

    def work(tx: Tx) -> store.ExportJob:
        org = account_store.org_by_id(tx, org_id)
        if org is None:
            raise NotFound("organization")
        _resolve(tx, org.id, query)
        created = store.ExportJob(
            id=new_id(),
            org_id=org.id,
            requested_by=None,
            query={**query.wire(), "out": str(out)},
            status=store.QUEUED,
            done=0,
            total=0,
            error=None,
            created_at=ctx.clock.now_ms(),
            finished_at=None,
            expires_at=None,
        )
        store.insert_job(tx, created)
        _take_job(ctx, tx, created.id)
        audit.record(
            ctx,
            Changes(tx, created.created_at),
            "export.ediscovery",
            audit.Actor.operator(org.id),
            target=audit.Target("export", created.id),
            details={"stage": "started", "query": query.wire()},
        )
        return created

    job = await ctx.db.write(work)
    async with _holding(ctx, job.id):
        try:
            manifest = await _export(ctx, job, query, out, on_progress)
        except Exception as exc:
            await _failed(ctx, job, type(exc).__name__)
            raise
        await _finished(ctx, job, manifest)
    return manifest


async def operator_people(ctx: Context, org_id: OrgId, names: list[str]) -> list[str]:
    """User ids of the organization `org_id` for usernames or ids (the CLI's `--people`); an
    unknown one, or one of another organization, raises NotFound."""

    def work(tx: Tx) -> list[str]:
        org = account_store.org_by_id(tx, org_id)
        ids: list[str] = []
        for name in names:
            user = account_store.user_by_id(tx, name) if is_valid_id(name) else None
            if user is None:
                found = account_store.user_with_hash(tx, name.strip().lower())
                user = found[0] if found else None
            if user is None or org is None or user.org_id != org.id:
                raise NotFound("user")
            ids.append(user.id)
        return ids

    return await ctx.db.read(work)


# -- the export itself ----------------------------------------------------------------------------


async def _export(
    ctx: Context,
    job: store.ExportJob,
    query: ExportQuery,
    out: Path,
    on_progress: ProgressFn | None,
) -> dict[str, Any]:
    since = query.since if query.since is not None else 0
    until = query.until if query.until is not None else _FOREVER

    def plan(tx: Tx) -> tuple[list[store.ConversationRef], int]:
        convs = _resolve(tx, job.org_id, query)
        return convs, sum(store.count_messages(tx, c.id, since, until) for c in convs)

    convs, total = await ctx.db.read(plan)
    await ctx.db.write(lambda tx: store.set_progress(tx, job.id, store.RUNNING, 0, total))
    writer = await asyncio.to_thread(ExportWriter, out)
    done = edited = recalled = events = 0
    try:
        for conv in convs:
            members = await ctx.db.read(partial(conv_store.member_ids, conv_id=conv.id))
            await asyncio.to_thread(writer.begin_conversation, conv, sorted(members))
            after = 0
            while True:
                page, names = await ctx.db.read(
                    partial(
                        _messages,
                        org_id=job.org_id,
                        conv_id=conv.id,
                        after=after,
                        since=since,
                        until=until,
                    )
                )
                if not page:
                    break
                await asyncio.to_thread(writer.add_messages, page, names)
                after = page[-1].seq
                done += len(page)
                edited += sum(m.edited_at is not None for m in page)
                recalled += sum(m.recalled_at is not None for m in page)
                await ctx.db.write(
                    partial(
                        store.set_progress,
                        job_id=job.id,
                        status=store.RUNNING,
                        done=done,
                        total=total,
                    )
                )
                if on_progress is not None:
                    on_progress(done, total)
            after = 0
            while True:
                found, names = await ctx.db.read(
                    partial(
                        _membership,
                        org_id=job.org_id,
                        conv_id=conv.id,
                        after=after,
                        since=since,
                        until=until,
                    )
                )
                if not found:
                    break
                await asyncio.to_thread(writer.add_membership, found, names)
                after = found[-1].seq
                events += len(found)
        counts = Counts(
            conversations=len(convs),
            messages=done,
            edited=edited,
            recalled=recalled,
            membership_events=events,
            eml_files=0,
        )
        requester = None
        if job.requested_by is not None:
            names = await ctx.db.read(
                lambda tx: store.usernames(tx, job.org_id, [job.requested_by or ""])
            )
            requester = names.get(job.requested_by)
        manifest_head = {
            "export_id": job.id,
            "kind": "ediscovery",
            "format": "enclave-ediscovery-1",
            "organization_id": job.org_id,
            "query": query.wire(),
            "run_by": {
                "user_id": job.requested_by,
                "username": requester,
                "via": "api" if job.requested_by else "cli",
            },
            "started_at": job.created_at,
            "finished_at": ctx.clock.now_ms(),
            "counts": {},
        }
        manifest_head["counts"] = asdict(counts)  # eml_files: counted by `finish`
        manifest = await asyncio.to_thread(writer.finish, manifest_head)
    except BaseException:
        await asyncio.to_thread(writer.abort)
        raise
    return manifest


def _messages(
    tx: Tx, org_id: OrgId, conv_id: ConversationId, after: int, since: int, until: int
) -> tuple[list[store.ExportedMessage], dict[str, str]]:
    page = store.messages_page(tx, conv_id, after, since, until, BATCH)
    ids: list[str] = []
    for m in page:
        ids.append(m.sender_id)
        ids.extend(r.user_id for r in m.reactions)
    return page, store.usernames(tx, org_id, ids)


def _membership(
    tx: Tx, org_id: OrgId, conv_id: ConversationId, after: int, since: int, until: int
) -> tuple[list[store.MembershipEvent], dict[str, str]]:
    found = store.membership_events(tx, conv_id, since, until, after, BATCH)
    return found, store.usernames(tx, org_id, [e.actor_id for e in found])
