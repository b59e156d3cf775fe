"""The audit log: one entry per security-relevant or administrative action, chained.

Entries are appended in the same transaction as the change they describe (so neither exists
without the other) and chained: each entry's `hash` is an HMAC-SHA256, under the keyring's audit
key, of its own content and the previous entry's hash. Anyone who edits, deletes, inserts or
reorders rows without the key breaks the chain, and `verify` finds where. Cutting entries off
the *end* and moving the head row back to match leaves a shorter chain that is still valid; only
an anchor kept outside the database (`enclave audit head`, then `verify --anchor`) shows it.

Every appended entry is counted in the metrics and handed to the alert rules
(`services.alerts`), which may append an `alert.<rule>` entry in the same transaction.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from enclave.crypto import keyring
from enclave.domain.audit import GENESIS, AuditEntry
from enclave.domain.errors import InvalidInput
from enclave.domain.models import User
from enclave.domain.policy import OrgAction
from enclave.services import alerts, gates, metrics
from enclave.services.context import Changes, Context, write
from enclave.storage import audit as store
from enclave.storage.base import Database, Tx

log = logging.getLogger("enclave.security")

PAGE_MAX = 200
"""Most entries one API page returns."""
VERIFY_PAGE = 1000
"""Entries read per read transaction while verifying: memory stays flat however long the log."""
_REORDER_SEARCH = 512
"""How far (in seqs, either way) verification looks for the true place of a misplaced entry."""
_REORDER_SEARCHES = 100
"""How many non-matching entries are searched for; beyond that they are reported `altered`."""
PROBLEMS_KEPT = 1000
"""Problems kept in a `Verification` (all are counted, and streamed to `on_problem`)."""


@dataclass(frozen=True)
class Actor:
    """Who did it and from where; `None` fields are unknown (the CLI has no address)."""

    org_id: str | None = None
    user_id: str | None = None
    ip: str | None = None

    @classmethod
    def of(cls, user: User, ip: str | None = None) -> Actor:
        """An action taken by `user` (in their organization)."""
        return cls(org_id=user.org_id, user_id=user.id, ip=ip)

    @classmethod
    def operator(cls, org_id: str | None = None, ip: str | None = None) -> Actor:
        """No person: the operator at the server's shell (the CLI) or the server itself (a job,
        a schedule), acting in `org_id`'s organization (None: in none in particular)."""
        return cls(org_id=org_id, ip=ip)


@dataclass(frozen=True)
class Target:
    """What the action was done to: a type (`user`, `conversation`, `export`, ...) and its id."""

    type: str
    id: str | None

    @classmethod
    def user(cls, user: User) -> Target:
        return cls("user", user.id)


def record(
    ctx: Context,
    ch: Changes,
    action: str,
    actor: Actor,
    *,
    target: Target | None = None,
    outcome: str = "success",
    details: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Append one chained entry, dated `ch.now`, inside the write transaction of the change it
    describes (and any alert it raises). The one way anything is audited."""
    last_seq, last_hash = store.lock_head(ch.tx)
    entry = AuditEntry(
        seq=last_seq + 1,
        at=ch.now,
        action=action,
        org_id=actor.org_id,
        actor_id=actor.user_id,
        target_type=target.type if target else None,
        target_id=target.id if target else None,
        ip=actor.ip,
        outcome=outcome,
        details=dict(details or {}),
        prev_hash=last_hash,
    )
    entry = replace(entry, hash=keyring.mac(ctx.keys.audit_key(), entry.chained_bytes()))
    store.append(ch.tx, entry)
    metrics.audit_entry(action, outcome)
    if alerts.is_failed_login(entry):
        metrics.failed_login()
    for alert in ctx.alerts.observe(entry):
        _raise_alert(ctx, ch, entry, alert)
    return entry


def _raise_alert(ctx: Context, ch: Changes, cause: AuditEntry, alert: alerts.Alert) -> None:
    """Append the `alert.<rule>` entry, count it, and log it (ids and addresses only)."""
    window_s = alert.window_ms // 1000
    record(
        ctx,
        ch,
        f"alert.{alert.rule}",
        Actor.operator(cause.org_id, alert.target_id if alert.target_type == "ip" else None),
        target=Target(alert.target_type, alert.target_id),
        outcome="alert",
        details={
            "count": alert.count,
            "window_seconds": window_s,
            "first_at": alert.first_at,
            "trigger_seq": cause.seq,
        },
    )
    metrics.alert_raised(alert.rule)
    log.warning(
        "alert %s: %d entries within %d s for %s %s (audit seq %d)",
        alert.rule,
        alert.count,
        window_s,
        alert.target_type,
        alert.target_id,
        cause.seq,
    )


# -- verification -------------------------------------------------------------------------------

KINDS: dict[str, str] = {
    "altered": "the entry's content or hash does not match (edited, or forged without the key)",
    "missing": "entries are missing: the seqs jump (deleted rows)",
    "reordered": "the entry is authentic but belongs at another seq (rows moved or swapped)",
    "broken_link": "an authentic entry that does not follow the one before it (another chain)",
    "truncated": "the head row is ahead of the last entry: entries were cut off the end",
    "head": "the head row does not match the last entry",
    "anchor": "an anchor recorded outside the database is not in the chain",
}
"""Every kind of problem verification reports, with what it means."""


@dataclass(frozen=True)
class Problem:
    seq: int
    kind: str
    """One of `KINDS`."""
    detail: str = ""


@dataclass
class Verification:
    """The result of walking the chain."""

    checked: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    problems: list[Problem] = field(default_factory=list)
    """The first `PROBLEMS_KEPT` problems."""
    problem_count: int = 0

    @property
    def ok(self) -> bool:
        return self.problem_count == 0


class Verifier:
    """Checks entries fed in seq order, keeping only the last entry's hash in memory."""

    def __init__(
        self,
        key: bytes,
        anchors: Mapping[int, str] | None = None,
        on_problem: Callable[[Problem], None] | None = None,
    ) -> None:
        self._key = key
        self._anchors = dict(anchors or {})
        self._on_problem = on_problem
        self._expected = 1
        self._prev = GENESIS
        self._prev_ok = True
        self._searches = 0
        self.result = Verification()

    def _problem(self, seq: int, kind: str, detail: str = "") -> None:
        problem = Problem(seq, kind, detail or KINDS[kind])
        self.result.problem_count += 1
        if len(self.result.problems) < PROBLEMS_KEPT:
            self.result.problems.append(problem)
        if self._on_problem is not None:
            self._on_problem(problem)

    def _authentic(self, entry: AuditEntry) -> bool:
        return hmac.compare_digest(keyring.mac(self._key, entry.chained_bytes()), entry.hash)

    def _true_seq(self, entry: AuditEntry) -> int | None:
        """The nearby seq at which this entry's hash is valid, if any: an entry moved there."""
        if self._searches >= _REORDER_SEARCHES:
            return None
        self._searches += 1
        low = max(1, entry.seq - _REORDER_SEARCH)
        for seq in range(low, entry.seq + _REORDER_SEARCH + 1):
            if seq != entry.seq and self._authentic(replace(entry, seq=seq)):
                return seq
        return None

    def feed(self, entry: AuditEntry) -> None:
        self.result.checked += 1
        gap = entry.seq != self._expected
        if entry.seq > self._expected:
            last = entry.seq - 1
            span = f"seq {last}" if last == self._expected else f"seqs {self._expected}-{last}"
            self._problem(self._expected, "missing", f"{span} missing (deleted)")
        authentic = self._authentic(entry)
        if not authentic:
            home = self._true_seq(entry)
            if home is not None:
                self._problem(entry.seq, "reordered", f"holds the entry of seq {home}")
            else:
                self._problem(entry.seq, "altered")
        elif not gap and self._prev_ok and entry.prev_hash != self._prev:
            self._problem(entry.seq, "broken_link")
        anchor = self._anchors.pop(entry.seq, None)
        if anchor is not None and not hmac.compare_digest(anchor, entry.hash):
            self._problem(entry.seq, "anchor", "the entry differs from the anchor recorded")
        self._prev = entry.hash
        self._prev_ok = authentic
        self._expected = entry.seq + 1

    @property
    def last_seq(self) -> int:
        return self._expected - 1

    def finish(self, head_seq: int, head_hash: str) -> Verification:
        last = self.last_seq
        self.result.head_seq, self.result.head_hash = last, self._prev
        if (head_seq, head_hash) != (last, self._prev):
            if head_seq > last:
                self._problem(
                    last + 1,
                    "truncated",
                    f"the head row says seq {head_seq}, the last entry is seq {last}",
                )
            else:
                self._problem(head_seq, "head", f"the head row says seq {head_seq}, not {last}")
        for seq in sorted(self._anchors):
            where = "beyond the end of the log" if seq > last else "missing from the log"
            self._problem(seq, "anchor", f"the anchored entry is {where}: entries were removed")
        self._anchors.clear()
        return self.result


def verify_entries(keys: keyring.KeyProvider, tx: Tx) -> tuple[int, list[Problem]]:
    """Walk the whole chain in one transaction; return the count checked and every problem."""
    verifier = Verifier(keys.audit_key())
    for entry in store.iterate(tx):
        verifier.feed(entry)
    result = verifier.finish(*store.head(tx))
    return result.checked, result.problems


async def verify(
    db: Database,
    keys: keyring.KeyProvider,
    *,
    anchors: Mapping[int, str] | None = None,
    on_problem: Callable[[Problem], None] | None = None,
    page: int = VERIFY_PAGE,
) -> Verification:
    """Walk the chain page by page (one short read transaction each; the MACs are computed on
    the database's threads, not the event loop). Entries appended meanwhile are walked too."""
    verifier = Verifier(keys.audit_key(), anchors, on_problem)

    def walk(tx: Tx) -> int:
        entries = store.scan(tx, verifier.last_seq, page)
        for entry in entries:
            verifier.feed(entry)
        return len(entries)

    while True:
        if await db.read(walk):
            continue
        head = await db.read(store.head)
        # A head ahead of the last entry is a cut-off tail, unless an append committed between
        # the last page and the head's read: then the next page has it.
        if head[0] <= verifier.last_seq or not await db.read(walk):
            return verifier.finish(*head)


async def head(db: Database) -> tuple[int, str]:
    """The chain head (seq, hash) now: an anchor to record outside the database."""
    return await db.read(store.head)


async def verify_for(ctx: Context, actor: User) -> Verification:
    """Verification through the API (org admins): the whole chain, which every organization
    shares; the check itself is audited."""
    gates.require_org(actor, OrgAction.READ_AUDIT)
    result = await verify(ctx.db, ctx.keys)

    def work(ch: Changes) -> None:
        record(
            ctx,
            ch,
            "audit.verified",
            Actor.of(actor),
            outcome="success" if result.ok else "failure",
            details={"checked": result.checked, "problems": result.problem_count},
        )

    await write(ctx, work)
    return result


# -- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """Filters of the admin API; `action` matches itself and every action below it (`auth`
    matches `auth.login`); `since` and `until` are Unix milliseconds, `until` exclusive."""

    action: str | None = None
    actor_id: str | None = None
    target_id: str | None = None
    since: int | None = None
    until: int | None = None
    before_seq: int | None = None
    limit: int = 50


@dataclass(frozen=True)
class Listed:
    entry: AuditEntry
    actor_username: str | None
    target_username: str | None


@dataclass(frozen=True)
class Page:
    entries: list[Listed]
    next_before_seq: int | None
    """Pass as `before_seq` for the next (older) page; None on the last page."""


async def list_entries(ctx: Context, actor: User, query: Query) -> Page:
    """The actor's organization's entries, newest first (owners, admins and compliance
    officers). Entries the actor may not see (those of legal holds, for anyone but compliance
    officers and owners) are left out as if they did not exist."""
    gates.require_org(actor, OrgAction.READ_AUDIT)
    if query.since is not None and query.until is not None and query.until <= query.since:
        raise InvalidInput("invalid_filter", "until must be later than since")
    limit = max(1, min(query.limit, PAGE_MAX, ctx.config.limits.page_max))
    wanted = store.AuditFilter(
        org_id=actor.org_id,
        before_seq=query.before_seq,
        action=query.action,
        actor_id=query.actor_id,
        target_id=query.target_id,
        since=query.since,
        until=query.until,
        hidden_prefixes=gates.hidden_audit_prefixes(actor),
    )

    def work(tx: Tx) -> Page:
        found = store.page(tx, wanted, limit + 1)
        more = len(found) > limit
        found = found[:limit]
        names: dict[str, str | None] = {}

        def name(user_id: str | None) -> str | None:
            if user_id is None:
                return None
            if user_id not in names:
                names[user_id] = gates.audit_username(tx, actor, user_id)
            return names[user_id]

        listed = [
            Listed(e, name(e.actor_id), name(e.target_id) if e.target_type == "user" else None)
            for e in found
        ]
        return Page(listed, found[-1].seq if more and found else None)

    return await ctx.db.read(work)
