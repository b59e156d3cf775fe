"""`enclave export`: an eDiscovery export of one organization (`--org`, needed only when there
are several) into a directory, run in this process (the server need not run), with a progress
display on stderr.

People are given by username or id, conversations by id; `--since`/`--until` take a date
(`2026-01-31`, UTC midnight) or a date and time (`2026-01-31T12:00:00+08:00`). The export is
audited like one made through the API (`export.ediscovery`, by the operator).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from enclave.app import open_context
from enclave.config import Config
from enclave.domain.errors import NotFound
from enclave.services import orgs
from enclave.services.exports import run as exports


def _instant(text: str) -> int:
    """A date or ISO 8601 date-time as Unix ms (UTC when no offset is given)."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date (2026-01-31) or date-time (2026-01-31T12:00:00+08:00)"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    common: Callable[[argparse.ArgumentParser], None],
    org_option: Callable[[argparse.ArgumentParser], None],
) -> None:
    parser = sub.add_parser(
        "export",
        help="eDiscovery export (messages.jsonl, .eml per conversation-day, manifest.json)",
    )
    parser.add_argument(
        "--people",
        type=_names,
        default=[],
        metavar="NAME,...",
        help="usernames or user ids: only conversations they are in or sent messages in",
    )
    parser.add_argument(
        "--conversations",
        type=_names,
        default=[],
        metavar="ID,...",
        help="conversation ids (default: every conversation)",
    )
    parser.add_argument("--since", type=_instant, help="messages sent at or after this time")
    parser.add_argument("--until", type=_instant, help="messages sent before this time")
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="directory to write into (created with mode 0700; must be empty). It holds "
        "plaintext: keep it safe and delete it when done",
    )
    common(parser)
    org_option(parser)


def _progress(done: int, total: int) -> None:
    share = f" ({100 * done // total}%)" if total else ""
    print(f"\rexported {done} of {total} messages{share}", end="", file=sys.stderr, flush=True)


async def run(args: argparse.Namespace, config: Config) -> int:
    async with open_context(config) as ctx:
        org = await orgs.operator_org(ctx, args.org)
        try:
            people = await exports.operator_people(ctx, org.id, args.people)
        except NotFound:
            print("enclave: no such person (give a username or user id)", file=sys.stderr)
            return 1
        query = exports.ExportQuery(
            people=tuple(people),
            conversations=tuple(args.conversations),
            since=args.since,
            until=args.until,
        )
        try:
            manifest = await exports.run_to_directory(ctx, org.id, query, args.out, _progress)
        except FileExistsError:
            print(f"enclave: {args.out} is not empty; give a new directory", file=sys.stderr)
            return 1
    counts = manifest["counts"]
    print(file=sys.stderr)
    print(
        f"export {manifest['export_id']} written to {args.out}: {counts['messages']} messages "
        f"({counts['edited']} edited, {counts['recalled']} recalled) in "
        f"{counts['conversations']} conversations, {counts['membership_events']} membership "
        f"events, {counts['eml_files']} .eml files; manifest.json lists the SHA-256 of each file"
    )
    return 0
