"""TLS pieces without a server: the context, the self-signed certificate, the options."""

from __future__ import annotations

import datetime
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from enclave.cli.main import _check_transport
from enclave.config import ConfigError, load_config
from enclave.crypto.tls import (
    CERT_NAME,
    KEY_NAME,
    TlsError,
    generate_self_signed,
    load_server_tls,
    pem_fingerprint,
    server_context,
)


@pytest.fixture
def cert_pair(tmp_path: Path) -> tuple[Path, Path]:
    return generate_self_signed(tmp_path / "tls", "chat.example.org")


def test_context_is_tls12_plus_with_ecdhe_aead_suites_only(cert_pair: tuple[Path, Path]) -> None:
    ctx = server_context(*cert_pair)
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.options & ssl.OP_NO_COMPRESSION
    assert ctx.options & ssl.OP_NO_RENEGOTIATION
    tls12 = [c for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert tls12
    for cipher in tls12:
        assert cipher["kea"] == "kx-ecdhe", cipher["name"]
        assert cipher["aead"], cipher["name"]
        assert cipher["symmetric"] in ("aes-128-gcm", "aes-256-gcm", "chacha20-poly1305")


def test_self_signed_certificate(cert_pair: tuple[Path, Path]) -> None:
    cert_file, key_file = cert_pair
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert key_file.parent.stat().st_mode & 0o777 == 0o700
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"localhost", "chat.example.org"}
    assert {str(a) for a in san.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    assert cert.not_valid_after_utc - cert.not_valid_before_utc < datetime.timedelta(days=366)
    fingerprint = pem_fingerprint(cert_file.read_bytes())
    assert len(fingerprint.split(":")) == 32 and fingerprint == fingerprint.upper()


def test_self_signed_is_created_once_and_renewed_for_another_host(tmp_path: Path) -> None:
    def load(host: str) -> tuple[str, bool]:
        tls = load_server_tls(
            cert_file="", key_file="", self_signed=True, data_dir=tmp_path, host=host
        )
        assert tls is not None and tls.cert_file == tmp_path / "tls" / CERT_NAME
        assert tls.key_file == tmp_path / "tls" / KEY_NAME
        return tls.fingerprint, tls.generated

    first, made = load("127.0.0.1")
    assert made
    assert load("127.0.0.1") == (first, False)  # kept across restarts
    renewed, made = load("10.1.2.3")  # a new address must be in the certificate
    assert made and renewed != first


def test_certificate_files_win_and_bad_ones_are_named(
    tmp_path: Path, cert_pair: tuple[Path, Path]
) -> None:
    cert_file, key_file = cert_pair
    tls = load_server_tls(
        cert_file=str(cert_file),
        key_file=str(key_file),
        self_signed=True,
        data_dir=tmp_path / "data",
        host="127.0.0.1",
    )
    assert tls is not None and not tls.generated and tls.cert_file == cert_file
    assert not (tmp_path / "data").exists()
    other_key = generate_self_signed(tmp_path / "other", "x")[1]
    with pytest.raises(TlsError, match=str(cert_file)):
        load_server_tls(
            cert_file=str(cert_file),
            key_file=str(other_key),  # not the certificate's key
            self_signed=False,
            data_dir=tmp_path,
            host="127.0.0.1",
        )
    assert (
        load_server_tls(
            cert_file="", key_file="", self_signed=False, data_dir=tmp_path, host="127.0.0.1"
        )
        is None
    )


def test_tls_options() -> None:
    config = load_config(env={})
    assert not config.tls.enabled and config.server.trusted_proxies == []
    with pytest.raises(ConfigError, match="must be set together"):
        load_config(env={"ENCLAVE_TLS_CERT_FILE": "/etc/ssl/chat.pem"})
    proxies = load_config(env={"ENCLAVE_SERVER_TRUSTED_PROXIES": "10.0.0.1, fd00::/8"})
    assert proxies.server.trusted_proxies == ["10.0.0.1/32", "fd00::/8"]
    listed = load_config(env={"ENCLAVE_SERVER_TRUSTED_PROXIES": '["192.168.0.0/16"]'})
    assert listed.server.trusted_proxies == ["192.168.0.0/16"]
    with pytest.raises(ConfigError, match=r"server\.trusted_proxies"):
        load_config(env={"ENCLAVE_SERVER_TRUSTED_PROXIES": "proxy.local"})


@pytest.mark.parametrize(
    ("env", "allowed"),
    [
        ({"ENCLAVE_SERVER_HOST": "127.0.0.1"}, True),
        ({"ENCLAVE_SERVER_HOST": "127.8.9.10"}, True),
        ({"ENCLAVE_SERVER_HOST": "::1"}, True),
        ({"ENCLAVE_SERVER_HOST": "localhost"}, True),
        ({"ENCLAVE_SERVER_HOST": "0.0.0.0"}, False),  # noqa: S104
        ({"ENCLAVE_SERVER_HOST": "::"}, False),
        ({"ENCLAVE_SERVER_HOST": "192.0.2.10"}, False),
        ({"ENCLAVE_SERVER_HOST": "chat.example.org"}, False),
        ({"ENCLAVE_SERVER_HOST": "192.0.2.10", "ENCLAVE_TLS_SELF_SIGNED": "true"}, True),
        (
            {"ENCLAVE_SERVER_HOST": "192.0.2.10", "ENCLAVE_SERVER_TRUSTED_PROXIES": "10.0.0.0/8"},
            True,
        ),
    ],
)
def test_plain_http_only_on_loopback_or_behind_proxies(env: dict[str, str], allowed: bool) -> None:
    config = load_config(env=env)
    if allowed:
        _check_transport(config)
    else:
        with pytest.raises(ConfigError, match=r"(?s)tls\.cert_file.*server\.trusted_proxies"):
            _check_transport(config)


def test_an_encrypted_key_is_refused_without_prompting(cert_pair: tuple[Path, Path]) -> None:
    cert_file, key_file = cert_pair
    key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    encrypted = key_file.with_name("encrypted.key")
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret passphrase"),
        )
    )
    with pytest.raises(TlsError, match=r"encrypted\.key"):
        server_context(cert_file, encrypted)
