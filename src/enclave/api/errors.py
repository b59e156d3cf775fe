"""The one place where error kinds become HTTP statuses, and every error becomes JSON
`{"error": {"code", "message"}}`."""

from __future__ import annotations

import email.message
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from enclave.api.schemas import ErrorBody
from enclave.domain.errors import EnclaveError, RateLimited
from enclave.services.system import OUTAGES

log = logging.getLogger("enclave.api")

STATUS_BY_KIND: dict[str, int] = {
    "invalid": 422,
    "not_found": 404,
    "unauthenticated": 401,
    "forbidden": 403,
    "conflict": 409,
    "unavailable": 503,
    "rate_limited": 429,
}

# Shown in every operation of the OpenAPI document.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": desc}
    for status, desc in [
        (400, "Malformed request (for example invalid JSON)."),
        (401, "Missing or invalid credentials."),
        (403, "Not allowed."),
        (404, "Not found, or not visible to the caller."),
        (409, "Conflicts with the current state."),
        (413, "Request body too large."),
        (415, "The request body is not sent as JSON."),
        (422, "A value breaks a rule."),
        (429, "Too many requests or failed logins; retry after `Retry-After` seconds."),
        (503, "A dependency is unavailable."),
    ]
}
ERROR_RESPONSES[429]["headers"] = {
    "Retry-After": {
        "description": "Whole seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 1},
    }
}


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    details: list[dict[str, str]] | None = None,
    request_id: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    if request_id is not None:
        body["request_id"] = request_id
    return JSONResponse({"error": body}, status_code=status, headers=headers)


# Codes for the HTTP errors Starlette and FastAPI raise themselves. FastAPI raises 400 only when
# it cannot parse a JSON body at all (bad UTF-8, nesting or numbers beyond the parser's limits).
_HTTP_CODES = {
    400: ("invalid_json", "the request body is not valid JSON"),
    404: ("not_found", None),
    405: ("method_not_allowed", None),
    413: ("payload_too_large", None),
}

# Errors pydantic reports when the body as a whole is not an object.
_WHOLE_BODY_ERRORS = frozenset({"model_attributes_type", "model_type", "dict_type"})


def _is_json(content_type: str | None) -> bool:
    """The same test FastAPI applies before it parses a body as JSON."""
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def _unparsed_body(request: Request, errors: Sequence[Any]) -> bool:
    """True when a body was refused only because it was not declared as JSON.

    FastAPI hands such a body to validation as raw bytes (a missing Content-Type counts too,
    which guards against cross-site form posts), so the error would otherwise read as a
    validation failure of the whole body.
    """
    whole_body = any(
        tuple(e.get("loc", ())) == ("body",) and e.get("type") in _WHOLE_BODY_ERRORS for e in errors
    )
    return whole_body and not _is_json(request.headers.get("content-type"))


def _request_id(request: Request) -> str | None:
    value = request.scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else None


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into the JSON error shape."""

    @app.exception_handler(EnclaveError)
    async def _enclave_error(request: Request, exc: EnclaveError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, RateLimited) else None
        return error_response(
            STATUS_BY_KIND.get(exc.kind, 400), exc.code, exc.message, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(400, "invalid_json", "the request body is not valid JSON")
        if _unparsed_body(request, errors):
            return error_response(
                415, "unsupported_media_type", "send the body as Content-Type: application/json"
            )
        details = [
            {
                "field": ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body",
                "problem": str(e.get("msg", "invalid")),
            }
            for e in errors[:20]
        ]
        return error_response(422, "validation_error", "invalid request", details=details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code, message = _HTTP_CODES.get(exc.status_code, ("http_error", None))
        return error_response(
            exc.status_code, code, message or str(exc.detail), headers=exc.headers
        )

    async def _outage(request: Request, exc: Exception) -> JSONResponse:
        log.error("storage unavailable: %s", exc)
        return error_response(503, "unavailable", "the database is unavailable")

    for outage in OUTAGES:
        app.add_exception_handler(outage, _outage)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        rid = _request_id(request)
        log.exception("unhandled error (request %s)", rid)
        return error_response(500, "internal_error", "internal error", request_id=rid)
