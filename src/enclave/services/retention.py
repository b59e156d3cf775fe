"""Retention: policies, the plan of a run (dry run), the run itself, and its schedule.

An organization has a default (keep forever, or N days) and conversations may override it
(forever, or N days). A run removes, per conversation, what was created before its cutoff
(`as_of - days`), as described in `enclave.storage.retention`: expired messages with their edit
history, mentions and reactions are deleted, those a legal hold preserves are hidden instead;
the event log is cut up to the last event before the cutoff (a client resuming from an older
cursor is told `resync`); the conversation's data keys of epochs wholly before the cutoff that
nothing kept still needs are shredded, and the KEK is rotated once at the end of the run, so a
backup taken before the run cannot be read with the current keyring; a `retention.purged`
receipt goes to the audit log. Connected clients get a `messages.purged` event per batch.

A run works in batches of `retention.batch_size` messages, each its own transaction that also
records the run's progress (`retention_runs`); an interrupted run is resumed by the next one
with the same `as_of`, so it deletes exactly what the interrupted one would have, and its
receipt counts both parts. Runs take a lease (`job_leases`, renewed in every batch transaction),
so two servers, or a server and the CLI, never purge at the same time.

`plan()` reads exactly the same conditions without changing anything (`enclave retention run
--dry-run`, `GET /api/v1/org/retention/preview`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from enclave import codec
from enclave.domain.errors import Conflict, InvalidInput
from enclave.domain.events import MessagesPurged
from enclave.domain.ids import ConversationId, MessageId, UserId, conversation_scope, new_id
from enclave.domain.models import User
from enclave.domain.policy import ConvAction, OrgAction
from enclave.services import audit, gates
from enclave.services import keys as data_keys
from enclave.services.context import Changes, Context, write
from enclave.storage import holds as hold_store
from enclave.storage import keys as key_store
from enclave.storage import retention as store
from enclave.storage.base import Tx

log = logging.getLogger(__name__)

DAY_MS = 86_400_000
MAX_DAYS = 36_500
"""The longest finite retention (100 years)."""
LEASE = "retention"
_PAGE = 500
"""Conversations read per transaction while planning or running."""
OVERRIDES_SHOWN = 1000


# -- policies ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    default_days: int | None
    """None: keep forever."""
    overrides: list[store.Override]


def _check_days(days: int | None) -> int | None:
    if days is not None and not 1 <= days <= MAX_DAYS:
        raise InvalidInput("invalid_retention", f"days must be between 1 and {MAX_DAYS}, or null")
    return days


async def policy(ctx: Context, actor: User) -> Policy:
    """The organization's default and overrides (owners, admins, compliance officers)."""
    gates.require_org(actor, OrgAction.VIEW_RETENTION)

    def work(tx: Tx) -> Policy:
        return Policy(
            store.org_days(tx, actor.org_id),
            store.overrides_of_org(tx, actor.org_id, OVERRIDES_SHOWN),
        )

    return await ctx.db.read(work)


async def set_default(
    ctx: Context, actor: User, days: int | None, *, ip: str | None = None
) -> Policy:
    """Set the organization's default: `days`, or None to keep forever (owners and admins)."""
    gates.require_org(actor, OrgAction.MANAGE_RETENTION)
    _check_days(days)

    def work(ch: Changes) -> Policy:
        before = store.org_days(ch.tx, actor.org_id)
        store.set_org_days(ch.tx, actor.org_id, days, actor.id, ch.now)
        if before != days:
            audit.record(
                ctx,
                ch,
                "retention.policy_changed",
                audit.Actor.of(actor, ip),
                target=audit.Target("org", actor.org_id),
                details={"default_days": {"from": before, "to": days}},
            )
        return Policy(days, store.overrides_of_org(ch.tx, actor.org_id, OVERRIDES_SHOWN))

    return await write(ctx, work)


@dataclass(frozen=True)
class ConversationRetention:
    conversation_id: str
    mode: str
    """`default` (the organization's), `forever` or `days`."""
    days: int | None
    effective_days: int | None


async def set_conversation(
    ctx: Context,
    actor: User,
    conv_id: str,
    mode: str,
    days: int | None,
    *,
    ip: str | None = None,
) -> ConversationRetention:
    """Override the default for one conversation (owners and admins, for conversations they can
    see): `mode` `default` removes the override, `forever` keeps everything, `days` keeps `days`."""
    gates.require_org(actor, OrgAction.MANAGE_RETENTION)
    if mode not in ("default", "forever", "days"):
        raise InvalidInput("invalid_retention", "mode must be default, forever or days")
    if (mode == "days") != (days is not None):
        raise InvalidInput("invalid_retention", "days is required with mode days, and only then")
    _check_days(days)

    def work(ch: Changes) -> ConversationRetention:
        conv, _ = gates.conversation(ch.tx, actor, conv_id, ConvAction.VIEW, allow_archived=True)
        before = store.override_of(ch.tx, conv.id)
        if mode == "default":
            store.clear_override(ch.tx, conv.id)
        else:
            store.set_override(ch.tx, conv.id, days, actor.id, ch.now)
        old = "default" if before is None else ("forever" if before.days is None else "days")
        if (old, None if before is None else before.days) != (mode, days):
            audit.record(
                ctx,
                ch,
                "retention.override_changed",
                audit.Actor.of(actor, ip),
                target=audit.Target("conversation", conv.id),
                details={
                    "from": {"mode": old, "days": None if before is None else before.days},
                    "to": {"mode": mode, "days": days},
                },
            )
        default = store.org_days(ch.tx, actor.org_id)
        return ConversationRetention(conv.id, mode, days, default if mode == "default" else days)

    return await write(ctx, work)


# -- the plan ----------------------------------------------------------------------------------


@dataclass
class ConversationPlan:
    conversation_id: str
    days: int
    cutoff: int
    """Unix ms: what was created before this is past retention."""
    held: bool
    """The whole conversation is under legal hold: nothing of it is deleted."""
    messages: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    versions: int = 0
    reactions: int = 0
    mentions: int = 0
    hidden: int = 0
    """Messages past retention that a legal hold keeps: hidden from members, not deleted."""
    events: int = 0
    events_up_to_seq: int = 0
    """The event log ends up cut after this seq (events up to it are deleted, or hidden)."""
    key_ids: list[str] = field(default_factory=list)

    def add(self, other: ConversationPlan) -> None:
        self.messages += other.messages
        self.versions += other.versions
        self.reactions += other.reactions
        self.mentions += other.mentions
        self.hidden += other.hidden
        self.events += other.events
        self.events_up_to_seq = max(self.events_up_to_seq, other.events_up_to_seq)
        for seq in (other.first_seq, other.last_seq):
            if seq is not None:
                self.first_seq = seq if self.first_seq is None else min(self.first_seq, seq)
                self.last_seq = seq if self.last_seq is None else max(self.last_seq, seq)
        self.key_ids = sorted(set(self.key_ids) | set(other.key_ids))

    @property
    def empty(self) -> bool:
        return not (self.messages or self.hidden or self.events or self.key_ids)


@dataclass
class Totals:
    conversations: int = 0
    messages: int = 0
    versions: int = 0
    reactions: int = 0
    mentions: int = 0
    hidden: int = 0
    events: int = 0
    files: int = 0
    """Attachments do not exist yet; always 0."""
    key_ids: list[str] = field(default_factory=list)


def totals_of(convs: list[ConversationPlan]) -> Totals:
    t = Totals()
    for c in convs:
        if c.empty:
            continue
        t.conversations += 1
        t.messages += c.messages
        t.versions += c.versions
        t.reactions += c.reactions
        t.mentions += c.mentions
        t.hidden += c.hidden
        t.events += c.events
        t.key_ids.extend(c.key_ids)
    t.key_ids.sort()
    return t


@dataclass
class Plan:
    org_id: str
    as_of: int
    default_days: int | None
    conversations: list[ConversationPlan]
    """Only conversations where something would happen, in id order."""

    @property
    def totals(self) -> Totals:
        return totals_of(self.conversations)


def _days_for(default: int | None, conv: store.ConvPolicy) -> int | None:
    return conv.override_days if conv.has_override else default


def _wholly_held(tx: Tx, conv_id: str) -> bool:
    return hold_store.conversation_wholly_held(tx, conv_id)


def _plan_conversation(
    ctx: Context, tx: Tx, conv: store.ConvPolicy, days: int, as_of: int
) -> ConversationPlan:
    cutoff = as_of - days * DAY_MS
    wholly = _wholly_held(tx, conv.id)
    counts = store.planned_messages(tx, conv.id, cutoff, wholly)
    done_seq = store.purged_seq(tx, conv.id)
    cut = max(done_seq, store.event_cut(tx, conv.id, cutoff, conv.last_seq))
    scope = conversation_scope(conv.id)
    before_epoch = ctx.data_keys.epoch_of(scope, cutoff)
    live = {k.id for k in key_store.live_in_scope(tx, scope, before_epoch)}
    needed = store.needed_key_ids(tx, conv.id, cutoff, wholly, cut) if live else set()
    return ConversationPlan(
        conversation_id=conv.id,
        days=days,
        cutoff=cutoff,
        held=wholly,
        messages=counts.messages,
        first_seq=counts.first_seq,
        last_seq=counts.last_seq,
        versions=counts.versions,
        reactions=counts.reactions,
        mentions=counts.mentions,
        hidden=counts.hidden,
        events=0 if wholly else store.count_events_upto(tx, conv.id, cut),
        events_up_to_seq=cut,
        key_ids=sorted(live - needed),
    )


async def _org_plan(ctx: Context, org_id: str, as_of: int) -> Plan:
    default = await ctx.db.read(lambda tx: store.org_days(tx, org_id))
    convs: list[ConversationPlan] = []
    after = ""
    while True:

        def page(tx: Tx, after: str = after) -> tuple[list[ConversationPlan], str | None]:
            rows = store.conversations_page(tx, org_id, after, _PAGE)
            found = []
            for conv in rows:
                days = _days_for(default, conv)
                if days is None:
                    continue
                planned = _plan_conversation(ctx, tx, conv, days, as_of)
                if not planned.empty:
                    found.append(planned)
            return found, rows[-1].id if len(rows) == _PAGE else None

        found, after_next = await ctx.db.read(page)
        convs.extend(found)
        if after_next is None:
            return Plan(org_id, as_of, default, convs)
        after = after_next


async def plan(ctx: Context, org_id: str, *, as_of: int | None = None) -> Plan:
    """What a run would do in this organization now (or at `as_of`), changing nothing. An
    unfinished run's `as_of` is used when there is one, since the next run resumes it."""
    if as_of is None:
        unfinished = await ctx.db.read(lambda tx: store.unfinished_run(tx, org_id))
        as_of = unfinished.as_of if unfinished else ctx.clock.now_ms()
    return await _org_plan(ctx, org_id, as_of)


async def preview(ctx: Context, actor: User) -> Plan:
    """The dry run for the actor's organization (owners, admins, compliance officers)."""
    gates.require_org(actor, OrgAction.VIEW_RETENTION)
    return await plan(ctx, actor.org_id)


async def all_org_ids(ctx: Context) -> list[str]:
    return await ctx.db.read(store.org_ids)


# -- the run -----------------------------------------------------------------------------------


@dataclass
class Progress:
    conversations: dict[str, ConversationPlan] = field(default_factory=dict)
    rotated: bool = False
    batches: int = 0

    def dumps(self) -> str:
        return codec.dumps_text(
            {
                "conversations": {k: asdict(v) for k, v in self.conversations.items()},
                "rotated": self.rotated,
                "batches": self.batches,
            }
        )

    @classmethod
    def loads(cls, text: str) -> Progress:
        raw = codec.loads(text)
        assert isinstance(raw, dict)
        return cls(
            conversations={
                k: ConversationPlan(**v) for k, v in dict(raw.get("conversations", {})).items()
            },
            rotated=bool(raw.get("rotated", False)),
            batches=int(raw.get("batches", 0)),
        )

    def slot(self, conv_id: str, days: int, cutoff: int, held: bool) -> ConversationPlan:
        found = self.conversations.get(conv_id)
        if found is None:
            found = ConversationPlan(conv_id, days, cutoff, held)
            self.conversations[conv_id] = found
        return found


@dataclass(frozen=True)
class Receipt:
    org_id: str
    run_id: str
    as_of: int
    default_days: int | None
    totals: Totals
    conversations: list[ConversationPlan]
    kek_rotated: bool
    audit_seq: int | None
    """The `retention.purged` entry; None when the run removed nothing (no receipt then)."""


class Interrupted(Exception):
    """The run stopped after `max_batches` (tests); the next run resumes it."""


class _Lease:
    """The cluster-wide claim on running retention, renewed inside every batch transaction."""

    def __init__(self, ctx: Context, holder: str) -> None:
        self.ctx = ctx
        self.holder = holder

    def renew(self, tx: Tx, now: int) -> None:
        ttl = self.ctx.config.retention.lease_seconds * 1000
        if not store.take_lease(tx, LEASE, self.holder, now, now + ttl):
            raise Conflict("retention_running", "a retention run is in progress elsewhere")

    async def take(self) -> None:
        now = self.ctx.clock.now_ms()
        await self.ctx.db.write(lambda tx: self.renew(tx, now))

    async def release(self) -> None:
        await self.ctx.db.write(lambda tx: store.release_lease(tx, LEASE, self.holder))


async def run(
    ctx: Context,
    actor: audit.Actor,
    *,
    org_ids: list[str] | None = None,
    holder: str | None = None,
    batch_size: int | None = None,
    max_batches: int | None = None,
) -> list[Receipt]:
    """Run retention for the given organizations (all by default) under the cluster lease;
    raise Conflict `retention_running` if another run holds it."""
    lease = _Lease(ctx, holder or f"run-{secrets.token_hex(8)}")
    await lease.take()
    try:
        receipts = []
        budget = [max_batches]
        for org_id in org_ids if org_ids is not None else await all_org_ids(ctx):
            receipt = await _run_org(
                ctx, actor, org_id, lease, batch_size or ctx.config.retention.batch_size, budget
            )
            if receipt is not None:
                receipts.append(receipt)
        return receipts
    finally:
        await lease.release()


async def run_for(ctx: Context, actor: User, *, ip: str | None = None) -> Receipt | None:
    """Run retention now for the actor's organization (owners and admins)."""
    gates.require_org(actor, OrgAction.MANAGE_RETENTION)
    receipts = await run(ctx, audit.Actor.of(actor, ip), org_ids=[actor.org_id])
    return receipts[0] if receipts else None


async def _run_org(
    ctx: Context,
    actor: audit.Actor,
    org_id: str,
    lease: _Lease,
    batch: int,
    budget: list[int | None],
) -> Receipt | None:
    org_actor = audit.Actor(org_id=org_id, user_id=actor.user_id, ip=actor.ip)

    def start(tx: Tx) -> store.RunRow:
        lease.renew(tx, ctx.clock.now_ms())
        found = store.unfinished_run(tx, org_id)
        if found is not None:
            return found
        now = ctx.clock.now_ms()
        created = store.RunRow(new_id(), org_id, now, now, actor.user_id, None, Progress().dumps())
        store.insert_run(tx, created)
        return created

    run_row = await ctx.db.write(start)
    progress = Progress.loads(run_row.progress)
    default = await ctx.db.read(lambda tx: store.org_days(tx, org_id))
    after = ""
    while True:

        def read_page(tx: Tx, after: str = after) -> list[store.ConvPolicy]:
            return store.conversations_page(tx, org_id, after, _PAGE)

        page = await ctx.db.read(read_page)
        for conv in page:
            days = _days_for(default, conv)
            if days is not None:
                await _run_conversation(
                    ctx, org_actor, run_row, progress, lease, conv, days, batch, budget
                )
        if len(page) < _PAGE:
            break
        after = page[-1].id
    shredded = any(c.key_ids for c in progress.conversations.values())
    if shredded and not progress.rotated:
        if isinstance(ctx.data_keys.provider, data_keys.RotatableKeys):
            rotation = await data_keys.rotate(ctx, ctx.clock.now_ms(), org_actor, grace_seconds=0.0)
            # The receipt says `kek_rotated` only when every old KEK is destroyed; if a server
            # kept one alive, the next run (or `enclave keys rotate`) finishes the job.
            progress.rotated = rotation.complete

        def rotated(tx: Tx) -> None:
            lease.renew(tx, ctx.clock.now_ms())
            store.save_progress(tx, run_row.id, progress.dumps())

        await ctx.db.write(rotated)
    convs = sorted(
        (c for c in progress.conversations.values() if not c.empty),
        key=lambda c: c.conversation_id,
    )
    totals = totals_of(convs)

    def finish(tx: Tx) -> int | None:
        now = ctx.clock.now_ms()
        lease.renew(tx, now)
        if not convs:  # nothing was removed or hidden: no receipt
            store.finish_run(tx, run_row.id, progress.dumps(), now)
            return None
        entry = audit.record(
            ctx,
            Changes(tx, now),
            "retention.purged",
            org_actor,
            target=audit.Target("org", org_id),
            details={
                "run_id": run_row.id,
                "policy": {"default_days": default},
                "as_of": run_row.as_of,
                "started_at": run_row.started_at,
                "finished_at": now,
                "conversations": totals.conversations,
                "messages": totals.messages,
                "versions": totals.versions,
                "reactions": totals.reactions,
                "mentions": totals.mentions,
                "events": totals.events,
                "hidden_for_hold": totals.hidden,
                "files": totals.files,
                "key_ids": totals.key_ids,
                "kek_rotated": progress.rotated,
                "per_conversation": [
                    {
                        "conversation_id": c.conversation_id,
                        "days": c.days,
                        "cutoff": c.cutoff,
                        "messages": c.messages,
                        "first_seq": c.first_seq,
                        "last_seq": c.last_seq,
                        "hidden_for_hold": c.hidden,
                        "events_up_to_seq": c.events_up_to_seq,
                        "key_ids": c.key_ids,
                    }
                    for c in convs
                ],
            },
        )
        store.finish_run(tx, run_row.id, progress.dumps(), now)
        return entry.seq

    seq = await ctx.db.write(finish)
    log.info(
        "retention run %s in org %s: %d messages deleted, %d hidden for legal hold, "
        "%d events, %d data keys shredded",
        run_row.id,
        org_id,
        totals.messages,
        totals.hidden,
        totals.events,
        len(totals.key_ids),
    )
    return Receipt(org_id, run_row.id, run_row.as_of, default, totals, convs, progress.rotated, seq)


async def _run_conversation(
    ctx: Context,
    actor: audit.Actor,
    run_row: store.RunRow,
    progress: Progress,
    lease: _Lease,
    conv: store.ConvPolicy,
    days: int,
    batch: int,
    budget: list[int | None],
) -> None:
    cutoff = run_row.as_of - days * DAY_MS
    conv_id = ConversationId(conv.id)
    planned = await ctx.db.read(lambda tx: _plan_conversation(ctx, tx, conv, days, run_row.as_of))
    if planned.empty:
        return
    while True:
        if budget[0] is not None:
            if budget[0] <= 0:
                raise Interrupted()
            budget[0] -= 1

        def work(ch: Changes) -> tuple[bool, Progress]:
            tx = ch.tx
            lease.renew(tx, ch.now)
            current = Progress.loads(store.run_progress(tx, run_row.id))
            wholly = _wholly_held(tx, conv.id)
            slot = current.slot(conv.id, days, cutoff, wholly)
            hidden = store.hide_batch(tx, conv.id, cutoff, wholly, ch.now, batch)
            batch_rows = store.deletable_batch(tx, conv.id, cutoff, wholly, batch)
            doomed = [message_id for message_id, _ in batch_rows]
            seqs = [seq for _, seq in batch_rows]
            deleted = store.delete_messages(tx, doomed)
            last = store.last_seq(tx, conv.id)
            cut = max(store.purged_seq(tx, conv.id), store.event_cut(tx, conv.id, cutoff, last))
            events = 0 if wholly else store.delete_events_upto(tx, conv.id, cut, batch)
            if cut > store.purged_seq(tx, conv.id):
                store.advance_purged_seq(tx, conv.id, cut, ch.now)
            step = ConversationPlan(
                conv.id,
                days,
                cutoff,
                wholly,
                messages=deleted.messages,
                first_seq=min(seqs) if seqs else None,
                last_seq=max(seqs) if seqs else None,
                versions=deleted.versions,
                reactions=deleted.reactions,
                mentions=deleted.mentions,
                hidden=len(hidden),
                events=events,
                events_up_to_seq=cut,
            )
            slot.add(step)
            slot.held = slot.held or wholly
            current.batches += 1
            if doomed or hidden:
                purged = MessagesPurged(tuple(MessageId(m) for m in doomed + hidden), cut)
                ch.record(conv_id, purged, UserId(actor.user_id or ""))
            store.save_progress(tx, run_row.id, current.dumps())
            more = len(doomed) == batch or len(hidden) == batch or events == batch
            return more, current

        more, fresh = await write(ctx, work)
        _adopt(progress, fresh)
        if not more:
            break
    await _shred_conversation(ctx, actor, run_row, progress, lease, conv, days, cutoff)


def _adopt(progress: Progress, fresh: Progress) -> None:
    progress.conversations = fresh.conversations
    progress.rotated = fresh.rotated
    progress.batches = fresh.batches


async def _shred_conversation(
    ctx: Context,
    actor: audit.Actor,
    run_row: store.RunRow,
    progress: Progress,
    lease: _Lease,
    conv: store.ConvPolicy,
    days: int,
    cutoff: int,
) -> None:
    scope = conversation_scope(conv.id)
    before_epoch = ctx.data_keys.epoch_of(scope, cutoff)

    def needed(tx: Tx) -> tuple[set[str], set[str]]:
        live = {k.id for k in key_store.live_in_scope(tx, scope, before_epoch)}
        if not live:
            return live, set()
        wholly = _wholly_held(tx, conv.id)
        cut = store.purged_seq(tx, conv.id)
        return live, store.needed_key_ids(tx, conv.id, cutoff, wholly, cut)

    live, keep = await ctx.db.read(needed)
    if not live - keep:
        return
    fresh: list[Progress] = []

    def note(tx: Tx, ids: list[str]) -> None:
        lease.renew(tx, ctx.clock.now_ms())
        current = Progress.loads(store.run_progress(tx, run_row.id))
        slot = current.slot(conv.id, days, cutoff, False)
        slot.key_ids = sorted(set(slot.key_ids) | set(ids))
        store.save_progress(tx, run_row.id, current.dumps())
        fresh.append(current)

    await data_keys.shred(
        ctx,
        ctx.clock.now_ms(),
        actor,
        scope,
        before_epoch=before_epoch,
        rotate_kek=False,
        keep_key_ids=keep,
        also=note,
    )
    if fresh:
        _adopt(progress, fresh[-1])


# -- output ------------------------------------------------------------------------------------


def plan_wire(p: Plan) -> dict[str, Any]:
    t = p.totals
    return {
        "org_id": p.org_id,
        "as_of": p.as_of,
        "default_days": p.default_days,
        "totals": asdict(t),
        "conversations": [asdict(c) for c in p.conversations],
    }


def receipt_wire(r: Receipt) -> dict[str, Any]:
    return {
        "org_id": r.org_id,
        "run_id": r.run_id,
        "as_of": r.as_of,
        "default_days": r.default_days,
        "totals": asdict(r.totals),
        "conversations": [asdict(c) for c in r.conversations],
        "kek_rotated": r.kek_rotated,
        "audit_seq": r.audit_seq,
    }


# -- the schedule ------------------------------------------------------------------------------


async def scheduler(ctx: Context, *, sleep: Callable[[float], Any] = asyncio.sleep) -> None:
    """Run retention every `retention.interval_minutes` (0: never) until cancelled. Every node
    runs this loop; the lease makes one of them do the work each time."""
    minutes = ctx.config.retention.interval_minutes
    if minutes <= 0:
        return
    holder = f"node-{secrets.token_hex(8)}"
    while True:
        await sleep(minutes * 60)
        try:
            await run(ctx, audit.Actor.operator(), holder=holder)
        except Conflict:
            log.info("retention: another node is running it")
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("retention run failed; the next one resumes it")


def start_scheduler(ctx: Context) -> asyncio.Task[None] | None:
    """Start the periodic run (None if disabled); cancel the task on shutdown."""
    if ctx.config.retention.interval_minutes <= 0:
        return None
    return asyncio.ensure_future(scheduler(ctx))


async def stop_scheduler(task: asyncio.Task[None] | None) -> None:
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
