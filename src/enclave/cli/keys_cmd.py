"""`enclave keys ...`: the state of encryption at rest, KEK rotation, and new keys."""

from __future__ import annotations

import argparse
import sys

from enclave.app import open_context
from enclave.config import Config
from enclave.crypto.keyring import FileKeyring, KeyringError, generate_encoded_key
from enclave.services import audit
from enclave.services import keys as key_service
from enclave.services.key_status import key_usage

BACKUP_WARNING = """\
!! The keyring holds the keys that decrypt every message and profile in the database.
!! Without it the data cannot be read by anyone, including you. Back it up now, apart from
!! the database backups, and again after each `enclave keys rotate` (docs/security.md)."""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: object) -> None:
    keys = sub.add_parser("keys", help="encryption at rest: status, rotation, new keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    status = keys_sub.add_parser("status", help="the active key and what each key wraps")
    rotate = keys_sub.add_parser(
        "rotate",
        help="make a new key-encryption key, re-wrap every data key under it (no message is "
        "rewritten; servers may keep running), then destroy the old key",
    )
    rotate.add_argument(
        "--keep-old", action="store_true", help="keep the old key in the keyring (not destroyed)"
    )
    keys_sub.add_parser(
        "generate", help="print a new random key for encryption.key (ENCLAVE_ENCRYPTION_KEY)"
    )
    for parser in (status, rotate):
        common(parser)  # type: ignore[operator]


async def run(args: argparse.Namespace, config: Config) -> int:
    if args.keys_command == "generate":
        print(generate_encoded_key())
        return 0
    async with open_context(config) as ctx:
        if args.keys_command == "status":
            found = await key_usage(ctx)
            usage = found.wrapped_by
            where = (
                str(config.keyring_path())
                if isinstance(ctx.keys, FileKeyring)
                else "ENCLAVE_ENCRYPTION_KEY"
            )
            print(f"keyring: {where}")
            print(f"active key: {ctx.keys.active_id()}")
            for kek_id in sorted(set(ctx.keys.kek_ids()) | set(usage)):
                held = "" if kek_id in ctx.keys.kek_ids() else "  (NOT IN KEYRING)"
                print(f"  {kek_id}: wraps {usage.get(kek_id, 0)} data keys{held}")
            if isinstance(ctx.keys, FileKeyring) and ctx.keys.retired_ids():
                print(f"retired (destroyed): {', '.join(ctx.keys.retired_ids())}")
            print(f"shredded data keys: {found.shredded}")
            return 0
        try:
            done = await key_service.rotate(
                ctx,
                ctx.clock.now_ms(),
                audit.Actor(),
                retire_old=not args.keep_old,
            )
        except key_service.RotationUnsupported as exc:
            raise KeyringError(str(exc)) from None
        print(f"new active key: {done.new_kek_id}")
        print(f"data keys re-wrapped: {done.rewrapped}")
        if done.retired:
            print(f"destroyed old keys: {', '.join(done.retired)}")
        print(BACKUP_WARNING)
        if done.remaining and not args.keep_old:
            print(
                f"not destroyed, still wrapping data keys: {', '.join(done.remaining)};"
                " run `enclave keys rotate` again",
                file=sys.stderr,
            )
            return 1
        return 0
