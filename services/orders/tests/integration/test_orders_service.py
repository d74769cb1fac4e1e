"""The orders service in process against real PostgreSQL and NATS JetStream."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import grpc
import nats
import pytest
from google.protobuf.message import Message
from nats.errors import TimeoutError as NatsTimeoutError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from crm.admin.v1 import audit_pb2, audit_pb2_grpc
from crm.common.v1 import types_pb2
from crm.orders.v1 import events_pb2, orders_pb2, orders_pb2_grpc
from crm.sales.v1 import events_pb2 as sales_events
from crm_kit import caller
from crm_kit.protoconv import to_date
from crm_kit.testing import eventually, free_port, local_channel, publish_event, reset_stream, running_service
from crm_orders.db import messaging
from crm_orders.db import orders as orders_table
from crm_orders.main import MIGRATIONS_DIR, OrdersSettings, setup

pytestmark = pytest.mark.integration


@dataclass
class Orders:
    stub: orders_pb2_grpc.OrdersServiceStub
    nats_url: str
    database_url: str
    audit: audit_pb2_grpc.AuditServiceStub


@pytest.fixture
async def orders(fresh_database, nats_server) -> AsyncIterator[Orders]:
    await reset_stream(nats_server)
    port = free_port()
    database_url = await fresh_database("orders")
    settings = OrdersSettings(
        database_url=database_url,
        nats_url=nats_server,
        grpc_port=port,
        metrics_port=free_port(),
        consumer_backoff_seconds=[0.1],
        consumer_max_deliver=3,
    )
    async with running_service(settings, messaging, MIGRATIONS_DIR, setup):
        ch = local_channel(port)
        yield Orders(
            orders_pb2_grpc.OrdersServiceStub(ch), nats_server, database_url, audit_pb2_grpc.AuditServiceStub(ch)
        )
        await ch.close()


def ils(amount: int) -> types_pb2.Money:
    return types_pb2.Money(amount_minor=amount, currency_code="ILS")


def deal_closed(deal_id: str, *, won: bool = True, items: list[types_pb2.LineItem] | None = None) -> Message:
    if items is None:
        items = [
            types_pb2.LineItem(sku="SOFA", description="ספה תלת-מושבית", quantity=1, unit_price=ils(459900)),
            types_pb2.LineItem(sku="PILLOW", description="כרית", quantity=2, unit_price=ils(5000)),
        ]
    total = sum(i.quantity * i.unit_price.amount_minor for i in items)
    return sales_events.DealClosed(
        deal_id=deal_id,
        lead_id=f"lead-of-{deal_id}",
        won=won,
        items=items if won else [],
        total=ils(total) if won else types_pb2.Money(),
        lost_reason="" if won else "price",
    )


async def orders_of_deal(stub: orders_pb2_grpc.OrdersServiceStub, deal_id: str) -> list[orders_pb2.Order]:
    return list((await stub.ListOrders(orders_pb2.ListOrdersRequest(deal_id=deal_id))).orders)


async def order_of_deal(stub: orders_pb2_grpc.OrdersServiceStub, deal_id: str) -> orders_pb2.Order:
    found = await eventually(lambda: orders_of_deal(stub, deal_id))
    return found[0]


async def published(nats_url: str, subject: str) -> list[nats.aio.msg.Msg]:
    """Every message on subject so far, read through a fresh consumer."""
    nc = await nats.connect(nats_url)
    try:
        sub = await nc.jetstream().pull_subscribe(subject, durable=f"test-{uuid.uuid4().hex[:8]}")
        msgs: list[nats.aio.msg.Msg] = []
        while True:
            try:
                msgs += await sub.fetch(100, timeout=0.5)
            except (NatsTimeoutError, TimeoutError):
                return msgs
    finally:
        await nc.close()


async def created_events(nats_url: str, deal_id: str) -> list[events_pb2.OrderCreated]:
    events = [events_pb2.OrderCreated.FromString(m.data) for m in await published(nats_url, "crm.orders.order_created")]
    return [e for e in events if e.deal_id == deal_id]


async def dead_letters(database_url: str, event_id: str | None = None) -> list[tuple[str, int]]:
    """(error, deliveries) of the dead letters of event_id, or of all events."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            t = messaging.dead_letters
            query = select(t.c.error, t.c.deliveries)
            if event_id is not None:
                query = query.where(t.c.event_id == event_id)
            rows = await conn.execute(query)
            return [(r.error, r.deliveries) for r in rows]
    finally:
        await engine.dispose()


async def order_count(database_url: str) -> int:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(orders_table))).scalar_one())
    finally:
        await engine.dispose()


def in_days(days: int) -> date:
    return datetime.now(UTC).date() + timedelta(days=days)


async def test_won_deal_becomes_one_order_and_publishes_order_created(orders) -> None:
    await publish_event(orders.nats_url, deal_closed("deal-1"))
    order = await order_of_deal(orders.stub, "deal-1")
    assert order.status == orders_pb2.ORDER_STATUS_PENDING
    assert order.lead_id == "lead-of-deal-1"
    assert [(x.sku, x.quantity, x.unit_price.amount_minor) for x in order.lines] == [
        ("SOFA", 1, 459900),
        ("PILLOW", 2, 5000),
    ]
    assert order.lines[0].description == "ספה תלת-מושבית"
    assert (order.total.amount_minor, order.total.currency_code) == (469900, "ILS")
    assert not order.HasField("shipment")

    events = await eventually(lambda: created_events(orders.nats_url, "deal-1"))
    assert len(events) == 1
    assert events[0].order_id == order.id and events[0].total.amount_minor == 469900 and len(events[0].lines) == 2
    got = await orders.stub.GetOrder(orders_pb2.GetOrderRequest(order_id=order.id))
    assert got.order == order


async def test_redelivered_and_repeated_deal_closed_still_make_one_order(orders) -> None:
    event_id = await publish_event(orders.nats_url, deal_closed("deal-2"))
    first = await order_of_deal(orders.stub, "deal-2")
    # Same event, past JetStream's de-duplication: only the inbox can stop it.
    await publish_event(orders.nats_url, deal_closed("deal-2"), event_id=event_id, **{"Nats-Msg-Id": "other-id"})
    # The same deal under a new event id: only the unique deal_id can stop it.
    await publish_event(orders.nats_url, deal_closed("deal-2"))
    # Events on one consumer are handled in order: once this one is in, the repeats were handled.
    await publish_event(orders.nats_url, deal_closed("deal-sentinel"))
    await order_of_deal(orders.stub, "deal-sentinel")
    await eventually(lambda: created_events(orders.nats_url, "deal-sentinel"))

    assert [o.id for o in await orders_of_deal(orders.stub, "deal-2")] == [first.id]
    assert len((await orders_of_deal(orders.stub, "deal-2"))[0].lines) == 2
    assert len(await created_events(orders.nats_url, "deal-2")) == 1
    assert await order_count(orders.database_url) == 2
    assert await dead_letters(orders.database_url) == []  # the repeats were handled, not failed


async def test_lost_deal_creates_no_order(orders) -> None:
    await publish_event(orders.nats_url, deal_closed("deal-lost", won=False))
    await publish_event(orders.nats_url, deal_closed("deal-after-lost"))
    await order_of_deal(orders.stub, "deal-after-lost")
    assert await orders_of_deal(orders.stub, "deal-lost") == []
    assert await order_count(orders.database_url) == 1


async def test_garbage_body_is_dead_lettered_and_the_next_event_is_handled(orders) -> None:
    garbage_id = str(uuid.uuid4())
    nc = await nats.connect(orders.nats_url)
    try:
        await nc.jetstream().publish(
            "crm.sales.deal_closed",
            b"\xff\xff",
            headers={"ce-id": garbage_id, "ce-type": "crm.sales.v1.DealClosed", "Nats-Msg-Id": garbage_id},
        )
    finally:
        await nc.close()
    rows = await eventually(lambda: dead_letters(orders.database_url, garbage_id))
    assert len(rows) == 1 and "does not parse" in rows[0][0]

    await publish_event(orders.nats_url, deal_closed("deal-after-garbage"))
    await order_of_deal(orders.stub, "deal-after-garbage")


async def test_won_deal_without_items_is_dead_lettered_at_once(orders) -> None:
    event_id = await publish_event(orders.nats_url, deal_closed("deal-empty", items=[]))
    rows = await eventually(lambda: dead_letters(orders.database_url, event_id))
    assert len(rows) == 1
    error, deliveries = rows[0]
    assert "no items" in error and deliveries == 1
    await publish_event(orders.nats_url, deal_closed("deal-after-empty"))
    await order_of_deal(orders.stub, "deal-after-empty")
    assert await orders_of_deal(orders.stub, "deal-empty") == []


async def test_ship_order_publishes_order_shipped_with_the_delivery_date(orders) -> None:
    await publish_event(orders.nats_url, deal_closed("deal-ship"))
    order = await order_of_deal(orders.stub, "deal-ship")
    eta = in_days(3)
    shipped = (
        await orders.stub.ShipOrder(
            orders_pb2.ShipOrderRequest(
                order_id=order.id,
                carrier="דואר ישראל",
                tracking_number="RR123456789IL",
                estimated_delivery_date=to_date(eta),
            )
        )
    ).order
    assert shipped.status == orders_pb2.ORDER_STATUS_SHIPPED
    assert shipped.shipment.carrier == "דואר ישראל" and shipped.shipment.tracking_number == "RR123456789IL"
    assert shipped.shipment.estimated_delivery_date == to_date(eta)
    assert shipped.shipment.ship_time.seconds > 0

    msgs = await eventually(lambda: published(orders.nats_url, "crm.orders.order_shipped"))
    assert len(msgs) == 1 and msgs[0].headers["ce-type"] == "crm.orders.v1.OrderShipped"
    event = events_pb2.OrderShipped.FromString(msgs[0].data)
    assert (event.order_id, event.deal_id, event.lead_id) == (order.id, "deal-ship", "lead-of-deal-ship")
    assert (event.carrier, event.tracking_number) == ("דואר ישראל", "RR123456789IL")
    assert event.estimated_delivery_date == to_date(eta)
    assert event.ship_time == shipped.shipment.ship_time

    with pytest.raises(grpc.aio.AioRpcError) as again:
        await orders.stub.ShipOrder(
            orders_pb2.ShipOrderRequest(
                order_id=order.id, carrier="UPS", tracking_number="1Z999", estimated_delivery_date=to_date(in_days(5))
            )
        )
    assert again.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "already shipped" in again.value.details()
    still = (await orders.stub.GetOrder(orders_pb2.GetOrderRequest(order_id=order.id))).order
    assert still.shipment.carrier == "דואר ישראל"


async def test_ship_order_is_audited_with_the_callers_actor_and_the_order_with_the_system(orders) -> None:
    event_id = await publish_event(orders.nats_url, deal_closed("deal-audit"))
    order = await order_of_deal(orders.stub, "deal-audit")
    eta = in_days(2)
    with caller.acting_as("alice", "req-ship-1"):  # sent as x-crm-actor / x-request-id
        await orders.stub.ShipOrder(
            orders_pb2.ShipOrderRequest(
                order_id=order.id, carrier="UPS", tracking_number="1Z42", estimated_delivery_date=to_date(eta)
            )
        )

    listed = await orders.audit.ListAuditRecords(
        audit_pb2.ListAuditRecordsRequest(record_type="order", record_id=order.id)
    )
    shipped, created = listed.audit_records  # newest first
    assert (shipped.actor, shipped.request_id, shipped.action) == ("alice", "req-ship-1", "orders.ShipOrder")
    assert json.loads(shipped.details_json) == {
        "status": "shipped",
        "carrier": "UPS",
        "tracking_number": "1Z42",
        "eta": eta.isoformat(),
    }
    assert (created.actor, created.request_id, created.action) == ("system", event_id, "orders.CreateOrderFromDeal")
    assert json.loads(created.details_json) == {
        "status": "pending",
        "deal_id": "deal-audit",
        "total_minor": 469900,
        "currency_code": "ILS",
    }
    by_alice = await orders.audit.ListAuditRecords(audit_pb2.ListAuditRecordsRequest(actor="alice"))
    assert [r.record_id for r in by_alice.audit_records] == [order.id]


async def test_ship_errors_name_what_is_wrong(orders) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await orders.stub.ShipOrder(
            orders_pb2.ShipOrderRequest(
                order_id=str(uuid.uuid4()),
                carrier="UPS",
                tracking_number="1Z",
                estimated_delivery_date=to_date(in_days(1)),
            )
        )
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND

    await publish_event(orders.nats_url, deal_closed("deal-past"))
    order = await order_of_deal(orders.stub, "deal-past")
    with pytest.raises(grpc.aio.AioRpcError) as past:
        await orders.stub.ShipOrder(
            orders_pb2.ShipOrderRequest(
                order_id=order.id, carrier="UPS", tracking_number="1Z", estimated_delivery_date=to_date(in_days(-1))
            )
        )
    assert past.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "estimated_delivery_date" in past.value.details()
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await orders.stub.ShipOrder(orders_pb2.ShipOrderRequest(order_id=order.id, tracking_number="1Z"))
    assert missing.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "carrier" in missing.value.details() and "estimated_delivery_date" in missing.value.details()
    still = (await orders.stub.GetOrder(orders_pb2.GetOrderRequest(order_id=order.id))).order
    assert still.status == orders_pb2.ORDER_STATUS_PENDING  # nothing half-written
    assert await published(orders.nats_url, "crm.orders.order_shipped") == []


async def test_get_unknown_order_is_not_found(orders) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await orders.stub.GetOrder(orders_pb2.GetOrderRequest(order_id=str(uuid.uuid4())))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_list_orders_pages_with_a_cursor(orders) -> None:
    for i in range(5):
        await publish_event(orders.nats_url, deal_closed(f"deal-page-{i}"))
    await eventually(lambda: _count_is(orders, 5))
    page1 = await orders.stub.ListOrders(orders_pb2.ListOrdersRequest(page_size=3))
    page2 = await orders.stub.ListOrders(orders_pb2.ListOrdersRequest(page_size=3, page_token=page1.next_page_token))
    assert len(page1.orders) == 3 and len(page2.orders) == 2 and page2.next_page_token == ""
    assert {o.deal_id for o in [*page1.orders, *page2.orders]} == {f"deal-page-{i}" for i in range(5)}
    assert all(len(o.lines) == 2 for o in [*page1.orders, *page2.orders])


async def _count_is(orders: Orders, expected: int) -> bool:
    return await order_count(orders.database_url) == expected
