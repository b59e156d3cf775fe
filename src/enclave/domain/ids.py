"""Typed identifiers and their generation."""

from __future__ import annotations

import base64
import secrets
from typing import NewType

UserId = NewType("UserId", str)
OrgId = NewType("OrgId", str)
ConversationId = NewType("ConversationId", str)
MessageId = NewType("MessageId", str)
DepartmentId = NewType("DepartmentId", str)

ID_LENGTH = 26


def new_id() -> str:
    """A random 128-bit identifier as 26 lowercase base32 characters (no ordering, no leak)."""
    return base64.b32encode(secrets.token_bytes(16)).decode("ascii").rstrip("=").lower()


_ID_ALPHABET = frozenset("abcdefghijklmnopqrstuvwxyz234567")


def is_valid_id(value: str) -> bool:
    """True if `value` has the shape of an id we issue (checked before any lookup)."""
    return len(value) == ID_LENGTH and all(ch in _ID_ALPHABET for ch in value)


def conversation_scope(conv_id: str) -> str:
    """The encryption-key scope of a conversation's messages and events."""
    return f"conv:{conv_id}"


def user_scope(user_id: str) -> str:
    """The encryption-key scope of a person's profile fields and secrets."""
    return f"user:{user_id}"
