"""Consent to the organization's terms of use: admins publish versions, each person accepts the
current one; until then `auth.authenticate` answers `terms_acceptance_required`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from enclave.domain.errors import Conflict, InvalidInput
from enclave.domain.models import Terms, User
from enclave.domain.policy import OrgAction
from enclave.domain.signals import AccessChanged
from enclave.services import audit, gates, validate
from enclave.services.context import Changes, Context, write
from enclave.storage import terms as store
from enclave.storage.base import Tx, UniqueViolation

TEXT_MAX_CHARS = 50_000
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")


@dataclass(frozen=True)
class TermsState:
    """The organization's current terms (None: none published) and the caller's consent."""

    terms: Terms | None
    accepted_at: int | None


def _state(tx: Tx, actor: User) -> TermsState:
    terms = store.current(tx, actor.org_id)
    if terms is None:
        return TermsState(None, None)
    found = store.acceptance(tx, actor.id, terms.seq)
    return TermsState(terms, found.accepted_at if found else None)


async def current(ctx: Context, actor: User) -> TermsState:
    """Anyone in the organization may read its terms (also before accepting them)."""
    return await ctx.db.read(lambda tx: _state(tx, actor))


def _version(value: str) -> str:
    if not _VERSION.match(value):
        raise InvalidInput(
            "validation_error",
            "version: 1-32 characters of A-Z a-z 0-9 . _ -, not starting with a punctuation mark",
        )
    return value


async def publish(
    ctx: Context, actor: User, version: str, text: str, ip: str | None = None
) -> TermsState:
    """Publish new terms (owners and admins); everyone, the publisher included, must accept them
    before doing anything else. A version is published once."""
    gates.require_org(actor, OrgAction.MANAGE_TERMS)
    label = _version(version)
    body = validate.message_text(text, TEXT_MAX_CHARS)

    def work(ch: Changes) -> TermsState:
        if store.version_exists(ch.tx, actor.org_id, label):
            raise Conflict("terms_version_exists", f"version {label!r} was published already")
        before = store.current(ch.tx, actor.org_id)
        terms = Terms(
            org_id=actor.org_id,
            seq=(before.seq + 1) if before else 1,
            version=label,
            text=body,
            published_by=actor.id,
            published_at=ch.now,
        )
        try:
            store.publish(ch.tx, terms)
        except UniqueViolation:
            raise Conflict("terms_version_exists", "terms were published meanwhile") from None
        audit.record(
            ctx,
            ch,
            "terms.published",
            audit.Actor.of(actor, ip),
            target=audit.Target("org", actor.org_id),
            details={
                "version": label,
                "previous": before.version if before else None,
                "chars": len(body),
            },
        )
        return TermsState(terms, None)

    published = await write(ctx, work)
    # Nobody has accepted these yet: every live connection of the organization stops until its
    # person does (the hub closes them with 4003 `terms_acceptance_required`).
    await ctx.bus.publish(AccessChanged(actor.org_id))
    return published


async def accept(ctx: Context, actor: User, version: str, ip: str | None = None) -> TermsState:
    """Record the caller's consent to the current terms; `version` must name them (so that a
    person never accepts terms they were not shown). Accepting twice changes nothing."""

    def work(ch: Changes) -> TermsState:
        terms = store.current(ch.tx, actor.org_id)
        if terms is None or terms.version != version:
            raise Conflict("terms_outdated", "these are not the current terms; read them again")
        if store.accept(ch.tx, actor.id, actor.org_id, terms, ch.now):
            audit.record(
                ctx,
                ch,
                "terms.accepted",
                audit.Actor.of(actor, ip),
                target=audit.Target("user", actor.id),
                details={"version": terms.version},
            )
        return _state(ch.tx, actor)

    return await write(ctx, work)
