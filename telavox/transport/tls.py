"""TLS settings for SIP over TLS (RFC 3261 §26.3.1): certificate files in,
Twisted context factories out.

Owns :class:`TlsFiles` (paths from the configuration) and the two factories:
:func:`server_options` for listeners and :func:`client_options` for
connections we open (the peer's certificate checked against ``ca_file`` or
the system's trust store, and its name or IP address against the target).
"""

from __future__ import annotations

from pathlib import Path

import attrs
from twisted.internet import ssl
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator


class TlsError(ValueError):
    """Certificate or key files that cannot be used."""


@attrs.frozen
class TlsFiles:
    """Where the certificate material lives.

    ``cert_file`` holds our certificate (and optionally its chain),
    ``key_file`` its private key (may be the same file).  ``ca_file``, when
    given, is the only trust root for peers' certificates.  ``verify_server``
    makes outgoing connections check the server's certificate (chain, and DNS
    name or IP address); ``require_client_cert`` makes listeners demand a
    client certificate chaining to ``ca_file`` (mutual TLS).
    """

    cert_file: str
    key_file: str
    ca_file: str | None = None
    verify_server: bool = True
    require_client_cert: bool = False


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise TlsError(f"cannot read {what} {path!r}: {e.strerror}") from None


def _ca(files: TlsFiles) -> ssl.Certificate | None:
    if files.ca_file is None:
        return None
    try:
        return ssl.Certificate.loadPEM(_read(files.ca_file, "CA file"))
    except Exception as e:
        raise TlsError(f"CA file {files.ca_file!r} is not a PEM certificate: {e}") from None


def _private_certificate(files: TlsFiles) -> ssl.PrivateCertificate:
    cert = _read(files.cert_file, "certificate file")
    key = cert if files.key_file == files.cert_file else _read(files.key_file, "key file")
    try:
        return ssl.PrivateCertificate.loadPEM(cert + b"\n" + key)
    except Exception as e:
        raise TlsError(
            f"certificate {files.cert_file!r} and key {files.key_file!r} do not load: {e}"
        ) from None


def server_options(files: TlsFiles) -> ssl.CertificateOptions:
    """Context factory for a TLS listener (TLS 1.2 or newer)."""
    cert = _private_certificate(files)
    ca = _ca(files)
    kwargs: dict[str, object] = {}
    if files.require_client_cert:
        if ca is None:
            raise TlsError("require_client_cert needs ca_file")
        kwargs.update(verify=True, caCerts=[ca.original], requireCertificate=True)
    return ssl.CertificateOptions(
        privateKey=cert.privateKey.original,
        certificate=cert.original,
        raiseMinimumTo=ssl.TLSVersion.TLSv1_2,
        **kwargs,  # type: ignore[arg-type]
    )


def client_options(files: TlsFiles | None, host: str) -> IOpenSSLClientConnectionCreator:
    """Connection creator for a TLS connection we open toward ``host``
    (presenting our certificate, if we have one, for mutual TLS)."""
    ca = _ca(files) if files is not None else None
    client_cert = _private_certificate(files) if files is not None else None
    if files is not None and not files.verify_server:
        return ssl.CertificateOptions(
            privateKey=client_cert.privateKey.original if client_cert else None,
            certificate=client_cert.original if client_cert else None,
            raiseMinimumTo=ssl.TLSVersion.TLSv1_2)
    trust = ca if ca is not None else ssl.platformTrust()
    return ssl.optionsForClientTLS(
        host.strip("[]"),
        trustRoot=trust,
        clientCertificate=client_cert,
        extraCertificateOptions={"raiseMinimumTo": ssl.TLSVersion.TLSv1_2},
    )
