"""The pure parts behind MFA and sessions: TOTP step matching, recovery codes, device labels."""

from __future__ import annotations

import pyotp
import pytest

from enclave.crypto import recovery_codes, totp
from enclave.domain.devices import device_label

T0 = 1_800_000_015_000  # mid-step


def test_totp_matches_within_one_step_and_only_after_the_last_used() -> None:
    secret = totp.new_secret()
    assert len(secret) == 32
    now_step = totp.step_at(T0)
    for offset in (-1, 0, 1):
        code = pyotp.TOTP(secret).at(T0 // 1000 + offset * 30)
        assert totp.code_at(secret, T0 + offset * 30_000) == code
        assert totp.matching_step(secret, code, T0, after_step=0) == now_step + offset
        # A step that was used already (or an older one) is refused.
        assert totp.matching_step(secret, code, T0, after_step=now_step + offset) is None
    for offset in (-2, 2):
        code = pyotp.TOTP(secret).at(T0 // 1000 + offset * 30)
        assert totp.matching_step(secret, code, T0, after_step=0) is None
    spaced = totp.code_at(secret, T0)
    assert totp.matching_step(secret, f"{spaced[:3]} {spaced[3:]}", T0, after_step=0) == now_step
    for bad in ("", "12345", "1234567", "12345a", "١٢٣٤٥٦"):
        assert totp.matching_step(secret, bad, T0, after_step=0) is None


def test_provisioning_uri_and_qr_code() -> None:
    uri = totp.provisioning_uri("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "bob", "Enclave (Acme)")
    assert uri.startswith("otpauth://totp/Enclave%20%28Acme%29:bob?")
    assert "secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP" in uri and "issuer=Enclave%20%28Acme%29" in uri
    assert totp.qr_svg_data_uri(uri).startswith("data:image/svg+xml")


def test_recovery_codes_are_random_normalised_and_hashed_per_user() -> None:
    codes = recovery_codes.new_codes()
    assert len(codes) == 10 and len(set(codes)) == 10
    code = codes[0]
    assert len(code) == 19 and code.count("-") == 3
    norm = recovery_codes.normalize(code)
    assert norm is not None and len(norm) == 16
    assert recovery_codes.normalize(code.upper().replace("-", " ")) == norm
    assert recovery_codes.normalize("123456") is None
    assert recovery_codes.normalize("u" * 16) is None  # not in the alphabet
    assert recovery_codes.code_hash("a", norm) != recovery_codes.code_hash("b", norm)


@pytest.mark.parametrize(
    ("ua", "label"),
    [
        (
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
            "Firefox on Linux",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
            " Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0",
            "Edge on Windows",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/537.36 (KHTML, like Gecko)"
            " Chrome/120.0.0.0 Safari/537.36",
            "Chrome on macOS",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15"
            " (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
            "Safari on iOS",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko)"
            " Chrome/120.0.0.0 Mobile Safari/537.36",
            "Chrome on Android",
        ),
        ("python-httpx/0.28.1", "Python"),
        ("curl/8.5.0", "curl"),
        ("", "Unknown device"),
        ("something else", "Unknown device"),
    ],
)
def test_device_labels(ua: str, label: str) -> None:
    assert device_label(ua) == label
