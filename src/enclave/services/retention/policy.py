"""Retention policies: the organization's default (forever, or N days) and per-conversation
overrides, read by owners, admins and compliance officers and set by owners and admins, each
change audited."""

from __future__ import annotations

from dataclasses import dataclass

from enclave.domain.errors import InvalidInput
from enclave.domain.models import User
from enclave.domain.policy import ConvAction, OrgAction
from enclave.services import audit, gates
from enclave.services.context import Changes, Context, write
from enclave.storage import retention as store
from enclave.storage.base import Tx

__all__ = [
    "MAX_DAYS",
    "OVERRIDES_SHOWN",
    "ConversationRetention",
    "Policy",
    "policy",
    "set_conversation",
    "set_default",
]

MAX_DAYS = 36_500
"""The longest finite retention (100 years)."""
OVERRIDES_SHOWN = 1000


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
