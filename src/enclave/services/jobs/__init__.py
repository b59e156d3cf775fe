"""The durable job queue: one owner of all background work (docs/architecture.md, "The job
path").

A service enqueues a job of a registered `Kind`, in its own write transaction
(`enqueue_in`) or alone (`enqueue`); every node's `Worker` claims due jobs with a lease, runs
the kind's handler, and records the outcome: done, a retry with exponential backoff and
jitter, dead after the kind's attempts, or failed for good (`Permanent`). Periodic kinds
(`Kind.every_seconds`) run once per period across the cluster. The node's runtime
(`enclave.services.runtime`) owns the worker; operators see and steer jobs through `list_jobs`,
`get`, `retry` and `cancel` (the CLI's `enclave jobs`, the admin API).

Modules: `kinds` (Kind, Registry), `queue` (enqueue and the operators' use cases), `worker`.
"""

from enclave.services.jobs.kinds import Handler, Kind, Permanent, Registry
from enclave.services.jobs.queue import (
    PAGE_MAX,
    Page,
    cancel,
    enqueue,
    enqueue_in,
    get,
    list_jobs,
    refresh_metrics,
    retry,
)
from enclave.services.jobs.worker import Worker, backoff_ms, period_key
from enclave.storage.jobs import STATES, Job

__all__ = [
    "PAGE_MAX",
    "STATES",
    "Handler",
    "Job",
    "Kind",
    "Page",
    "Permanent",
    "Registry",
    "Worker",
    "backoff_ms",
    "cancel",
    "enqueue",
    "enqueue_in",
    "get",
    "list_jobs",
    "period_key",
    "refresh_metrics",
    "retry",
]
