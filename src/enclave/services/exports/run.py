"""The eDiscovery export itself: what a query selects, and writing it out.

A query selects conversations and a time range: `conversations` (default: every conversation of
the organization), narrowed by `people` to the conversations any of them is a member of or sent
a message in, and `since`/`until` (Unix ms, `until` exclusive) on the time a message was sent.
Everything in those conversations in that range is exported: every message with its full edit
history, reactions and thread structure; recalled messages with their last text (the row keeps
it sealed); and the conversations' creation and membership changes (`member.joined`, `left`,
`role_changed` from the event log). Files: see `services.exports.files`.

An export reads in bounded read transactions (500 messages each), records its progress in
`export_jobs`, and is audited when it finishes (`export.ediscovery` by the job, with the counts
and the number of files) or fails. The API's exports run as jobs of the queue
(`services.exports.jobs`, `run_into_files`: into `data_dir/exports/<id>/`, then `export.zip`);
the CLI (`enclave export`) runs the same code in its own process, writing into a directory of
the operator's choice (`run_to_directory`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from enclave.domain.errors import InvalidInput, NotFound
from enclave.domain.ids import ConversationId, OrgId, UserId, is_valid_id, new_id
from enclave.services import audit, gates
from enclave.services.context import Changes, Context, write
from enclave.services.exports.files import ExportWriter, make_private_dir, remove_tree, write_zip
from enclave.storage import accounts as account_store
from enclave.storage import conversations as conv_store
from enclave.storage import exports as store
from enclave.storage.base import Tx

__all__ = [
    "BATCH",
    "MAX_CONVERSATIONS",
    "MAX_PEOPLE",
    "Counts",
    "ExportQuery",
    "ProgressFn",
    "check_query",
    "exports_dir",
    "job_dir",
    "new_job",
    "operator_people",
    "record_failed",
    "record_finished",
    "resolve",
    "run_into_files",
    "run_to_directory",
    "zip_path",
]

BATCH = 500
"""Messages (or events) read per read transaction."""
MAX_PEOPLE = 100
MAX_CONVERSATIONS = 1000
_FOREVER = 2**62

ProgressFn = Callable[[int, int], None]


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

    @classmethod
    def of(cls, stored: dict[str, Any]) -> ExportQuery:
        """The query as `wire` stored it with its job."""
        return cls(
            people=tuple(stored.get("people", ())),
            conversations=tuple(stored.get("conversations", ())),
            since=stored.get("since"),
            until=stored.get("until"),
        )


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


def check_query(query: ExportQuery) -> ExportQuery:
    """The query without repeated ids; 422 `invalid_filter` if it asks too much or nothing."""
    if len(query.people) > MAX_PEOPLE or len(query.conversations) > MAX_CONVERSATIONS:
        raise InvalidInput("invalid_filter", "too many people or conversations in one export")
    if query.since is not None and query.until is not None and query.until <= query.since:
        raise InvalidInput("invalid_filter", "until must be after since")
    return replace(
        query,
        people=tuple(dict.fromkeys(query.people)),
        conversations=tuple(dict.fromkeys(query.conversations)),
    )


def resolve(tx: Tx, org_id: OrgId, query: ExportQuery) -> list[store.ConversationRef]:
    """The conversations the query selects; a person or conversation outside the organization
    fails as not found (the people through `gates.org_people`)."""
    gates.org_people(tx, org_id, list(query.people))
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


def new_job(
    ctx: Context,
    ch: Changes,
    org_id: OrgId,
    query: ExportQuery,
    started_by: audit.Actor,
    requested_by: UserId | None,
    out: Path | None = None,
) -> store.ExportJob:
    """Insert a queued export of `query` (checked, and resolved so that unknown people and
    conversations are refused now) and audit its start: `export.ediscovery`, stage `started`,
    by the person who asked (this is what the mass-export alert counts) or the operator."""
    resolve(ch.tx, org_id, query)
    created = store.ExportJob(
        id=new_id(),
        org_id=org_id,
        requested_by=requested_by,
        query={**query.wire(), "out": str(out)} if out is not None else query.wire(),
        status=store.QUEUED,
        done=0,
        total=0,
        error=None,
        created_at=ch.now,
        finished_at=None,
        expires_at=None,
    )
    store.insert_job(ch.tx, created)
    audit.record(
        ctx,
        ch,
        "export.ediscovery",
        started_by,
        target=audit.Target("export", created.id),
        details={"stage": "started", "query": query.wire()},
    )
    return created


async def run_into_files(ctx: Context, job: store.ExportJob) -> None:
    """Run an export of the API into `data_dir/exports/<id>/` and pack `export.zip`; whatever
    an earlier, interrupted run of it left there is removed first (the files are opened
    exclusively, and a half-written export must not be mixed into the new one)."""
    root = job_dir(ctx, job.id)
    await asyncio.to_thread(remove_tree, root)
    try:
        await asyncio.to_thread(make_private_dir, exports_dir(ctx))
        await asyncio.to_thread(make_private_dir, root)
        manifest = await _export(ctx, job, ExportQuery.of(job.query), root / "files", None)
        await asyncio.to_thread(write_zip, root / "files", zip_path(ctx, job.id))
    except Exception:
        await asyncio.to_thread(remove_tree, root)
        raise
    await record_finished(ctx, job, manifest)


async def record_finished(ctx: Context, job: store.ExportJob, manifest: dict[str, Any]) -> None:
    """Mark the export done (its files expire after `compliance.export_ttl_hours`; the CLI's
    directory is the operator's) and audit it, once however often it runs."""
    ttl_ms = ctx.config.compliance.export_ttl_hours * 3_600_000

    def work(ch: Changes) -> None:
        expires = ch.now + ttl_ms if job.requested_by is not None else None
        if not store.finish(ch.tx, job.id, store.DONE, ch.now, expires, None):
            return
        audit.record(
            ctx,
            ch,
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

    await write(ctx, work)


async def record_failed(ctx: Context, job_id: str, reason: str) -> None:
    """Mark an unfinished export failed and audit that (nothing if it had ended already)."""

    def work(ch: Changes) -> None:
        found = store.job_by_id(ch.tx, job_id)
        if found is None or not store.finish(ch.tx, job_id, store.FAILED, ch.now, None, reason):
            return
        audit.record(
            ctx,
            ch,
            "export.ediscovery",
            audit.Actor.operator(found.org_id),
            target=audit.Target("export", job_id),
            outcome="failure",
            details={"stage": "failed", "requested_by": found.requested_by, "reason": reason},
        )

    await write(ctx, work)


# -- the CLI: in this process, into a directory --------------------------------------------------


async def run_to_directory(
    ctx: Context,
    org_id: OrgId,
    query: ExportQuery,
    out: Path,
    on_progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """The operator's export (`enclave export`): one organization's data (the CLI's `--org`,
    `orgs.operator_org`), written into `out` (created with mode 0700; it must be empty) in this
    process, not on the queue; returns the manifest."""
    query = check_query(query)
    if await asyncio.to_thread(lambda: out.exists() and any(out.iterdir())):
        raise FileExistsError(f"{out} is not empty")

    def work(ch: Changes) -> store.ExportJob:
        org = account_store.org_by_id(ch.tx, org_id)
        if org is None:
            raise NotFound("organization")
        return new_job(ctx, ch, org.id, query, audit.Actor.operator(org.id), None, out)

    job = await write(ctx, work)
    try:
        manifest = await _export(ctx, job, query, out, on_progress)
    except Exception as exc:
        await record_failed(ctx, job.id, type(exc).__name__)
        raise
    await record_finished(ctx, job, manifest)
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
        convs = resolve(tx, job.org_id, query)
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
