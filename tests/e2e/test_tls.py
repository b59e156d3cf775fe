"""Built-in TLS, from real server processes and real TLS sockets: the self-signed certificate and
its printed fingerprint, HTTPS and WSS, protocol versions, HSTS, operator-provided certificate
files, and the refusal to serve plain HTTP on a non-loopback address."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from websockets.asyncio.client import connect

from tests.e2e.harness import ServerProcess, describe, enclave, location_args, start_server
from tests.e2e.test_acceptance import create_conversation, create_person, take_over_owner

pytestmark = pytest.mark.e2e

HSTS = "max-age=31536000"
SELF_SIGNED = {"ENCLAVE_TLS_SELF_SIGNED": "true"}
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 (what the refusal is about)


def _fingerprint_of_pem(pem: str) -> str:
    cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def _served_fingerprint(port: int) -> str:
    """The certificate the socket presents, read without trusting it."""
    return _fingerprint_of_pem(ssl.get_server_certificate(("127.0.0.1", port)))


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One self-signed HTTPS server, started fresh (so the certificate is created on start)."""
    tmp = tmp_path_factory.mktemp("tls")
    data_dir = tmp / "data"
    server = start_server(
        data_dir,
        log_dir=tmp,
        env=SELF_SIGNED,
        ca_file=data_dir / "tls" / "self-signed.crt",
    )
    try:
        yield server
    finally:
        server.stop()


def test_self_signed_start_prints_the_fingerprint_of_the_served_certificate(
    tls_server: ServerProcess,
) -> None:
    assert tls_server.base_url.startswith("https://127.0.0.1:"), tls_server.stdout
    assert tls_server.tls_fingerprint, tls_server.stdout
    assert _served_fingerprint(tls_server.port) == tls_server.tls_fingerprint
    assert tls_server.ca_file is not None
    assert _fingerprint_of_pem(tls_server.ca_file.read_text()) == tls_server.tls_fingerprint
    assert "/api/docs" in tls_server.stdout and "https://127.0.0.1:" in tls_server.stdout


def test_self_signed_certificate_and_key_on_disk(tls_server: ServerProcess) -> None:
    assert tls_server.ca_file is not None
    key_file = tls_server.ca_file.with_name("self-signed.key")
    assert key_file.stat().st_mode & 0o777 == 0o600
    cert = x509.load_pem_x509_certificate(tls_server.ca_file.read_bytes())
    public = cert.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert public.curve.name == "secp256r1"
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert datetime.timedelta(days=364) < lifetime < datetime.timedelta(days=366)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert ipaddress.ip_address("127.0.0.1") in san.get_values_for_type(x509.IPAddress)


async def test_rest_over_https_and_a_websocket_over_wss(tls_server: ServerProcess) -> None:
    assert tls_server.one_time_password
    async with httpx.AsyncClient(
        base_url=tls_server.base_url, verify=tls_server.verify(), timeout=30.0
    ) as client:
        owner = await take_over_owner(client, tls_server.one_time_password)
        alice = await create_person(client, owner, "alice")
        conv = await create_conversation(client, owner, "dm", [alice])
        token = owner.headers["Authorization"].removeprefix("Bearer ")

        verify = tls_server.verify()
        assert isinstance(verify, ssl.SSLContext)
        url = "wss://" + tls_server.base_url.removeprefix("https://") + "/api/v1/ws"
        async with connect(url, ssl=verify, compression=None) as ws:
            assert ws.response is not None
            assert ws.response.headers.get("Strict-Transport-Security") == HSTS
            await ws.send(json.dumps({"type": "hello", "token": token, "cursors": {conv.id: 0}}))
            ready = json.loads(await ws.recv())
            assert ready["type"] == "ready", ready
            sent = await client.post(
                f"/api/v1/conversations/{conv.id}/messages",
                json={"client_msg_id": "tls-1", "text": "hello over TLS"},
                headers=owner.headers,
            )
            assert sent.status_code == 201, sent.text
            while True:
                frame = json.loads(await ws.recv())
                if frame["type"] == "message.created":
                    break
            assert frame["conversation_id"] == conv.id
            assert "hello over TLS" in json.dumps(frame)


def test_hsts_over_tls(tls_server: ServerProcess) -> None:
    with httpx.Client(base_url=tls_server.base_url, verify=tls_server.verify()) as client:
        for path in ("/healthz", "/api/v1/conversations", "/no/such/page"):
            resp = client.get(path)
            assert resp.headers.get("strict-transport-security") == HSTS, (path, resp.headers)


def test_hsts_never_over_plain_http(tmp_path: Path) -> None:
    server = start_server(tmp_path / "plain", log_dir=tmp_path)
    try:
        assert server.base_url.startswith("http://")
        resp = httpx.get(server.base_url + "/healthz")
        assert resp.status_code == 200
        assert "strict-transport-security" not in resp.headers
    finally:
        server.stop()


def _tls11_only_client() -> ssl.SSLContext:
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    client.minimum_version = ssl.TLSVersion.TLSv1
    client.maximum_version = ssl.TLSVersion.TLSv1_1
    client.set_ciphers("ALL:@SECLEVEL=0")  # OpenSSL 3 hides TLS 1.0/1.1 behind level 0
    return client


def _client_can_speak_tls11(cert_file: Path, key_file: Path) -> bool:
    """Whether `_tls11_only_client` completes a handshake with a server that allows TLS 1.1:
    without this, a failed handshake with Enclave could be our own OpenSSL's refusal."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.minimum_version = ssl.TLSVersion.TLSv1
    server_ctx.set_ciphers("ALL:@SECLEVEL=0")
    server_ctx.load_cert_chain(cert_file, key_file)
    with socket.create_server(("127.0.0.1", 0)) as listener:

        def accept() -> None:
            conn, _ = listener.accept()
            with contextlib.suppress(OSError):
                server_ctx.wrap_socket(conn, server_side=True).close()
            conn.close()

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        try:
            with (
                socket.create_connection(listener.getsockname(), timeout=5) as raw,
                _tls11_only_client().wrap_socket(raw) as tls,
            ):
                return tls.version() == "TLSv1.1"
        except ssl.SSLError:
            return False
        finally:
            thread.join(timeout=5)


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
def test_tls_1_1_is_refused_and_a_default_client_gets_1_2_or_later(
    tls_server: ServerProcess,
) -> None:
    assert tls_server.ca_file is not None
    key_file = tls_server.ca_file.with_name("self-signed.key")
    if _client_can_speak_tls11(tls_server.ca_file, key_file):
        with (
            socket.create_connection(("127.0.0.1", tls_server.port), timeout=5) as raw,
            pytest.raises(ssl.SSLError),
        ):
            _tls11_only_client().wrap_socket(raw).close()
    # else: this OpenSSL cannot offer TLS 1.1 at all, so only the check below says anything.

    verify = tls_server.verify()
    assert isinstance(verify, ssl.SSLContext)
    with (
        socket.create_connection(("127.0.0.1", tls_server.port), timeout=5) as raw,
        verify.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_tls_1_2_gets_only_ecdhe_aead_suites(tls_server: ServerProcess) -> None:
    for suite in ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"):
        client = ssl.create_default_context(cafile=str(tls_server.ca_file))
        client.maximum_version = ssl.TLSVersion.TLSv1_2
        client.set_ciphers(suite)
        with (
            socket.create_connection(("127.0.0.1", tls_server.port), timeout=5) as raw,
            client.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            assert tls.version() == "TLSv1.2"
            cipher = tls.cipher()
            assert cipher is not None and cipher[0] == suite
    for weak in ("ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES128-SHA256", "AES128-GCM-SHA256"):
        client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        client.check_hostname = False
        client.verify_mode = ssl.CERT_NONE
        client.maximum_version = ssl.TLSVersion.TLSv1_2
        client.set_ciphers(weak + ":@SECLEVEL=0")
        with (
            socket.create_connection(("127.0.0.1", tls_server.port), timeout=5) as raw,
            pytest.raises(ssl.SSLError),
        ):
            client.wrap_socket(raw).close()


def write_ca_and_leaf(
    directory: Path, leaf_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | None = None
) -> tuple[Path, Path, Path]:
    """A private ECDSA CA and a leaf certificate for 127.0.0.1 signed by it: (ca, cert, key).
    The leaf's key is ECDSA P-256 unless `leaf_key` is given (the TLS scan uses RSA)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = leaf_key or ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "chat.test")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("chat.test"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    ca_file, cert_file, key_file = (directory / n for n in ("ca.pem", "cert.pem", "key.pem"))
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    return ca_file, cert_file, key_file


def test_provided_certificate_files_are_served(tmp_path: Path) -> None:
    ca_file, cert_file, key_file = write_ca_and_leaf(tmp_path / "pki")
    env = {
        "ENCLAVE_TLS_CERT_FILE": str(cert_file),
        "ENCLAVE_TLS_KEY_FILE": str(key_file),
        "ENCLAVE_TLS_SELF_SIGNED": "true",  # files win over self-signed
    }
    data_dir = tmp_path / "data"
    server = start_server(data_dir, log_dir=tmp_path, env=env, ca_file=ca_file)
    try:
        expected = _fingerprint_of_pem(cert_file.read_text())
        assert server.base_url.startswith("https://")
        assert server.tls_fingerprint == expected
        assert _served_fingerprint(server.port) == expected
        with httpx.Client(base_url=server.base_url, verify=server.verify()) as client:
            resp = client.get("/healthz")
            assert resp.status_code == 200
            assert resp.headers["strict-transport-security"] == HSTS
        assert not (data_dir / "tls").exists()
    finally:
        server.stop()


async def test_plain_http_on_a_non_loopback_address_is_refused(tmp_path: Path) -> None:
    result = await enclave(
        "serve", "--host", ALL_INTERFACES, "--port", "0", *location_args(tmp_path / "data")
    )
    assert result.returncode == 2, describe(result)
    assert "tls." in result.stderr and "server.trusted_proxies" in result.stderr, describe(result)
    assert "listening" not in result.stdout, describe(result)
    assert not (tmp_path / "data" / "enclave.db").exists(), describe(result)


async def test_bad_certificate_files_stop_the_start_naming_them(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    env = {"ENCLAVE_TLS_CERT_FILE": str(missing), "ENCLAVE_TLS_KEY_FILE": str(missing)}
    result = await enclave("serve", "--port", "0", *location_args(tmp_path / "data"), env=env)
    assert result.returncode == 2, describe(result)
    assert "tls" in result.stderr and str(missing) in result.stderr, describe(result)


def test_a_declared_proxy_allows_plain_http_on_any_address(tmp_path: Path) -> None:
    """0.0.0.0 with server.trusted_proxies starts on plain HTTP (the proxy terminates TLS)."""
    env = {"ENCLAVE_SERVER_TRUSTED_PROXIES": "127.0.0.1/32"}
    server = start_server(
        tmp_path / "data", log_dir=tmp_path, env=env, extra_args=["--host", ALL_INTERFACES]
    )
    try:
        assert "listening on http://0.0.0.0:" in server.stdout, server.stdout
        resp = httpx.get(server.base_url + "/healthz")
        assert resp.status_code == 200
        assert "strict-transport-security" not in resp.headers
    finally:
        server.stop()
