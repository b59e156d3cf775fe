#!/usr/bin/env python3
"""Render deploy/nginx/enclave.conf.in for a set of Enclave nodes (standard library only).

    python3 deploy/nginx/render.py --server-name chat.example.com \
        --node 10.0.1.21:8080 --node 10.0.1.22:8080 \
        --cert /etc/ssl/enclave/fullchain.pem --key /etc/ssl/enclave/privkey.pem \
        --out /etc/nginx/conf.d/enclave.conf

Every @@NAME@@ placeholder is replaced; a line holding @@NODE@@ is repeated once per node.
Then check the result with `nginx -t` and reload nginx (`systemctl reload nginx`).
"""

from __future__ import annotations

import argparse
import ipaddress
import re
import sys
from pathlib import Path

TEMPLATE = Path(__file__).with_name("enclave.conf.in")
_PLACEHOLDER = re.compile(r"@@([A-Z_]+)@@")
# nginx takes the value as one token: no whitespace, quotes, braces or semicolons.
_TOKEN = re.compile(r"^[^\s;{}'\"#]+$")


def _host_port(text: str) -> str:
    """HOST:PORT or [V6]:PORT, as nginx's `server` and `listen` take it."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ipaddress.ip_address(bare)
    except ValueError:
        if not re.fullmatch(r"[A-Za-z0-9.-]+", bare):
            raise argparse.ArgumentTypeError(f"{host!r} is not an address or host name") from None
    return text


def _listen(text: str) -> str:
    """A port, or ADDRESS:PORT."""
    if text.isdigit() and 0 < int(text) < 65536:
        return text
    return _host_port(text)


def _token(text: str) -> str:
    if not _TOKEN.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} must be one word without ; {{ }} or quotes")
    return text


def render(template: str, nodes: list[str], values: dict[str, str]) -> str:
    """The template with its placeholders filled; a KeyError names a value that is missing."""
    lines = []
    for line in template.splitlines(keepends=True):
        if "@@NODE@@" in line:
            lines.extend(line.replace("@@NODE@@", node) for node in nodes)
        else:
            lines.append(line)
    text = "".join(lines)
    missing = sorted({m for m in _PLACEHOLDER.findall(text) if m not in values})
    if missing:
        raise KeyError(", ".join(missing))
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--node",
        action="append",
        required=True,
        type=_host_port,
        help="an Enclave node, HOST:PORT (repeat for each node)",
    )
    parser.add_argument("--cert", required=True, type=_token, help="certificate chain (PEM)")
    parser.add_argument("--key", required=True, type=_token, help="its private key (PEM)")
    parser.add_argument("--server-name", default="_", type=_token, help="host name (default _)")
    parser.add_argument("--listen", default="443", type=_listen, help="HTTPS [ADDRESS:]PORT")
    parser.add_argument("--http-listen", default="80", type=_listen, help="redirect [ADDR:]PORT")
    parser.add_argument(
        "--access-log", default="/var/log/nginx/enclave-access.log", type=_token, help="file"
    )
    parser.add_argument("--template", type=Path, default=TEMPLATE, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help="write here instead of stdout")
    args = parser.parse_args(argv)
    values = {
        "CERT": args.cert,
        "KEY": args.key,
        "SERVER_NAME": args.server_name,
        "LISTEN": args.listen,
        "HTTP_LISTEN": args.http_listen,
        "ACCESS_LOG": args.access_log,
    }
    try:
        text = render(args.template.read_text("utf-8"), args.node, values)
    except KeyError as exc:
        parser.error(f"the template needs values for {exc.args[0]}")
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text, "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
