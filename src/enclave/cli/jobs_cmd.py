"""`enclave jobs list | show ID | retry ID | cancel ID`: the durable job queue, for operators.

The operator sees every job: every organization's and the installation's own (`--org` narrows
the list to one organization). `cancel` only says what it would cancel unless `--yes` is given.
Retrying and cancelling are audited (`job.retried`, `job.cancelled`), like the admin API's.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from enclave.app import open_context
from enclave.config import Config
from enclave.domain import wire
from enclave.domain.jobs import STATES, Job
from enclave.services import jobs, orgs


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    common: Callable[[argparse.ArgumentParser], None],
) -> None:
    parser = sub.add_parser("jobs", help="background jobs: list, show, retry, cancel")
    jobs_sub = parser.add_subparsers(dest="jobs_command", required=True)
    listing = jobs_sub.add_parser("list", help="jobs, newest first")
    listing.add_argument("--org", metavar="ID_OR_NAME", help="only this organization's jobs")
    listing.add_argument("--kind", help="only jobs of this kind (e.g. jobs.purge)")
    listing.add_argument("--state", choices=STATES, help="only jobs in this state")
    listing.add_argument("--limit", type=int, default=50, help="most jobs shown (1-200)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    show = jobs_sub.add_parser("show", help="one job, with its payload unless it is sealed")
    show.add_argument("id")
    show.add_argument("--json", action="store_true", help="print JSON")
    retry = jobs_sub.add_parser("retry", help="queue a dead, failed or cancelled job again")
    retry.add_argument("id")
    cancel = jobs_sub.add_parser("cancel", help="cancel a queued or running job")
    cancel.add_argument("id")
    cancel.add_argument("--yes", action="store_true", help="really cancel (else: say what)")
    for cmd in (listing, show, retry, cancel):
        common(cmd)


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _line(job: Job) -> str:
    error = f"  {job.last_error}" if job.last_error and job.state != "done" else ""
    return (
        f"{job.id}  {job.kind:<24} {job.state:<9} {job.attempts}/{job.max_attempts}"
        f"  {_when(job.created_at)}{error}"
    )


def _details(job: Job) -> dict[str, Any]:
    shown = wire.job(job)
    shown["org_id"] = job.org_id
    shown["lease_owner"] = job.lease_owner
    shown["sealed"] = job.sealed
    shown["payload"] = None if job.sealed else job.payload
    return shown


async def run(args: argparse.Namespace, config: Config) -> int:
    async with open_context(config) as ctx:
        match args.jobs_command:
            case "list":
                org_id = (await orgs.operator_org(ctx, args.org)).id if args.org else None
                page = await jobs.list_jobs(
                    ctx, None, org_id=org_id, kind=args.kind, state=args.state, limit=args.limit
                )
                if args.json:
                    print(json.dumps([_details(j) for j in page.jobs], indent=2))
                    return 0
                for job in page.jobs:
                    print(_line(job))
                if not page.jobs:
                    print("no jobs")
            case "show":
                job = await jobs.get(ctx, None, args.id)
                details = _details(job)
                if args.json:
                    print(json.dumps(details, indent=2))
                    return 0
                for name, value in details.items():
                    if name.endswith("_at") and isinstance(value, int):
                        value = f"{value} ({_when(value)} UTC)"
                    print(f"{name}: {value}")
            case "retry":
                job = await jobs.retry(ctx, None, args.id)
                print(f"job {job.id} ({job.kind}) is queued again, due now")
            case "cancel":
                job = await jobs.get(ctx, None, args.id)
                if not args.yes:
                    print(f"would cancel job {job.id} ({job.kind}, {job.state}); add --yes")
                    return 0
                job = await jobs.cancel(ctx, None, args.id)
                print(f"job {job.id} ({job.kind}) is cancelled")
    return 0
