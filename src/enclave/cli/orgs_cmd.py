"""`enclave orgs create | list`: organizations (tenants) on one installation.

Each organization is sealed from the others: its people, conversations, departments and audit
entries are invisible to every other organization. `create` makes one with its first owner,
who gets a one-time password printed once (like the first start does).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from enclave.app import open_context
from enclave.config import Config
from enclave.services import orgs
from enclave.services.accounts import Bootstrap


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    common: Callable[[argparse.ArgumentParser], None],
) -> None:
    parser = sub.add_parser("orgs", help="manage organizations (tenants)")
    orgs_sub = parser.add_subparsers(dest="orgs_command", required=True)
    create = orgs_sub.add_parser(
        "create", help="create an organization and its owner (prints a one-time password)"
    )
    create.add_argument("name", help="the organization's name (at most 100 characters)")
    create.add_argument("--owner", required=True, metavar="USERNAME", help="the owner's username")
    common(create)
    listing = orgs_sub.add_parser("list", help="list organizations with their number of people")
    common(listing)


def _print_created(boot: Bootstrap) -> None:
    lines = [
        "",
        "=" * 72,
        f"  Organization created: {boot.org.name}",
        f"  Organization id:    {boot.org.id}",
        f"  Owner account:      {boot.owner.username}",
        f"  One-time password:  {boot.one_time_password}",
        "  It is shown only this once. The first login must set a new password",
        "  (POST /api/v1/users/me/password). Lost it? `enclave users reset-password`.",
        "=" * 72,
        "",
    ]
    print("\n".join(lines), flush=True)


async def run(args: argparse.Namespace, config: Config) -> int:
    async with open_context(config) as ctx:
        if args.orgs_command == "create":
            _print_created(await orgs.create_org(ctx, args.name, args.owner))
            return 0
        found = await orgs.list_orgs(ctx)
    if not found:
        print("no organization yet: `enclave init` or `enclave serve` creates the first one")
    for org, people in found:
        print(f"{org.id}  {people:>6} people  {org.name}")
    return 0
