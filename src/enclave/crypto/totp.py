"""TOTP (RFC 6238) for multi-factor log-in, and the QR code of its enrolment URI.

The only module that uses `pyotp` and `segno`. Codes are 6 digits over 30-second steps with
HMAC-SHA1: the parameters every authenticator app supports (SHA-256 or 8 digits are ignored by
several popular apps, which then show wrong codes). Checking is ours, not pyotp's `verify`: we
need the matching step, to refuse a code whose step was already used (replay), and a constant-
time comparison over the allowed window of clock drift.
"""

from __future__ import annotations

import hmac

import pyotp
import segno

STEP_SECONDS = 30
DIGITS = 6
DRIFT_STEPS = 1
"""Codes of the previous and the next step are accepted too (clocks drift; people are slow)."""

__all__ = [
    "DIGITS",
    "DRIFT_STEPS",
    "STEP_SECONDS",
    "code_at",
    "matching_step",
    "new_secret",
    "normalize_code",
    "provisioning_uri",
    "qr_svg_data_uri",
    "step_at",
]


def new_secret() -> str:
    """160 random bits in base32 (RFC 4226 recommends the HMAC-SHA1 output size)."""
    return pyotp.random_base32(32)


def step_at(now_ms: int) -> int:
    return now_ms // 1000 // STEP_SECONDS


def _totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)


def code_at(secret: str, now_ms: int) -> str:
    """The code an authenticator app shows at `now_ms` (tests and the SDK's examples use it)."""
    return _totp(secret).generate_otp(step_at(now_ms))


def normalize_code(code: str) -> str:
    """What people type: "123 456" and "123-456" are "123456"."""
    return "".join(ch for ch in code if ch not in " -\t")


def matching_step(secret: str, code: str, now_ms: int, *, after_step: int) -> int | None:
    """The time step within ±DRIFT_STEPS of now whose code is `code` and that is later than
    `after_step` (the last step used), or None. Every candidate is compared in constant time."""
    code = normalize_code(code)
    if len(code) != DIGITS or not code.isascii() or not code.isdigit():
        return None
    totp = _totp(secret)
    now_step = step_at(now_ms)
    found = None
    for step in range(now_step - DRIFT_STEPS, now_step + DRIFT_STEPS + 1):
        matches = hmac.compare_digest(totp.generate_otp(step), code)
        if matches and step > after_step and found is None:
            found = step
    return found


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    """The `otpauth://totp/...` URI that authenticator apps import (Key Uri Format)."""
    return _totp(secret).provisioning_uri(name=account, issuer_name=issuer)


def qr_svg_data_uri(text: str) -> str:
    """`text` as a QR code: an SVG `data:` URI that an <img> shows under our CSP."""
    return str(segno.make(text, error="m").svg_data_uri(scale=5, border=4))
