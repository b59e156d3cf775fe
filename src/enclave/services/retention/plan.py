"""The plan of a retention run: what it would remove in an organization now (or at `as_of`),
per conversation, changing nothing. The run (`run.py`) plans each conversation the same way
before removing anything, so the dry run and the run agree field by field."""

from __future__ import annotations

from enclave.domain.ids import conversation_scope
from enclave.domain.models import User
from enclave.domain.policy import OrgAction
from enclave.domain.retention import ConversationPlan, Plan, Receipt, Totals, totals_of
from enclave.services import gates
from enclave.services.context import Context
from enclave.storage import holds as hold_store
from enclave.storage import keys as key_store
from enclave.storage import retention as store
from enclave.storage.base import Tx

__all__ = [
    "DAY_MS",
    "PAGE",
    "ConversationPlan",
    "Plan",
    "Receipt",
    "Totals",
    "all_org_ids",
    "days_for",
    "plan",
    "plan_conversation",
    "preview",
    "totals_of",
    "wholly_held",
]

DAY_MS = 86_400_000
PAGE = 500
"""Conversations read per transaction while planning or running."""


def days_for(default: int | None, conv: store.ConvPolicy) -> int | None:
    """The conversation's retention: its override, else the organization's default."""
    return conv.override_days if conv.has_override else default


def wholly_held(tx: Tx, conv_id: str) -> bool:
    return hold_store.conversation_wholly_held(tx, conv_id)


def plan_conversation(
    ctx: Context, tx: Tx, conv: store.ConvPolicy, days: int, as_of: int
) -> ConversationPlan:
    """What a run at `as_of` would still remove in one conversation kept `days` days."""
    cutoff = as_of - days * DAY_MS
    wholly = wholly_held(tx, conv.id)
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
            rows = store.conversations_page(tx, org_id, after, PAGE)
            found = []
            for conv in rows:
                days = days_for(default, conv)
                if days is None:
                    continue
                planned = plan_conversation(ctx, tx, conv, days, as_of)
                if not planned.empty:
                    found.append(planned)
            return found, rows[-1].id if len(rows) == PAGE else None

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
