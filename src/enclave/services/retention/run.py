"""The retention run: per organization, per conversation, in batches.

A run works in batches of `retention.batch_size` messages, each its own transaction that also
records the run's progress (`retention_runs`); an interrupted run is resumed by the next one
with the same `as_of`, so it deletes exactly what the interrupted one would have, and its
receipt counts both parts. Runs take a lease (`job_leases`, renewed in every batch transaction),
so two servers, or a server and the CLI or the admin API, never purge at the same time: the
scheduled run is a queued job (`schedule.py`), but a manual run is not, so the queue's own
lease cannot keep them apart.

One organization's run is four steps (`_OrgRun`): `start` (resume the unfinished run or record
a new one), `purge` (each conversation: its batches, then its data keys), `rotate` (the KEK,
once, if keys were shredded) and `finish` (the `retention.purged` receipt).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any

from enclave import codec
from enclave.domain.errors import Conflict
from enclave.domain.events import MessagesPurged
from enclave.domain.ids import ConversationId, MessageId, UserId, conversation_scope, new_id
from enclave.domain.models import User
from enclave.domain.policy import OrgAction
from enclave.services import audit, gates
from enclave.services import keys as data_keys
from enclave.services.context import Changes, Context, write
from enclave.services.retention.plan import (
    DAY_MS,
    PAGE,
    ConversationPlan,
    Receipt,
    all_org_ids,
    days_for,
    plan_conversation,
    totals_of,
    wholly_held,
)
from enclave.storage import keys as key_store
from enclave.storage import retention as store
from enclave.storage.base import Tx

__all__ = ["LEASE", "Interrupted", "Progress", "run", "run_for"]

log = logging.getLogger(__name__)

LEASE = "retention"
"""The name of the run's lease in `job_leases`."""


@dataclass
class Progress:
    """What the run has done so far, saved with every batch (`retention_runs.progress`)."""

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

    def adopt(self, fresh: Progress) -> None:
        """Take over what a transaction saved (it re-read the progress from the database)."""
        self.conversations = fresh.conversations
        self.rotated = fresh.rotated
        self.batches = fresh.batches


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
        budget = _Budget(max_batches)
        for org_id in org_ids if org_ids is not None else await all_org_ids(ctx):
            org_run = _OrgRun(
                ctx,
                audit.Actor(org_id=org_id, user_id=actor.user_id, ip=actor.ip),
                org_id,
                lease,
                batch_size or ctx.config.retention.batch_size,
                budget,
            )
            receipt = await org_run.run()
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


class _Budget:
    """The batches a run may still do (`max_batches`; None: no limit)."""

    def __init__(self, left: int | None) -> None:
        self.left = left

    def spend(self) -> None:
        if self.left is None:
            return
        if self.left <= 0:
            raise Interrupted()
        self.left -= 1


class _OrgRun:
    """One organization's run: `start`, `purge` each conversation, `rotate`, `finish`."""

    def __init__(
        self,
        ctx: Context,
        actor: audit.Actor,
        org_id: str,
        lease: _Lease,
        batch: int,
        budget: _Budget,
    ) -> None:
        self.ctx = ctx
        self.actor = actor
        self.org_id = org_id
        self.lease = lease
        self.batch = batch
        self.budget = budget
        self.progress = Progress()
        self.default: int | None = None

    async def run(self) -> Receipt | None:
        row = await self.start()
        self.progress = Progress.loads(row.progress)
        self.default = await self.ctx.db.read(lambda tx: store.org_days(tx, self.org_id))
        after = ""
        while True:

            def read_page(tx: Tx, after: str = after) -> list[store.ConvPolicy]:
                return store.conversations_page(tx, self.org_id, after, PAGE)

            page = await self.ctx.db.read(read_page)
            for conv in page:
                days = days_for(self.default, conv)
                if days is not None:
                    await self.purge(row, conv, days)
            if len(page) < PAGE:
                break
            after = page[-1].id
        await self.rotate(row)
        return await self.finish(row)

    async def start(self) -> store.RunRow:
        """The organization's unfinished run (resumed with its `as_of`), or a new one."""

        def work(tx: Tx) -> store.RunRow:
            now = self.ctx.clock.now_ms()
            self.lease.renew(tx, now)
            found = store.unfinished_run(tx, self.org_id)
            if found is not None:
                return found
            created = store.RunRow(
                new_id(), self.org_id, now, now, self.actor.user_id, None, Progress().dumps()
            )
            store.insert_run(tx, created)
            return created

        return await self.ctx.db.write(work)

    async def purge(self, row: store.RunRow, conv: store.ConvPolicy, days: int) -> None:
        """Remove what is past retention in one conversation, batch by batch, then shred the
        data keys nothing kept needs any more."""
        cutoff = row.as_of - days * DAY_MS
        planned = await self.ctx.db.read(
            lambda tx: plan_conversation(self.ctx, tx, conv, days, row.as_of)
        )
        if planned.empty:
            return
        more = True
        while more:
            self.budget.spend()

            def work(ch: Changes) -> tuple[bool, Progress]:
                return self._batch(ch, row, conv, days, cutoff)

            more, fresh = await write(self.ctx, work)
            self.progress.adopt(fresh)
        await self.shred(row, conv, days, cutoff)

    def _batch(
        self, ch: Changes, row: store.RunRow, conv: store.ConvPolicy, days: int, cutoff: int
    ) -> tuple[bool, Progress]:
        """One batch, in one transaction: hide what holds keep, delete the rest, cut the event
        log, record a `messages.purged` event and the run's progress. True if more is left."""
        tx = ch.tx
        self.lease.renew(tx, ch.now)
        current = Progress.loads(store.run_progress(tx, row.id))
        wholly = wholly_held(tx, conv.id)
        slot = current.slot(conv.id, days, cutoff, wholly)
        hidden = store.hide_batch(tx, conv.id, cutoff, wholly, ch.now, self.batch)
        batch_rows = store.deletable_batch(tx, conv.id, cutoff, wholly, self.batch)
        doomed = [message_id for message_id, _ in batch_rows]
        seqs = [seq for _, seq in batch_rows]
        deleted = store.delete_messages(tx, doomed)
        last = store.last_seq(tx, conv.id)
        cut = max(store.purged_seq(tx, conv.id), store.event_cut(tx, conv.id, cutoff, last))
        events = 0 if wholly else store.delete_events_upto(tx, conv.id, cut, self.batch)
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
            ch.record(ConversationId(conv.id), purged, UserId(self.actor.user_id or ""))
        store.save_progress(tx, row.id, current.dumps())
        more = len(doomed) == self.batch or len(hidden) == self.batch or events == self.batch
        return more, current

    async def shred(
        self, row: store.RunRow, conv: store.ConvPolicy, days: int, cutoff: int
    ) -> None:
        """Shred the conversation's data keys of epochs before the cutoff that nothing kept
        (held messages, events after the cut) still needs; note them in the progress."""
        ctx = self.ctx
        scope = conversation_scope(conv.id)
        before_epoch = ctx.data_keys.epoch_of(scope, cutoff)

        def needed(tx: Tx) -> tuple[set[str], set[str]]:
            live = {k.id for k in key_store.live_in_scope(tx, scope, before_epoch)}
            if not live:
                return live, set()
            wholly = wholly_held(tx, conv.id)
            cut = store.purged_seq(tx, conv.id)
            return live, store.needed_key_ids(tx, conv.id, cutoff, wholly, cut)

        live, keep = await ctx.db.read(needed)
        if not live - keep:
            return
        fresh: list[Progress] = []

        def note(tx: Tx, ids: list[str]) -> None:
            self.lease.renew(tx, ctx.clock.now_ms())
            current = Progress.loads(store.run_progress(tx, row.id))
            slot = current.slot(conv.id, days, cutoff, False)
            slot.key_ids = sorted(set(slot.key_ids) | set(ids))
            store.save_progress(tx, row.id, current.dumps())
            fresh.append(current)

        await data_keys.shred(
            ctx,
            ctx.clock.now_ms(),
            self.actor,
            scope,
            before_epoch=before_epoch,
            rotate_kek=False,
            keep_key_ids=keep,
            also=note,
        )
        if fresh:
            self.progress.adopt(fresh[-1])

    async def rotate(self, row: store.RunRow) -> None:
        """Rotate the KEK once if the run shredded data keys, so a backup taken before the run
        cannot be read with the current keyring."""
        progress = self.progress
        shredded = any(c.key_ids for c in progress.conversations.values())
        if not shredded or progress.rotated:
            return
        ctx = self.ctx
        if isinstance(ctx.data_keys.provider, data_keys.RotatableKeys):
            rotation = await data_keys.rotate(
                ctx, ctx.clock.now_ms(), self.actor, grace_seconds=0.0
            )
            # The receipt says `kek_rotated` only when every old KEK is destroyed; if a server
            # kept one alive, the next run (or `enclave keys rotate`) finishes the job.
            progress.rotated = rotation.complete

        def rotated(tx: Tx) -> None:
            self.lease.renew(tx, ctx.clock.now_ms())
            store.save_progress(tx, row.id, progress.dumps())

        await ctx.db.write(rotated)

    async def finish(self, row: store.RunRow) -> Receipt:
        """Close the run and write its `retention.purged` receipt (none if nothing changed)."""
        ctx = self.ctx
        convs = sorted(
            (c for c in self.progress.conversations.values() if not c.empty),
            key=lambda c: c.conversation_id,
        )
        totals = totals_of(convs)

        def work(tx: Tx) -> int | None:
            now = ctx.clock.now_ms()
            self.lease.renew(tx, now)
            if not convs:  # nothing was removed or hidden: no receipt
                store.finish_run(tx, row.id, self.progress.dumps(), now)
                return None
            entry = audit.record(
                ctx,
                Changes(tx, now),
                "retention.purged",
                self.actor,
                target=audit.Target("org", self.org_id),
                details=self._receipt_details(row, convs, now),
            )
            store.finish_run(tx, row.id, self.progress.dumps(), now)
            return entry.seq

        seq = await ctx.db.write(work)
        log.info(
            "retention run %s in org %s: %d messages deleted, %d hidden for legal hold, "
            "%d events, %d data keys shredded",
            row.id,
            self.org_id,
            totals.messages,
            totals.hidden,
            totals.events,
            len(totals.key_ids),
        )
        return Receipt(
            self.org_id, row.id, row.as_of, self.default, totals, convs, self.progress.rotated, seq
        )

    def _receipt_details(
        self, row: store.RunRow, convs: list[ConversationPlan], now: int
    ) -> dict[str, Any]:
        totals = totals_of(convs)
        return {
            "run_id": row.id,
            "policy": {"default_days": self.default},
            "as_of": row.as_of,
            "started_at": row.started_at,
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
            "kek_rotated": self.progress.rotated,
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
        }
