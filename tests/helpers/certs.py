"""A throw-away certificate authority for TLS tests (loopback names only)."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@attrs.frozen
class Pki:
    """Paths of a CA certificate and of a server and a client certificate it signed."""

    ca_cert: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))


def _issue(ca_key: ec.EllipticCurvePrivateKey, ca_name: x509.Name, common: str,
           key: ec.EllipticCurvePrivateKey, *, ca: bool = False,
           ips: tuple[str, ...] = ("127.0.0.1", "::1")) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"),
            *(x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips),
        ]), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def make_pki(folder: Path, more_ips: tuple[str, ...] = ()) -> Pki:
    """Create a CA plus server and client certificates for 127.0.0.1/localhost
    (and the loopback addresses ``more_ips``)."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("Telavox Test CA")
    ca_cert = _issue(ca_key, ca_name, "Telavox Test CA", ca_key, ca=True)
    paths = {}
    for role in ("server", "client"):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _issue(ca_key, ca_name, f"telavox-test-{role}", key,
                      ips=("127.0.0.1", "::1", *more_ips))
        (folder / f"{role}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, folder / f"{role}.key")
        paths[role] = (str(folder / f"{role}.pem"), str(folder / f"{role}.key"))
    (folder / "ca.pem").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    return Pki(str(folder / "ca.pem"), *paths["server"], *paths["client"])
