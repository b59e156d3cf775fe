"""TLS for `enclave serve`: the server's `ssl.SSLContext`, and a self-signed certificate for trials.

The context accepts TLS 1.2 and 1.3 only. TLS 1.3's suites are all AEAD; for TLS 1.2 only
ECDHE key exchange (forward secrecy) with AES-GCM or ChaCha20-Poly1305 is offered. Compression
and renegotiation are off.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# OpenSSL cipher string for TLS 1.2; TLS 1.3 suites are configured separately and all AEAD.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!PSK"
SELF_SIGNED_DAYS = 365
CERT_NAME = "self-signed.crt"
KEY_NAME = "self-signed.key"


class TlsError(Exception):
    """The certificate or key cannot be used; the message says which file and why."""


@dataclass(frozen=True)
class ServerTls:
    """What `serve` needs: the context, the certificate in use and its fingerprint."""

    context: ssl.SSLContext
    cert_file: Path
    key_file: Path
    fingerprint: str
    generated: bool  # a self-signed certificate was created by this start


def server_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A server context for `cert_file`/`key_file` (PEM): TLS 1.2+, AEAD with ECDHE only."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.options |= (
        ssl.OP_NO_COMPRESSION
        | ssl.OP_NO_RENEGOTIATION
        | ssl.OP_SINGLE_ECDH_USE
        | ssl.OP_CIPHER_SERVER_PREFERENCE
    )
    ctx.set_alpn_protocols(["http/1.1"])
    try:
        # An encrypted key fails here instead of OpenSSL prompting on a terminal for a passphrase.
        ctx.load_cert_chain(cert_file, key_file, password=b"")
    except (OSError, ssl.SSLError) as exc:
        raise TlsError(f"cannot load certificate {cert_file} with key {key_file}: {exc}") from exc
    return ctx


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER certificate as colon-separated upper-case hex (AB:CD:...)."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def pem_fingerprint(pem: bytes | str) -> str:
    """`fingerprint` of the first certificate of a PEM text."""
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    return fingerprint(x509.load_pem_x509_certificate(data))


def _alt_names(host: str) -> list[x509.GeneralName]:
    names: list[str] = ["localhost", "127.0.0.1", "::1"]
    if host:
        try:
            unspecified = ipaddress.ip_address(host).is_unspecified
        except ValueError:
            unspecified = False
        if unspecified:  # 0.0.0.0 / ::: the machine's own name is what clients will type
            names += [socket.gethostname(), socket.getfqdn()]
        else:
            names.append(host)
    result: list[x509.GeneralName] = []
    for name in dict.fromkeys(n for n in names if n):
        try:
            result.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            result.append(x509.DNSName(name))
    return result


def generate_self_signed(
    directory: Path, host: str, *, now: datetime.datetime | None = None
) -> tuple[Path, Path]:
    """Write a new ECDSA P-256 self-signed certificate valid for one year, for localhost,
    127.0.0.1, ::1 and `host`, into `directory`; the key file is created with mode 0600."""
    now = now or datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Enclave ({host or 'local'})")])
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=SELF_SIGNED_DAYS))
        .add_extension(x509.SubjectAlternativeName(_alt_names(host)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert_path, key_path = directory / CERT_NAME, directory / KEY_NAME
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    tmp_key = key_path.with_suffix(".key.tmp")
    tmp_key.unlink(missing_ok=True)
    fd = os.open(tmp_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key_pem)
    os.chmod(tmp_key, 0o600)  # whatever the umask
    tmp_cert = cert_path.with_suffix(".crt.tmp")
    tmp_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    os.replace(tmp_key, key_path)
    os.replace(tmp_cert, cert_path)
    return cert_path, key_path


def _usable(cert_path: Path, key_path: Path, host: str) -> bool:
    """The self-signed certificate exists, is valid for 30 more days and names `host`."""
    if not (cert_path.is_file() and key_path.is_file()):
        return False
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except ValueError:
        return False
    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=30)
    if cert.not_valid_after_utc < soon:
        return False
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    return set(_alt_names(host)) <= set(san)


def load_server_tls(
    *, cert_file: str, key_file: str, self_signed: bool, data_dir: Path, host: str
) -> ServerTls | None:
    """The TLS set-up the configuration asks for, or None for plain HTTP.

    Certificate files win; else with `self_signed` the certificate in data_dir/tls/ is used,
    created (or renewed, 30 days before it expires or when the host changed) as needed.
    """
    generated = False
    if cert_file:
        cert_path, key_path = Path(cert_file), Path(key_file)
    elif self_signed:
        directory = data_dir / "tls"
        cert_path, key_path = directory / CERT_NAME, directory / KEY_NAME
        if not _usable(cert_path, key_path, host):
            cert_path, key_path = generate_self_signed(directory, host)
            generated = True
    else:
        return None
    context = server_context(cert_path, key_path)
    try:
        served = fingerprint(x509.load_pem_x509_certificate(cert_path.read_bytes()))
    except (OSError, ValueError) as exc:
        raise TlsError(f"cannot read certificate {cert_path}: {exc}") from exc
    return ServerTls(context, cert_path, key_path, served, generated)
