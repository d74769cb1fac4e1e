"""mTLS between the chassis' gRPC server and channel, with a CA, server and client certificates
made here: a client with a certificate from the CA is served; a plaintext client, a client without
a certificate and one with a certificate from another CA are UNAVAILABLE. With allowed client
names, a certificate of the CA naming another service is PERMISSION_DENIED (health excepted), and
renewed certificate files are used by server and channel without a restart."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import astuple, dataclass
from pathlib import Path

import grpc
import pytest
from google.protobuf.wrappers_pb2 import StringValue
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from crm_kit import caller
from crm_kit.grpc_client import channel
from crm_kit.grpc_server import GrpcServer
from crm_kit.settings import TlsFiles
from crm_kit.testing import free_port
from crm_kit.testing_tls import Issued, issue, make_ca, write

pytestmark = pytest.mark.integration


@dataclass
class Pki:
    ca: Issued
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
        ca=ca,
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


# --- which clients may call ------------------------------------------------------------------------

WHOAMI = "crm.test.v1.Whoami"
ALLOWED = ("crm-gateway", "spiffe://crm/ns/crm/sa/notifications")


async def whoami(request: StringValue, context: grpc.aio.ServicerContext) -> StringValue:
    who = caller.current()
    return StringValue(value=who.actor if who else "")


@pytest.fixture
async def allowlisted_server(pki: Pki) -> AsyncIterator[str]:
    port = free_port()
    server = GrpcServer(port, "crm.test", checks=[], tls=pki.server, allowed_client_names=ALLOWED)
    handler = grpc.method_handlers_generic_handler(
        WHOAMI,
        {
            "Get": grpc.unary_unary_rpc_method_handler(
                whoami, request_deserializer=StringValue.FromString, response_serializer=StringValue.SerializeToString
            )
        },
    )
    server.add(lambda h, s: s.add_generic_rpc_handlers((h,)), handler, WHOAMI)
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)


def client_files(directory: Path, pki: Pki, name: str, *, common_name: str = "client", sans: Sequence[str]) -> TlsFiles:
    cert, key = write(directory, name, issue(pki.ca, common_name, server=False, names=sans))
    return TlsFiles(cert, key, pki.ca_file)


async def ask_whoami(address: str, tls: TlsFiles) -> str:
    async with channel(address, default_timeout=5.0, tls=tls) as ch:
        get = ch.unary_unary(
            f"/{WHOAMI}/Get",
            request_serializer=StringValue.SerializeToString,
            response_deserializer=StringValue.FromString,
        )
        with caller.acting_as("user:alice", "req-1"):
            answer: StringValue = await get(StringValue())
        return answer.value


@pytest.mark.parametrize("san", ALLOWED)
async def test_an_allowed_client_is_served_and_its_actor_believed(allowlisted_server, pki, tmp_path, san) -> None:
    tls = client_files(tmp_path, pki, "allowed", sans=[san])
    assert await ask_whoami(allowlisted_server, tls) == "user:alice"


async def test_a_certificate_of_the_ca_naming_another_service_is_refused(allowlisted_server, pki, tmp_path) -> None:
    """Signed by the right CA, its common name even says crm-gateway; its SAN says crm-orders,
    which is not an allowed caller: every call but health is PERMISSION_DENIED, reflection too."""
    tls = client_files(tmp_path, pki, "orders", common_name="crm-gateway", sans=["crm-orders"])
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await ask_whoami(allowlisted_server, tls)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    status = rpc_status.from_call(refused.value)
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info) and info.reason == "CLIENT_NOT_ALLOWED"
    assert info.metadata["client_names"] == "crm-orders"

    async with channel(allowlisted_server, default_timeout=5.0, tls=tls) as ch:
        reflection = reflection_pb2_grpc.ServerReflectionStub(ch)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        with pytest.raises(grpc.aio.AioRpcError) as listed:
            async for _ in reflection.ServerReflectionInfo(iter([request])):
                pass
        assert listed.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # The probes run with the pod's own certificate: health answers any client of the CA.
    answer = await check(allowlisted_server, tls)
    assert answer.status in (health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING)


async def test_allowed_client_names_without_mtls_are_refused(pki) -> None:
    with pytest.raises(ValueError, match="mTLS"):
        GrpcServer(free_port(), "crm.test", checks=[], allowed_client_names=ALLOWED)
    no_ca = TlsFiles(pki.server.cert_file, pki.server.key_file)
    with pytest.raises(ValueError, match="mTLS"):
        GrpcServer(free_port(), "crm.test", checks=[], tls=no_ca, allowed_client_names=ALLOWED)


# --- renewed certificate files ---------------------------------------------------------------------


def renew(target: TlsFiles, source: TlsFiles) -> None:
    """Replace target's files by source's the way the kubelet updates a mounted Secret: each path
    swapped atomically for a new file (a new inode)."""
    for dst, src in zip(astuple(target), astuple(source), strict=True):
        swap(dst, src)


def swap(dst: str, src: str) -> None:
    Path(f"{dst}.new").write_bytes(Path(src).read_bytes())
    os.replace(f"{dst}.new", dst)


@dataclass
class TwoAuthorities:
    """Everything issued twice, by CA A and by a new CA B (a CA rotation: the hardest renewal)."""

    server_a: TlsFiles
    server_b: TlsFiles
    client_a: TlsFiles
    client_b: TlsFiles


@pytest.fixture
def two_authorities(tmp_path: Path) -> TwoAuthorities:
    made: dict[str, TlsFiles] = {}
    for label in ("a", "b"):
        ca = make_ca(f"CA {label}")
        ca_file, _ = write(tmp_path, f"ca-{label}", ca)
        server = write(tmp_path, f"server-{label}", issue(ca, "orders", server=True))
        client = write(tmp_path, f"client-{label}", issue(ca, "gateway", server=False, names=["crm-gateway"]))
        made[f"server_{label}"] = TlsFiles(*server, ca_file)
        made[f"client_{label}"] = TlsFiles(*client, ca_file)
    return TwoAuthorities(**made)


def mounted(directory: Path, files: TlsFiles) -> TlsFiles:
    """A copy of files at fixed paths (a Secret's mount) that renew() can replace."""
    directory.mkdir()
    mount = TlsFiles(str(directory / "tls.crt"), str(directory / "tls.key"), str(directory / "ca.crt"))
    renew(mount, files)
    return mount


async def test_the_server_uses_renewed_certificate_files_without_a_restart(two_authorities, tmp_path) -> None:
    pki = two_authorities
    mount = mounted(tmp_path / "server-secret", pki.server_a)
    port = free_port()
    server = GrpcServer(port, "crm.test", checks=[], tls=mount, allowed_client_names=["crm-gateway"])
    await server.start()
    address = f"127.0.0.1:{port}"
    try:
        await check(address, pki.client_a)
        with pytest.raises(grpc.aio.AioRpcError) as before:
            await check(address, pki.client_b)  # B's client trusts only CA B: A's certificate fails
        assert before.value.code() == grpc.StatusCode.UNAVAILABLE

        renew(mount, pki.server_b)

        await check(address, pki.client_b)  # a new connection gets certificate B
        with pytest.raises(grpc.aio.AioRpcError) as after:
            await check(address, pki.client_a)
        assert after.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await server.stop(0)


async def test_a_channel_uses_renewed_certificate_files_without_being_made_again(two_authorities, tmp_path) -> None:
    pki = two_authorities
    port = free_port()
    server = GrpcServer(port, "crm.test", checks=[], tls=pki.server_b, allowed_client_names=["crm-gateway"])
    await server.start()
    mount = mounted(tmp_path / "client-secret", pki.client_a)
    try:
        async with channel(f"127.0.0.1:{port}", default_timeout=5.0, tls=mount) as ch:
            health_stub = health_pb2_grpc.HealthStub(ch)  # made once, like a service's stubs
            with pytest.raises(grpc.aio.AioRpcError) as before:
                await health_stub.Check(health_pb2.HealthCheckRequest())
            assert before.value.code() == grpc.StatusCode.UNAVAILABLE

            renew(mount, pki.client_b)

            answer = await health_stub.Check(health_pb2.HealthCheckRequest())
            assert answer.status in (
                health_pb2.HealthCheckResponse.SERVING,
                health_pb2.HealthCheckResponse.NOT_SERVING,
            )
    finally:
        await server.stop(0)


async def test_a_half_written_renewal_keeps_the_previous_certificate(two_authorities, tmp_path) -> None:
    """A new certificate whose key has not arrived yet is not used: calls go on with the old pair,
    and the new one is used once its key is there."""
    pki = two_authorities
    mount = mounted(tmp_path / "server-secret", pki.server_a)
    port = free_port()
    server = GrpcServer(port, "crm.test", checks=[], tls=mount)
    await server.start()
    address = f"127.0.0.1:{port}"
    try:
        swap(mount.cert_file, pki.server_b.cert_file)
        await check(address, pki.client_a)
        swap(mount.key_file, pki.server_b.key_file)
        swap(mount.ca_file, pki.server_b.ca_file)
        await check(address, pki.client_b)
    finally:
        await server.stop(0)
