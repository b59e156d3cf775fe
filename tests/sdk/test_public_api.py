"""The package's public surface: `__all__` is complete, exact and importable."""

from __future__ import annotations

import dataclasses
import inspect
import subprocess
import sys
import types

import enclave_client
from enclave_client import errors, models

EXPECTED = {
    "EnclaveClient",
    # live events
    "Ack",
    "EventStream",
    "StreamItem",
    # results
    "Channel",
    "Conversation",
    "Member",
    "Message",
    "MessageVersion",
    "Reaction",
    "SentMessage",
    "Terms",
    "Thread",
    "User",
    # ids and enumerations
    "ConversationId",
    "MessageId",
    "UserId",
    "ConversationKind",
    "MemberRole",
    "UserRole",
    "Visibility",
    # errors
    "EnclaveError",
    "ErrorDetail",
    "Conflict",
    "ConnectionFailed",
    "Forbidden",
    "InvalidCredentials",
    "MfaRequired",
    "NotFound",
    "PasswordChangeRequired",
    "ProtocolError",
    "RateLimited",
    "ServerError",
    "Unauthenticated",
    "ValidationFailed",
}


def test_all_lists_exactly_the_public_names() -> None:
    assert len(enclave_client.__all__) == len(set(enclave_client.__all__))
    assert set(enclave_client.__all__) == EXPECTED
    public = {
        name
        for name, value in vars(enclave_client).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == EXPECTED


def test_every_public_name_is_importable() -> None:
    namespace: dict[str, object] = {}
    exec("from enclave_client import *", namespace)  # noqa: S102 - the star import under test
    assert set(namespace) - {"__builtins__"} == EXPECTED
    for name in EXPECTED:
        assert getattr(enclave_client, name) is namespace[name]


def test_every_exception_and_result_class_is_exported() -> None:
    exported = {getattr(enclave_client, n) for n in EXPECTED}
    exceptions = {
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, Exception) and cls.__module__ == errors.__name__
    }
    results = {
        cls
        for name, cls in inspect.getmembers(models, inspect.isclass)
        if dataclasses.is_dataclass(cls) and not name.startswith("_")
    }
    assert exceptions <= exported
    assert results <= exported
    assert all(issubclass(cls, enclave_client.EnclaveError) for cls in exceptions)


def test_importing_the_sdk_does_not_import_the_server() -> None:
    code = (
        "import sys, enclave_client; "
        "bad = [m for m in sys.modules if m == 'enclave' or m.startswith('enclave.')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
