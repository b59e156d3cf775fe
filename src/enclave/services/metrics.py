"""This process's Prometheus metrics; the only module that imports `prometheus_client`.

The metrics live in a registry of our own (not the library's global default), so importing a
library that registers collectors does not change what `/metrics` shows. Counters are per
process: Prometheus scrapes every node and sums. Who may read them is decided by the route
(`enclave.api.routes_metrics`, docs/operations.md).
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)

__all__ = [
    "alert_raised",
    "audit_entry",
    "failed_login",
    "job_finished",
    "jobs_observed",
    "rate_limited",
    "redis_reachable",
    "render",
    "sample",
    "websocket_closed",
    "websocket_opened",
]

# The `*_created` timestamp series double the output and no dashboard of ours reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]
REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

_AUDIT_ENTRIES = Counter(
    "enclave_audit_entries",
    "Audit log entries appended, by action and outcome.",
    ["action", "outcome"],
    registry=REGISTRY,
)
_ALERTS = Counter(
    "enclave_alerts", "Alerts raised from audit entries, by rule.", ["rule"], registry=REGISTRY
)
_FAILED_LOGINS = Counter(
    "enclave_failed_logins", "Failed login attempts (audit entries).", registry=REGISTRY
)
_RATE_LIMITED = Counter(
    "enclave_rate_limited_requests",
    "REST requests refused with 429 by a rate limit, by limit.",
    ["limit"],
    registry=REGISTRY,
)
_WEBSOCKETS = Gauge(
    "enclave_websocket_connections", "WebSocket connections open now.", registry=REGISTRY
)

_JOBS = Gauge(
    "enclave_jobs",
    "Jobs in the queue (the whole cluster's, as this node last read it), by kind and state.",
    ["kind", "state"],
    registry=REGISTRY,
)
_JOBS_OLDEST = Gauge(
    "enclave_jobs_oldest_queued_seconds",
    "How long the longest-waiting due job has waited (0: none waits).",
    registry=REGISTRY,
)
_JOBS_RUN = Counter(
    "enclave_job_runs",
    "Job runs on this node, by kind and outcome (done, retry, dead, failed, released, lost).",
    ["kind", "outcome"],
    registry=REGISTRY,
)

_REDIS_UP: Gauge | None = None  # registered by the first node that uses Redis
_REDIS_LOST = Counter(
    "enclave_redis_lost",
    "Times this node lost Redis and went on from its own memory (a cluster node only).",
    registry=REGISTRY,
)


def audit_entry(action: str, outcome: str) -> None:
    _AUDIT_ENTRIES.labels(action=action, outcome=outcome).inc()


def alert_raised(rule: str) -> None:
    _ALERTS.labels(rule=rule).inc()


def failed_login() -> None:
    _FAILED_LOGINS.inc()


def rate_limited(limit: str) -> None:
    """A request refused by the limit named `limit` (`rest:ip`, `rest:user`, `login:rate`...)."""
    _RATE_LIMITED.labels(limit=limit).inc()


def websocket_opened() -> None:
    _WEBSOCKETS.inc()


def websocket_closed() -> None:
    _WEBSOCKETS.dec()


def redis_reachable(up: bool) -> None:
    """A cluster node's view of Redis: `enclave_redis_up` is 1 while Redis answers, 0 while the
    node serves from its own memory (local limits and presence, signals to this node only). One
    node without Redis has no such series."""
    global _REDIS_UP
    if _REDIS_UP is None:
        _REDIS_UP = Gauge(
            "enclave_redis_up",
            "1 while this node reaches Redis, 0 while it serves from its own memory.",
            registry=REGISTRY,
        )
    _REDIS_UP.set(1 if up else 0)
    if not up:
        _REDIS_LOST.inc()


def jobs_observed(counts: dict[tuple[str, str], int], oldest_queued_seconds: float) -> None:
    """The queue as read from the database: jobs per (kind, state); a pair no longer present
    reads 0 rather than keeping its last value."""
    for kind, state in _jobs_seen - counts.keys():
        _JOBS.labels(kind=kind, state=state).set(0)
    for (kind, state), n in counts.items():
        _JOBS.labels(kind=kind, state=state).set(n)
        _jobs_seen.add((kind, state))
    _JOBS_OLDEST.set(oldest_queued_seconds)


_jobs_seen: set[tuple[str, str]] = set()


def job_finished(kind: str, outcome: str) -> None:
    _JOBS_RUN.labels(kind=kind, outcome=outcome).inc()


def render() -> tuple[bytes, str]:
    """The text exposition format and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    """The current value of one sample (0 if it was never set), e.g.
    `sample("enclave_alerts_total", {"rule": "mass_export"})`."""
    value = REGISTRY.get_sample_value(name, labels or {})
    return 0.0 if value is None else float(value)
