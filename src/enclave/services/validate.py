"""Input rules shared by the services. Each failure carries a stable code."""

from __future__ import annotations

import re
import string

from enclave.crypto.common_passwords import common_passwords
from enclave.domain.errors import InvalidInput

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,31}$")
_CLIENT_MSG_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,64}$")
_MENTION = re.compile(r"(?<![\w@])@([a-z0-9][a-z0-9._-]{2,31})", re.IGNORECASE)
MAX_MENTIONS = 50


# Control characters (Unicode category Cc), lone surrogates (Cs), and line/paragraph separators.
_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029]")
_FORBIDDEN_IN_TEXT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029]")


def _has_forbidden_chars(text: str, *, allow_newlines: bool) -> bool:
    pattern = _FORBIDDEN_IN_TEXT if allow_newlines else _FORBIDDEN
    return pattern.search(text) is not None


def message_text(text: str, max_chars: int) -> str:
    """Message text: 1..max characters, not blank, no control characters but newline and tab."""
    if not text.strip():
        raise InvalidInput("invalid_text", "text must not be empty")
    if len(text) > max_chars:
        raise InvalidInput("invalid_text", f"text is longer than {max_chars} characters")
    if _has_forbidden_chars(text, allow_newlines=True):
        raise InvalidInput("invalid_text", "text contains control characters")
    return text


# Trimmed from around labels and usernames. `str.strip()` alone would also eat control and
# separator characters that Python counts as whitespace (U+001C-U+001F, U+0085, U+2028, U+2029),
# so those are looked for before trimming and refused wherever they are.
_PLAIN_SPACE = " \t\r\n"


def line(value: str, *, field: str, max_chars: int, allow_empty: bool = False) -> str:
    """A one-line label (name, topic, display name): trimmed, no control characters."""
    if _has_forbidden_chars(value.strip(_PLAIN_SPACE), allow_newlines=False):
        raise InvalidInput("invalid_text", f"{field} contains control characters")
    value = value.strip()
    if not value and not allow_empty:
        raise InvalidInput("invalid_text", f"{field} must not be empty")
    if len(value) > max_chars:
        raise InvalidInput("invalid_text", f"{field} is longer than {max_chars} characters")
    return value


def username(value: str) -> str:
    value = value.strip(_PLAIN_SPACE).lower()
    if not _USERNAME.match(value):
        raise InvalidInput(
            "invalid_username",
            "username must be 3-32 characters of a-z, 0-9, '.', '_' or '-', starting with a "
            "letter or digit",
        )
    return value


def is_username(value: str) -> bool:
    """Whether `value` could be a username (`username` would accept it)."""
    try:
        username(value)
    except InvalidInput:
        return False
    return True


def client_msg_id(value: str) -> str:
    if not _CLIENT_MSG_ID.match(value):
        raise InvalidInput(
            "validation_error", "client_msg_id must be 1-64 characters of A-Z a-z 0-9 . _ : -"
        )
    return value


def emoji(value: str) -> str:
    if not (1 <= len(value) <= 64) or any(ch.isspace() for ch in value):
        raise InvalidInput("invalid_emoji", "a reaction is 1-64 characters without spaces")
    if _has_forbidden_chars(value, allow_newlines=False):
        raise InvalidInput("invalid_emoji", "a reaction contains control characters")
    return value


# Stripped from the end of a password before the common-password check ("Password123!").
_TRAILING = string.digits + string.punctuation + " "


def password(value: str, *, min_length: int, username_: str) -> str:
    """The password policy: a length range, not built on the username, not a common password
    (case-insensitively, also with trailing digits or punctuation taken off)."""
    if len(value) < min_length:
        raise InvalidInput("weak_password", f"password must have at least {min_length} characters")
    if len(value) > 1024:
        raise InvalidInput("weak_password", "password must have at most 1024 characters")
    if "\x00" in value:
        raise InvalidInput("weak_password", "password contains a NUL character")
    lowered = value.strip().lower()
    if username_ and username_.lower() in lowered:
        raise InvalidInput("weak_password", "password must not contain the username")
    common = common_passwords()
    # Fewer than four different characters ("aaaaaaaaaaaa", "abababababab") is a pattern too.
    if lowered in common or lowered.rstrip(_TRAILING) in common or len(set(lowered)) < 4:
        raise InvalidInput("weak_password", "password is too common; choose another")
    return value


def mentioned_usernames(text: str) -> list[str]:
    seen: dict[str, None] = {}
    for match in _MENTION.finditer(text):
        seen.setdefault(match.group(1).lower().rstrip("."), None)
        if len(seen) >= MAX_MENTIONS:
            break
    return list(seen)
