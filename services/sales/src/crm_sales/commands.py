"""Application layer of sales: each command runs in the caller's unit of work."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from crm.common.v1 import types_pb2
from crm.sales.v1 import events_pb2
from crm_kit.db import UnitOfWork
from crm_kit.errors import FailedPrecondition
from crm_kit.protoconv import to_timestamp
from crm_sales import domain
from crm_sales.db import deal_items, deals
from crm_sales.metrics import DEALS_CLOSED, DEALS_OPENED
from crm_sales.queries import DealView, deal_not_found, get_deal


async def open_deal(uow: UnitOfWork, new: domain.NewDeal) -> DealView:
    """Open the deal a lead's conversion named; opening it again (the gateway's call and the
    LeadConverted event both ask) returns it as it is now. A different deal for the same lead is
    refused: leads records one conversion per lead, so that would be a bug upstream. Audited as
    sales.OpenDeal under the caller, whichever path opened it (the handler acts as the converter)."""
    new = domain.validate_new_deal(new)
    inserted = (
        await uow.conn.execute(
            pg_insert(deals)
            .values(
                id=new.deal_id,
                lead_id=new.lead_id,
                lead_since=new.lead_since or datetime.now(UTC),
                title=new.title,
                owner_rep_id=new.owner_rep_id or None,
                owner_team_id=new.owner_team_id or None,
                source=new.source,
                campaign=new.campaign,
                status=domain.DealStatus.OPEN.value,
            )
            .on_conflict_do_nothing()
            .returning(deals.c.id)
        )
    ).scalar()
    if inserted is None:
        lead_deal = (await uow.conn.execute(select(deals.c.id).where(deals.c.lead_id == new.lead_id))).scalar()
        if lead_deal is not None and lead_deal != new.deal_id:
            raise FailedPrecondition(
                f"lead {new.lead_id} already has deal {lead_deal}",
                reason="LEAD_HAS_DEAL",
                metadata={"lead_id": new.lead_id, "deal_id": lead_deal},
            )
        return await get_deal(uow, new.deal_id)
    uow.audit("sales.OpenDeal", "deal", new.deal_id, {"lead_id": new.lead_id, "owner_rep_id": new.owner_rep_id})
    uow.after_commit(DEALS_OPENED.inc)
    return await get_deal(uow, new.deal_id)


def _closed_event(deal: Any, items: list[domain.Item], now: datetime) -> events_pb2.DealClosed:
    return events_pb2.DealClosed(
        deal_id=deal.id,
        lead_id=deal.lead_id,
        won=deal.status == domain.DealStatus.WON.value,
        items=[
            types_pb2.LineItem(
                sku=i.sku,
                description=i.description,
                quantity=i.quantity,
                unit_price=types_pb2.Money(amount_minor=i.unit_price_minor, currency_code=i.currency_code),
            )
            for i in items
        ],
        total=types_pb2.Money(amount_minor=deal.total_minor, currency_code=deal.currency_code),
        owner_rep_id=deal.owner_rep_id or "",
        source=deal.source,
        campaign=deal.campaign,
        close_time=to_timestamp(now),
        lost_reason=deal.lost_reason,
    )


async def close_deal(
    uow: UnitOfWork, deal_id: str, *, won: bool, items: list[domain.Item], lost_reason: str
) -> DealView:
    """Close an open deal as won (with what was sold) or lost, and publish DealClosed in the same
    transaction. The row lock makes one of two concurrent closes win; the other sees it closed."""
    deal = (await uow.conn.execute(select(deals).where(deals.c.id == deal_id).with_for_update())).first()
    if deal is None:
        raise deal_not_found(deal_id)
    total, currency = domain.validate_close(domain.DealStatus(deal.status), won, items)
    sold = [domain.clean_item(i) for i in items] if won else []
    now = datetime.now(UTC)
    status = domain.DealStatus.WON if won else domain.DealStatus.LOST
    closed = (
        await uow.conn.execute(
            update(deals)
            .where(deals.c.id == deal_id)
            .values(
                status=status.value, total_minor=total, currency_code=currency, lost_reason=lost_reason, closed_at=now
            )
            .returning(deals)
        )
    ).one()
    written: list[Any] = []
    if sold:
        result = await uow.conn.execute(
            deal_items.insert().returning(deal_items, sort_by_parameter_order=True),
            [{"deal_id": deal_id, "position": n, **vars(item)} for n, item in enumerate(sold)],
        )
        written = list(result.all())
    await uow.record_event(_closed_event(closed, sold, now), time=now)
    details: dict[str, Any] = {"outcome": status.value, "total": {"amount_minor": total, "currency_code": currency}}
    if lost_reason:
        details["lost_reason"] = lost_reason
    uow.audit("sales.CloseDeal", "deal", deal_id, details)
    uow.after_commit(DEALS_CLOSED.labels(status.value).inc)
    return DealView(row=closed, items=written)


async def move_deal_to_lead(
    uow: UnitOfWork, deal_id: str, *, merged_lead_id: str, survivor_lead_id: str, merged_at: datetime
) -> domain.MergeOrder:
    """A merge in leads moved the deal from merged_lead_id to survivor_lead_id. Applied only from
    the lead it merged away (domain.merge_order); WAIT tells the caller to retry later (the deal's
    LeadConverted, or an earlier merge of it, is still on its way)."""
    query = select(deals.c.lead_id, deals.c.lead_since).where(deals.c.id == deal_id).with_for_update()
    deal = (await uow.conn.execute(query)).first()
    order = domain.merge_order(
        deal_lead=deal.lead_id if deal else None,
        deal_lead_since=deal.lead_since if deal else None,
        merged_lead=merged_lead_id,
        merged_at=merged_at,
    )
    if order is domain.MergeOrder.APPLY:
        await uow.conn.execute(
            update(deals).where(deals.c.id == deal_id).values(lead_id=survivor_lead_id, lead_since=merged_at)
        )
        details = {"lead_id": survivor_lead_id, "merged_lead_id": merged_lead_id}
        uow.audit("sales.LeadsMerged", "deal", deal_id, details)
    return order
