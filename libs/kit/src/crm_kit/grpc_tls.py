"""gRPC TLS material that follows its files, and the caller's identity from its certificate.

Certificates are short-lived and renewed in place (cert-manager rewrites the mounted Secret; the
kubelet swaps the files atomically through a symlink), so nothing reads them once at start-up:
`CertificateFiles` notices a change by the files' stat (inode, size, mtime) — a few syscalls per
TLS handshake or call, no timer — and loads them again only when the new key matches the new
certificate, so a writer caught half-way keeps the previous pair until it finishes.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from crm_kit.settings import TlsFiles

log = logging.getLogger(__name__)

# The peer's DNS and URI subject alternative names (SPIFFE ids are URI SANs) as gRPC core reports
# them in the auth context. The common name is not an identity (RFC 6125 §6.4.4): never read.
_PEER_NAME_PROPERTIES = ("peer_dns", "peer_uri")

FileStamp = tuple[int, int, int] | None
Signature = tuple[FileStamp, ...]


@dataclass(frozen=True)
class TlsMaterial:
    """The PEM bytes read from a TlsFiles at one moment (None where the file is not configured)."""

    certificate_chain: bytes | None
    private_key: bytes | None
    root_certificates: bytes | None


class CertificateFiles:
    """The current TlsMaterial of tls' files; `changed()` says when they were replaced."""

    def __init__(self, tls: TlsFiles) -> None:
        self.tls = tls
        self._signature = self._stat()
        self.material = _load(tls)  # at start-up a bad pair fails loudly
        self._refused: Signature | None = None

    def _stat(self) -> Signature:
        stamps: list[FileStamp] = []
        for path in (self.tls.cert_file, self.tls.key_file, self.tls.ca_file):
            try:
                st = os.stat(path) if path else None
            except OSError:
                st = None
            stamps.append((st.st_ino, st.st_size, st.st_mtime_ns) if st else None)
        return tuple(stamps)

    def reload_if_changed(self) -> bool:
        """Read the files again if they changed since the last load; True when material is new.
        Unreadable or mismatched files keep the previous material (logged once per change)."""
        signature = self._stat()
        if signature == self._signature:
            return False
        try:
            material = _load(self.tls)
        except (OSError, ValueError) as exc:
            if signature != self._refused:
                self._refused = signature
                log.warning(
                    "renewed gRPC TLS files not usable yet; keeping the previous ones", extra={"error": str(exc)}
                )
            return False
        self._signature, self.material = signature, material
        log.info("gRPC TLS certificate files reloaded", extra={"cert_file": self.tls.cert_file})
        return True


def _load(tls: TlsFiles) -> TlsMaterial:
    material = TlsMaterial(tls.certificate_chain(), tls.private_key(), tls.root_certificates())
    if material.certificate_chain is not None and material.private_key is not None:
        cert = x509.load_pem_x509_certificate(material.certificate_chain)
        key = serialization.load_pem_private_key(material.private_key, password=None)
        spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        if cert.public_key().public_bytes(*spki) != key.public_key().public_bytes(*spki):
            raise ValueError(f"{tls.key_file} is not the key of the certificate in {tls.cert_file}")
    return material


def _server_configuration(material: TlsMaterial) -> grpc.ServerCertificateConfiguration:
    assert material.private_key is not None and material.certificate_chain is not None
    return grpc.ssl_server_certificate_configuration(
        [(material.private_key, material.certificate_chain)], root_certificates=material.root_certificates
    )


def server_credentials(tls: TlsFiles) -> grpc.ServerCredentials:
    """TLS with tls' certificate, requiring client certificates signed by tls' CA when it has one;
    a renewed certificate, key or CA is used from the next handshake on, without a restart
    (gRPC core asks the fetcher at every handshake; connections already open keep theirs until
    the server's max connection age closes them)."""
    if not (tls.cert_file and tls.key_file):
        raise ValueError("a TLS server needs a certificate and its private key")
    files = CertificateFiles(tls)

    def fetch() -> grpc.ServerCertificateConfiguration | None:
        return _server_configuration(files.material) if files.reload_if_changed() else None

    return grpc.dynamic_ssl_server_credentials(
        _server_configuration(files.material),
        fetch,
        require_client_authentication=files.material.root_certificates is not None,
    )


def channel_credentials(material: TlsMaterial) -> grpc.ChannelCredentials:
    """Client TLS verifying the server against material's CA (the system roots without one),
    presenting material's certificate when it has one (mTLS)."""
    return grpc.ssl_channel_credentials(
        root_certificates=material.root_certificates,
        private_key=material.private_key,
        certificate_chain=material.certificate_chain,
    )


def peer_names(context: grpc.aio.ServicerContext) -> frozenset[str]:
    """The DNS and URI SANs of the client certificate of this call (empty without one)."""
    auth = context.auth_context() or {}
    return frozenset(value.decode("utf-8", "replace") for prop in _PEER_NAME_PROPERTIES for value in auth.get(prop, ()))
