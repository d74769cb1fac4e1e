"""The NATS permission table and connection options: a service publishes only its own subjects,
never changes, purges or deletes the stream, listens only on its own inbox; production refuses a
connection without credentials."""

from __future__ import annotations

import json

import pytest
from nats.js.api import DiscardPolicy
from pydantic import ValidationError

from crm_kit import nats_access
from crm_kit.bus import idempotency_stream_config
from crm_kit.settings import ServiceSettings

pytestmark = pytest.mark.unit


def allows(patterns: tuple[str, ...], subject: str) -> bool:
    """NATS subject matching: `*` one token, `>` the rest."""
    for pattern in patterns:
        p, s = pattern.split("."), subject.split(".")
        if p[-1] == ">" and len(s) >= len(p) and all(a in ("*", b) for a, b in zip(p[:-1], s, strict=False)):
            return True
        if len(p) == len(s) and all(a in ("*", b) for a, b in zip(p, s, strict=True)):
            return True
    return False


@pytest.mark.parametrize("service", list(nats_access.CONSUMES))
def test_a_service_publishes_only_its_own_subjects_and_never_changes_the_stream(service: str) -> None:
    allowed = nats_access.permissions(service)
    for other in nats_access.CONSUMES:
        assert allows(allowed.publish, f"crm.{other}.anything") == (other == service)
    # Not even create: a stream it made while CRM is missing could capture any subjects.
    for verb in ("CREATE", "DELETE", "PURGE", "UPDATE"):
        assert not allows(allowed.publish, f"$JS.API.STREAM.{verb}.CRM")
    assert not allows(allowed.publish, "$JS.API.STREAM.MSG.GET.CRM")
    assert not allows(allowed.publish, "$JS.API.STREAM.MSG.DELETE.CRM")
    assert allowed.subscribe == (f"_INBOX.{service}.>",)


def test_a_service_reads_only_its_own_durables_and_creates_none() -> None:
    """Which subjects a consumer reads is the provisioner's to set (one durable per producer, its
    filters from the table): a service may read and acknowledge its own durables, never create
    or change one, with or without a filter in the subject."""
    allowed = nats_access.permissions("notifications").publish
    for durable in ("notifications-from-orders", "notifications-from-support", "notifications-replays"):
        assert allows(allowed, f"$JS.API.CONSUMER.MSG.NEXT.CRM.{durable}")
        assert allows(allowed, f"$JS.API.CONSUMER.INFO.CRM.{durable}")
        assert allows(allowed, f"$JS.ACK.CRM.{durable}.1.2.3.4.5")
        assert not allows(allowed, f"$JS.API.CONSUMER.CREATE.CRM.{durable}")
        assert not allows(allowed, f"$JS.API.CONSUMER.CREATE.CRM.{durable}.crm.orders.order_shipped")
        assert not allows(allowed, f"$JS.API.CONSUMER.DURABLE.CREATE.CRM.{durable}")
    assert not allows(allowed, "$JS.API.CONSUMER.MSG.NEXT.CRM.customers-from-leads")
    assert not allows(allowed, "$JS.ACK.CRM.customers-from-leads.1.1.1.1.1")
    assert not any("CREATE" in p for p in allowed if "CONSUMER" in p)
    # leads consumes nothing: no consumer rights at all.
    assert not [p for p in nats_access.permissions("leads").publish if "CONSUMER" in p or "ACK" in p]


def test_one_durable_per_producer_with_that_producers_subjects() -> None:
    groups = nats_access.consumer_groups("reporting", nats_access.CONSUMES["reporting"])
    assert groups["reporting-from-leads"] == (
        "crm.leads.activity_logged",
        "crm.leads.campaign_changed",
        "crm.leads.lead_assigned",
        "crm.leads.lead_captured",
        "crm.leads.lead_converted",
        "crm.leads.lead_touched",
    )
    assert {nats_access.producer_of(s) for s in groups["reporting-from-support"]} == {"support"}
    assert sorted(s for subjects in groups.values() for s in subjects) == sorted(nats_access.CONSUMES["reporting"])
    provisioner = nats_access.permissions("provisioner").publish
    assert allows(provisioner, "$JS.API.CONSUMER.CREATE.CRM.reporting-from-leads")
    assert allows(provisioner, "$JS.API.CONSUMER.CREATE.CRM.orders-from-sales.crm.sales.deal_closed")
    assert allows(provisioner, "$JS.API.CONSUMER.INFO.CRM.reporting-lead-captured")
    assert not allows(provisioner, "$JS.API.CONSUMER.DELETE.CRM.reporting-from-leads")
    assert not allows(provisioner, "$JS.API.CONSUMER.MSG.NEXT.CRM.reporting-from-leads")


def test_the_gateway_uses_only_its_idempotency_bucket_and_only_the_provisioner_makes_streams() -> None:
    gateway = nats_access.permissions("gateway")
    assert gateway.publish == (
        "$KV.CRM_IDEMPOTENCY.>",
        "$JS.API.STREAM.INFO.KV_CRM_IDEMPOTENCY",
        "$JS.API.DIRECT.GET.KV_CRM_IDEMPOTENCY.>",
        "$JS.API.STREAM.MSG.GET.KV_CRM_IDEMPOTENCY",
        "$JS.API.INFO",
    )
    assert gateway.subscribe == ("_INBOX.gateway.>",)
    provisioner = nats_access.permissions("provisioner").publish
    for stream in ("CRM", "KV_CRM_IDEMPOTENCY"):
        assert allows(provisioner, f"$JS.API.STREAM.CREATE.{stream}")
        assert allows(provisioner, f"$JS.API.STREAM.UPDATE.{stream}")
        assert not any(allows(provisioner, f"$JS.API.STREAM.{v}.{stream}") for v in ("DELETE", "PURGE"))
        for identity in nats_access.SERVICES:
            allowed = nats_access.permissions(identity).publish
            assert not any(allows(allowed, f"$JS.API.STREAM.{v}.{stream}") for v in ("CREATE", "UPDATE"))
    assert not any(allows(provisioner, f"crm.{s}.x") for s in nats_access.CONSUMES)
    with pytest.raises(nats_access.NatsAccessError):
        nats_access.permissions("intruder")


def test_the_table_matches_the_durable_names_the_bus_uses() -> None:
    assert nats_access.durable_name("customers", "crm.leads.lead_captured") == "customers-lead-captured"
    assert nats_access.may_consume("orders", "crm.sales.deal_closed")
    assert not nats_access.may_consume("notifications", "crm.leads.lead_captured")
    assert nats_access.may_consume("kittest", "crm.leads.lead_captured")  # not a CRM service: a test's


def test_the_server_configuration_for_a_cluster_holds_no_password() -> None:
    config = nats_access.authorization_config(
        {name: f"NATS_PASSWORD_{name.upper()}" for name in nats_access.IDENTITIES}, passwords_from_env=True
    )
    assert 'user: "orders", password: $NATS_PASSWORD_ORDERS,' in config
    assert '"crm.orders.>"' in config and "admin" not in config


def test_the_nats_charts_values_name_each_password_and_its_secret_never_a_secret(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`helm-values`: every identity with its permissions, its password the server's variable
    (`<< $NAME >>`, unquoted in the rendered config) and that variable from its own Secret."""
    nats_access.main(["helm-values"])
    values = json.loads(capsys.readouterr().out)
    assert values == nats_access.helm_values()
    *users, operator = values["config"]["merge"]["authorization"]["users"]
    assert [u["user"] for u in users] == list(nats_access.IDENTITIES)
    # The operator's own user, unrestricted (it removes replaced durables), from its own Secret.
    assert operator == {"user": "nats-admin", "password": "<< $NATS_ADMIN_PASSWORD >>"}
    admin_secret = values["container"]["env"]["NATS_ADMIN_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert admin_secret == {"name": "nats-admin", "key": "password"}
    for user in users:
        variable = nats_access.password_variable(user["user"])
        assert user["password"] == f"<< ${variable} >>"
        assert user["permissions"]["publish"]["allow"] == list(nats_access.permissions(user["user"]).publish)
        secret = values["container"]["env"][variable]["valueFrom"]["secretKeyRef"]
        assert secret == {"name": f"crm-{user['user']}-nats", "key": "password"}


def test_production_refuses_to_connect_without_credentials() -> None:
    bare = ServiceSettings(service_name="orders", environment="production", nats_url="nats://nats:4222")
    with pytest.raises(nats_access.NatsAccessError, match="CRM_NATS_USER"):
        nats_access.connect_options(bare)
    assert nats_access.connect_options(bare.model_copy(update={"environment": "development"}))["servers"] == [
        "nats://nats:4222"
    ]
    options = nats_access.connect_options(
        ServiceSettings(service_name="orders", environment="production", nats_user="orders", nats_password="s3cr3t!")
    )
    assert (options["user"], options["password"], options["inbox_prefix"]) == ("orders", "s3cr3t!", "_INBOX.orders")
    assert "tls" not in options


def test_settings_refuse_half_credentials_and_a_development_password_in_production() -> None:
    with pytest.raises(ValidationError, match="nats_user and nats_password"):
        ServiceSettings(service_name="orders", nats_user="orders")
    with pytest.raises(ValidationError, match="nats_tls_cert_file and nats_tls_key_file"):
        ServiceSettings(service_name="orders", nats_tls_cert_file="/tls/tls.crt")
    with pytest.raises(ValidationError, match="nats_password"):
        ServiceSettings(service_name="orders", environment="production", nats_user="orders", nats_password="changeme")
    assert "s3cr3t" not in repr(ServiceSettings(service_name="orders", nats_user="orders", nats_password="s3cr3t"))


def test_the_idempotency_bucket_is_configured_once_from_the_chassis_settings() -> None:
    """The provisioner makes the gateway's bucket from the settings the gateway reads too."""
    settings = ServiceSettings(
        service_name="provisioner",
        idempotency_ttl_seconds=3600,
        idempotency_max_bytes=1024 * 1024,
        idempotency_max_response_bytes=100 * 1024,
        stream_replicas=3,
    )
    config = idempotency_stream_config(settings)
    assert (config.name, config.subjects) == ("KV_CRM_IDEMPOTENCY", ["$KV.CRM_IDEMPOTENCY.>"])
    assert (config.max_age, config.max_bytes, config.max_msg_size) == (3600, 1024 * 1024, 164 * 1024)
    assert (config.max_msgs_per_subject, config.discard, config.num_replicas) == (1, DiscardPolicy.OLD, 3)
    assert config.allow_msg_ttl and config.allow_direct and config.deny_delete and config.allow_rollup_hdrs
