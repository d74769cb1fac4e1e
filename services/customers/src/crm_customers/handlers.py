"""Event consumers of customers: every touch from other domains becomes a timeline entry.

Each handler runs in one unit of work with its inbox claim (the chassis does that); the
timeline's unique event_id is the second guard against a double entry.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Any

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from crm.common.v1 import types_pb2
from crm.leads.v1 import events_pb2 as leads_events
from crm.notifications.v1 import events_pb2 as notifications_events
from crm.orders.v1 import events_pb2 as orders_events
from crm.reporting.v1 import events_pb2 as reporting_events
from crm.sales.v1 import events_pb2 as sales_events
from crm.sales.v1 import pipelines_pb2 as sales_pipelines
from crm.support.v1 import events_pb2 as support_events
from crm.support.v1 import support_pb2
from crm_customers import commands, domain, queries
from crm_customers.consent_rules import ConsentRules
from crm_kit.bus import EventBus
from crm_kit.db import UnitOfWork
from crm_kit.errors import InvalidArgument
from crm_kit.events import Envelope, PoisonMessage, RetryLater
from crm_kit.protoconv import enum_word, from_date, from_timestamp

log = logging.getLogger(__name__)


class LeadNotYetKnown(RetryLater):
    """An event names a lead whose LeadCaptured has not been handled yet (it comes through another
    consumer, which may lag far behind, e.g. after a restart); held and retried, never counted as
    a failed delivery."""


def _occurred_at(message: Message, field: str, envelope: Envelope[Any]) -> datetime:
    """When the touch happened: the event's own time field, else the envelope's time."""
    value: Timestamp = getattr(message, field)
    return from_timestamp(value, message.HasField(field)) or envelope.time


def _delivery_date(message: orders_events.OrderShipped) -> date | None:
    value: types_pb2.Date = message.estimated_delivery_date
    if not message.HasField("estimated_delivery_date") or value.year == 0:
        return None
    try:
        return from_date(value, "estimated_delivery_date")
    except InvalidArgument:
        log.warning("OrderShipped carries an invalid delivery date", extra={"order_id": message.order_id})
        return None


async def _customer_of(uow: UnitOfWork, lead_id: str, envelope: Envelope[Any]) -> str:
    if not lead_id:
        raise PoisonMessage(f"{envelope.type} {envelope.id} names no lead")
    customer_id = await queries.customer_for_lead(uow, lead_id)
    if customer_id is None:
        raise LeadNotYetKnown(f"lead {lead_id} of {envelope.type} {envelope.id} is not known yet")
    return customer_id


async def on_lead_captured(uow: UnitOfWork, envelope: Envelope[leads_events.LeadCaptured]) -> None:
    """Attach the lead to its customer (matched or new) and record the capture."""
    m = envelope.message
    if not m.lead_id:
        raise PoisonMessage(f"LeadCaptured {envelope.id} has no lead_id")
    await commands.capture_lead(
        uow,
        commands.CapturedLead(
            lead_id=m.lead_id,
            full_name=" ".join(m.full_name.split()),
            phone_number=m.phone_number.strip(),
            email=domain.normalize_email(m.email),
            locale=domain.normalize_locale(m.locale),
            source=m.source.strip(),
        ),
        commands.TimelineEntry(
            kind=domain.TouchKind.LEAD_CAPTURED,
            summary=domain.lead_captured_summary(m.source, m.campaign),
            channel=domain.channel_for_source(m.source),
            event_id=envelope.id,
            occurred_at=_occurred_at(m, "capture_time", envelope),
            facts=domain.facts(source=m.source, campaign=m.campaign),
        ),
    )


async def on_deal_closed(uow: UnitOfWork, envelope: Envelope[sales_events.DealClosed]) -> None:
    """The close on the timeline; a won deal's lines become the customer's purchases, in the same
    transaction and only with a new entry (a deal won before migration 0011 was backfilled from its
    entry: a redelivery of its event adds nothing)."""
    m = envelope.message
    customer_id = await _customer_of(uow, m.lead_id, envelope)
    closed_at = _occurred_at(m, "close_time", envelope)
    added = await commands.add_timeline_entry(
        uow,
        customer_id=customer_id,
        kind=domain.TouchKind.DEAL_WON if m.won else domain.TouchKind.DEAL_LOST,
        summary=domain.deal_closed_summary(
            won=m.won,
            amount_minor=m.total.amount_minor,
            currency_code=m.total.currency_code,
            lost_reason=m.lost_reason,
        ),
        channel=domain.SYSTEM_CHANNEL,
        event_id=envelope.id,
        occurred_at=closed_at,
        facts=(
            domain.facts(amount_minor=m.total.amount_minor, currency_code=m.total.currency_code)
            if m.won
            else domain.facts(lost_reason=m.lost_reason)
        ),
    )
    if added and m.won and m.deal_id:
        await commands.record_purchases(
            uow,
            customer_id,
            deal_id=m.deal_id,
            product_line=m.product_line,
            lines=_purchase_lines(m),
            closed_at=closed_at,
        )


def _purchase_lines(m: sales_events.DealClosed) -> list[domain.PurchaseLine]:
    items = [
        domain.DealItem(
            sku=item.sku,
            description=item.description,
            quantity=item.quantity,
            unit_price_minor=item.unit_price.amount_minor,
            currency_code=item.unit_price.currency_code,
        )
        for item in m.items
    ]
    return domain.purchase_lines(items, m.total.amount_minor, m.total.currency_code)


async def on_deal_stage_changed(uow: UnitOfWork, envelope: Envelope[sales_events.DealStageChanged]) -> None:
    """A deal entering an open stage; entering the won or lost stage is the close's entry."""
    m = envelope.message
    if m.to_stage_outcome != sales_pipelines.STAGE_OUTCOME_OPEN or not m.from_stage_id:
        return
    await commands.add_timeline_entry(
        uow,
        customer_id=await _customer_of(uow, m.lead_id, envelope),
        kind=domain.TouchKind.DEAL_STAGE_CHANGED,
        summary=domain.deal_stage_summary(m.to_stage_name),
        channel=domain.SYSTEM_CHANNEL,
        event_id=envelope.id,
        occurred_at=_occurred_at(m, "move_time", envelope),
        facts=domain.facts(stage=m.to_stage_name),
    )


async def _on_quote(
    uow: UnitOfWork, envelope: Envelope[Any], m: sales_events.QuoteSent | sales_events.QuoteAccepted, time_field: str
) -> None:
    accepted = isinstance(m, sales_events.QuoteAccepted)
    await commands.add_timeline_entry(
        uow,
        customer_id=await _customer_of(uow, m.lead_id, envelope),
        kind=domain.TouchKind.QUOTE_ACCEPTED if accepted else domain.TouchKind.QUOTE_SENT,
        summary=domain.quote_summary(
            accepted=accepted,
            number=m.number,
            version=m.version,
            total_minor=m.total.amount_minor,
            currency_code=m.total.currency_code,
        ),
        channel=domain.SYSTEM_CHANNEL,
        event_id=envelope.id,
        occurred_at=_occurred_at(m, time_field, envelope),
        facts=domain.facts(
            number=m.number,
            version=m.version,
            total_minor=m.total.amount_minor,
            currency_code=m.total.currency_code,
        ),
    )


async def on_quote_sent(uow: UnitOfWork, envelope: Envelope[sales_events.QuoteSent]) -> None:
    await _on_quote(uow, envelope, envelope.message, "send_time")


async def on_quote_accepted(uow: UnitOfWork, envelope: Envelope[sales_events.QuoteAccepted]) -> None:
    await _on_quote(uow, envelope, envelope.message, "accept_time")


async def on_order_shipped(uow: UnitOfWork, envelope: Envelope[orders_events.OrderShipped]) -> None:
    m = envelope.message
    customer_id = await _customer_of(uow, m.lead_id, envelope)
    await commands.add_timeline_entry(
        uow,
        customer_id=customer_id,
        kind=domain.TouchKind.ORDER_SHIPPED,
        summary=domain.order_shipped_summary(m.carrier, m.tracking_number, _delivery_date(m)),
        channel=domain.SYSTEM_CHANNEL,
        event_id=envelope.id,
        occurred_at=_occurred_at(m, "ship_time", envelope),
        facts=domain.facts(carrier=m.carrier, tracking_number=m.tracking_number, delivery_date=_delivery_date(m)),
    )


async def on_notification_sent(uow: UnitOfWork, envelope: Envelope[notifications_events.NotificationSent]) -> None:
    m = envelope.message
    if m.customer_id:
        # A promotion's message names its recipient.
        customer_id: str | None = m.customer_id
    elif m.lead_id:
        customer_id = await _customer_of(uow, m.lead_id, envelope)
    else:
        # A message not about a lead (e.g. a promotion) still belongs to whoever owns the number.
        customer_id = await queries.customer_by_phone(uow, m.recipient.strip())
    if customer_id is None:
        log.info("NotificationSent for no known customer; no timeline entry", extra={"event_id": envelope.id})
        return
    await commands.add_timeline_entry(
        uow,
        customer_id=customer_id,
        kind=domain.TouchKind.SMS_SENT,
        summary=m.body,
        channel=domain.SMS_CHANNEL,
        event_id=envelope.id,
        occurred_at=_occurred_at(m, "send_time", envelope),
        facts=domain.facts(text=m.body),
    )


async def on_activity_logged(uow: UnitOfWork, envelope: Envelope[leads_events.ActivityLogged]) -> None:
    """A call, meeting, note, e-mail, SMS or task a rep logged: who did what, on the timeline."""
    m = envelope.message
    if m.kind not in domain.ACTIVITY_TOUCHES:
        # A kind newer than this service: dead-lettered, to be replayed once customers knows it.
        raise PoisonMessage(f"ActivityLogged {envelope.id} has an unknown kind {m.kind!r}")
    customer_id = await _customer_of(uow, m.lead_id, envelope)
    kind, channel, _ = domain.ACTIVITY_TOUCHES[m.kind]
    await commands.add_timeline_entry(
        uow,
        customer_id=customer_id,
        kind=kind,
        summary=domain.activity_summary(
            kind=m.kind,
            outcome=m.outcome,
            summary=m.summary,
            actor=m.actor,
            duration_seconds=m.duration_seconds,
            actor_name=m.actor_name,
        ),
        channel=channel,
        event_id=envelope.id,
        occurred_at=_occurred_at(m, "occur_time", envelope),
        facts=domain.facts(
            outcome=m.outcome,
            duration_seconds=m.duration_seconds or "",
            who=m.actor_name.strip() or m.actor,
            text=m.summary,
        ),
    )


async def on_lead_touched(uow: UnitOfWork, envelope: Envelope[leads_events.LeadTouched]) -> None:
    """A known person came in again (a duplicate capture attached to their lead): a timeline touch."""
    m = envelope.message
    customer_id = await _customer_of(uow, m.lead_id, envelope)
    await commands.add_timeline_entry(
        uow,
        customer_id=customer_id,
        kind=domain.TouchKind.LEAD_CAPTURED,
        summary=domain.lead_touched_summary(m.source, m.campaign),
        channel=domain.channel_for_source(m.source),
        event_id=envelope.id,
        occurred_at=_occurred_at(m, "touch_time", envelope),
        facts=domain.facts(source=m.source, campaign=m.campaign, again="yes"),
    )


async def on_leads_merged(uow: UnitOfWork, envelope: Envelope[leads_events.LeadsMerged]) -> None:
    """Two leads were one person: their customers (when two) become one, timelines joined."""
    m = envelope.message
    survivor = await _customer_of(uow, m.survivor_lead_id, envelope)
    duplicate = await _customer_of(uow, m.merged_lead_id, envelope)
    await commands.merge_customers_of_leads(uow, survivor, duplicate)


def _ticket_word(enum: Any, value: int) -> str:
    """A support enum value as its lower-case word (TICKET_KIND_COMPLAINT → "complaint")."""
    return enum_word(enum.DESCRIPTOR, value)


async def _on_ticket(
    uow: UnitOfWork,
    envelope: Envelope[Any],
    kind: domain.TouchKind,
    summary: str,
    channel: str,
    facts: dict[str, str],
) -> bool:
    """The ticket's timeline entry; True when it is new (the event's other effects apply then)."""
    m = envelope.message
    if not m.customer_id:
        raise PoisonMessage(f"{envelope.type} {envelope.id} names no customer")
    return await commands.add_timeline_entry(
        uow,
        customer_id=m.customer_id,
        kind=kind,
        summary=summary,
        channel=channel,
        event_id=envelope.id,
        occurred_at=_occurred_at(m, "occur_time", envelope),
        facts=facts,
    )


async def on_ticket_opened(uow: UnitOfWork, envelope: Envelope[support_events.TicketOpened]) -> None:
    m = envelope.message
    kind = _ticket_word(support_pb2.TicketKind, m.kind)
    channel = _ticket_word(support_pb2.TicketChannel, m.channel)
    added = await _on_ticket(
        uow,
        envelope,
        domain.TouchKind.TICKET_OPENED,
        domain.ticket_summary("opened", m.number, kind, m.subject),
        domain.ticket_channel(channel),
        domain.facts(number=m.number, ticket_id=m.ticket_id, ticket_kind=kind, subject=m.subject, order_id=m.order_id),
    )
    if added and m.ticket_id:
        await commands.track_ticket(
            uow, m.customer_id, ticket_id=m.ticket_id, kind=kind, opened_at=_occurred_at(m, "occur_time", envelope)
        )


async def on_ticket_resolved(uow: UnitOfWork, envelope: Envelope[support_events.TicketResolved]) -> None:
    m = envelope.message
    kind = _ticket_word(support_pb2.TicketKind, m.kind)
    added = await _on_ticket(
        uow,
        envelope,
        domain.TouchKind.TICKET_RESOLVED,
        domain.ticket_summary("resolved", m.number, kind, ""),
        domain.SYSTEM_CHANNEL,
        domain.facts(
            number=m.number, ticket_id=m.ticket_id, ticket_kind=kind, sla_met="yes" if m.resolution_sla_met else "no"
        ),
    )
    if added and m.ticket_id:
        await commands.track_ticket(
            uow, m.customer_id, ticket_id=m.ticket_id, kind=kind, resolved_at=_occurred_at(m, "occur_time", envelope)
        )


async def on_survey_answered(uow: UnitOfWork, envelope: Envelope[support_events.SurveyAnswered]) -> None:
    m = envelope.message
    added = await _on_ticket(
        uow,
        envelope,
        domain.TouchKind.SURVEY_ANSWERED,
        f"Satisfaction survey of ticket {m.number}: {m.score}/5",
        "web",
        domain.facts(number=m.number, ticket_id=m.ticket_id, score=m.score),
    )
    if added and m.score in domain.SURVEY_SCORES:
        await commands.note_survey(
            uow, m.customer_id, score=m.score, answered_at=_occurred_at(m, "occur_time", envelope)
        )


# TicketSlaBreached's level 2 is the breach itself; 1 (the warning before it) and 3 (long past it)
# are the desk's own escalations, not something that happened to the customer.
BREACH_LEVEL = 2


async def on_ticket_sla_breached(uow: UnitOfWork, envelope: Envelope[support_events.TicketSlaBreached]) -> None:
    """A ticket of the customer missed an SLA target: the profile shows the customer waited."""
    m = envelope.message
    if m.level != BREACH_LEVEL:
        return
    metric = _ticket_word(support_pb2.SlaMetric, m.metric)
    await _on_ticket(
        uow,
        envelope,
        domain.TouchKind.TICKET_SLA_BREACHED,
        f"Ticket {m.number}: {metric.replace('_', ' ') or 'SLA'} target missed",
        domain.SYSTEM_CHANNEL,
        domain.facts(number=m.number, ticket_id=m.ticket_id, sla_metric=metric, sla_met="no"),
    )


# The reasons a risk entry keeps (the strongest first, as reporting ranks them).
RISK_REASONS_KEPT = 3


async def on_customer_at_risk(uow: UnitOfWork, envelope: Envelope[reporting_events.CustomerAtRisk]) -> None:
    """The customer's churn risk moved to another band: an entry on their timeline with the band,
    the one before, the risk and its strongest reasons, so whoever opens the profile sees it. A
    customer reporting knows and this service does not (a seeded demo customer) is skipped."""
    m = envelope.message
    if not m.customer_id or m.band not in ("low", "medium", "high"):
        raise PoisonMessage(f"CustomerAtRisk {envelope.id} needs customer_id and a band (low, medium, high)")
    if not await queries.customer_exists(uow, m.customer_id):
        log.debug("risk of an unknown customer skipped", extra={"customer_id": m.customer_id})
        return
    reasons = [r for r in m.reasons if r.signal][:RISK_REASONS_KEPT]
    await commands.add_timeline_entry(
        uow,
        customer_id=m.customer_id,
        kind=domain.TouchKind.RISK_CHANGED,
        summary=f"Churn risk {m.previous_band or 'first scored'} -> {m.band} ({round(m.risk * 100)}%)",
        channel=domain.SYSTEM_CHANNEL,
        event_id=envelope.id,
        occurred_at=_occurred_at(m, "score_time", envelope),
        facts=domain.facts(
            band=m.band,
            previous_band=m.previous_band,
            risk_percent=round(m.risk * 100),
            reasons=",".join(f"{r.signal}:{round(r.value)}" for r in reasons),
            model=m.model,
        ),
    )


# How a refusal reached notifications → the consent source customers records it under.
WITHDRAWAL_CHANNELS = ("sms", "email")


def consent_withdrawn_handler(rules: ConsentRules) -> Callable[[UnitOfWork, Envelope[Any]], Awaitable[None]]:
    async def on_consent_withdrawn(uow: UnitOfWork, envelope: Envelope[notifications_events.ConsentWithdrawn]) -> None:
        """A person refused advertising where a message reached them (a reply, an unsubscribe link):
        the withdrawal is recorded for every customer with that address, with what they did as the
        evidence (the inbox makes it once)."""
        m = envelope.message
        if m.channel not in WITHDRAWAL_CHANNELS or not m.address:
            raise PoisonMessage(f"ConsentWithdrawn {envelope.id} names no channel or address")
        change = domain.ConsentChange(
            channel=m.channel, purpose="marketing", granted=False, source="reply", evidence=m.evidence[:500]
        )
        await commands.consent_by_address(uow, change, m.address, _occurred_at(m, "occur_time", envelope), rules)

    return on_consent_withdrawn


def consent_granted_handler(rules: ConsentRules) -> Callable[[UnitOfWork, Envelope[Any]], Awaitable[None]]:
    async def on_consent_granted(uow: UnitOfWork, envelope: Envelope[notifications_events.ConsentGranted]) -> None:
        """A person who had refused advertising by SMS asked for it again by a reply (Iran's 12):
        the consent is recorded for every customer with that number, the reply as its evidence,
        where the country's consent rules accept a reply as a yes. Where they do not (Israel), the
        reply grants nothing and only a consent recorded another way does."""
        m = envelope.message
        if m.channel != "sms" or not m.address or not m.evidence:
            raise PoisonMessage(f"ConsentGranted {envelope.id} names no SMS number or no evidence")
        if "reply" not in rules.marketing_grant_sources:
            log.warning("a reply does not grant consent here", extra={"event_id": envelope.id})
            return
        change = domain.ConsentChange(
            channel=m.channel, purpose="marketing", granted=True, source="reply", evidence=m.evidence[:500]
        )
        await commands.consent_by_address(uow, change, m.address, _occurred_at(m, "occur_time", envelope), rules)

    return on_consent_granted


def subscribe_handlers(bus: EventBus, rules: ConsentRules) -> None:
    """Register every consumer of the customers service on the bus."""
    bus.subscribe(notifications_events.ConsentWithdrawn, consent_withdrawn_handler(rules))
    bus.subscribe(notifications_events.ConsentGranted, consent_granted_handler(rules))
    bus.subscribe(leads_events.LeadCaptured, on_lead_captured)
    bus.subscribe(sales_events.DealClosed, on_deal_closed)
    bus.subscribe(sales_events.DealStageChanged, on_deal_stage_changed)
    bus.subscribe(sales_events.QuoteSent, on_quote_sent)
    bus.subscribe(sales_events.QuoteAccepted, on_quote_accepted)
    bus.subscribe(orders_events.OrderShipped, on_order_shipped)
    bus.subscribe(notifications_events.NotificationSent, on_notification_sent)
    bus.subscribe(leads_events.ActivityLogged, on_activity_logged)
    bus.subscribe(leads_events.LeadTouched, on_lead_touched)
    bus.subscribe(leads_events.LeadsMerged, on_leads_merged)
    bus.subscribe(support_events.TicketOpened, on_ticket_opened)
    bus.subscribe(support_events.TicketResolved, on_ticket_resolved)
    bus.subscribe(support_events.SurveyAnswered, on_survey_answered)
    bus.subscribe(support_events.TicketSlaBreached, on_ticket_sla_breached)
    bus.subscribe(reporting_events.CustomerAtRisk, on_customer_at_risk)
