"""`enclave` entry point: init, serve, migrate, users, orgs, keys, audit, jobs."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import ipaddress
import os
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from enclave import __version__, logs
from enclave.app import open_context, open_database
from enclave.cli import audit_cmd, export_cmd, jobs_cmd, keys_cmd, orgs_cmd, retention_cmd
from enclave.config import Config, ConfigError, load_config
from enclave.crypto.keyring import KeyringError
from enclave.crypto.tls import ServerTls, TlsError, load_server_tls
from enclave.domain.errors import EnclaveError
from enclave.domain.models import OrgRole
from enclave.services import accounts, orgs
from enclave.services import keys as key_service
from enclave.services.accounts import Bootstrap
from enclave.storage.base import StorageUnavailable


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="TOML configuration file")
    parser.add_argument("--data-dir", type=Path, help="data directory (server.data_dir)")
    parser.add_argument("--database-url", help="postgresql://... (database.url)")


def _org_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--org",
        metavar="ID_OR_NAME",
        help="the organization (its id or name, see `enclave orgs list`); "
        "may be left out when there is only one",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="enclave", description="Self-hosted team chat.")
    parser.add_argument("--version", action="version", version=f"enclave {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the server")
    _common(serve)
    serve.add_argument("--host", help="address to listen on (server.host)")
    serve.add_argument("--port", type=int, help="port, 0 for any free one (server.port)")
    serve.add_argument(
        "--redis-url", help="redis://host:6379/0 shared by the nodes of a cluster (redis.url)"
    )

    init = sub.add_parser("init", help="create the database and the first owner account")
    _common(init)
    migrate = sub.add_parser("migrate", help="apply pending schema migrations")
    _common(migrate)

    keys_cmd.add_parser(sub, _common)
    audit_cmd.add_parser(sub, _common)
    orgs_cmd.add_parser(sub, _common)
    export_cmd.add_parser(sub, _common, _org_option)
    retention_cmd.add_parser(sub, _common)
    jobs_cmd.add_parser(sub, _common)

    users = sub.add_parser("users", help="manage accounts")
    users_sub = users.add_subparsers(dest="users_command", required=True)
    create = users_sub.add_parser("create", help="create an account")
    create.add_argument("username")
    create.add_argument("--role", choices=[r.value for r in OrgRole], default="member")
    create.add_argument("--display-name", default="")
    create.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    _org_option(create)
    _common(create)
    listing = users_sub.add_parser("list", help="list accounts")
    listing.add_argument("--all", action="store_true", help="include deactivated accounts")
    _org_option(listing)
    _common(listing)
    for name, text in [("deactivate", "deactivate an account"), ("activate", "reactivate one")]:
        cmd = users_sub.add_parser(name, help=text)
        cmd.add_argument("username")
        _common(cmd)
    reset = users_sub.add_parser("reset-password", help="set a new password for an account")
    reset.add_argument("username")
    reset.add_argument("--password-stdin", action="store_true")
    _common(reset)
    return parser


def _config(args: argparse.Namespace) -> Config:
    overrides: dict[str, Any] = {
        "server.data_dir": getattr(args, "data_dir", None),
        "database.url": getattr(args, "database_url", None),
        "server.host": getattr(args, "host", None),
        "server.port": getattr(args, "port", None),
        "redis.url": getattr(args, "redis_url", None),
    }
    return load_config(args.config, overrides=overrides)


def _print_bootstrap(boot: Bootstrap, url: str | None) -> None:
    lines = [
        "",
        "=" * 72,
        f"  Enclave is set up. Organization: {boot.org.name}",
        f"  Owner account:      {boot.owner.username}",
        f"  One-time password:  {boot.one_time_password}",
        "  It is shown only this once. The first login must set a new password",
        "  (POST /api/v1/users/me/password). Lost it? `enclave users reset-password`.",
    ]
    if url:
        lines.append(f"  API docs:           {url}/api/docs")
    lines += ["=" * 72, ""]
    print("\n".join(lines), flush=True)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def _check_transport(config: Config) -> None:
    """Plain HTTP only on loopback, or behind declared TLS-terminating proxies."""
    server = config.server
    if config.tls.enabled or server.trusted_proxies or _is_loopback(server.host):
        return
    raise ConfigError(
        f"refusing to serve plain HTTP on {server.host}, which is not a loopback address.\n"
        "  Serve HTTPS: set tls.cert_file and tls.key_file (ENCLAVE_TLS_CERT_FILE, "
        "ENCLAVE_TLS_KEY_FILE),\n"
        "  or tls.self_signed = true (ENCLAVE_TLS_SELF_SIGNED=true) for a trial;\n"
        "  or, behind a TLS-terminating reverse proxy, list it in server.trusted_proxies\n"
        "  (ENCLAVE_SERVER_TRUSTED_PROXIES=10.0.0.0/8);\n"
        "  or listen on 127.0.0.1 only. See docs/operations.md, section TLS."
    )


def _load_tls(config: Config) -> ServerTls | None:
    try:
        return load_server_tls(
            cert_file=config.tls.cert_file,
            key_file=config.tls.key_file,
            self_signed=config.tls.self_signed,
            data_dir=config.server.data_dir,
            host=config.server.host,
        )
    except TlsError as exc:
        raise ConfigError(f"tls: {exc}") from exc


async def _serve(config: Config) -> None:
    # Imported here, not at the top: the web stack costs a quarter of a second of start-up that
    # `init`, `migrate` and `users` never use.
    from enclave.http.server import serve

    _check_transport(config)
    tls = _load_tls(config)
    new_keyring = _keyring_is_new(config)
    async with open_context(config) as ctx:
        _announce_keyring(config, new_keyring)
        await key_service.seal_legacy(ctx.db, ctx.clock.now_ms())
        boot = await accounts.bootstrap(ctx)
        family = socket.AF_INET6 if ":" in config.server.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((config.server.host, config.server.port))
        host, port = sock.getsockname()[:2]
        shown_host = f"[{host}]" if ":" in host else host
        url = f"{'https' if tls else 'http'}://{shown_host}:{port}"
        if tls is not None:
            made = " (self-signed, created now)" if tls.generated else ""
            print(f"TLS certificate: {tls.cert_file}{made}", flush=True)
            print(f"TLS certificate SHA-256: {tls.fingerprint}", flush=True)
        if boot is not None:
            _print_bootstrap(boot, url)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        context = tls.context if tls else None
        started = asyncio.Event()
        serving = asyncio.ensure_future(serve(ctx, sock, stop, context, started))
        # Say "listening" only once it is true (scripts connect as soon as they read it).
        waiting = asyncio.ensure_future(started.wait())
        await asyncio.wait({serving, waiting}, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if started.is_set():
            print(f"Enclave {__version__} listening on {url}", flush=True)
        await serving


def _keyring_is_new(config: Config) -> bool:
    """True if opening the context will create the keyring file (it does not exist yet)."""
    return not config.encryption.key and not config.keyring_path().exists()


def _announce_keyring(config: Config, was_new: bool) -> None:
    """If the keyring was created just now, say loudly what it is and that it needs a backup."""
    if was_new and config.keyring_path().exists():
        print(f"Created the encryption keyring {config.keyring_path()} (mode 0600).", flush=True)
        print(keys_cmd.BACKUP_WARNING, flush=True)


async def _init(config: Config) -> int:
    new_keyring = _keyring_is_new(config)
    async with open_context(config) as ctx:
        _announce_keyring(config, new_keyring)
        await key_service.seal_legacy(ctx.db, ctx.clock.now_ms())
        boot = await accounts.bootstrap(ctx)
    if boot is None:
        print("Enclave is already initialized; nothing changed.")
    else:
        _print_bootstrap(boot, None)
    return 0


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Repeat password: "):
        raise SystemExit("enclave: the passwords differ")
    return first


async def _users(args: argparse.Namespace, config: Config) -> int:
    async with open_context(config) as ctx:
        match args.users_command:
            case "create":
                org = await orgs.operator_org(ctx, args.org)  # before asking for a password
                password = _read_password(args.password_stdin)
                user = await accounts.create_user(
                    ctx,
                    None,
                    username=args.username,
                    password=password,
                    display_name=args.display_name,
                    role=OrgRole(args.role),
                    org_id=org.id,
                )
                print(f"created {user.username} ({user.role.value}) id={user.id} in {org.name}")
            case "list":
                org = await orgs.operator_org(ctx, args.org)
                after = ""
                while True:
                    page = await accounts.list_users(
                        ctx, None, include_inactive=args.all, after=after, limit=500, org_id=org.id
                    )
                    for u in page:
                        state = "active" if u.is_active else "deactivated"
                        print(f"{u.id}  {u.username:<32} {u.role.value:<7} {state}")
                    if len(page) < 500:
                        break
                    after = page[-1].username
            case "deactivate" | "activate":
                active = args.users_command == "activate"
                user = await accounts.set_active(ctx, None, args.username, active=active)
                print(f"{user.username} is now {'active' if active else 'deactivated'}")
            case "reset-password":
                password = _read_password(args.password_stdin)
                user = await accounts.reset_password(ctx, args.username, password)
                print(f"password of {user.username} set; all its sessions were signed out")
    return 0


def _migrate(config: Config) -> int:
    db = open_database(config)  # opening applies pending migrations
    asyncio.run(db.close())
    print("schema is up to date")
    return 0


async def _seal_after_migration(config: Config) -> None:
    """With the keyring at hand, encrypt what an earlier version stored in plaintext."""
    new_keyring = _keyring_is_new(config)
    async with open_context(config) as ctx:
        _announce_keyring(config, new_keyring)
        sealed = await key_service.seal_legacy(ctx.db, ctx.clock.now_ms())
    if sealed:
        print(f"encrypted {sealed} values stored in plaintext by an earlier version")


def main(argv: Sequence[str] | None = None) -> int:
    # Whatever this process creates (the database, its WAL, keys, exports) is its owner's
    # alone, whatever umask the shell had; `open_context` also mends what exists already.
    os.umask(0o077)
    args = build_parser().parse_args(argv)
    try:
        config = _config(args)
    except ConfigError as exc:
        print(f"enclave: {exc}", file=sys.stderr)
        return 2
    logs.setup(config.server.log_level)
    try:
        match args.command:
            case "serve":
                import uvloop  # only the server needs it; see _serve

                with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                    runner.run(_serve(config))
                return 0
            case "init":
                return asyncio.run(_init(config))
            case "migrate":
                code = _migrate(config)
                asyncio.run(_seal_after_migration(config))
                return code
            case "users":
                return asyncio.run(_users(args, config))
            case "keys":
                return asyncio.run(keys_cmd.run(args, config))
            case "audit":
                return asyncio.run(audit_cmd.run(args, config))
            case "orgs":
                return asyncio.run(orgs_cmd.run(args, config))
            case "export":
                return asyncio.run(export_cmd.run(args, config))
            case "retention":
                return asyncio.run(retention_cmd.run(args, config))
            case "jobs":
                return asyncio.run(jobs_cmd.run(args, config))
    except ConfigError as exc:  # found only when serving: TLS files, plain HTTP exposed
        print(f"enclave: {exc}", file=sys.stderr)
        return 2
    except EnclaveError as exc:
        print(f"enclave: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    except StorageUnavailable as exc:
        print(f"enclave: database unavailable: {exc}", file=sys.stderr)
        return 3
    except KeyringError as exc:
        print(f"enclave: keyring: {exc}", file=sys.stderr)
        return 4
    except KeyboardInterrupt:
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
