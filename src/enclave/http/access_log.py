"""One access-log line per HTTP request, with the values of sensitive query parameters redacted.

aiohttp's default access log writes the request line as the client sent it. A client that
wrongly puts a token or a password in the query string (`?token=…`) would put it in the log;
this logger writes `token=[redacted]` instead. Which names count as sensitive is the one list
below (compared without case); docs/security.md lists it.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, quote

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

__all__ = ["SENSITIVE_PARAMETERS", "RedactingAccessLogger", "redact_query"]

SENSITIVE_PARAMETERS = frozenset(
    {
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "password",
        "current_password",
        "new_password",
        "code",
        "totp",
        "recovery_code",
        "secret",
        "key",
        "api_key",
        "signature",
        "sig",
        "ticket",
    }
)
REDACTED = "[redacted]"


def redact_query(query: str) -> str:
    """`query` with the value of every sensitive parameter replaced (keys and order kept)."""
    if not query:
        return ""
    parts = []
    for name, value in parse_qsl(query, keep_blank_values=True):
        shown = REDACTED if name.lower() in SENSITIVE_PARAMETERS else value
        parts.append(f"{quote(name, safe='')}={quote(shown, safe='[]')}")
    return "&".join(parts)


class RedactingAccessLogger(AbstractAccessLogger):
    """`<client> "<METHOD> <path>?<redacted query> HTTP/x.y" <status> <bytes> <seconds>`."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        query = redact_query(request.query_string)
        target = request.path + (f"?{query}" if query else "")
        version = f"{request.version.major}.{request.version.minor}"
        self.logger.info(
            '%s "%s %s HTTP/%s" %d %d %.6f',
            request.remote or "-",
            request.method,
            target,
            version,
            response.status,
            response.body_length,
            time,
        )
