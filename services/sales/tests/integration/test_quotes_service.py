"""Quotes in the sales service, in process against real PostgreSQL and NATS JetStream: a quote
priced from one price list and kept at its prices, versions, sending and accepting (the deal won
with the quote's lines in the same transaction as DealClosed and QuoteAccepted), replays, expiry,
the PDF, and every refused input changing nothing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import grpc
import nats
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from nats.errors import TimeoutError as NatsTimeoutError
from sqlalchemy import event, text

from crm.common.v1 import types_pb2
from crm.sales.v1 import deals_pb2, quotes_pb2
from crm.sales.v1 import events_pb2 as sales_events
from crm_kit import caller
from crm_kit.testing import eventually, violated_fields
from crm_sales import commands as deal_commands
from crm_sales.quotes import commands as quote_commands
from crm_sales.quotes import pdf as quote_pdf

if TYPE_CHECKING:
    from conftest import Sales  # the fixture's type (conftest.py)

pytestmark = pytest.mark.integration

Q = quotes_pb2


def today() -> date:
    # The service's default company time zone (SalesSettings.company_time_zone).
    return datetime.now(ZoneInfo("Asia/Jerusalem")).date()


def reason(error: grpc.aio.AioRpcError) -> str:
    status = rpc_status.from_call(error)
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return str(info.reason)
    return ""


async def sql(sales: Sales, statement: str, **params: Any) -> list[Any]:
    async with sales.service.db.engine.begin() as conn:
        result = await conn.execute(text(statement), params)
        return list(result.all()) if result.returns_rows else []


@dataclass
class Catalog:
    """One test's products and price lists (ids unique per test)."""

    chair: str
    desk: str
    book: str
    ils: str
    usd: str
    expired: str
    inactive: str


async def seed_catalog(sales: Sales) -> Catalog:
    """Products and price lists written as the catalog stores them: chair and desk at the standard
    VAT rate, a book at zero; an ILS list in force, a USD one, an expired and an inactive one."""
    tag = uuid.uuid4().hex[:8]
    c = Catalog(*(f"{name}-{tag}" for name in ("chair", "desk", "book", "ils", "usd", "expired", "inactive")))
    products = [
        (c.chair, {"he": "כיסא משרדי", "en": "Office chair", "fa": "صندلی اداری"}, "standard"),
        (c.desk, {"he": "שולחן עבודה", "en": "Desk"}, "standard"),
        (c.book, {"en": "Manual"}, "zero"),
    ]
    for product_id, names, tax_class in products:
        await sql(
            sales,
            "INSERT INTO products (id, sku, names, unit, tax_class)"
            " VALUES (:id, :sku, CAST(:names AS jsonb), 'unit', :tc)",
            id=product_id,
            sku=f"SKU-{product_id}".upper(),
            names=json.dumps(names),
            tc=tax_class,
        )
    lists = [
        (c.ils, "ILS", date(2020, 1, 1), None, True),
        (c.usd, "USD", date(2020, 1, 1), None, True),
        (c.expired, "ILS", date(2020, 1, 1), date(2021, 12, 31), True),
        (c.inactive, "ILS", date(2020, 1, 1), None, False),
    ]
    for list_id, currency, valid_from, valid_to, active in lists:
        await sql(
            sales,
            "INSERT INTO price_lists (id, name, currency, country, valid_from, valid_to, active)"
            " VALUES (:id, :id, :cur, 'IL', :vf, :vt, :active)",
            id=list_id,
            cur=currency,
            vf=valid_from,
            vt=valid_to,
            active=active,
        )
        for product_id, price in ((c.chair, 45_000), (c.desk, 120_000), (c.book, 9_990)):
            await sql(
                sales,
                "INSERT INTO price_list_items (price_list_id, product_id, unit_price_minor) VALUES (:pl, :p, :price)",
                pl=list_id,
                p=product_id,
                price=price,
            )
    return c


async def open_deal(sales: Sales, title: str = "ריהוט למשרד החדש") -> deals_pb2.Deal:
    request = deals_pb2.OpenDealRequest(
        deal_id=str(uuid.uuid4()),
        lead_id=f"lead-{uuid.uuid4().hex[:8]}",
        title=title,
        owner_rep_id="rep-dana",
        owner_team_id="team-media",
    )
    return (await sales.deals.OpenDeal(request)).deal


def line(product_id: str, quantity: int = 1, discount_bp: int = 0, **fields: Any) -> Q.QuoteLine:
    return Q.QuoteLine(product_id=product_id, quantity=quantity, discount_bp=discount_bp, **fields)


async def create(sales: Sales, deal_id: str, price_list_id: str, *lines: Q.QuoteLine, **fields: Any) -> Q.Quote:
    quote = Q.Quote(deal_id=deal_id, price_list_id=price_list_id, lines=list(lines), **fields)
    return (await sales.quotes.CreateQuote(Q.CreateQuoteRequest(quote=quote))).quote


async def sent_quote(sales: Sales, catalog: Catalog) -> tuple[deals_pb2.Deal, Q.Quote]:
    deal = await open_deal(sales)
    draft = await create(
        sales, deal.id, catalog.ils, line(catalog.chair, 3, 1000), line(catalog.book, 2), discount_bp=500
    )
    return deal, (await sales.quotes.SendQuote(Q.SendQuoteRequest(quote_id=draft.id))).quote


async def events(nats_url: str, subject: str, message: Any, deal_id: str) -> list[Any]:
    """Every event of `subject` on the stream for the deal (a fresh durable reads from the start)."""
    nc = await nats.connect(nats_url)
    try:
        sub = await nc.jetstream().pull_subscribe(subject, durable=f"t-{uuid.uuid4().hex[:8]}")
        found: list[Any] = []
        while True:
            try:
                found += [message.FromString(m.data) for m in await sub.fetch(50, timeout=0.5)]
            except (NatsTimeoutError, TimeoutError):
                return [e for e in found if e.deal_id == deal_id]
    finally:
        await nc.close()


async def snapshot(sales: Sales, deal_id: str) -> list[Any]:
    """Everything a refused call must leave as it was: the deal, its quotes and lines, its items,
    its stage history and the audit log (every change writes an audit row in the transaction
    that records its events; the outbox itself drains as the relay publishes)."""
    return [
        await sql(sales, "SELECT status, stage_id, version, total_minor FROM deals WHERE id = :d", d=deal_id),
        await sql(sales, "SELECT * FROM quotes WHERE deal_id = :d ORDER BY number, version", d=deal_id),
        await sql(
            sales,
            "SELECT l.* FROM quote_lines l JOIN quotes q ON q.id = l.quote_id WHERE q.deal_id = :d"
            " ORDER BY l.quote_id, l.position",
            d=deal_id,
        ),
        await sql(sales, "SELECT * FROM deal_items WHERE deal_id = :d", d=deal_id),
        await sql(sales, "SELECT count(*) FROM deal_stage_history WHERE deal_id = :d", d=deal_id),
        await sql(sales, "SELECT count(*) FROM audit_log"),
    ]


# ---------------------------------------------------------------- pricing and versions


async def test_a_quote_is_priced_from_its_price_list_and_keeps_its_prices(sales: Sales) -> None:
    catalog = await seed_catalog(sales)
    deal = await open_deal(sales)
    with caller.acting_as("rep-dana", "req-quote-1"):
        quote = await create(
            sales, deal.id, catalog.ils, line(catalog.chair, 3, 1000), line(catalog.book, 2), discount_bp=500
        )

    assert (quote.status, quote.version, quote.currency_code, quote.locale) == (Q.QUOTE_STATUS_DRAFT, 1, "ILS", "he")
    assert quote.number.startswith("Q-") and quote.bill_to.name == deal.title
    assert quote.valid_until == types_pb2.Date(
        year=(today() + timedelta(days=30)).year,
        month=(today() + timedelta(days=30)).month,
        day=(today() + timedelta(days=30)).day,
    )
    chair, book = quote.lines
    # 3 × 450.00 less 10 % = 1215.00 at 18 % (Israel from 2025); the book is zero-rated.
    assert (chair.sku, chair.description, chair.unit_price.amount_minor) == (
        f"SKU-{catalog.chair}".upper(),
        "כיסא משרדי",
        45_000,
    )
    assert (chair.net.amount_minor, chair.tax_rate_bp, book.net.amount_minor, book.tax_rate_bp) == (
        121_500,
        1800,
        19_980,
        0,
    )
    assert quote.subtotal.amount_minor == 141_480
    assert quote.discount.amount_minor == 7_074  # 5 % of 1414.80, rounded half up
    assert quote.net_total.amount_minor == 141_480 - 7_074
    # VAT on the discounted net at 18 %: (1215.00 - its 60.75 share of the discount) × 18 % = 207.765 → 207.77.
    assert chair.discount_share.amount_minor == 6_075 and quote.tax.amount_minor == 20_777
    assert quote.total.amount_minor == quote.net_total.amount_minor + quote.tax.amount_minor
    assert sum(x.total.amount_minor for x in quote.lines) == quote.total.amount_minor
    [audit] = await sql(sales, "SELECT actor, action FROM audit_log WHERE record_id = :q", q=quote.id)
    assert tuple(audit) == ("rep-dana", "sales.CreateQuote")

    # The price list changes: the kept line keeps its price, a new line takes today's.
    await sql(sales, "UPDATE price_list_items SET unit_price_minor = 99_900 WHERE price_list_id = :pl", pl=catalog.ils)
    change = Q.Quote(id=quote.id, lines=[Q.QuoteLine(id=chair.id, quantity=4), line(catalog.desk)])
    updated = (
        await sales.quotes.UpdateQuote(
            Q.UpdateQuoteRequest(quote=change, update_mask=FieldMask(paths=["lines"]), etag=quote.etag)
        )
    ).quote
    assert [(x.id == chair.id, x.quantity, x.unit_price.amount_minor) for x in updated.lines] == [
        (True, 4, 45_000),
        (False, 1, 99_900),
    ]
    assert updated.etag != quote.etag and updated.status == Q.QUOTE_STATUS_DRAFT


async def test_revisions_copy_the_latest_version_at_its_stored_prices(sales: Sales) -> None:
    catalog = await seed_catalog(sales)
    deal, sent = await sent_quote(sales, catalog)
    await sql(sales, "UPDATE price_list_items SET unit_price_minor = 1 WHERE price_list_id = :pl", pl=catalog.ils)

    request = Q.ReviseQuoteRequest(quote_id=sent.id, etag=sent.etag, request_id=f"rev-{uuid.uuid4()}")
    revision = (await sales.quotes.ReviseQuote(request)).quote
    replayed = (await sales.quotes.ReviseQuote(request)).quote
    old = (await sales.quotes.GetQuote(Q.GetQuoteRequest(quote_id=sent.id))).quote

    assert replayed == revision
    assert (revision.number, revision.version, revision.status) == (sent.number, 2, Q.QUOTE_STATUS_DRAFT)
    assert revision.revised_from_quote_id == sent.id
    assert [x.unit_price.amount_minor for x in revision.lines] == [x.unit_price.amount_minor for x in sent.lines]
    assert revision.total == sent.total
    assert old.status == Q.QUOTE_STATUS_SUPERSEDED and [x.id for x in old.lines] == [x.id for x in sent.lines]
    listed = (await sales.quotes.ListQuotes(Q.ListQuotesRequest(deal_id=deal.id))).quotes
    assert [(q.version, q.status) for q in listed] == [(2, Q.QUOTE_STATUS_DRAFT), (1, Q.QUOTE_STATUS_SUPERSEDED)]

    # Only the latest version is revised; a draft is changed, not revised.
    for quote_id, expected in ((sent.id, "QUOTE_NOT_LATEST"), (revision.id, "QUOTE_IS_DRAFT")):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await sales.quotes.ReviseQuote(Q.ReviseQuoteRequest(quote_id=quote_id))
        assert (err.value.code(), reason(err.value)) == (grpc.StatusCode.FAILED_PRECONDITION, expected)

    # A rejected version is revised too, and stays rejected.
    resent = (await sales.quotes.SendQuote(Q.SendQuoteRequest(quote_id=revision.id))).quote
    rejected = (await sales.quotes.RejectQuote(Q.RejectQuoteRequest(quote_id=resent.id, reason="יקר מדי"))).quote
    third = (await sales.quotes.ReviseQuote(Q.ReviseQuoteRequest(quote_id=rejected.id))).quote
    again = (await sales.quotes.GetQuote(Q.GetQuoteRequest(quote_id=rejected.id))).quote
    assert (rejected.reject_reason, third.version, again.status) == ("יקר מדי", 3, Q.QUOTE_STATUS_REJECTED)


# ---------------------------------------------------------------- send and accept


async def test_accepting_wins_the_deal_with_the_quotes_lines_in_one_transaction(sales: Sales) -> None:
    catalog = await seed_catalog(sales)
    deal, sent = await sent_quote(sales, catalog)
    assert sent.status == Q.QUOTE_STATUS_SENT and sent.quote_date.year == today().year

    with caller.acting_as("rep-dana", "req-accept-1"):
        accepted = (await sales.quotes.AcceptQuote(Q.AcceptQuoteRequest(quote_id=sent.id, etag=sent.etag))).quote
        replay = (await sales.quotes.AcceptQuote(Q.AcceptQuoteRequest(quote_id=sent.id))).quote
    won = (await sales.deals.GetDeal(deals_pb2.GetDealRequest(deal_id=deal.id))).deal

    assert accepted.status == Q.QUOTE_STATUS_ACCEPTED and replay == accepted
    assert won.status == deals_pb2.DEAL_STATUS_WON and won.stage_id == "default-won"
    # The deal is won for the quote's net total exactly; the items carry the names in its locale.
    assert won.total == accepted.net_total
    assert sum(i.quantity * i.unit_price.amount_minor for i in won.items) == accepted.net_total.amount_minor
    assert won.items[0].sku == f"SKU-{catalog.chair}".upper()
    assert {i.description for i in won.items} == {"כיסא משרדי", "Manual"}
    assert sum(i.quantity for i in won.items) == 5

    # One DealClosed and one QuoteAccepted on the bus, however often it was accepted.
    async def published() -> tuple[list[Any], list[Any]] | None:
        closed = await events(sales.nats_url, "crm.sales.deal_closed", sales_events.DealClosed, deal.id)
        taken = await events(sales.nats_url, "crm.sales.quote_accepted", sales_events.QuoteAccepted, deal.id)
        return (closed, taken) if closed and taken else None

    closed, taken = await eventually(published)
    assert len(closed) == 1 and len(taken) == 1
    assert closed[0].won and list(closed[0].items) == list(won.items) and closed[0].total == won.total
    assert (taken[0].quote_id, taken[0].number, taken[0].version, taken[0].actor) == (
        sent.id,
        sent.number,
        1,
        "rep-dana",
    )
    assert taken[0].total == accepted.total and taken[0].net_total == accepted.net_total
    [quote_sent] = await events(sales.nats_url, "crm.sales.quote_sent", sales_events.QuoteSent, deal.id)
    assert (quote_sent.quote_id, quote_sent.total) == (sent.id, sent.total)
    actions = await sql(
        sales,
        "SELECT action, request_id FROM audit_log WHERE record_id IN (:q, :d) AND request_id = 'req-accept-1'"
        " ORDER BY id",
        q=sent.id,
        d=deal.id,
    )
    assert [a for a, _ in actions] == ["sales.CloseDeal", "sales.AcceptQuote"]


async def test_an_accept_that_cannot_close_the_deal_leaves_the_quote_sent(sales: Sales) -> None:
    """The quote and the deal change in one transaction: when the close is refused, the quote's
    change is rolled back with it."""
    catalog = await seed_catalog(sales)
    deal, sent = await sent_quote(sales, catalog)
    lost = deals_pb2.CloseDealRequest(deal_id=deal.id, outcome=deals_pb2.DEAL_OUTCOME_LOST, lost_reason="price")
    await sales.deals.CloseDeal(lost)
    before = await snapshot(sales, deal.id)

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await sales.quotes.AcceptQuote(Q.AcceptQuoteRequest(quote_id=sent.id))

    assert (err.value.code(), reason(err.value)) == (grpc.StatusCode.FAILED_PRECONDITION, "DEAL_ALREADY_CLOSED")
    assert await snapshot(sales, deal.id) == before


# ---------------------------------------------------------------- bad input changes nothing


async def test_every_refused_create_changes_nothing(sales: Sales) -> None:
    catalog = await seed_catalog(sales)
    deal = await open_deal(sales)
    before = await snapshot(sales, deal.id)
    cases = [
        # a line from a price list in another currency
        (
            (catalog.ils, [line(catalog.chair, price_list_id=catalog.usd)], {}),
            "CURRENCY_MISMATCH",
            "lines[0].price_list_id",
        ),
        # a line discount over 100 %
        ((catalog.ils, [line(catalog.chair, discount_bp=10_001)], {}), "INVALID_ARGUMENT", "lines[0].discount_bp"),
        # a total discount over 100 %
        ((catalog.ils, [line(catalog.chair)], {"discount_bp": 12_000}), "INVALID_ARGUMENT", "discount_bp"),
        # an expired and an inactive price list
        ((catalog.expired, [line(catalog.chair)], {}), "PRICE_LIST_EXPIRED", "price_list_id"),
        ((catalog.inactive, [], {}), "PRICE_LIST_INACTIVE", "price_list_id"),
        ((f"nope-{uuid.uuid4()}", [], {}), "PRICE_LIST_NOT_FOUND", "price_list_id"),
        # a product the list does not sell
        ((catalog.ils, [line(f"nope-{uuid.uuid4()}")], {}), "PRODUCT_NOT_IN_PRICE_LIST", "lines[0].product_id"),
        # a validity already over
        (
            (catalog.ils, [], {"valid_until": types_pb2.Date(year=2020, month=1, day=1)}),
            "INVALID_ARGUMENT",
            "valid_until",
        ),
        ((catalog.ils, [], {"locale": "de"}), "INVALID_ARGUMENT", "locale"),
    ]
    for (price_list_id, lines, fields), expected, field in cases:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await create(sales, deal.id, price_list_id, *lines, **fields)
        assert (err.value.code(), reason(err.value)) == (grpc.StatusCode.INVALID_ARGUMENT, expected), field
        assert field in violated_fields(err.value)
    assert await snapshot(sales, deal.id) == before

    # Not on a closed deal.
    closed = await open_deal(sales)
    await sales.deals.CloseDeal(deals_pb2.CloseDealRequest(deal_id=closed.id, outcome=deals_pb2.DEAL_OUTCOME_LOST))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await create(sales, closed.id, catalog.ils)
    assert reason(err.value) == "DEAL_ALREADY_CLOSED"
    assert await sql(sales, "SELECT count(*) FROM quotes WHERE deal_id = :d", d=closed.id) == [(0,)]


async def test_every_refused_change_changes_nothing(sales: Sales) -> None:
    catalog = await seed_catalog(sales)
    deal = await open_deal(sales)
    draft = await create(sales, deal.id, catalog.ils, line(catalog.chair))
    stale = draft.etag
    draft = (
        await sales.quotes.UpdateQuote(
            Q.UpdateQuoteRequest(quote=Q.Quote(id=draft.id, notes="x"), update_mask=FieldMask(paths=["notes"]))
        )
    ).quote
    second = await create(sales, deal.id, catalog.ils, line(catalog.desk))
    sent = (await sales.quotes.SendQuote(Q.SendQuoteRequest(quote_id=second.id))).quote
    before = await snapshot(sales, deal.id)

    def update(quote_id: str, etag: str, paths: list[str], **fields: Any) -> Any:
        request = Q.UpdateQuoteRequest(
            quote=Q.Quote(id=quote_id, **fields), update_mask=FieldMask(paths=paths), etag=etag
        )
        return lambda: sales.quotes.UpdateQuote(request)

    cases = [
        (update(draft.id, stale, ["notes"], notes="late"), grpc.StatusCode.ABORTED, "STALE_ETAG"),
        (update(sent.id, "", ["notes"], notes="x"), grpc.StatusCode.FAILED_PRECONDITION, "QUOTE_NOT_DRAFT"),
        (
            update(draft.id, draft.etag, ["lines"], lines=[line(catalog.chair, price_list_id=catalog.usd)]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "CURRENCY_MISMATCH",
        ),
        (
            update(draft.id, draft.etag, ["discount_bp"], discount_bp=10_001),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_ARGUMENT",
        ),
        (update(draft.id, draft.etag, ["price_list_id"]), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT"),
        (
            lambda: sales.quotes.SendQuote(Q.SendQuoteRequest(quote_id=draft.id, etag=stale)),
            grpc.StatusCode.ABORTED,
            "STALE_ETAG",
        ),
        (
            lambda: sales.quotes.AcceptQuote(Q.AcceptQuoteRequest(quote_id=draft.id)),
            grpc.StatusCode.FAILED_PRECONDITION,
            "QUOTE_NOT_SENT",
        ),
        (
            lambda: sales.quotes.RejectQuote(Q.RejectQuoteRequest(quote_id=draft.id)),
            grpc.StatusCode.FAILED_PRECONDITION,
            "QUOTE_NOT_SENT",
        ),
        (
            lambda: sales.quotes.RejectQuote(Q.RejectQuoteRequest(quote_id=sent.id, reason="x" * 501)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_ARGUMENT",
        ),
        (
            lambda: sales.quotes.GetQuote(Q.GetQuoteRequest(quote_id="nope")),
            grpc.StatusCode.NOT_FOUND,
            "QUOTE_NOT_FOUND",
        ),
    ]
    for call, code, expected in cases:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call()
        assert (err.value.code(), reason(err.value)) == (code, expected)
    assert await snapshot(sales, deal.id) == before


async def test_an_expired_or_superseded_quote_is_not_accepted(sales: Sales) -> None:
    catalog = await seed_catalog(sales)
    deal, sent = await sent_quote(sales, catalog)
    revision = (await sales.quotes.ReviseQuote(Q.ReviseQuoteRequest(quote_id=sent.id))).quote
    other = (await sales.quotes.SendQuote(Q.SendQuoteRequest(quote_id=revision.id))).quote
    await sql(sales, "UPDATE quotes SET valid_until = :d WHERE id = :q", d=today() - timedelta(days=1), q=other.id)
    before = await snapshot(sales, deal.id)

    read = (await sales.quotes.GetQuote(Q.GetQuoteRequest(quote_id=other.id))).quote
    assert read.status == Q.QUOTE_STATUS_EXPIRED  # computed on read, stored by the sweep
    for quote_id, expected, field in (
        (sent.id, "QUOTE_SUPERSEDED", "status"),
        (other.id, "QUOTE_EXPIRED", "valid_until"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await sales.quotes.AcceptQuote(Q.AcceptQuoteRequest(quote_id=quote_id))
        assert (err.value.code(), reason(err.value)) == (grpc.StatusCode.FAILED_PRECONDITION, expected)
        assert field in violated_fields(err.value)
    assert await snapshot(sales, deal.id) == before

    # The sweep stores the expiry, as the system; the expired version is revised into a draft.
    assert await quote_commands.expire_quotes(sales.service.db, time_zone="Asia/Jerusalem") >= 1
    [(status,)] = await sql(sales, "SELECT status FROM quotes WHERE id = :q", q=other.id)
    [(actor, action)] = await sql(
        sales, "SELECT actor, action FROM audit_log WHERE record_id = :q AND action = 'sales.ExpireQuote'", q=other.id
    )
    assert (status, actor, action) == ("expired", "system", "sales.ExpireQuote")
    third = (await sales.quotes.ReviseQuote(Q.ReviseQuoteRequest(quote_id=other.id))).quote
    assert third.version == 3 and third.valid_until.year >= today().year
    assert (
        await sales.deals.GetDeal(deals_pb2.GetDealRequest(deal_id=deal.id))
    ).deal.status == deals_pb2.DEAL_STATUS_OPEN


async def test_the_pdf_is_the_quote_in_its_language(sales: Sales) -> None:
    catalog = await seed_catalog(sales)
    _, sent = await sent_quote(sales, catalog)

    reply = await sales.quotes.RenderQuotePdf(Q.RenderQuotePdfRequest(quote_id=sent.id))

    assert reply.pdf.startswith(b"%PDF")
    assert reply.file_name == f"{sent.number}-v1.pdf"


def retry_delay(error: grpc.aio.AioRpcError) -> int | None:
    status = rpc_status.from_call(error)
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            return int(retry.retry_delay.seconds)
    return None


@contextlib.contextmanager
def render_slots_taken() -> Iterator[None]:
    """Every render slot taken (as by renders in flight) until the block ends."""
    taken = 0
    try:
        while quote_pdf._RENDER_SLOTS.acquire(blocking=False):
            taken += 1
        assert taken == quote_pdf.MAX_RENDERS_IN_FLIGHT
        yield
    finally:
        for _ in range(taken):
            quote_pdf._RENDER_SLOTS.release()


async def test_a_sent_version_is_rendered_once_and_a_busy_renderer_refuses_at_once(sales: Sales) -> None:
    catalog = await seed_catalog(sales)
    deal, sent = await sent_quote(sales, catalog)
    draft = await create(sales, deal.id, catalog.ils, line(catalog.desk))
    first = await sales.quotes.RenderQuotePdf(Q.RenderQuotePdfRequest(quote_id=sent.id))
    await sales.quotes.RenderQuotePdf(Q.RenderQuotePdfRequest(quote_id=draft.id))

    with render_slots_taken():
        # A sent version never changes: its download is the bytes already rendered.
        again = await sales.quotes.RenderQuotePdf(Q.RenderQuotePdfRequest(quote_id=sent.id))
        assert again == first
        # A draft changes with every edit: it is rendered each time, and no render slot is free.
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await sales.quotes.RenderQuotePdf(Q.RenderQuotePdfRequest(quote_id=draft.id))
        assert (err.value.code(), reason(err.value), retry_delay(err.value)) == (
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "RENDER_BUSY",
            1,
        )

    # Accepting changes the version's row: its document is rendered again, not served stale.
    await sales.quotes.AcceptQuote(Q.AcceptQuoteRequest(quote_id=sent.id))
    with render_slots_taken(), pytest.raises(grpc.aio.AioRpcError) as err:
        await sales.quotes.RenderQuotePdf(Q.RenderQuotePdfRequest(quote_id=sent.id))
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    accepted = await sales.quotes.RenderQuotePdf(Q.RenderQuotePdfRequest(quote_id=sent.id))
    assert accepted.pdf.startswith(b"%PDF") and accepted.file_name == first.file_name


def number_of(quote: Q.Quote) -> int:
    return int(quote.number.removeprefix("Q-"))


async def test_a_refused_create_takes_no_quote_number(sales: Sales) -> None:
    catalog = await seed_catalog(sales)
    deal = await open_deal(sales)
    # A price that fits a line on its own; two such lines do not fit a quote (int64).
    await sql(
        sales,
        "UPDATE price_list_items SET unit_price_minor = :p WHERE price_list_id = :pl AND product_id = :d",
        p=2**62,
        pl=catalog.ils,
        d=catalog.desk,
    )
    first = await create(sales, deal.id, catalog.ils, line(catalog.chair))
    before = await snapshot(sales, deal.id)

    refused = [
        ([line(f"nope-{uuid.uuid4()}")], "PRODUCT_NOT_IN_PRICE_LIST", "lines[0].product_id"),
        (
            [line(catalog.chair), line(catalog.chair, price_list_id=catalog.usd)],
            "CURRENCY_MISMATCH",
            "lines[1].price_list_id",
        ),
        ([line(catalog.desk), line(catalog.desk)], "AMOUNT_TOO_LARGE", "lines"),
    ]
    for lines, expected, field in refused:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await create(sales, deal.id, catalog.ils, *lines)
        assert (err.value.code(), reason(err.value)) == (grpc.StatusCode.INVALID_ARGUMENT, expected)
        assert field in violated_fields(err.value)
    assert await snapshot(sales, deal.id) == before

    second = await create(sales, deal.id, catalog.ils, line(catalog.chair))
    assert number_of(second) == number_of(first) + 1


@contextlib.contextmanager
def catalog_reads(sales: Sales) -> Iterator[list[str]]:
    """The statements reading price lists or their prices while the block runs."""
    seen: list[str] = []
    pattern = re.compile(r"\b(price_lists|price_list_items)\b")

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if pattern.search(statement):
            seen.append(statement)

    engine = sales.service.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def test_pricing_a_quote_reads_the_catalog_once_however_many_lines(sales: Sales) -> None:
    catalog = await seed_catalog(sales)
    deal = await open_deal(sales)
    many = [line(product) for product in (catalog.chair, catalog.desk, catalog.book) * 20]

    with catalog_reads(sales) as one_line:
        small = await create(sales, deal.id, catalog.ils, line(catalog.chair))
    with catalog_reads(sales) as sixty_lines:
        big = await create(sales, deal.id, catalog.ils, *many)
    change = Q.Quote(id=small.id, lines=[Q.QuoteLine(id=small.lines[0].id, quantity=2), *many])
    with catalog_reads(sales) as update:
        await sales.quotes.UpdateQuote(Q.UpdateQuoteRequest(quote=change, update_mask=FieldMask(paths=["lines"])))

    assert len(big.lines) == 60 and big.lines[59].unit_price.amount_minor == 9_990
    assert len(sixty_lines) == len(one_line) and len(update) <= len(one_line)

    # Every bad line is still named, with the field a client sends.
    await sql(sales, "UPDATE products SET active = false WHERE id = :p", p=catalog.book)
    bad = [
        line(catalog.chair),
        line(f"nope-{uuid.uuid4()}"),
        line(catalog.book),
        line(catalog.chair, price_list_id=catalog.usd),
        line(catalog.chair, price_list_id=catalog.expired),
    ]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await create(sales, deal.id, catalog.ils, *bad)
    assert violated_fields(err.value) == {
        "lines[1].product_id",
        "lines[2].product_id",
        "lines[3].price_list_id",
        "lines[4].price_list_id",
    }


async def waiting_for_locks(sales: Sales, at_least: int) -> bool:
    [(waiting,)] = await sql(
        sales,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    return int(waiting) >= at_least


async def test_a_quote_change_waits_for_a_concurrent_close_of_its_deal(sales: Sales) -> None:
    """Sending, changing, revising or making a quote holds its deal open (FOR SHARE) until the
    commit: one that starts while the deal is being closed waits and then sees it closed."""
    catalog = await seed_catalog(sales)
    deal, sent = await sent_quote(sales, catalog)
    draft = await create(sales, deal.id, catalog.ils, line(catalog.chair))
    other = await create(sales, deal.id, catalog.ils, line(catalog.desk))
    change = Q.UpdateQuoteRequest(quote=Q.Quote(id=other.id, notes="x"), update_mask=FieldMask(paths=["notes"]))

    with caller.acting_as("rep-dana"):
        async with sales.service.db.unit_of_work() as uow:
            await deal_commands.close_deal(uow, deal.id, won=False, items=[], lost_reason="price")
            calls = [
                asyncio.ensure_future(sales.quotes.SendQuote(Q.SendQuoteRequest(quote_id=draft.id))),
                asyncio.ensure_future(sales.quotes.UpdateQuote(change)),
                asyncio.ensure_future(sales.quotes.ReviseQuote(Q.ReviseQuoteRequest(quote_id=sent.id))),
                asyncio.ensure_future(create(sales, deal.id, catalog.ils, line(catalog.chair))),
            ]
            await eventually(lambda: waiting_for_locks(sales, len(calls)))
            before = await snapshot(sales, deal.id)
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert (err.value.code(), reason(err.value)) == (grpc.StatusCode.FAILED_PRECONDITION, "DEAL_ALREADY_CLOSED")
    after = await snapshot(sales, deal.id)
    # The quotes are as they were; only the close itself (the deal, its history, its audit) changed.
    assert after[1:3] == before[1:3]
