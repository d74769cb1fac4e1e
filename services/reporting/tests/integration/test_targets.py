"""Targets vs actual in the reporting service, against real PostgreSQL and NATS JetStream: targets
created, changed and deleted (validated, audited, one per subject, period and metric), and their
actuals from LeadCaptured, LeadAssigned and DealClosed as they arrive, counted once per event."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from sqlalchemy import select

from crm.common.v1 import types_pb2
from crm.leads.v1 import events_pb2 as lead_events
from crm.reporting.v1 import targets_pb2, targets_pb2_grpc
from crm.sales.v1 import events_pb2 as sales_events
from crm_kit import caller
from crm_kit.protoconv import to_timestamp
from crm_kit.service import Service
from crm_kit.testing import (
    eventually,
    free_port,
    local_channel,
    publish_event,
    reset_stream,
    running_service,
    violated_fields,
)
from crm_reporting.db import deal_facts, lead_facts, messaging
from crm_reporting.main import MIGRATIONS_DIR, ReportingSettings, setup

pytestmark = pytest.mark.integration

REP, TEAM = targets_pb2.TARGET_SUBJECT_KIND_REP, targets_pb2.TARGET_SUBJECT_KIND_TEAM
SOURCE, PRODUCT_LINE = targets_pb2.TARGET_SUBJECT_KIND_SOURCE, targets_pb2.TARGET_SUBJECT_KIND_PRODUCT_LINE
MONTH, QUARTER = targets_pb2.PERIOD_KIND_MONTH, targets_pb2.PERIOD_KIND_QUARTER
WON_AMOUNT, WON_DEALS, LEADS = (
    targets_pb2.TARGET_METRIC_WON_AMOUNT,
    targets_pb2.TARGET_METRIC_WON_DEALS,
    targets_pb2.TARGET_METRIC_LEADS,
)
EVERYTHING = targets_pb2.TargetScope(every_target=True)
# March 2025 in Tel Aviv: [2025-02-28T22:00Z, 2025-03-31T21:00Z), long past, so run rate = actual.
MARCH = types_pb2.Date(year=2025, month=3, day=1)
IN_MARCH = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)


@dataclass
class Reporting:
    targets: targets_pb2_grpc.TargetsServiceStub
    service: Service

    async def fetch(self, query: Any) -> list[Any]:
        async with self.service.db.unit_of_work() as uow:
            return list((await uow.conn.execute(query)).all())


@pytest.fixture
async def reporting(fresh_database: Any, nats_server: str) -> AsyncIterator[Reporting]:
    await reset_stream(nats_server)
    port = free_port()
    settings = ReportingSettings(
        database_url=await fresh_database("reporting"),
        nats_url=nats_server,
        grpc_port=port,
        metrics_port=free_port(),
        consumer_backoff_seconds=[0.1],
        consumer_max_deliver=3,
    )
    async with running_service(settings, messaging, MIGRATIONS_DIR, setup) as service:
        ch = local_channel(port)
        yield Reporting(targets_pb2_grpc.TargetsServiceStub(ch), service)
        await ch.close()


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def money(amount: int, currency: str = "ILS") -> types_pb2.Money:
    return types_pb2.Money(amount_minor=amount, currency_code=currency)


def target(
    kind: int, subject_id: str, metric: int, *, amount: int = 0, count: int = 0, **more: Any
) -> targets_pb2.Target:
    return targets_pb2.Target(
        subject_kind=kind,
        subject_id=subject_id,
        period_kind=more.get("period_kind", MONTH),
        period_start=more.get("period_start", types_pb2.Date(year=2025, month=3, day=17)),
        metric=metric,
        amount=money(amount, more.get("currency", "ILS")) if amount else None,
        count=count,
    )


def error_info(error: grpc.aio.AioRpcError) -> tuple[str, dict[str, str]]:
    status = rpc_status.from_call(error)
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info.reason, dict(info.metadata)
    return "", {}


async def create(reporting: Reporting, t: targets_pb2.Target, request_id: str = "") -> targets_pb2.Target:
    reply = await reporting.targets.CreateTarget(targets_pb2.CreateTargetRequest(target=t, request_id=request_id))
    return reply.target


async def audit_trail(reporting: Reporting, target_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    log = messaging.audit_log
    query = select(log.c.action, log.c.actor, log.c.details).where(log.c.record_id == target_id).order_by(log.c.id)
    return [(r.action, r.actor, r.details) for r in await reporting.fetch(query)]


async def test_targets_are_created_once_changed_by_value_and_deleted_all_audited(reporting: Reporting) -> None:
    with caller.acting_as("manager-noa", "req-create"):
        made = await create(reporting, target(REP, "rep-dana", WON_AMOUNT, amount=5_000_000, currency="ils"), "req-1")
        again = await create(reporting, target(REP, "rep-dana", WON_AMOUNT, amount=5_000_000), "req-1")
    assert again == made
    assert (made.period_start, made.amount.currency_code, made.count) == (MARCH, "ILS", 0)
    with pytest.raises(grpc.aio.AioRpcError) as duplicate:
        await create(reporting, target(REP, "rep-dana", WON_AMOUNT, amount=1, period_start=MARCH))
    assert duplicate.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert error_info(duplicate.value) == ("TARGET_EXISTS", {"target_id": made.id})
    # The same subject and period with another metric is another target.
    deals = await create(reporting, target(REP, "rep-dana", WON_DEALS, count=4))

    with caller.acting_as("manager-noa", "req-update"):
        changed = await reporting.targets.UpdateTarget(
            targets_pb2.UpdateTargetRequest(
                target=targets_pb2.Target(id=made.id, amount=money(6_000_000)), update_mask=FieldMask(paths=["amount"])
            )
        )
    assert changed.target.amount == money(6_000_000) and changed.target.period_start == MARCH
    with pytest.raises(grpc.aio.AioRpcError) as identity:
        await reporting.targets.UpdateTarget(
            targets_pb2.UpdateTargetRequest(
                target=targets_pb2.Target(id=made.id, subject_id="rep-moshe"),
                update_mask=FieldMask(paths=["subject_id"]),
            )
        )
    assert identity.value.code() == grpc.StatusCode.INVALID_ARGUMENT and violated_fields(identity.value) == {
        "subject_id"
    }
    with pytest.raises(grpc.aio.AioRpcError) as wrong_value:
        await reporting.targets.UpdateTarget(
            targets_pb2.UpdateTargetRequest(
                target=targets_pb2.Target(id=deals.id, count=0), update_mask=FieldMask(paths=["count"])
            )
        )
    assert violated_fields(wrong_value.value) == {"count"}

    with caller.acting_as("manager-noa", "req-delete"):
        await reporting.targets.DeleteTarget(targets_pb2.DeleteTargetRequest(target_id=made.id))
    for gone in (
        reporting.targets.GetTarget(targets_pb2.GetTargetRequest(target_id=made.id)),
        reporting.targets.DeleteTarget(targets_pb2.DeleteTargetRequest(target_id=made.id)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await gone
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    trail = await audit_trail(reporting, made.id)
    assert [(action, actor) for action, actor, _ in trail] == [
        ("reporting.CreateTarget", "manager-noa"),
        ("reporting.UpdateTarget", "manager-noa"),
        ("reporting.DeleteTarget", "manager-noa"),
    ]
    assert trail[0][2]["period_start"] == "2025-03-01" and trail[0][2]["value"] == 5_000_000
    assert trail[1][2] == {
        "before": {"value": 5_000_000, "currency_code": "ILS"},
        "after": {"value": 6_000_000, "currency_code": "ILS"},
    }
    # After the delete, the subject, period and metric are free again.
    assert (await create(reporting, target(REP, "rep-dana", WON_AMOUNT, amount=1))).id != made.id


async def test_a_request_id_replays_only_the_same_request_and_never_reveals_another_target(
    reporting: Reporting,
) -> None:
    north = await create(reporting, target(TEAM, "team-north", WON_AMOUNT, amount=9_000_000), "key-1")
    # The same request again (another day of the month, another figure): the first target.
    again = await create(reporting, target(TEAM, "team-north", WON_AMOUNT, amount=1, period_start=MARCH), "key-1")
    assert again == north
    # The same key on another team's, another period's or another metric's target: 409, naming
    # nothing of the stored one, and nothing stored.
    for other in (
        target(TEAM, "team-south", WON_AMOUNT, amount=9_000_000),
        target(
            TEAM, "team-north", WON_AMOUNT, amount=9_000_000, period_start=types_pb2.Date(year=2025, month=4, day=1)
        ),
        target(TEAM, "team-north", LEADS, count=10),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as reused:
            await create(reporting, other, "key-1")
        assert reused.value.code() == grpc.StatusCode.ALREADY_EXISTS
        assert error_info(reused.value) == ("REQUEST_ID_IN_USE", {})
        details = reused.value.details() or ""
        assert north.id not in details and "team-north" not in details and "9000000" not in details
    listed = await reporting.targets.ListTargets(targets_pb2.ListTargetsRequest(scope=EVERYTHING))
    assert [t.id for t in listed.targets] == [north.id]
    assert [action for action, _, _ in await audit_trail(reporting, north.id)] == ["reporting.CreateTarget"]


async def test_bad_targets_name_every_field_and_store_nothing(reporting: Reporting) -> None:
    bad = [
        (targets_pb2.Target(), {"subject_kind", "period_kind", "period_start", "metric"}),
        (target(REP, "rep-dana", WON_AMOUNT), {"amount"}),
        (target(REP, "rep-dana", WON_AMOUNT, amount=100, count=2), {"count"}),
        (target(TEAM, "team-north", LEADS, amount=100, count=2), {"amount"}),
        (target(SOURCE, "radio", WON_AMOUNT, amount=100, currency="₪"), {"amount.currency_code"}),
        (target(SOURCE, "x" * 51, LEADS, count=3), {"subject_id"}),
        (
            target(REP, "rep-dana", LEADS, count=3, period_start=types_pb2.Date(year=2025, month=2, day=30)),
            {"period_start"},
        ),
    ]
    for t, fields in bad:
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await create(reporting, t)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert violated_fields(error.value) == fields
    listed = await reporting.targets.ListTargets(targets_pb2.ListTargetsRequest(scope=EVERYTHING))
    assert list(listed.targets) == []
    with pytest.raises(grpc.aio.AioRpcError) as no_kind:
        await reporting.targets.GetTargetReport(targets_pb2.GetTargetReportRequest(scope=EVERYTHING))
    assert violated_fields(no_kind.value) == {"period_kind"}


async def test_lists_hold_to_the_scope_and_page_newest_period_first(reporting: Reporting) -> None:
    april = types_pb2.Date(year=2025, month=4, day=1)
    made = {
        "dana-march": await create(reporting, target(REP, "rep-dana", LEADS, count=10)),
        "dana-april": await create(reporting, target(REP, "rep-dana", LEADS, count=10, period_start=april)),
        "moshe": await create(reporting, target(REP, "rep-moshe", LEADS, count=10)),
        "north": await create(reporting, target(TEAM, "team-north", LEADS, count=10)),
        "radio": await create(reporting, target(SOURCE, "radio", LEADS, count=10)),
    }

    async def listed(scope: targets_pb2.TargetScope, **filters: Any) -> list[str]:
        names = {t.id: name for name, t in made.items()}
        reply = await reporting.targets.ListTargets(targets_pb2.ListTargetsRequest(scope=scope, **filters))
        return sorted(names[t.id] for t in reply.targets)

    dana = targets_pb2.TargetSubject(kind=REP, id="rep-dana")
    north = targets_pb2.TargetSubject(kind=TEAM, id="team-north")
    assert await listed(targets_pb2.TargetScope(subjects=[dana, north])) == ["dana-april", "dana-march", "north"]
    assert await listed(targets_pb2.TargetScope(kinds=[SOURCE])) == ["radio"]
    assert await listed(targets_pb2.TargetScope()) == []  # an empty scope holds nothing
    assert await listed(EVERYTHING, period_kind=MONTH, period_date=april) == ["dana-april"]
    assert await listed(EVERYTHING, subject_kind=TEAM) == ["north"]

    first = await reporting.targets.ListTargets(targets_pb2.ListTargetsRequest(scope=EVERYTHING, page_size=2))
    assert first.targets[0].id == made["dana-april"].id and first.next_page_token
    rest = await reporting.targets.ListTargets(
        targets_pb2.ListTargetsRequest(scope=EVERYTHING, page_size=10, page_token=first.next_page_token)
    )
    assert len(first.targets) + len(rest.targets) == 5 and not rest.next_page_token


def captured(lead_id: str, source: str, at: datetime, product_line: str = "") -> lead_events.LeadCaptured:
    return lead_events.LeadCaptured(
        lead_id=lead_id, full_name="דנה כהן", source=source, product_line=product_line, capture_time=to_timestamp(at)
    )


def assigned(lead_id: str, rep_id: str, team_id: str, at: datetime) -> lead_events.LeadAssigned:
    return lead_events.LeadAssigned(lead_id=lead_id, rep_id=rep_id, team_id=team_id, assign_time=to_timestamp(at))


def won(lead_id: str, amount: types_pb2.Money, at: datetime, **owner: str) -> sales_events.DealClosed:
    return sales_events.DealClosed(
        deal_id=new_id("deal"),
        lead_id=lead_id,
        won=True,
        total=amount,
        owner_rep_id=owner.get("rep", "rep-dana"),
        owner_team_id=owner.get("team", "team-north"),
        pipeline_id="pipe-sofas",
        product_line=owner.get("product_line", "sofas"),
        source=owner.get("source", "radio"),
        close_time=to_timestamp(at),
    )


Row = tuple[str, str, int, int, float]


async def march_report(reporting: Reporting) -> tuple[targets_pb2.GetTargetReportResponse, list[Row]]:
    reply = await reporting.targets.GetTargetReport(
        targets_pb2.GetTargetReportRequest(scope=EVERYTHING, period_kind=MONTH, date=MARCH)
    )
    rows = [
        (
            r.target.subject_id,
            targets_pb2.TargetMetric.Name(r.target.metric).removeprefix("TARGET_METRIC_").lower(),
            r.actual_amount.amount_minor if r.HasField("actual_amount") else r.actual_count,
            r.projected_amount.amount_minor if r.HasField("projected_amount") else r.projected_count,
            r.achieved_percent,
        )
        for r in reply.rows
    ]
    return reply, rows


async def test_actuals_come_from_events_as_they_happen_and_a_replay_counts_once(
    reporting: Reporting, nats_server: str
) -> None:
    await create(reporting, target(REP, "rep-dana", WON_AMOUNT, amount=1_000_000))
    await create(reporting, target(TEAM, "team-north", WON_DEALS, count=4))
    await create(reporting, target(PRODUCT_LINE, "sofas", WON_DEALS, count=2))
    await create(reporting, target(SOURCE, "radio", LEADS, count=4))
    await create(reporting, target(TEAM, "team-north", LEADS, count=10))
    # Another period's target is not in March's report.
    await create(reporting, target(REP, "rep-dana", WON_DEALS, count=1, period_kind=QUARTER))

    lead_1, lead_2, lead_3 = new_id("lead"), new_id("lead"), new_id("lead")
    await publish_event(nats_server, captured(lead_1, "radio", IN_MARCH, "sofas"))
    await publish_event(nats_server, assigned(lead_1, "rep-dana", "team-north", IN_MARCH + timedelta(minutes=1)))
    await publish_event(nats_server, captured(lead_2, "radio", IN_MARCH))
    # Captured at 23:30 on 31 March in Tel Aviv (20:30 UTC): still a March lead.
    await publish_event(nats_server, captured(lead_3, "radio", datetime(2025, 3, 31, 20, 30, tzinfo=UTC)))
    await publish_event(
        nats_server, assigned(lead_3, "rep-dana", "team-north", datetime(2025, 3, 31, 20, 31, tzinfo=UTC))
    )
    first_deal = won(lead_1, money(459_900), IN_MARCH + timedelta(days=2))
    deal_event = await publish_event(nats_server, first_deal)
    await publish_event(nats_server, won(lead_2, money(10_000, "USD"), IN_MARCH + timedelta(days=3)))
    # Closed at 00:30 on 1 April in Tel Aviv: an April deal, whatever UTC says.
    await publish_event(nats_server, won(lead_3, money(999_999), datetime(2025, 3, 31, 21, 30, tzinfo=UTC)))
    lost = won(lead_2, money(777), IN_MARCH)
    lost.won = False
    await publish_event(nats_server, lost)

    expected: list[Row] = [
        ("sofas", "won_deals", 2, 2, 100.0),
        ("rep-dana", "won_amount", 459_900, 459_900, 45.99),
        ("radio", "leads", 3, 3, 75.0),
        ("team-north", "leads", 2, 2, 20.0),
        ("team-north", "won_deals", 2, 2, 50.0),
    ]
    last: list[Row] = []

    async def settled() -> bool:
        nonlocal last
        last = (await march_report(reporting))[1]
        return sorted(last) == sorted(expected)

    try:
        await eventually(settled)
    except AssertionError as exc:
        raise AssertionError(f"report never became {expected}; last: {last}") from exc
    reply, _ = await march_report(reporting)
    assert (reply.period.start_date, reply.period.end_date) == (MARCH, types_pb2.Date(year=2025, month=3, day=31))
    assert reply.period.start_time.ToDatetime(tzinfo=UTC) == datetime(2025, 2, 28, 22, tzinfo=UTC)
    assert reply.period.end_time.ToDatetime(tzinfo=UTC) == datetime(2025, 3, 31, 21, tzinfo=UTC)
    assert (reply.period.time_zone, reply.period.elapsed_fraction) == ("Asia/Jerusalem", 1.0)
    [dana] = [r for r in reply.rows if r.target.metric == WON_AMOUNT]
    assert list(dana.other_currencies) == [money(10_000, "USD")]

    # The same DealClosed again (a redelivery, or a dead letter replayed) changes nothing.
    await publish_event(nats_server, first_deal, event_id=deal_event, **{"Nats-Msg-Id": "replay-" + deal_event})
    sentinel = new_id("lead")
    await publish_event(
        nats_server, won(sentinel, money(1), IN_MARCH, rep="rep-x", team="team-x", product_line="chairs")
    )
    await eventually(lambda: reporting.fetch(select(deal_facts).where(deal_facts.c.lead_id == sentinel)))
    assert sorted((await march_report(reporting))[1]) == sorted(expected)


async def test_a_close_without_a_source_counts_for_its_leads_source(reporting: Reporting, nats_server: str) -> None:
    await create(reporting, target(SOURCE, "tv", WON_DEALS, count=1))
    lead_id = new_id("lead")
    await publish_event(nats_server, captured(lead_id, "tv", IN_MARCH))
    # The fallback reads the lead's facts when the close is recorded: let the capture land first.
    await eventually(lambda: reporting.fetch(select(lead_facts).where(lead_facts.c.lead_id == lead_id)))
    await publish_event(nats_server, won(lead_id, money(100), IN_MARCH + timedelta(hours=1), source=""))

    async def counted() -> bool:
        return (await march_report(reporting))[1] == [("tv", "won_deals", 1, 1, 100.0)]

    await eventually(counted)
    [fact] = await reporting.fetch(select(deal_facts).where(deal_facts.c.lead_id == lead_id))
    assert (fact.source, fact.owner_rep_id, fact.owner_team_id, fact.product_line) == (
        "tv",
        "rep-dana",
        "team-north",
        "sofas",
    )
