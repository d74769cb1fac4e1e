"""The event bus with authentication on, against a real nats-server started with the generated
permission table (crm_kit.nats_access): a client without credentials is refused; a service can
publish its own events, consume and acknowledge its own durable consumers and replay its own dead
letters, but cannot publish another service's event, read another service's events, nor change,
purge or delete the stream, nor create or change a consumer; only the provisioner creates the
stream, the gateway's Idempotency-Key bucket (which the gateway then only uses) and the services'
consumers, one per producer with the subjects of the permission table."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.js.api import ConsumerConfig, StreamConfig

from crm.leads.v1 import events_pb2 as leads_events
from crm.orders.v1 import events_pb2 as orders_events
from crm.sales.v1 import events_pb2 as sales_events
from crm_devstack._util import free_port
from crm_devstack.nats import EmbeddedNats, nats_server_binary
from crm_kit import events, nats_access
from crm_kit.bus import ConsumersNotProvisioned, EventBus, StreamNotProvisioned, Subscription, provision_streams
from crm_kit.events import Envelope
from crm_kit.settings import ServiceSettings
from crm_kit.testing import eventually, publish_event

pytestmark = pytest.mark.integration

# Short: a request the server refuses is never answered, so the client waits out its timeout.
REFUSED_WAIT = 1.0


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedNats]:
    base = Path(tempfile.mkdtemp(prefix="crm-nats-auth-"))
    nats_server = EmbeddedNats(base / "store", free_port())
    try:
        nats_server.start()
        yield nats_server
    finally:
        nats_server.stop()
        shutil.rmtree(base, ignore_errors=True)


def settings_of(server: EmbeddedNats, identity: str) -> ServiceSettings:
    return ServiceSettings(
        service_name=identity,
        nats_url=server.url,
        nats_user=identity,
        nats_password=server.users.passwords[identity],
        consumer_backoff_seconds=[0.05],
    )


class Client:
    """A NATS client of one identity that keeps the server's asynchronous errors."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.nc: Any = None

    async def on_error(self, exc: Exception) -> None:
        self.errors.append(str(exc))

    def violations(self) -> list[str]:
        return [e for e in self.errors if "permissions violation" in e.lower()]

    async def refused(self, count: int = 1) -> bool:
        """The server has reported at least `count` permission violations to this client."""
        await asyncio.sleep(0)
        return len(self.violations()) >= count


async def connected(server: EmbeddedNats, identity: str) -> Client:
    client = Client()
    client.nc = await nats_access.connect(
        settings_of(server, identity), allow_reconnect=False, connect_timeout=2, error_cb=client.on_error
    )
    return client


@pytest.fixture
async def admin(server: EmbeddedNats) -> AsyncIterator[Any]:
    """The unrestricted test identity, with a fresh CRM stream and Idempotency-Key bucket made by
    the provisioner."""
    nc = await nats.connect(server.admin_url)
    js = nc.jetstream()
    for stream in ("CRM", f"KV_{nats_access.IDEMPOTENCY_BUCKET}"):
        try:
            await js.delete_stream(stream)
        except nats.js.errors.NotFoundError:
            pass
    await provision_streams(settings_of(server, nats_access.PROVISIONER))
    yield nc
    await nc.close()


def ce_headers(event_id: str, message: Any, msg_id: str | None = None) -> dict[str, str]:
    headers = events.ce_headers(event_id, message, "/crm/test", datetime.now(UTC))
    headers["Nats-Msg-Id"] = msg_id or event_id
    return headers


def provisioned_consumers() -> set[str]:
    """Every durable the provisioner makes: one per service and producer, and a replay one."""
    names = {
        durable
        for service, subjects in nats_access.CONSUMES.items()
        for durable in nats_access.consumer_groups(service, subjects)
    }
    return names | {nats_access.replay_durable(s) for s, subjects in nats_access.CONSUMES.items() if subjects}


async def messages_on(admin: Any, subject: str) -> int:
    return (await admin.jetstream().stream_info("CRM", subjects_filter=subject)).state.messages


async def test_a_client_without_credentials_or_with_a_wrong_password_is_refused(server: EmbeddedNats) -> None:
    for url in (server.url, server.url.replace("nats://", "nats://orders:not-the-password@")):
        with pytest.raises(Exception, match=r"(?i)authorization"):
            await nats.connect(url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=2)


async def test_a_service_cannot_publish_another_services_event(server: EmbeddedNats, admin: Any) -> None:
    notifications = await connected(server, "notifications")
    try:
        shipped = orders_events.OrderShipped(order_id="order-forged")
        with pytest.raises(Exception):  # noqa: B017 - refused: the request is never answered
            await notifications.nc.jetstream().publish(
                "crm.orders.order_shipped", shipped.SerializeToString(), timeout=REFUSED_WAIT
            )
        await eventually(notifications.refused)
        assert 'publish to "crm.orders.order_shipped"' in notifications.violations()[0]
        assert await messages_on(admin, "crm.orders.order_shipped") == 0
        # Its own subjects it may publish.
        ack = await notifications.nc.jetstream().publish("crm.notifications.notification_sent", b"", timeout=5)
        assert ack.stream == "CRM"
    finally:
        await notifications.nc.close()


async def test_a_service_cannot_delete_purge_or_change_the_stream(server: EmbeddedNats, admin: Any) -> None:
    await publish_event(server.admin_url, orders_events.OrderShipped(order_id="order-1"))
    orders = await connected(server, "orders")
    js = orders.nc.jetstream(timeout=REFUSED_WAIT)
    try:
        with pytest.raises(Exception):  # noqa: B017
            await js.delete_stream("CRM")
        with pytest.raises(Exception):  # noqa: B017
            await js.purge_stream("CRM")
        with pytest.raises(Exception):  # noqa: B017
            await js.update_stream(StreamConfig(name="CRM", subjects=["crm.>"], max_age=1))
        await eventually(lambda: orders.refused(3))
    finally:
        await orders.nc.close()
    info = await admin.jetstream().stream_info("CRM")
    assert info.state.messages == 1
    assert info.config.max_age == 14 * 86400


async def test_a_service_cannot_read_events_it_does_not_consume(server: EmbeddedNats, admin: Any) -> None:
    await publish_event(server.admin_url, leads_events.LeadCaptured(lead_id="lead-1"))
    orders = await connected(server, "orders")
    js = orders.nc.jetstream(timeout=REFUSED_WAIT)
    try:
        # A consumer of its own name but on lead events, a consumer of another name, a plain
        # subscription to the subjects, and a direct read of the stream: all refused.
        with pytest.raises(Exception):  # noqa: B017
            await js.add_consumer("CRM", ConsumerConfig(name="orders-from-sales", filter_subject="crm.leads.>"))
        with pytest.raises(Exception):  # noqa: B017
            await js.add_consumer("CRM", ConsumerConfig(name="spy", filter_subject="crm.leads.lead_captured"))
        with pytest.raises(Exception):  # noqa: B017
            await js.get_msg("CRM", 1)
        await orders.nc.subscribe("crm.leads.>")
        await orders.nc.subscribe("_INBOX.customers.>")
        await eventually(lambda: orders.refused(5))
    finally:
        await orders.nc.close()
    assert {c.name for c in await admin.jetstream().consumers_info("CRM")} == provisioned_consumers()
    assert (await admin.jetstream().consumer_info("CRM", "orders-from-sales")).config.filter_subject == (
        "crm.sales.deal_closed"
    )


async def test_each_service_starts_its_consumers_and_handles_and_replays_its_events(
    server: EmbeddedNats, admin: Any
) -> None:
    handled: list[tuple[str, str]] = []

    async def was_handled(subject: str, event_id: str) -> bool:
        await asyncio.sleep(0)
        return (subject, event_id) in handled

    async def handler(envelope: Envelope[Any]) -> None:
        handled.append((envelope.subject, envelope.id))

    buses = []
    try:
        for service, subjects in nats_access.CONSUMES.items():
            bus = EventBus(settings_of(server, service), None)
            for subject in subjects:
                durable = nats_access.durable_name(service, subject)
                bus.subscriptions.append(Subscription(durable, subject, sales_events.DealClosed, handler, False))
            await bus.connect()
            await bus.start_consumers()
            buses.append(bus)
        assert {c.name for c in await admin.jetstream().consumers_info("CRM")} == provisioned_consumers()

        orders = next(bus for bus in buses if bus.settings.service_name == "orders")
        sales = next(bus for bus in buses if bus.settings.service_name == "sales")
        closed = sales_events.DealClosed(deal_id="deal-1")
        # sales publishes its event; orders consumes and acknowledges it.
        await sales.publish_raw("crm.sales.deal_closed", closed.SerializeToString(), ce_headers("evt-1", closed))
        await eventually(lambda: was_handled("crm.sales.deal_closed", "evt-1"))
        # orders replays a dead letter of its consumer under its own subjects; it reaches it again.
        replay = orders.replay_subject("orders-deal-closed")
        await orders.publish_raw(replay, closed.SerializeToString(), ce_headers("evt-1", closed, "evt-1:replay:1"))
        await eventually(lambda: was_handled(replay, "evt-1"))

        async def settled() -> bool:
            info = await admin.jetstream().consumer_info("CRM", "orders-from-sales")
            return info.num_ack_pending == 0 and info.num_pending == 0

        await eventually(settled)
    finally:
        for bus in buses:
            await bus.stop(grace_seconds=1)


async def test_the_gateway_reaches_only_its_idempotency_bucket(server: EmbeddedNats, admin: Any) -> None:
    gateway = await connected(server, "gateway")
    try:
        kv = await gateway.nc.jetstream().key_value(nats_access.IDEMPOTENCY_BUCKET)
        await kv.put("key-1", b"stored answer")
        assert (await kv.get("key-1")).value == b"stored answer"
        with pytest.raises(Exception):  # noqa: B017
            await gateway.nc.jetstream(timeout=REFUSED_WAIT).publish(
                "crm.leads.lead_captured", b"", timeout=REFUSED_WAIT
            )
        await eventually(gateway.refused)
    finally:
        await gateway.nc.close()
    assert await messages_on(admin, "crm.leads.lead_captured") == 0


async def test_only_the_provisioner_creates_the_stream_and_the_bucket(server: EmbeddedNats, admin: Any) -> None:
    """While they are missing, neither the internet-facing gateway nor a service may create a
    stream of their names: it could capture any subjects (other identities' inboxes, where pulled
    events arrive) and read them back. A service waits for the stream instead."""
    js = admin.jetstream()
    await js.delete_stream("CRM")
    await js.delete_stream(f"KV_{nats_access.IDEMPOTENCY_BUCKET}")
    gateway, orders = await connected(server, "gateway"), await connected(server, "orders")
    capture = ["_INBOX.>", "crm.>"]
    try:
        with pytest.raises(Exception):  # noqa: B017
            await gateway.nc.jetstream(timeout=REFUSED_WAIT).add_stream(
                StreamConfig(name=f"KV_{nats_access.IDEMPOTENCY_BUCKET}", subjects=capture)
            )
        with pytest.raises(Exception):  # noqa: B017
            await gateway.nc.jetstream(timeout=REFUSED_WAIT).create_key_value(bucket=nats_access.IDEMPOTENCY_BUCKET)
        with pytest.raises(Exception):  # noqa: B017
            await orders.nc.jetstream(timeout=REFUSED_WAIT).add_stream(StreamConfig(name="CRM", subjects=capture))
        await eventually(lambda: gateway.refused(2))
        await eventually(orders.refused)
        bus = EventBus(settings_of(server, "orders"), None)
        try:
            with pytest.raises(StreamNotProvisioned, match="provision"):
                await bus.connect()
        finally:
            await bus.close()
        assert [s.config.name for s in await js.streams_info()] == []

        await provision_streams(settings_of(server, nats_access.PROVISIONER))
        bucket = await js.stream_info(f"KV_{nats_access.IDEMPOTENCY_BUCKET}")
        assert bucket.config.subjects == [f"$KV.{nats_access.IDEMPOTENCY_BUCKET}.>"]
        assert bucket.config.max_age == 86_400
        assert bucket.config.max_msg_size == 256 * 1024 + 64 * 1024
        assert (await js.stream_info("CRM")).config.subjects == ["crm.>"]
    finally:
        await gateway.nc.close()
        await orders.nc.close()


async def test_a_service_can_neither_create_nor_change_a_consumer(server: EmbeddedNats, admin: Any) -> None:
    """What a consumer reads is the provisioner's to decide: a service's request to create its
    own durable, or to change it (another filter, a list of filters), with or without the filter
    in the subject, is never answered; the provisioned one reads exactly the table's subjects."""
    notifications = await connected(server, "notifications")
    durable = "notifications-from-orders"

    async def create(subject: str, action: str, **filters: Any) -> None:
        config = {"durable_name": durable, "name": durable, "ack_policy": "explicit", "deliver_policy": "all"}
        body = {"stream_name": "CRM", "config": {**config, **filters}, "action": action}
        await notifications.nc.request(subject, json.dumps(body).encode(), timeout=REFUSED_WAIT)

    attempts = [
        (f"$JS.API.CONSUMER.CREATE.CRM.{durable}", "", {"filter_subjects": ["crm.>"]}),
        (f"$JS.API.CONSUMER.CREATE.CRM.{durable}", "update", {"filter_subjects": ["crm.orders.>", "crm.leads.>"]}),
        (f"$JS.API.CONSUMER.CREATE.CRM.{durable}.crm.leads.>", "create", {"filter_subject": "crm.leads.>"}),
        (
            f"$JS.API.CONSUMER.CREATE.CRM.{durable}.crm.orders.order_shipped",
            "",
            {"filter_subject": "crm.orders.order_shipped"},
        ),
        (f"$JS.API.CONSUMER.DURABLE.CREATE.CRM.{durable}", "", {"filter_subject": "crm.>"}),
    ]
    try:
        for subject, action, filters in attempts:
            with pytest.raises(Exception):  # noqa: B017 - refused: the request is never answered
                await create(subject, action, **filters)
        await eventually(lambda: notifications.refused(len(attempts)))

        await publish_event(server.admin_url, leads_events.LeadCaptured(lead_id="lead-1"))
        await publish_event(server.admin_url, orders_events.OrderShipped(order_id="order-1"))
        info = await admin.jetstream().consumer_info("CRM", durable)
        assert info.config.filter_subject == "crm.orders.order_shipped"
        assert not info.config.filter_subjects
        psub = await notifications.nc.jetstream().pull_subscribe_bind(durable, stream="CRM")
        delivered = await psub.fetch(10, timeout=2)
        assert [m.subject for m in delivered] == ["crm.orders.order_shipped"]
    finally:
        await notifications.nc.close()
    assert {c.name for c in await admin.jetstream().consumers_info("CRM")} == provisioned_consumers()


async def test_a_service_waits_for_the_provisioner_to_make_its_consumer(server: EmbeddedNats, admin: Any) -> None:
    """A consumer missing (provisioning not run for this release): the service does not make it
    itself, it reports that it waits; once provisioned, it reads one durable per producer."""
    await admin.jetstream().delete_consumer("CRM", "reporting-from-leads")
    reporting = nats_access.CONSUMES["reporting"]
    bus = EventBus(settings_of(server, "reporting"), None)

    async def handler(envelope: Envelope[Any]) -> None:
        return None

    for subject in reporting:
        bus.subscriptions.append(
            Subscription(
                nats_access.durable_name("reporting", subject), subject, sales_events.DealClosed, handler, False
            )
        )
    try:
        await bus.connect()
        with pytest.raises(ConsumersNotProvisioned, match="provisioner"):
            await bus.start_consumers()
        assert "reporting-from-leads" not in {c.name for c in await admin.jetstream().consumers_info("CRM")}
        await provision_streams(settings_of(server, nats_access.PROVISIONER))
        await bus.start_consumers()
        leads = await admin.jetstream().consumer_info("CRM", "reporting-from-leads")
        assert sorted(leads.config.filter_subjects) == [s for s in sorted(reporting) if s.startswith("crm.leads.")]
    finally:
        await bus.stop(grace_seconds=1)


def test_the_cluster_configuration_is_a_valid_nats_server_configuration(tmp_path: Path) -> None:
    """What `python -m crm_kit.nats_access` prints for a cluster, passwords from the environment."""
    config = tmp_path / "crm-authorization.conf"
    result = subprocess.run(
        [sys.executable, "-m", "crm_kit.nats_access"], capture_output=True, text=True, check=True, timeout=60
    )
    config.write_text(result.stdout)
    env = {nats_access.password_variable(name): f"pw-{name}" for name in nats_access.IDENTITIES}
    checked = subprocess.run(
        [str(nats_server_binary()), "-c", str(config), "-t"],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr + checked.stdout
