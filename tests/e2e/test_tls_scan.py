"""A TLS scanner (sslyze, with its own OpenSSL builds that still speak SSL 2.0 to TLS 1.1)
against real `enclave serve` processes: with operator-provided certificate files (an RSA leaf
signed by a private CA, so that non-forward-secret RSA key exchange would be possible if the
server allowed it) and with the self-signed trial certificate (ECDSA).

Asserted: SSL 2.0, SSL 3.0, TLS 1.0 and TLS 1.1 accept no cipher suite; TLS 1.2 accepts only
ECDHE (forward secrecy) with an AEAD cipher; TLS 1.3 is accepted; no TLS compression; the leaf
certificate served is the configured one (SHA-256 fingerprint)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from sslyze import (
    ScanCommand,
    ScanCommandAttemptStatusEnum,
    Scanner,
    ServerNetworkLocation,
    ServerScanRequest,
    ServerScanStatusEnum,
)
from sslyze.scanner.models import AllScanCommandsAttempts

from tests.e2e.harness import ServerProcess, start_server
from tests.e2e.test_tls import write_ca_and_leaf

pytestmark = [
    pytest.mark.e2e,
    # sslyze loads its bundled trust stores for CERTIFICATE_INFO; one old root there has a
    # negative serial number, which our (newer) cryptography warns about.
    pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning"),
]

# Only what the assertions below need: the scan stays well under a second per server.
SCAN_COMMANDS = {
    ScanCommand.SSL_2_0_CIPHER_SUITES,
    ScanCommand.SSL_3_0_CIPHER_SUITES,
    ScanCommand.TLS_1_0_CIPHER_SUITES,
    ScanCommand.TLS_1_1_CIPHER_SUITES,
    ScanCommand.TLS_1_2_CIPHER_SUITES,
    ScanCommand.TLS_1_3_CIPHER_SUITES,
    ScanCommand.TLS_COMPRESSION,
    ScanCommand.CERTIFICATE_INFO,
}
# TLS 1.2: ECDHE key exchange (forward secrecy), AES-GCM or ChaCha20-Poly1305 (AEAD).
TLS12_STRONG = re.compile(
    r"^TLS_ECDHE_(RSA|ECDSA)_WITH_(AES_(128|256)_GCM_SHA(256|384)|CHACHA20_POLY1305_SHA256)$"
)
TLS13_SUITES = {
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_AES_128_CCM_SHA256",
}


@dataclass
class TlsServer:
    server: ServerProcess
    configured_cert: Path  # the certificate the server was told to serve


def _fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


@pytest.fixture(scope="module", params=["certificate-files", "self-signed"])
def tls_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TlsServer]:
    tmp = tmp_path_factory.mktemp(str(request.param))
    data_dir = tmp / "data"
    if request.param == "certificate-files":
        # An RSA leaf, so that RSA key exchange (no forward secrecy) would show if it were allowed.
        rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        ca_file, cert_file, key_file = write_ca_and_leaf(tmp / "pki", rsa_key)
        env = {"ENCLAVE_TLS_CERT_FILE": str(cert_file), "ENCLAVE_TLS_KEY_FILE": str(key_file)}
    else:
        cert_file = data_dir / "tls" / "self-signed.crt"
        env = {"ENCLAVE_TLS_SELF_SIGNED": "true"}
        ca_file = cert_file
    server = start_server(data_dir, log_dir=tmp, env=env, ca_file=ca_file)
    try:
        yield TlsServer(server, cert_file)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def scan(tls_server: TlsServer) -> AllScanCommandsAttempts:
    location = ServerNetworkLocation("127.0.0.1", tls_server.server.port)
    scanner = Scanner()
    scanner.queue_scans([ServerScanRequest(server_location=location, scan_commands=SCAN_COMMANDS)])
    (result,) = list(scanner.get_results())
    assert result.scan_status == ServerScanStatusEnum.COMPLETED, result.connectivity_error_trace
    assert result.scan_result is not None
    for command in SCAN_COMMANDS:
        attempt = getattr(result.scan_result, command.value)
        assert attempt.status == ScanCommandAttemptStatusEnum.COMPLETED, (
            command,
            attempt.error_reason,
            attempt.error_trace,
        )
    return result.scan_result


def test_ssl_2_3_and_tls_1_0_1_1_accept_no_cipher_suite(scan: AllScanCommandsAttempts) -> None:
    for name, attempt in [
        ("SSL 2.0", scan.ssl_2_0_cipher_suites),
        ("SSL 3.0", scan.ssl_3_0_cipher_suites),
        ("TLS 1.0", scan.tls_1_0_cipher_suites),
        ("TLS 1.1", scan.tls_1_1_cipher_suites),
    ]:
        assert attempt.result is not None
        accepted = [s.cipher_suite.name for s in attempt.result.accepted_cipher_suites]
        assert accepted == [], f"{name} accepts {accepted}"


def test_tls_1_2_accepts_only_ecdhe_with_aead(scan: AllScanCommandsAttempts) -> None:
    result = scan.tls_1_2_cipher_suites.result
    assert result is not None
    accepted = result.accepted_cipher_suites
    assert accepted, "TLS 1.2 is not accepted at all (clients without TLS 1.3 could not connect)"
    for suite in accepted:
        assert TLS12_STRONG.match(suite.cipher_suite.name), suite.cipher_suite.name
        assert suite.ephemeral_key is not None, suite.cipher_suite.name


def test_tls_1_3_is_accepted_with_its_aead_suites(scan: AllScanCommandsAttempts) -> None:
    result = scan.tls_1_3_cipher_suites.result
    assert result is not None
    accepted = {s.cipher_suite.name for s in result.accepted_cipher_suites}
    assert accepted, "TLS 1.3 is not accepted"
    assert accepted <= TLS13_SUITES, accepted


def test_no_tls_compression(scan: AllScanCommandsAttempts) -> None:
    result = scan.tls_compression.result
    assert result is not None
    assert result.supports_compression is False


def test_the_configured_certificate_is_served(
    tls_server: TlsServer, scan: AllScanCommandsAttempts
) -> None:
    result = scan.certificate_info.result
    assert result is not None
    configured = _fingerprint(
        x509.load_pem_x509_certificate(tls_server.configured_cert.read_bytes())
    )
    for deployment in result.certificate_deployments:
        served = _fingerprint(deployment.received_certificate_chain[0])
        assert served == configured
    assert result.certificate_deployments
    assert tls_server.server.tls_fingerprint == configured, tls_server.server.stdout
