"""One-time MFA recovery codes: generated here, stored only as hashes.

A code is 16 characters of Crockford's base32 (80 random bits), shown as four groups of four.
That is far beyond guessing, so, like session tokens, a fast SHA-256 is the right hash: a slow
password hash would add nothing but cost. The user id is hashed in so that equal codes of two
accounts (which will not happen) would not even have equal hashes.
"""

from __future__ import annotations

import hashlib
import secrets

ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
LENGTH = 16
COUNT = 10
# Crockford's decoding of letters people confuse with digits.
_CONFUSABLE = str.maketrans({"o": "0", "i": "1", "l": "1"})


def new_codes(count: int = COUNT) -> list[str]:
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
        codes.append("-".join(raw[i : i + 4] for i in range(0, LENGTH, 4)))
    return codes


def normalize(code: str) -> str | None:
    """The code as stored: lower case without separators; None if it cannot be a code."""
    raw = "".join(ch for ch in code.lower() if ch not in " -\t").translate(_CONFUSABLE)
    if len(raw) != LENGTH or any(ch not in ALPHABET for ch in raw):
        return None
    return raw


def code_hash(user_id: str, normalized: str) -> str:
    return hashlib.sha256(f"enclave-recovery-code|{user_id}|{normalized}".encode()).hexdigest()
