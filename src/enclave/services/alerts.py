"""Alerts derived from the audit log: bursts of failed logins, mass deletion, mass export.

`services.audit.record` hands every entry it appends to the context's `Monitor.observe`. Each
rule picks the entries it counts and the key it counts them by (a source address, an account, a
person); when one key reaches the rule's threshold within the sliding window (`alerts.*` in
docs/config.md), `observe` returns an `Alert`, and `record` appends it as an `alert.<rule>`
entry, counts it in the `enclave_alerts_total` metric and logs a warning. A key alerts at most
once per window, however many more entries arrive.

The counts live in a `Windows` store: this process's memory on one node, or Redis in a
cluster (`enclave.bus.shared.RedisAlertWindows`), so that a burst spread over the nodes raises
its alert once for the cluster; while Redis does not answer, each node counts in its memory.
Counts in memory are lost on restart. Entries are counted when they are appended, so an entry
whose transaction is rolled back afterwards was still counted: alerts err towards firing.
Each service context holds its own `Monitor` (`Context.alerts`, built by the composition root
with the thresholds and the store), so two contexts in one process never share windows.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from enclave.config.sections import AlertsConfig
from enclave.domain.audit import AuditEntry
from enclave.domain.shared import StoreUnavailable

__all__ = [
    "Alert",
    "MemoryWindows",
    "Monitor",
    "Windows",
    "is_failed_login",
]

_SWEEP_EVERY = 4096


def is_failed_login(entry: AuditEntry) -> bool:
    """A login attempt that did not succeed: `auth.login` (or a step such as `auth.login.mfa`)
    with any outcome but `success`; refused attempts during a lockout count too."""
    login = entry.action == "auth.login" or entry.action.startswith("auth.login.")
    return login and entry.outcome != "success"


Keyed = tuple[str, str] | None
"""What a rule counts an entry by: (target type, target id), or None if the rule ignores it."""


def _by_ip(entry: AuditEntry) -> Keyed:
    return ("ip", entry.ip) if entry.ip and is_failed_login(entry) else None


def _by_account(entry: AuditEntry) -> Keyed:
    """The account attacked: its id when the entry names one, else the name that was tried
    (logins to unknown names are entries with target type `username`)."""
    if not is_failed_login(entry) or not entry.target_id:
        return None
    if entry.target_type in ("user", "username"):
        return (entry.target_type, entry.target_id)
    return None


_DELETIONS = frozenset({"message.recalled", "message.deleted"})


def _deleter(entry: AuditEntry) -> Keyed:
    return ("user", entry.actor_id) if entry.actor_id and entry.action in _DELETIONS else None


def _exporter(entry: AuditEntry) -> Keyed:
    return (
        ("user", entry.actor_id) if entry.actor_id and entry.action.startswith("export.") else None
    )


@dataclass(frozen=True)
class _Rule:
    name: str
    key: Callable[[AuditEntry], Keyed]
    threshold: int


@dataclass(frozen=True)
class Alert:
    """A threshold reached: `count` entries of `rule` for one key within `window_ms`."""

    rule: str
    target_type: str
    """`ip`, `user` (an account or person by id), or `username` (a name that was tried)."""
    target_id: str
    count: int
    window_ms: int
    first_at: int
    """Time of the oldest entry counted."""


def _rules(cfg: AlertsConfig) -> list[_Rule]:
    rules = [
        _Rule("failed_logins_ip", _by_ip, cfg.failed_logins_per_ip),
        _Rule("failed_logins_account", _by_account, cfg.failed_logins_per_account),
        _Rule("mass_deletion", _deleter, cfg.deletions_per_actor),
        _Rule("mass_export", _exporter, cfg.exports_per_actor),
    ]
    return [r for r in rules if r.threshold > 0]


class Windows(Protocol):
    """Sliding windows of entry times per slot (a rule and a key). Called on database worker
    threads, never on the event loop."""

    def count(self, slot: str, at: int, window_ms: int, threshold: int) -> tuple[int, int, bool]:
        """Count an entry at `at`: (entries within the window, at most `threshold`; the time of
        the oldest of them; True if the alert fires now: `threshold` entries within the window,
        and it did not fire within the window before)."""
        ...


class MemoryWindows:
    """This process's windows. Thread-safe: PostgreSQL runs transactions (and so `record`) on
    several threads at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Only the newest `threshold` times of a slot are needed to know whether the threshold
        # is reached, so memory per slot is bounded.
        self._times: dict[str, deque[int]] = {}
        self._fired: dict[str, int] = {}
        self._ops = 0

    def count(self, slot: str, at: int, window_ms: int, threshold: int) -> tuple[int, int, bool]:
        with self._lock:
            times = self._times.get(slot)
            if times is None:
                times = self._times[slot] = deque(maxlen=threshold)
            times.append(at)
            start = at - window_ms
            self._ops += 1
            if self._ops % _SWEEP_EVERY == 0:
                self._times = {k: v for k, v in self._times.items() if v and v[-1] > start}
                self._fired = {k: v for k, v in self._fired.items() if v > start}
            if len(times) < threshold or times[0] <= start:
                return len(times), times[0], False
            fired = self._fired.get(slot)
            if fired is not None and fired > start:
                return len(times), times[0], False  # once per window
            self._fired[slot] = at
            return len(times), times[0], True


class Monitor:
    """Counts entries per (rule, key) in `windows`; this process's memory stands in while a
    shared store does not answer."""

    def __init__(self, cfg: AlertsConfig, windows: Windows | None = None) -> None:
        self.configure(cfg, windows)

    def configure(self, cfg: AlertsConfig, windows: Windows | None = None) -> None:
        self._rules = _rules(cfg)
        self._window_ms = cfg.window_seconds * 1000
        self._local = MemoryWindows()
        self._windows: Windows = windows or self._local

    def observe(self, entry: AuditEntry) -> list[Alert]:
        """Count `entry` for every rule it matches; return the alerts it raises."""
        raised: list[Alert] = []
        for rule in self._rules:
            key = rule.key(entry)
            if key is None:
                continue
            slot = f"{rule.name}:{key[0]}:{key[1]}"
            args = (slot, entry.at, self._window_ms, rule.threshold)
            try:
                count, first, fire = self._windows.count(*args)
            except StoreUnavailable:
                count, first, fire = self._local.count(*args)
            if fire:
                raised.append(Alert(rule.name, key[0], key[1], count, self._window_ms, first))
        return raised
