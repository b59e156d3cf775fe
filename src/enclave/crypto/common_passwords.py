"""The list of common passwords the password policy refuses (shipped with the package)."""

from __future__ import annotations

import functools
from importlib import resources

__all__ = ["common_passwords"]


@functools.cache
def common_passwords() -> frozenset[str]:
    """The lower-case entries of common-passwords.txt, read once per process."""
    text = (resources.files("enclave.crypto") / "common-passwords.txt").read_text("utf-8")
    return frozenset(
        line.strip().lower()
        for line in text.splitlines()
        if line.strip() and not line.startswith("#")
    )
