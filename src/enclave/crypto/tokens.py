"""Opaque bearer tokens: 256 random bits shown once, stored only as their SHA-256."""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "enc_"  # noqa: S105 - a public marker, not a secret


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    """A fast hash is right here: the token has 256 bits of entropy, unlike a password."""
    return hashlib.sha256(token.encode("utf-8")).digest()


def new_password(length: int = 20) -> str:
    """A random one-time password for first-run and reset flows."""
    alphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(length))
