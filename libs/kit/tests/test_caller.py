"""The caller context and the request budget without I/O: nesting, the timeout a call gets, the
metadata it carries, and the TLS settings."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from pydantic import ValidationError
from sqlalchemy import MetaData

from crm_kit import caller
from crm_kit.grpc_client import _ClientInterceptor, caller_metadata, deadline_after, effective_timeout
from crm_kit.service import Service
from crm_kit.settings import ServiceSettings, TlsFiles
from crm_kit.tables import MessagingTables

pytestmark = pytest.mark.unit


def test_a_budget_caps_the_timeout_and_a_nested_one_never_extends_it() -> None:
    assert caller.remaining() is None
    assert effective_timeout(None, 5.0) == 5.0 and effective_timeout(2.0, 5.0) == 2.0
    with deadline_after(0.2):
        left = caller.remaining()
        assert left is not None and 0 < left <= 0.2
        assert effective_timeout(None, 5.0) <= 0.2
        assert effective_timeout(30.0, 5.0) <= 0.2
        assert effective_timeout(0.05, 5.0) == 0.05
        with deadline_after(60):
            inner = caller.remaining()
            assert inner is not None and inner <= 0.2
        with deadline_after(None):
            assert caller.remaining() is not None
    assert caller.remaining() is None
    with deadline_after(-1):
        assert caller.remaining() == 0


def test_metadata_names_the_current_caller_unless_the_call_does() -> None:
    assert caller_metadata([]) == []
    with caller.acting_as("alice", "req-1"):
        assert caller_metadata([("traceparent", "x")]) == [("x-crm-actor", "alice"), ("x-request-id", "req-1")]
        assert caller_metadata([("x-crm-actor", "bob")]) == [("x-request-id", "req-1")]
    with caller.acting_as("system"):
        assert caller_metadata([]) == [("x-crm-actor", "system")]
    assert caller.current() is None


async def test_a_call_after_the_budget_is_spent_is_never_sent() -> None:
    sent: list[Any] = []

    async def continuation(details: Any, request: Any) -> Any:
        sent.append(details)
        raise AssertionError("must not be called")

    details = grpc.aio.ClientCallDetails(
        method="/crm.test.v1.Probe/Change", timeout=None, metadata=None, credentials=None, wait_for_ready=None
    )
    with deadline_after(0), pytest.raises(grpc.aio.AioRpcError) as err:
        await _ClientInterceptor(5.0).intercept_unary_unary(continuation, details, object())
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED and sent == []


async def test_the_call_carries_the_capped_timeout_and_the_caller() -> None:
    sent: list[Any] = []

    class Call:
        async def code(self) -> grpc.StatusCode:
            return grpc.StatusCode.OK

    async def continuation(details: Any, request: Any) -> Any:
        sent.append(details)
        return Call()

    details = grpc.aio.ClientCallDetails(
        method="/crm.test.v1.Probe/Change", timeout=30.0, metadata=None, credentials=None, wait_for_ready=None
    )
    with caller.acting_as("alice", "req-1"), deadline_after(0.2):
        await _ClientInterceptor(5.0).intercept_unary_unary(continuation, details, object())
    assert 0 < sent[0].timeout <= 0.2
    metadata = dict(sent[0].metadata)
    assert metadata["x-crm-actor"] == "alice" and metadata["x-request-id"] == "req-1"


def test_tls_settings_are_plaintext_when_unset_and_cert_needs_key() -> None:
    assert ServiceSettings(service_name="x").grpc_tls() is None
    tls = ServiceSettings(
        service_name="x", grpc_tls_cert_file="c.pem", grpc_tls_key_file="k.pem", grpc_tls_ca_file="ca.pem"
    ).grpc_tls()
    assert tls == TlsFiles("c.pem", "k.pem", "ca.pem")
    assert ServiceSettings(service_name="x", grpc_tls_ca_file="ca.pem").grpc_tls() == TlsFiles(ca_file="ca.pem")
    with pytest.raises(ValidationError, match="set together"):
        ServiceSettings(service_name="x", grpc_tls_cert_file="c.pem")
    with pytest.raises(ValueError, match="go together"):
        TlsFiles(key_file="k.pem")
    assert TlsFiles().root_certificates() is None


def test_listeners_are_on_loopback_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = ServiceSettings(service_name="x")
    assert (settings.grpc_host, settings.metrics_host) == ("127.0.0.1", "127.0.0.1")
    monkeypatch.setenv("CRM_GRPC_HOST", "0.0.0.0")
    monkeypatch.setenv("CRM_METRICS_HOST", "0.0.0.0")
    settings = ServiceSettings(service_name="x")
    assert (settings.grpc_host, settings.metrics_host) == ("0.0.0.0", "0.0.0.0")


def test_allowed_client_names_come_from_a_json_list_and_need_mtls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_GRPC_ALLOWED_CLIENT_NAMES", '["crm-gateway", "spiffe://crm/sa/notifications"]')
    with pytest.raises(ValidationError, match="needs mTLS"):
        ServiceSettings(service_name="x")
    settings = ServiceSettings(
        service_name="x", grpc_tls_cert_file="c.pem", grpc_tls_key_file="k.pem", grpc_tls_ca_file="ca.pem"
    )
    assert settings.grpc_allowed_client_names == ["crm-gateway", "spiffe://crm/sa/notifications"]


def test_a_production_backend_with_mtls_must_name_its_callers() -> None:
    settings = ServiceSettings(
        service_name="x",
        environment="production",
        grpc_tls_cert_file="c.pem",
        grpc_tls_key_file="k.pem",
        grpc_tls_ca_file="ca.pem",
    )
    with pytest.raises(ValueError, match="CRM_GRPC_ALLOWED_CLIENT_NAMES"):
        Service(settings, MessagingTables(MetaData()))


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("req-1", "req-1"),
        ("import:7:12", "import:7:12"),
        ("3f2b9c1e-5d6a-4e8f-9b0c-1a2b3c4d5e6f", "3f2b9c1e-5d6a-4e8f-9b0c-1a2b3c4d5e6f"),
        ("r" * 100, "r" * 100),
        ("r" * 101, ""),
        ("line\nbreak", ""),
        ("\x1b[31mred", ""),
        ("<script>", ""),
        ("", ""),
    ],
)
def test_a_caller_keeps_only_a_well_formed_request_id(given: str, kept: str) -> None:
    with caller.acting_as("alice", given) as who:
        assert who.request_id == kept


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("alice", "alice"),
        ("דנה כהן", "דנה כהן"),
        ("mallory\n2026-01-01 admin did it", "mallory2026-01-01 admin did it"),
        ("\x1b[2J\x1b[Hroot", "[2J[Hroot"),
        ("\u202eevil", "evil"),
        ("a" * 5000, "a" * caller.MAX_ACTOR_LENGTH),
        ("\x00\x07", caller.UNKNOWN_ACTOR),
    ],
)
def test_a_caller_s_actor_has_no_control_characters_and_is_bounded(given: str, kept: str) -> None:
    with caller.acting_as(given) as who:
        assert who.actor == kept
