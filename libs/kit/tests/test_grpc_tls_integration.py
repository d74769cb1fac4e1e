"""mTLS between the chassis' gRPC server and channel, with a CA, server and client certificates
made here: a client with a certificate from the CA is served; a plaintext client, a client without
a certificate and one with a certificate from another CA are UNAVAILABLE."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc

from crm_kit.grpc_client import channel
from crm_kit.grpc_server import GrpcServer
from crm_kit.settings import TlsFiles
from crm_kit.testing import free_port

pytestmark = pytest.mark.integration


@dataclass
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(common_name: str) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return Issued(cert, key)


def issue(ca: Issued, common_name: str, *, server: bool) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return Issued(builder.sign(ca.key, hashes.SHA256()), key)


def write(directory: Path, name: str, issued: Issued) -> tuple[str, str]:
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}-key.pem"
    cert_path.write_bytes(issued.cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        issued.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(cert_path), str(key_path)


@dataclass
class Pki:
    ca_file: str
    client: TlsFiles
    stranger: TlsFiles  # a client certificate from another CA
    server: TlsFiles


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca, other_ca = make_ca("crm test CA"), make_ca("someone else's CA")
    ca_file, _ = write(tmp_path, "ca", ca)
    server_cert, server_key = write(tmp_path, "server", issue(ca, "orders", server=True))
    client_cert, client_key = write(tmp_path, "client", issue(ca, "gateway", server=False))
    stranger_cert, stranger_key = write(tmp_path, "stranger", issue(other_ca, "gateway", server=False))
    return Pki(
        ca_file=ca_file,
        client=TlsFiles(client_cert, client_key, ca_file),
        stranger=TlsFiles(stranger_cert, stranger_key, ca_file),
        server=TlsFiles(server_cert, server_key, ca_file),
    )


@pytest.fixture
async def mtls_server(pki: Pki) -> AsyncIterator[str]:
    port = free_port()
    server = GrpcServer(port, "crm.test", checks=[], tls=pki.server)
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)


async def check(address: str, tls: TlsFiles | None) -> health_pb2.HealthCheckResponse:
    async with channel(address, default_timeout=5.0, tls=tls) as ch:
        return await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest())


async def test_a_client_with_a_certificate_from_the_ca_is_served(mtls_server, pki) -> None:
    answer = await check(mtls_server, pki.client)
    assert answer.status in (health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING)


@pytest.mark.parametrize("client", ["plaintext", "no client certificate", "certificate from another CA"])
async def test_other_clients_are_unavailable(mtls_server, pki, client: str) -> None:
    tls = {
        "plaintext": None,
        "no client certificate": TlsFiles(ca_file=pki.ca_file),
        "certificate from another CA": pki.stranger,
    }[client]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await check(mtls_server, tls)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
