"""A seeded year of demo history for reporting (issue 20): `python -m crm_reporting.demo_history`.

`make run` loads it into reporting's own database so every report, score and list shows something
real on a fresh machine: a few thousand customers' leads from every source and campaign of the
demo company, first responses, deals through the default pipeline's stages, won and lost, repeat
purchases of the demo catalogue's products, tickets (complaints, SLA breaches, surveys) and
marketing opt-outs — over the two years before today (the churn model's minimum-history rule asks
for twice its 180-day window before the snapshot it learns from).

The history is built as the events those services publish (`LeadCaptured`, `LeadAssigned`,
`ActivityLogged`, `LeadConverted`, `DealStageChanged`, `DealClosed`, `CustomerCreated`,
`TicketOpened`, `TicketResolved`, `TicketSlaBreached`, `ConsentChanged`) and handed to reporting's
own handlers in time order, so the facts are exactly what the running system would have kept. It
is **reporting's only**: the leads, sales and customers services do not hold these records, so a
report, a score, a retention list or a suggestion names `demo-…` ids that open no lead or customer
page. Not for production: it is refused unless CRM_ENVIRONMENT is development. Loading twice
changes nothing (the first lead's fact is the mark).

Shapes planted so the models find them: a lead answered within five minutes converts about twice
as often as one answered after a day; referral and exhibition leads convert best; buyers of a
sofa often add an armchair and delivery; a third of buyers stop buying at a random moment, and
those file complaints and withdraw marketing consent more often before they stop.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from google.protobuf.message import Message
from sqlalchemy import select

from crm.common.v1 import types_pb2
from crm.customers.v1 import customers_pb2
from crm.customers.v1 import events_pb2 as customer_events
from crm.leads.v1 import events_pb2 as lead_events
from crm.sales.v1 import events_pb2 as sales_events
from crm.support.v1 import events_pb2 as support_events
from crm.support.v1 import support_pb2
from crm_kit.db import Database
from crm_kit.events import Envelope, event_type, subject_for
from crm_kit.protoconv import to_timestamp
from crm_reporting import handlers
from crm_reporting.db import lead_facts, messaging

# Two years: the churn model learns from the snapshot two windows (360 days) ago, labelled by the
# window after it, so the buyers it learns from must have bought before that.
DAYS = 730
MARK = "demo-lead-00000"
# (source, campaign, weight, conversion rate): the demo company's campaigns (crm_devstack.demo_data).
SOURCES = (
    ("radio", "radio-spring", 18, 0.22),
    ("tv", "tv-prime-time", 20, 0.18),
    ("website", "site-organic", 22, 0.20),
    ("web_form", "nowruz-sale", 8, 0.24),
    ("referral", "friend-brings-friend", 8, 0.42),
    ("exhibition", "furniture-expo", 6, 0.36),
    ("press", "press-hamshahri", 6, 0.15),
    ("telemarketing", "outbound-q1", 8, 0.12),
    ("email", "newsletter-march", 4, 0.16),
)
REPS = (
    ("rep-dana", "team-media"),
    ("rep-moshe", "team-media"),
    ("rep-sara", "team-digital"),
    ("rep-yael", "team-digital"),
    ("rep-omid", "team-digital"),
)
CITIES = ("תל אביב", "ירושלים", "חיפה", "באר שבע", "تهران", "اصفهان", "شیراز", "مشهد")
# The demo catalogue (crm_devstack.demo_data): SKU and unit price in agorot.
PRODUCTS = {"SOFA-3": 459_900, "ARMCHAIR-1": 189_900, "DINING-6": 689_900, "DELIVERY": 35_000, "DESIGN-HOUR": 45_000}
# The default pipeline's open stages (sales' migration 0002), as DealStageChanged names them.
STAGES = (
    ("default-new", "New"),
    ("default-qualified", "Qualified"),
    ("default-proposal", "Proposal"),
    ("default-negotiation", "Negotiation"),
)


@dataclass(frozen=True)
class Event:
    at: datetime
    message: Message


def _ils(amount: int) -> types_pb2.Money:
    return types_pb2.Money(amount_minor=amount, currency_code="ILS")


def _basket(rng: random.Random) -> list[types_pb2.LineItem]:
    """A purchase: a sofa buyer often adds an armchair and delivery; else a table or design hours."""
    if rng.random() < 0.55:
        skus = ["SOFA-3"] + (["ARMCHAIR-1"] if rng.random() < 0.45 else [])
        skus += ["DELIVERY"] if rng.random() < 0.6 else []
    else:
        skus = [rng.choice(("DINING-6", "DESIGN-HOUR", "ARMCHAIR-1"))] + (["DELIVERY"] if rng.random() < 0.3 else [])
    return [
        types_pb2.LineItem(sku=s, description=s, quantity=1, unit_price=_ils(PRODUCTS[s])) for s in dict.fromkeys(skus)
    ]


def _response_delay(rng: random.Random) -> timedelta | None:
    """Time to first response: most within the hour, some a day later, some never."""
    roll = rng.random()
    if roll < 0.08:
        return None
    if roll < 0.40:
        return timedelta(minutes=rng.uniform(0.5, 5))
    if roll < 0.70:
        return timedelta(minutes=rng.uniform(5, 120))
    if roll < 0.88:
        return timedelta(hours=rng.uniform(2, 24))
    return timedelta(hours=rng.uniform(24, 96))


def _speed_factor(delay: timedelta | None) -> float:
    if delay is None:
        return 0.3
    minutes = delay.total_seconds() / 60
    return 1.6 if minutes <= 5 else 1.2 if minutes <= 120 else 0.9 if minutes <= 1440 else 0.7


def history(customers: int, now: datetime, seed: int = 20) -> Iterator[Event]:
    """The events of `customers` leads over the DAYS before `now` (unsorted)."""
    rng = random.Random(seed)
    start = now - timedelta(days=DAYS)
    weights = [w for _, _, w, _ in SOURCES]
    for i in range(customers):
        source, campaign, _, rate = rng.choices(SOURCES, weights)[0]
        rep, team = rng.choice(REPS)
        lead_id = f"demo-lead-{i:05}"
        captured = start + timedelta(seconds=rng.uniform(0, DAYS * 86400 * 0.97))
        yield Event(
            captured,
            lead_events.LeadCaptured(
                lead_id=lead_id,
                source=source,
                campaign=campaign,
                city=rng.choice(CITIES),
                capture_time=to_timestamp(captured),
            ),
        )
        assigned = captured + timedelta(seconds=rng.uniform(5, 300))
        yield Event(
            assigned,
            lead_events.LeadAssigned(
                lead_id=lead_id,
                rep_id=rep,
                team_id=team,
                source=source,
                capture_time=to_timestamp(captured),
                assign_time=to_timestamp(assigned),
            ),
        )
        delay = _response_delay(rng)
        if delay is not None:
            answered = captured + delay
            yield Event(
                answered,
                lead_events.ActivityLogged(
                    activity_id=f"demo-act-{i:05}",
                    lead_id=lead_id,
                    kind="call",
                    actor=rep,
                    first_response=True,
                    occur_time=to_timestamp(answered),
                ),
            )
        speed = _speed_factor(delay)
        if rng.random() < min(0.9, rate * speed * 2.2):
            yield from _deal_and_after(rng, i, lead_id, (source, campaign), (rep, team), captured, now, speed)


def _deal_and_after(
    rng: random.Random,
    i: int,
    lead_id: str,
    origin: tuple[str, str],
    owner: tuple[str, str],
    captured: datetime,
    now: datetime,
    speed: float,
) -> Iterator[Event]:
    """A deal through the stages, won or lost (a fast first answer wins more often); a winner
    becomes a customer who may buy again."""
    (source, campaign), (rep, team) = origin, owner
    deal_id = f"demo-deal-{i:05}-0"
    opened = captured + timedelta(hours=rng.uniform(1, 72))
    yield Event(
        opened,
        lead_events.LeadConverted(
            lead_id=lead_id,
            deal_id=deal_id,
            owner_rep_id=rep,
            owner_team_id=team,
            source=source,
            campaign=campaign,
            pipeline_id="default",
            convert_time=to_timestamp(opened),
        ),
    )
    reached = rng.choices((1, 2, 3, 4), (15, 25, 30, 30))[0]
    moved = opened
    for stage, stage_name in STAGES[:reached]:
        moved += timedelta(days=rng.uniform(0.5, 5))
        yield Event(
            moved,
            sales_events.DealStageChanged(
                deal_id=deal_id,
                lead_id=lead_id,
                pipeline_id="default",
                to_stage_id=stage,
                to_stage_name=stage_name,
                owner_rep_id=rep,
                owner_team_id=team,
                move_time=to_timestamp(moved),
            ),
        )
    closed = min(moved + timedelta(days=rng.uniform(1, 10)), now - timedelta(hours=1))
    won = rng.random() < (0.2 + 0.15 * reached) * (0.5 + speed / 3)
    items = _basket(rng) if won else []
    if won:
        yield Event(
            closed,
            sales_events.DealStageChanged(
                deal_id=deal_id,
                lead_id=lead_id,
                pipeline_id="default",
                to_stage_id="default-won",
                to_stage_name="Won",
                owner_rep_id=rep,
                owner_team_id=team,
                move_time=to_timestamp(closed),
            ),
        )
    yield Event(closed, _closed(deal_id, lead_id, won, items, rep, team, source, campaign, closed))
    if not won:
        return
    customer_id = f"demo-customer-{i:05}"
    yield Event(
        closed + timedelta(seconds=1),
        customer_events.CustomerCreated(
            customer_id=customer_id, lead_id=lead_id, create_time=to_timestamp(closed + timedelta(seconds=1))
        ),
    )
    yield from _after_first_purchase(rng, i, lead_id, customer_id, source, campaign, rep, team, closed, now)


def _closed(
    deal_id: str,
    lead_id: str,
    won: bool,
    items: list[types_pb2.LineItem],
    rep: str,
    team: str,
    source: str,
    campaign: str,
    at: datetime,
) -> sales_events.DealClosed:
    return sales_events.DealClosed(
        deal_id=deal_id,
        lead_id=lead_id,
        won=won,
        items=items,
        total=_ils(sum(item.unit_price.amount_minor * item.quantity for item in items)),
        owner_rep_id=rep,
        owner_team_id=team,
        pipeline_id="default",
        source=source,
        campaign=campaign,
        close_time=to_timestamp(at),
        lost_reason="" if won else "price",
    )


def _after_first_purchase(
    rng: random.Random,
    i: int,
    lead_id: str,
    customer_id: str,
    source: str,
    campaign: str,
    rep: str,
    team: str,
    first: datetime,
    now: datetime,
) -> Iterator[Event]:
    """Repeat purchases every 40-90 days; a third stop at a random moment, and complain and opt
    out more often before they stop."""
    stops = first + timedelta(days=rng.uniform(30, 300)) if rng.random() < 0.35 else now
    bought = first
    n = 0
    while True:
        bought += timedelta(days=rng.uniform(40, 90))
        if bought >= min(stops, now):
            break
        n += 1
        deal_id = f"demo-deal-{i:05}-{n}"
        yield Event(bought, _closed(deal_id, lead_id, True, _basket(rng), rep, team, source, campaign, bought))
    leaving = stops < now
    for t in range(rng.choices((0, 1, 2, 3), (50, 30, 12, 8) if not leaving else (20, 30, 30, 20))[0]):
        opened = first + timedelta(days=rng.uniform(5, max(6.0, (min(stops, now) - first).days + 20)))
        if opened >= now:
            continue
        yield from _ticket(rng, f"demo-ticket-{i:05}-{t}", customer_id, opened, now, complaint=leaving)
    if leaving and rng.random() < 0.4:
        out = min(stops + timedelta(days=rng.uniform(0, 20)), now - timedelta(hours=1))
        yield Event(
            out,
            customer_events.ConsentChanged(
                customer_id=customer_id,
                channel=customers_pb2.CONSENT_CHANNEL_SMS,
                purpose=customers_pb2.CONSENT_PURPOSE_MARKETING,
                granted=False,
                source=customers_pb2.CONSENT_SOURCE_RECORDED_CALL,
                occur_time=to_timestamp(out),
                record_id=i + 1,
            ),
        )


def _ticket(
    rng: random.Random, ticket_id: str, customer_id: str, opened: datetime, now: datetime, *, complaint: bool
) -> Iterator[Event]:
    kind = support_pb2.TICKET_KIND_COMPLAINT if complaint and rng.random() < 0.7 else support_pb2.TICKET_KIND_QUESTION
    number = int(ticket_id.rsplit("-", 2)[1]) * 10 + int(ticket_id.rsplit("-", 1)[1])
    agent = rng.choice(("agent-yosef", "agent-miriam"))
    yield Event(
        opened,
        support_events.TicketOpened(
            ticket_id=ticket_id,
            number=number,
            customer_id=customer_id,
            kind=kind,
            channel=rng.choice((support_pb2.TICKET_CHANNEL_PHONE, support_pb2.TICKET_CHANNEL_EMAIL)),
            priority=support_pb2.TICKET_PRIORITY_NORMAL,
            queue_id="general",
            assignee_id=agent,
            occur_time=to_timestamp(opened),
        ),
    )
    takes = timedelta(hours=rng.uniform(1, 120 if complaint else 48))
    if rng.random() < (0.35 if complaint else 0.1):
        breached = opened + min(takes, timedelta(hours=24))
        yield Event(
            breached,
            support_events.TicketSlaBreached(
                ticket_id=ticket_id,
                number=number,
                customer_id=customer_id,
                metric=support_pb2.SLA_METRIC_RESOLUTION,
                # 2: the breach itself (1 is the warning before it).
                level=2,
                queue_id="general",
                assignee_id=agent,
                occur_time=to_timestamp(breached),
            ),
        )
    resolved = opened + takes
    if resolved < now:
        yield Event(
            resolved,
            support_events.TicketResolved(
                ticket_id=ticket_id,
                number=number,
                customer_id=customer_id,
                kind=kind,
                queue_id="general",
                assignee_id=agent,
                resolution_seconds=int(takes.total_seconds()),
                resolution_sla_met=takes <= timedelta(hours=24),
                occur_time=to_timestamp(resolved),
            ),
        )


async def load(db: Database, customers: int, now: datetime | None = None, batch: int = 500) -> int:
    """Hand the history to reporting's handlers in time order, `batch` events a transaction;
    nothing when it was loaded before. Returns the events handled."""
    async with db.unit_of_work() as uow:
        if (await uow.conn.execute(select(lead_facts.c.lead_id).where(lead_facts.c.lead_id == MARK))).first():
            return 0
    events = sorted(history(customers, now or datetime.now(UTC)), key=lambda e: e.at)
    for first in range(0, len(events), batch):
        async with db.unit_of_work() as uow:
            for event in events[first : first + batch]:
                envelope = Envelope(
                    id=str(uuid.uuid4()),
                    type=event_type(type(event.message)),
                    source="/crm/demo-history",
                    time=event.at,
                    subject=subject_for(type(event.message)),
                    message=event.message,
                )
                await handlers.BY_EVENT[type(event.message)](uow, envelope)
    return len(events)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crm_reporting.demo_history", description=__doc__)
    parser.add_argument("--customers", type=int, default=3000, help="leads to make (default 3000)")
    args = parser.parse_args(argv)
    if os.environ.get("CRM_ENVIRONMENT") != "development":
        print("the demo history is for development only (CRM_ENVIRONMENT=development)", file=sys.stderr)
        return 2
    db = Database(os.environ["CRM_DATABASE_URL"], messaging, source="/crm/reporting")

    async def run() -> int:
        try:
            return await load(db, args.customers)
        finally:
            await db.dispose()

    handled = asyncio.run(run())
    print(f"demo history: {handled} events loaded" if handled else "demo history: already loaded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
