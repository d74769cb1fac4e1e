"""Event consumers of reporting: each records its event once and upserts its fact row.

The consumers every captured lead triggers (capture, assignment) write the event-log row and the
fact in one statement; the others log and upsert in two.

Every handler runs in the chassis's unit of work together with the inbox claim, so a
redelivered event has no second effect. Handlers map an event to fact values; the upserts
live in `commands` (see there how they converge whatever order the events arrive in).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import Message

from crm.customers.v1 import customers_pb2
from crm.customers.v1 import events_pb2 as customer_events
from crm.leads.v1 import events_pb2 as lead_events
from crm.notifications.v1 import events_pb2 as notification_events
from crm.orders.v1 import events_pb2 as order_events
from crm.sales.v1 import events_pb2 as sales_events
from crm.support.v1 import events_pb2 as support_events
from crm.support.v1 import support_pb2
from crm_kit.db import UnitOfWork
from crm_kit.errors import InvalidArgument
from crm_kit.events import Envelope, PoisonMessage
from crm_kit.protoconv import enum_word, from_date, from_timestamp
from crm_reporting import commands, domain, service_facts

# The pipeline a deal opens in when its conversion names none (sales' seeded "default").
DEFAULT_PIPELINE = "default"


def _text(value: str) -> str | None:
    return value.strip() or None


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _time(message: Message, field: str) -> datetime | None:
    return from_timestamp(getattr(message, field), message.HasField(field))


def _key(value: str, name: str, envelope: Envelope[Any]) -> str:
    if not value:
        raise PoisonMessage(f"{envelope.type} {envelope.id} has no {name}")
    return value


async def _record(uow: UnitOfWork, envelope: Envelope[Any]) -> None:
    """Every handler first logs its event (once, by its id)."""
    await commands.record_event(
        uow, event_id=envelope.id, event_type=envelope.type, subject=envelope.subject, occurred_at=_aware(envelope.time)
    )


def _logged(envelope: Envelope[Any]) -> commands.LoggedEvent:
    """The event's log row, for an upsert that writes it in its own statement (one round trip)."""
    return commands.LoggedEvent(
        event_id=envelope.id, event_type=envelope.type, subject=envelope.subject, occurred_at=_aware(envelope.time)
    )


async def on_lead_captured(uow: UnitOfWork, envelope: Envelope[lead_events.LeadCaptured]) -> None:
    """The capture is authoritative for source, campaign and capture time."""
    m = envelope.message
    await commands.upsert_lead_capture(
        uow,
        lead_id=_key(m.lead_id, "lead_id", envelope),
        source=_text(m.source),
        campaign=_text(m.campaign),
        campaign_id=_text(m.campaign_id),
        captured_at=_time(m, "capture_time") or _aware(envelope.time),
        product_line=_text(m.product_line),
        city=_text(m.city),
        event=_logged(envelope),
    )


async def on_lead_assigned(uow: UnitOfWork, envelope: Envelope[lead_events.LeadAssigned]) -> None:
    """The first assignment sets rep, team and time; source and capture time only fill gaps."""
    m = envelope.message
    await commands.upsert_lead_assignment(
        uow,
        lead_id=_key(m.lead_id, "lead_id", envelope),
        source=_text(m.source),
        captured_at=_time(m, "capture_time"),
        assigned_at=_time(m, "assign_time") or _aware(envelope.time),
        rep_id=_text(m.rep_id),
        team_id=_text(m.team_id),
        event=_logged(envelope),
    )


async def on_deal_closed(uow: UnitOfWork, envelope: Envelope[sales_events.DealClosed]) -> None:
    """A deal closes once; the first close recorded is the fact, with its owner, team and product
    line (what targets vs actual count by); a won deal's lines with a SKU are its lead's purchases
    (what cross-sell rules learn from)."""
    m = envelope.message
    items = [domain.ItemAmount(i.quantity, i.unit_price.amount_minor, i.unit_price.currency_code) for i in m.items]
    try:
        total, currency = domain.deal_total(m.total.amount_minor, m.total.currency_code, items)
    except domain.MixedCurrencies as exc:
        raise PoisonMessage(f"DealClosed {envelope.id}: {exc}") from exc
    closed_at = _time(m, "close_time") or _aware(envelope.time)
    await _record(uow, envelope)
    await commands.insert_deal_closed(
        uow,
        deal_id=_key(m.deal_id, "deal_id", envelope),
        lead_id=_text(m.lead_id),
        source=_text(m.source),
        campaign=_text(m.campaign),
        won=m.won,
        total_minor=total,
        currency_code=currency,
        closed_at=closed_at,
        owner=commands.DealOwner(
            rep_id=_text(m.owner_rep_id),
            team_id=_text(m.owner_team_id),
            pipeline_id=_text(m.pipeline_id),
            product_line=_text(m.product_line),
        ),
    )
    if m.won and m.lead_id:
        await commands.insert_purchases(
            uow, deal_id=m.deal_id, lead_id=m.lead_id, lines=_purchase_lines(m), closed_at=closed_at
        )


def _purchase_lines(m: sales_events.DealClosed) -> list[commands.PurchaseLine]:
    """The lines with a SKU (a product), numbered by their place in the event."""
    return [
        commands.PurchaseLine(
            line=n,
            sku=item.sku.strip()[:100],
            description=item.description.strip()[:500],
            quantity=item.quantity,
            amount_minor=item.quantity * item.unit_price.amount_minor,
            currency_code=(item.unit_price.currency_code or m.total.currency_code).upper(),
        )
        for n, item in enumerate(m.items, start=1)
        if item.sku.strip()
    ]


async def on_campaign_changed(uow: UnitOfWork, envelope: Envelope[lead_events.CampaignChanged]) -> None:
    """The latest state of a campaign wins (by its update time), whatever order events arrive in."""
    m = envelope.message
    await _record(uow, envelope)
    await commands.upsert_campaign(
        uow,
        campaign_id=_key(m.campaign_id, "campaign_id", envelope),
        source=m.source,
        name=m.name,
        budget_minor=m.budget.amount_minor,
        actual_cost_minor=m.actual_cost.amount_minor,
        currency_code=(m.actual_cost.currency_code or m.budget.currency_code).upper(),
        updated_at=_time(m, "update_time") or _aware(envelope.time),
    )


async def on_lead_touched(uow: UnitOfWork, envelope: Envelope[lead_events.LeadTouched]) -> None:
    """A known person came in again (a promotion's results count it as a lead it brought)."""
    await _record(uow, envelope)
    m = envelope.message
    await commands.record_lead_touch(
        uow,
        touch_id=_key(m.touch_id, "touch_id", envelope),
        lead_id=_key(m.lead_id, "lead_id", envelope),
        source=m.source[:50],
        campaign_id=_text(m.campaign_id),
        at=_time(m, "touch_time") or _aware(envelope.time),
    )


async def on_activity_logged(uow: UnitOfWork, envelope: Envelope[lead_events.ActivityLogged]) -> None:
    """A rep's first response to a lead (the speed-to-lead curve); other activities are not kept."""
    m = envelope.message
    if not m.first_response:
        return
    await commands.record_first_response(
        uow,
        lead_id=_key(m.lead_id, "lead_id", envelope),
        at=_time(m, "occur_time") or _aware(envelope.time),
        event=_logged(envelope),
    )


async def on_lead_converted(uow: UnitOfWork, envelope: Envelope[lead_events.LeadConverted]) -> None:
    """A deal opened in its pipeline's first stage: the funnel's first step."""
    m = envelope.message
    entry = commands.StageEntry(
        deal_id=_key(m.deal_id, "deal_id", envelope),
        stage_id="",
        lead_id=m.lead_id[:64],
        pipeline_id=(m.pipeline_id or DEFAULT_PIPELINE)[:64],
        owner_rep_id=m.owner_rep_id[:64],
        owner_team_id=m.owner_team_id[:64],
        entered_at=_time(m, "convert_time") or _aware(envelope.time),
    )
    await commands.record_deal_stage(uow, entry, event=_logged(envelope))


async def on_deal_stage_changed(uow: UnitOfWork, envelope: Envelope[sales_events.DealStageChanged]) -> None:
    """A deal entered a stage (the first time counts): how far down the funnel it got."""
    m = envelope.message
    entry = commands.StageEntry(
        deal_id=_key(m.deal_id, "deal_id", envelope),
        stage_id=_key(m.to_stage_id, "to_stage_id", envelope)[:64],
        lead_id=m.lead_id[:64],
        pipeline_id=m.pipeline_id[:64],
        owner_rep_id=m.owner_rep_id[:64],
        owner_team_id=m.owner_team_id[:64],
        entered_at=_time(m, "move_time") or _aware(envelope.time),
        stage_name=(" ".join(m.to_stage_name.split()) or m.to_stage_id)[:200],
    )
    await commands.record_deal_stage(uow, entry, event=_logged(envelope))


async def on_customer_created(uow: UnitOfWork, envelope: Envelope[customer_events.CustomerCreated]) -> None:
    """Which lead made the customer (one statement with the event-log row: every new customer's
    capture brings one)."""
    m = envelope.message
    await commands.upsert_customer(
        uow,
        customer_id=_key(m.customer_id, "customer_id", envelope),
        lead_id=_text(m.lead_id),
        created_at=_time(m, "create_time") or _aware(envelope.time),
        event=_logged(envelope),
    )


def _word(enum: Any, number: int) -> str | None:
    """An enum value's word; None for an unset (0) or unknown value."""
    return enum_word(enum.DESCRIPTOR, number, unset="") or None


async def on_ticket_opened(uow: UnitOfWork, envelope: Envelope[support_events.TicketOpened]) -> None:
    m = envelope.message
    await _record(uow, envelope)
    await service_facts.upsert_ticket_opened(
        uow,
        service_facts.TicketOpening(
            ticket_id=_key(m.ticket_id, "ticket_id", envelope),
            number=m.number,
            customer_id=_text(m.customer_id),
            order_id=_text(m.order_id),
            kind=_word(support_pb2.TicketKind, m.kind),
            channel=_word(support_pb2.TicketChannel, m.channel),
            priority=_word(support_pb2.TicketPriority, m.priority),
            category_id=_text(m.category_id),
            queue_id=_text(m.queue_id),
            assignee_id=_text(m.assignee_id),
            opened_at=_time(m, "occur_time") or _aware(envelope.time),
        ),
    )


async def on_ticket_resolved(uow: UnitOfWork, envelope: Envelope[support_events.TicketResolved]) -> None:
    m = envelope.message
    await _record(uow, envelope)
    await service_facts.upsert_ticket_resolved(
        uow,
        service_facts.TicketResolution(
            ticket_id=_key(m.ticket_id, "ticket_id", envelope),
            number=m.number,
            customer_id=_text(m.customer_id),
            kind=_word(support_pb2.TicketKind, m.kind),
            category_id=_text(m.category_id),
            queue_id=_text(m.queue_id),
            assignee_id=_text(m.assignee_id),
            resolved_at=_time(m, "occur_time") or _aware(envelope.time),
            resolution_seconds=m.resolution_seconds,
            resolution_sla_met=m.resolution_sla_met,
        ),
    )


async def on_ticket_sla_breached(uow: UnitOfWork, envelope: Envelope[support_events.TicketSlaBreached]) -> None:
    m = envelope.message
    if m.level not in (1, 2, 3):
        raise PoisonMessage(f"TicketSlaBreached {envelope.id} has level {m.level}, not 1, 2 or 3")
    await _record(uow, envelope)
    await service_facts.count_sla_escalation(
        uow,
        ticket_id=_key(m.ticket_id, "ticket_id", envelope),
        customer_id=_text(m.customer_id),
        level=m.level,
        at=_time(m, "occur_time") or _aware(envelope.time),
    )


async def on_survey_answered(uow: UnitOfWork, envelope: Envelope[support_events.SurveyAnswered]) -> None:
    m = envelope.message
    if not 1 <= m.score <= 5:  # the survey's scale
        raise PoisonMessage(f"SurveyAnswered {envelope.id} has score {m.score}, not 1-5")
    await _record(uow, envelope)
    await service_facts.upsert_survey_answer(
        uow,
        ticket_id=_key(m.ticket_id, "ticket_id", envelope),
        customer_id=_text(m.customer_id),
        score=m.score,
        answered_at=_time(m, "occur_time") or _aware(envelope.time),
    )


async def on_consent_changed(uow: UnitOfWork, envelope: Envelope[customer_events.ConsentChanged]) -> None:
    m = envelope.message
    channel = _word(customers_pb2.ConsentChannel, m.channel)
    purpose = _word(customers_pb2.ConsentPurpose, m.purpose)
    if channel is None or purpose is None or not m.record_id:
        raise PoisonMessage(f"ConsentChanged {envelope.id} has no channel, purpose or record id")
    await _record(uow, envelope)
    await service_facts.insert_consent_change(
        uow,
        service_facts.ConsentChange(
            customer_id=_key(m.customer_id, "customer_id", envelope),
            record_id=m.record_id,
            channel=channel,
            purpose=purpose,
            granted=m.granted,
            source=_word(customers_pb2.ConsentSource, m.source) or "unknown",
            changed_at=_time(m, "occur_time") or _aware(envelope.time),
        ),
    )


async def on_order_created(uow: UnitOfWork, envelope: Envelope[order_events.OrderCreated]) -> None:
    """The order's creation is authoritative for its creation time, deal and lead."""
    m = envelope.message
    await _record(uow, envelope)
    await commands.upsert_order_created(
        uow,
        order_id=_key(m.order_id, "order_id", envelope),
        deal_id=_text(m.deal_id),
        lead_id=_text(m.lead_id),
        created_at=_time(m, "create_time") or _aware(envelope.time),
    )


async def on_order_shipped(uow: UnitOfWork, envelope: Envelope[order_events.OrderShipped]) -> None:
    """Shipping sets ship time and estimated delivery; deal and lead only fill gaps."""
    m = envelope.message
    eta = None
    if m.HasField("estimated_delivery_date"):
        try:
            eta = from_date(m.estimated_delivery_date, "estimated_delivery_date")
        except InvalidArgument as exc:
            raise PoisonMessage(f"OrderShipped {envelope.id}: {exc.message}") from exc
    await _record(uow, envelope)
    await commands.upsert_order_shipped(
        uow,
        order_id=_key(m.order_id, "order_id", envelope),
        deal_id=_text(m.deal_id),
        lead_id=_text(m.lead_id),
        shipped_at=_time(m, "ship_time") or _aware(envelope.time),
        estimated_delivery_date=eta,
    )


async def _notification(
    uow: UnitOfWork, envelope: Envelope[Any], *, status: str, lead_id: str, order_id: str, at: datetime | None
) -> None:
    await _record(uow, envelope)
    m = envelope.message
    await commands.upsert_notification(
        uow,
        message_id=_key(m.message_id, "message_id", envelope),
        lead_id=_text(lead_id),
        order_id=_text(order_id),
        status=status,
        at=at or _aware(envelope.time),
        promotion_id=_text(getattr(m, "promotion_id", "")),
        customer_id=_text(getattr(m, "customer_id", "")),
        variant=str(getattr(m, "variant", ""))[:3],
    )


async def on_notification_sent(uow: UnitOfWork, envelope: Envelope[notification_events.NotificationSent]) -> None:
    """The provider accepted the message."""
    m = envelope.message
    await _notification(uow, envelope, status="sent", lead_id=m.lead_id, order_id=m.order_id, at=_time(m, "send_time"))


async def on_notification_failed(uow: UnitOfWork, envelope: Envelope[notification_events.NotificationFailed]) -> None:
    """The message could not be sent."""
    m = envelope.message
    await _notification(
        uow, envelope, status="failed", lead_id=m.lead_id, order_id=m.order_id, at=_time(m, "fail_time")
    )


Handler = Callable[[UnitOfWork, Envelope[Any]], Awaitable[None]]
# Every event reporting keeps, and its handler: what the service subscribes (main.py), and what the
# demo history and the tests hand events to.
BY_EVENT: dict[type[Message], Handler] = {
    lead_events.LeadCaptured: on_lead_captured,
    lead_events.LeadAssigned: on_lead_assigned,
    lead_events.LeadTouched: on_lead_touched,
    lead_events.ActivityLogged: on_activity_logged,
    lead_events.LeadConverted: on_lead_converted,
    sales_events.DealStageChanged: on_deal_stage_changed,
    sales_events.DealClosed: on_deal_closed,
    lead_events.CampaignChanged: on_campaign_changed,
    customer_events.CustomerCreated: on_customer_created,
    order_events.OrderCreated: on_order_created,
    order_events.OrderShipped: on_order_shipped,
    notification_events.NotificationSent: on_notification_sent,
    notification_events.NotificationFailed: on_notification_failed,
    support_events.TicketOpened: on_ticket_opened,
    support_events.TicketResolved: on_ticket_resolved,
    support_events.TicketSlaBreached: on_ticket_sla_breached,
    support_events.SurveyAnswered: on_survey_answered,
    customer_events.ConsentChanged: on_consent_changed,
}
