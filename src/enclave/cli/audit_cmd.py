"""`enclave audit verify | head`: check the audit log's hash chain, print its head (an anchor).

Both only read: they never create a keyring, never append to the log, and work on a copy of the
database (a restored backup) as well as on the live one, SQLite or PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import Callable

from enclave.app import open_database, open_keyring
from enclave.config import Config
from enclave.services import audit

EXIT_TAMPERED = 1

_ANCHOR = re.compile(r"^([1-9][0-9]{0,17}):([0-9a-f]{64})$")


def parse_anchor(text: str) -> tuple[int, str]:
    """`SEQ:HASH` as printed by `enclave audit head`."""
    match = _ANCHOR.match(text.strip().lower())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not SEQ:HASH (a seq and a 64-digit hex hash, as `enclave audit head` "
            "prints)"
        )
    return int(match.group(1)), match.group(2)


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    common: Callable[[argparse.ArgumentParser], None],
) -> None:
    parser = sub.add_parser("audit", help="check the audit log's hash chain")
    audit_sub = parser.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser(
        "verify",
        help="walk the whole chain; exit 0 if intact, 1 listing every altered, missing or "
        "reordered entry",
    )
    verify.add_argument(
        "--anchor",
        action="append",
        type=parse_anchor,
        default=[],
        metavar="SEQ:HASH",
        help="an earlier `enclave audit head`, recorded outside the database: it must still be "
        "in the chain (finds entries cut off the end); may be repeated",
    )
    common(verify)
    head = audit_sub.add_parser(
        "head", help="print the chain head as SEQ:HASH, to record outside the database"
    )
    common(head)


def _print_problem(problem: audit.Problem) -> None:
    print(f"seq {problem.seq}: {problem.kind}: {problem.detail}", flush=True)


async def run(args: argparse.Namespace, config: Config) -> int:
    # The keyring must exist already: a new one would call every entry altered.
    keys = open_keyring(config, create=False)[0] if args.audit_command == "verify" else None
    db = await asyncio.to_thread(open_database, config)
    try:
        if keys is None:
            seq, digest = await audit.head(db)
            print(f"{seq}:{digest}")
            return 0
        result = await audit.verify(db, keys, anchors=dict(args.anchor), on_problem=_print_problem)
    finally:
        await db.close()
    head = f"head {result.head_seq}:{result.head_hash}"
    if result.ok:
        anchors = f"; {len(args.anchor)} anchor(s) found in the chain" if args.anchor else ""
        print(f"audit log intact: {result.checked} entries checked{anchors}; {head}")
        return 0
    print(
        f"audit log NOT intact: {result.problem_count} problem(s) in {result.checked} entries "
        f"checked; {head}",
        file=sys.stderr,
    )
    return EXIT_TAMPERED
