"""What a retention run does, as records: per conversation (`ConversationPlan`), in total
(`Totals`), for an organization before a run (`Plan`, the dry run) and after it (`Receipt`).
The services compute them (`enclave.services.retention`); `domain/wire.py` turns them into
JSON."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ConversationPlan", "Plan", "Receipt", "Totals", "totals_of"]


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
