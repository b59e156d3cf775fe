"""`enclave retention run [--dry-run]`: apply the retention policies now, or say what that
would delete.

The dry run changes nothing and reports, per conversation, the messages (count and seq range),
edit versions, reactions, mentions and events that would be deleted, the messages a legal hold
keeps (hidden), and the data keys that would be shredded; the run does exactly that and prints
its receipt (also written to the audit log as `retention.purged`). A run takes the cluster lease
like the servers' scheduled runs, so it refuses (exit 1, `retention_running`) while one is in
progress, and it resumes a run that was interrupted.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

from enclave.app import open_context
from enclave.cli import keys_cmd
from enclave.config import Config
from enclave.domain import wire
from enclave.services import audit
from enclave.services.retention import plan as retention_plan
from enclave.services.retention import run as retention_run


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    common: Callable[[argparse.ArgumentParser], None],
) -> None:
    parser = sub.add_parser("retention", help="retention: dry run and run")
    retention_sub = parser.add_subparsers(dest="retention_command", required=True)
    run = retention_sub.add_parser(
        "run",
        help="delete what the retention policies say is past retention (shredding expired "
        "data keys), or with --dry-run only report it",
    )
    run.add_argument("--dry-run", action="store_true", help="report only; change nothing")
    run.add_argument(
        "--org", action="append", default=None, metavar="ORG_ID", help="only this organization"
    )
    run.add_argument("--json", action="store_true", help="print the report as JSON")
    common(run)


def _days(days: int | None) -> str:
    return "forever" if days is None else f"{days} days"


def _print_conversations(convs: list[retention_plan.ConversationPlan]) -> None:
    for c in convs:
        seqs = f" (seq {c.first_seq}..{c.last_seq})" if c.first_seq is not None else ""
        held = "  [legal hold: nothing deleted]" if c.held else ""
        print(f"  conversation {c.conversation_id}: keep {_days(c.days)}{held}")
        print(
            f"    messages {c.messages}{seqs}, versions {c.versions}, reactions {c.reactions},"
            f" mentions {c.mentions}, kept for legal hold {c.hidden},"
            f" events {c.events} (log cut after seq {c.events_up_to_seq})"
        )
        if c.key_ids:
            print(f"    data keys shredded: {', '.join(c.key_ids)}")


def _print_totals(t: retention_plan.Totals) -> None:
    print(
        f"  total: {t.conversations} conversations, {t.messages} messages, {t.versions} versions,"
        f" {t.reactions} reactions, {t.mentions} mentions, {t.hidden} kept for legal hold,"
        f" {t.events} events, {t.files} files, {len(t.key_ids)} data keys"
    )


async def run(args: argparse.Namespace, config: Config) -> int:
    async with open_context(config) as ctx:
        org_ids = args.org if args.org else await retention_plan.all_org_ids(ctx)
        if args.dry_run:
            plans = [await retention_plan.plan(ctx, org_id) for org_id in org_ids]
            if args.json:
                print(json.dumps([wire.retention_plan(p) for p in plans], indent=2))
                return 0
            for p in plans:
                print(f"organization {p.org_id}: default {_days(p.default_days)} (dry run)")
                _print_conversations(p.conversations)
                _print_totals(p.totals)
            return 0
        receipts = await retention_run.run(ctx, audit.Actor(), org_ids=org_ids)
        if args.json:
            print(json.dumps([wire.retention_receipt(r) for r in receipts], indent=2))
            return 0
        for r in receipts:
            print(
                f"organization {r.org_id}: run {r.run_id}, receipt in the audit log at seq"
                f" {r.audit_seq}"
            )
            _print_conversations(r.conversations)
            _print_totals(r.totals)
        if any(r.totals.key_ids for r in receipts):
            rotated = all(r.kek_rotated for r in receipts if r.totals.key_ids)
            if rotated:
                print("The key-encryption key was rotated: backups made before this run")
                print("can no longer be read. Take a fresh backup now.")
            print(keys_cmd.BACKUP_WARNING)
        return 0
