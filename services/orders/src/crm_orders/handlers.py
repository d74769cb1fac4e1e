"""Event consumers of orders: a won deal becomes exactly one order."""

from __future__ import annotations

import logging

from crm.sales.v1 import events_pb2 as sales_events
from crm_kit.db import UnitOfWork
from crm_kit.events import Envelope, PoisonMessage
from crm_orders import commands, domain

log = logging.getLogger(__name__)


async def on_deal_closed(uow: UnitOfWork, envelope: Envelope[sales_events.DealClosed]) -> None:
    """Create the order of a won deal (a lost deal creates nothing).

    Runs in the inbox transaction; the unique deal_id also makes a DealClosed re-sent under a
    new event id a no-op. A won deal that can never become an order is a poison message.
    """
    deal = envelope.message
    if not deal.won:
        return
    items = [
        domain.Line(
            sku=i.sku,
            description=i.description,
            quantity=i.quantity,
            unit_price_minor=i.unit_price.amount_minor,
            currency_code=i.unit_price.currency_code,
        )
        for i in deal.items
    ]
    try:
        new = domain.order_from_deal(
            deal_id=deal.deal_id,
            lead_id=deal.lead_id,
            items=items,
            total_minor=deal.total.amount_minor,
            total_currency=deal.total.currency_code,
        )
    except domain.UnfulfillableDeal as exc:
        raise PoisonMessage(f"deal {deal.deal_id}: {exc}") from exc
    order_id = await commands.create_order(uow, new)
    if order_id is None:
        log.info("deal already has an order", extra={"deal_id": deal.deal_id, "event_id": envelope.id})
    else:
        log.info("order created", extra={"deal_id": deal.deal_id, "order_id": order_id, "event_id": envelope.id})
