"""Application layer of quotes: each command runs in the caller's unit of work, locks the version
it changes, and writes its audit record (and events) in the same transaction.

`today` is the day in the company's time zone (the servicer's settings), so a quote's dates and
its expiry read the same wherever the service runs.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from crm.common.v1 import types_pb2
from crm.sales.v1 import events_pb2
from crm_kit import caller
from crm_kit.db import Database, UnitOfWork
from crm_kit.errors import InvalidArgument, raise_all
from crm_kit.protoconv import to_date, to_timestamp
from crm_sales import commands as deal_commands
from crm_sales import queries as deal_queries
from crm_sales.catalog import lookup
from crm_sales.db import quote_lines, quotes
from crm_sales.domain import check_etag
from crm_sales.quotes import domain, queries
from crm_sales.quotes.domain import LineDraft, QuoteDraft, QuoteStatus
from crm_sales.quotes.queries import QuoteView, find_by_request_id, get_quote

# The width of deal_items.description.
_ITEM_DESCRIPTION_MAX = 500


@dataclass(frozen=True)
class Terms:
    """What pricing a version's lines needs: its price list (currency, VAT country), date and discount."""

    price_list_id: str
    currency: str
    country: str
    quote_date: date
    discount_bp: int


def _terms(row: Any, *, quote_date: date, discount_bp: int | None = None) -> Terms:
    return Terms(
        price_list_id=row.price_list_id,
        currency=row.currency_code,
        country=row.country,
        quote_date=quote_date,
        discount_bp=row.discount_bp if discount_bp is None else discount_bp,
    )


def _kept_line(stored: Any) -> dict[str, Any]:
    return {
        "line_id": stored.line_id,
        "product_id": stored.product_id,
        "sku": stored.sku,
        "names": dict(stored.names),
        "unit": stored.unit,
        "tax_class": stored.tax_class,
        "unit_price_minor": stored.unit_price_minor,
    }


def _wanted(i: int, line: LineDraft, terms: Terms) -> lookup.WantedLine:
    return lookup.WantedLine(
        price_list_id=line.price_list_id or terms.price_list_id,
        product_id=line.product_id,
        price_list_field=f"lines[{i}].price_list_id",
        product_field=f"lines[{i}].product_id",
    )


def _new_line(i: int, priced: lookup.PricedLine | InvalidArgument, terms: Terms) -> dict[str, Any]:
    """A line priced now from the quote's price list (the catalog refuses an inactive or expired
    list, or a product it lacks, naming the line's field)."""
    if isinstance(priced, InvalidArgument):
        raise priced
    domain.check_line_price_list(i, priced.price_list_id, priced.currency, terms.price_list_id, terms.currency)
    return {
        "line_id": str(uuid.uuid4()),
        "product_id": priced.product_id,
        "sku": priced.sku,
        "names": priced.names,
        "unit": priced.unit,
        "tax_class": priced.tax_class,
        "unit_price_minor": priced.unit_price_minor,
    }


async def _priced_lines(
    uow: UnitOfWork, terms: Terms, drafts: Sequence[LineDraft], kept: Mapping[str, Any], today: date
) -> list[dict[str, Any]]:
    """The rows of a version's lines: a kept line (sent back with its id) keeps its stored price,
    the new ones are priced now, all together (a fixed number of queries however many lines);
    every line's VAT is the rate on the quote date. Every bad line is named at once."""
    new = [i for i, line in enumerate(drafts) if not line.id]
    priced = dict(
        zip(new, await lookup.priced_lines(uow, [_wanted(i, drafts[i], terms) for i in new], today), strict=True)
    )
    rows: list[dict[str, Any]] = []
    errors: list[InvalidArgument] = []
    for i, line in enumerate(drafts):
        try:
            snapshot = _kept_line(kept[line.id]) if line.id else _new_line(i, priced[i], terms)
        except InvalidArgument as exc:
            errors.append(exc)
            continue
        rows.append({**snapshot, "quantity": line.quantity, "discount_bp": line.discount_bp})
    raise_all(errors)
    rates: dict[str, int] = {}
    for row in rows:
        if row["tax_class"] not in rates:
            rates[row["tax_class"]] = await lookup.tax_rate_bp(uow, terms.country, row["tax_class"], terms.quote_date)
        row["tax_rate_bp"] = rates[row["tax_class"]]
    return rows


def _with_amounts(terms: Terms, rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The lines' rows with their amounts and positions, and the quote's totals (INVALID_ARGUMENT
    for amounts a quote cannot hold, before anything is written)."""
    inputs = [domain.PricedLine(r["quantity"], r["unit_price_minor"], r["discount_bp"], r["tax_rate_bp"]) for r in rows]
    line_totals, totals = domain.amounts(inputs, terms.discount_bp, terms.currency)
    lines = [
        {**row, **vars(amount), "position": n} for n, (row, amount) in enumerate(zip(rows, line_totals, strict=True))
    ]
    return lines, vars(totals)


async def _write_lines(uow: UnitOfWork, quote_id: str, lines: list[dict[str, Any]]) -> None:
    """Replace the version's lines (from _with_amounts)."""
    await uow.conn.execute(delete(quote_lines).where(quote_lines.c.quote_id == quote_id))
    if lines:
        await uow.conn.execute(quote_lines.insert(), [{**line, "quote_id": quote_id} for line in lines])


def _drafts_of(lines: Sequence[Any]) -> list[LineDraft]:
    """A version's stored lines as an update that keeps every one of them."""
    return [LineDraft(line.line_id, line.product_id, "", line.quantity, line.discount_bp) for line in lines]


async def _reprice(uow: UnitOfWork, lines: Sequence[Any], target_id: str, terms: Terms, today: date) -> dict[str, int]:
    """Write `lines` (stored ones) as target_id's at their stored prices, with the VAT in force on
    terms.quote_date; returns the totals."""
    kept = {line.line_id: line for line in lines}
    rows, totals = _with_amounts(terms, await _priced_lines(uow, terms, _drafts_of(lines), kept, today))
    await _write_lines(uow, target_id, rows)
    return totals


def _money(minor: int, currency: str) -> types_pb2.Money:
    return types_pb2.Money(amount_minor=minor, currency_code=currency)


def _actor() -> str:
    who = caller.current()
    return who.actor if who else caller.UNKNOWN_ACTOR


def _bill_to_columns(bill_to: domain.BillTo, default_name: str) -> dict[str, str]:
    return {
        "bill_to_name": bill_to.name or default_name[: domain.BILL_TO_MAX["name"]],
        "bill_to_tax_id": bill_to.tax_id,
        "bill_to_address": bill_to.address,
        "bill_to_phone": bill_to.phone,
    }


# ---------------------------------------------------------------- create, change, revise


async def create_quote(
    uow: UnitOfWork, deal_id: str, price_list_id: str, draft: QuoteDraft, *, today: date, request_id: str = ""
) -> QuoteView:
    """Version 1 of a new quote number on an open deal, priced from one price list in force today.
    A repeated request_id returns the first quote (AIP-155). Everything is checked and priced
    before the number is taken, so a refused create leaves no gap in the numbers."""
    first = await find_by_request_id(uow, deal_id, request_id)
    if first is not None:
        return first
    draft = domain.validate_new_quote(draft, today=today)
    deal = await _open_deal(uow, deal_id)
    price_list = await _usable_price_list(uow, price_list_id, today)
    terms = Terms(price_list.id, price_list.currency, price_list.country, today, draft.discount_bp)
    lines, totals = _with_amounts(terms, await _priced_lines(uow, terms, draft.lines, {}, today))
    quote_id = str(uuid.uuid4())
    inserted = (
        await uow.conn.execute(
            pg_insert(quotes)
            .values(
                id=quote_id,
                deal_id=deal_id,
                number=domain.format_number(await queries.next_number(uow)),
                version=1,
                status=QuoteStatus.DRAFT.value,
                price_list_id=price_list.id,
                currency_code=price_list.currency,
                country=price_list.country,
                quote_date=today,
                valid_until=draft.valid_until,
                locale=draft.locale or domain.default_locale(price_list.country),
                discount_bp=draft.discount_bp,
                notes=draft.notes,
                request_id=request_id or None,
                **_bill_to_columns(draft.bill_to, deal.title),
                **totals,
            )
            .on_conflict_do_nothing(index_elements=["deal_id", "request_id"])
            .returning(quotes)
        )
    ).first()
    if inserted is None:  # a concurrent request with the same id committed first
        found = await find_by_request_id(uow, deal_id, request_id)
        if found is None:
            raise RuntimeError(f"request {request_id} conflicted but its quote is not there")
        return found
    await _write_lines(uow, quote_id, lines)
    details = {"deal_id": deal_id, "number": inserted.number, "price_list_id": price_list.id, **totals}
    uow.audit("sales.CreateQuote", "quote", quote_id, details)
    return await get_quote(uow, quote_id)


async def _usable_price_list(uow: UnitOfWork, price_list_id: str, today: date) -> Any:
    row = await queries.price_list(uow, price_list_id)
    domain.check_price_list(
        price_list_id, active=row.active, valid_from=row.valid_from, valid_to=row.valid_to, today=today
    )
    return row


async def _locked(uow: UnitOfWork, quote_id: str, etag: str, today: date) -> tuple[QuoteView, QuoteStatus]:
    """The version locked for a change, after its etag, with its status as read today."""
    return _checked(await get_quote(uow, quote_id, lock=True), etag, today)


def _checked(view: QuoteView, etag: str, today: date) -> tuple[QuoteView, QuoteStatus]:
    check_etag(etag, view.row.row_version, f"quote {view.row.id}")
    return view, domain.effective_status(QuoteStatus(view.row.status), view.row.valid_until, today)


async def _deal_status(uow: UnitOfWork, deal_id: str) -> Any:
    return (await deal_queries.get_deal(uow, deal_id)).row


async def _open_deal(uow: UnitOfWork, deal_id: str) -> Any:
    """The quote's deal, checked open and held so (FOR SHARE) until the commit: a concurrent
    CloseDeal waits for this change, or this change sees the deal closed. Taken after the quote's
    own lock: quote before deal, the order accepting takes them in too."""
    deal = (await deal_queries.get_deal(uow, deal_id, share=True)).row
    domain.check_deal_open(deal.status)
    return deal


def _update_details(draft: QuoteDraft, mask: Sequence[str]) -> dict[str, Any]:
    values: dict[str, Any] = {
        "lines": [
            {"id": x.id, "product_id": x.product_id, "quantity": x.quantity, "discount_bp": x.discount_bp}
            for x in draft.lines
        ],
        "discount_bp": draft.discount_bp,
        "valid_until": draft.valid_until.isoformat() if draft.valid_until else None,
        "locale": draft.locale,
        "bill_to": vars(draft.bill_to),
        "notes": draft.notes,
    }
    return {path: values[path] for path in dict.fromkeys(mask)}


async def update_quote(
    uow: UnitOfWork, quote_id: str, draft: QuoteDraft, mask: Sequence[str], *, today: date, etag: str = ""
) -> QuoteView:
    """Change the masked fields of a draft on an open deal; its lines are re-priced (a kept line
    keeps its stored price) and its date becomes today, whose VAT applies."""
    view, status = await _locked(uow, quote_id, etag, today)
    domain.check_editable(status)
    deal = await _open_deal(uow, view.row.deal_id)
    line_ids = [line.line_id for line in view.lines]
    draft = domain.validate_quote_update(draft, mask, line_ids=line_ids, today=today)
    values: dict[str, Any] = {}
    if "valid_until" in mask:
        values["valid_until"] = draft.valid_until
    if "locale" in mask:
        values["locale"] = draft.locale
    if "notes" in mask:
        values["notes"] = draft.notes
    if "bill_to" in mask:
        values.update(_bill_to_columns(draft.bill_to, deal.title))
    terms = _terms(view.row, quote_date=today, discount_bp=draft.discount_bp if "discount_bp" in mask else None)
    drafts = draft.lines if "lines" in mask else _drafts_of(view.lines)
    kept = {line.line_id: line for line in view.lines}
    lines, totals = _with_amounts(terms, await _priced_lines(uow, terms, drafts, kept, today))
    await _write_lines(uow, quote_id, lines)
    await uow.conn.execute(
        update(quotes)
        .where(quotes.c.id == quote_id)
        .values(
            **values,
            **totals,
            discount_bp=terms.discount_bp,
            quote_date=today,
            row_version=quotes.c.row_version + 1,
            updated_at=datetime.now(UTC),
        )
    )
    uow.audit("sales.UpdateQuote", "quote", quote_id, {**_update_details(draft, mask), **totals})
    return await get_quote(uow, quote_id)


# The columns a revision copies from the version it revises (the rest it sets or defaults).
_COPIED_COLUMNS = (
    "deal_id",
    "number",
    "price_list_id",
    "currency_code",
    "country",
    "locale",
    "bill_to_name",
    "bill_to_tax_id",
    "bill_to_address",
    "bill_to_phone",
    "discount_bp",
    "notes",
)


async def revise_quote(
    uow: UnitOfWork, quote_id: str, *, today: date, etag: str = "", request_id: str = ""
) -> QuoteView:
    """Copy the latest version (sent, rejected or expired) into version n+1, a draft dated today
    with the same lines at their stored prices; a sent version becomes superseded. A repeated
    request_id returns the first revision."""
    locked = await get_quote(uow, quote_id, lock=True)
    # A replay finds its revision before the etag is checked: the revision changed the etag.
    first = await find_by_request_id(uow, locked.row.deal_id, request_id)
    if first is not None:
        return first
    view, status = _checked(locked, etag, today)
    old = view.row
    domain.check_revise(status, latest=await queries.latest_version(uow, old.number) == old.version)
    await _open_deal(uow, old.deal_id)
    new_id = str(uuid.uuid4())
    valid_until = old.valid_until if old.valid_until >= today else today + timedelta(days=domain.DEFAULT_VALIDITY_DAYS)
    copied = {c: getattr(old, c) for c in _COPIED_COLUMNS}
    await uow.conn.execute(
        quotes.insert().values(
            **copied,
            id=new_id,
            version=old.version + 1,
            status=QuoteStatus.DRAFT.value,
            quote_date=today,
            valid_until=valid_until,
            revised_from_id=old.id,
            request_id=request_id or None,
        )
    )
    totals = await _reprice(uow, view.lines, new_id, _terms(old, quote_date=today), today)
    await uow.conn.execute(update(quotes).where(quotes.c.id == new_id).values(**totals))
    after = domain.status_after_revision(status)
    await uow.conn.execute(
        update(quotes)
        .where(quotes.c.id == old.id)
        .values(status=after.value, row_version=quotes.c.row_version + 1, updated_at=datetime.now(UTC))
    )
    uow.audit("sales.ReviseQuote", "quote", old.id, {"status": after.value, "revision_id": new_id})
    details = {"number": old.number, "version": old.version + 1, "revised_from_id": old.id, **totals}
    uow.audit("sales.ReviseQuote", "quote", new_id, details)
    return await get_quote(uow, new_id)


# ---------------------------------------------------------------- send, accept, reject, expire


def _set_status(quote_id: str, status: QuoteStatus, **values: Any) -> Any:
    return (
        update(quotes)
        .where(quotes.c.id == quote_id)
        .values(status=status.value, row_version=quotes.c.row_version + 1, updated_at=datetime.now(UTC), **values)
    )


async def send_quote(uow: UnitOfWork, quote_id: str, *, today: date, etag: str = "") -> QuoteView:
    """Send a draft with lines on an open deal: it is dated today (with today's VAT on its stored
    prices) and becomes immutable; QuoteSent is published. Sending a sent quote returns it."""
    view, status = await _locked(uow, quote_id, etag, today)
    row = view.row
    if not domain.check_send(status, lines=len(view.lines), valid_until=row.valid_until, today=today):
        return view
    deal = await _open_deal(uow, row.deal_id)
    totals = await _reprice(uow, view.lines, quote_id, _terms(row, quote_date=today), today)
    now = datetime.now(UTC)
    await uow.conn.execute(_set_status(quote_id, QuoteStatus.SENT, quote_date=today, sent_at=now, **totals))
    sent = events_pb2.QuoteSent(
        quote_id=quote_id,
        number=row.number,
        version=row.version,
        deal_id=row.deal_id,
        lead_id=deal.lead_id,
        total=_money(totals["total_minor"], row.currency_code),
        actor=_actor(),
        send_time=to_timestamp(now),
        valid_until=to_date(row.valid_until),
    )
    await uow.record_event(sent, time=now)
    uow.audit("sales.SendQuote", "quote", quote_id, {"number": row.number, "version": row.version, **totals})
    return await get_quote(uow, quote_id)


def _sold(view: QuoteView) -> list[domain.SoldLine]:
    locale = view.row.locale
    return [
        domain.SoldLine(
            sku=line.sku,
            description=domain.description(line.names, locale)[:_ITEM_DESCRIPTION_MAX],
            quantity=line.quantity,
            net_minor=line.net_minor - line.document_discount_minor,
        )
        for line in view.lines
    ]


async def accept_quote(uow: UnitOfWork, quote_id: str, *, today: date, etag: str = "") -> QuoteView:
    """Accept a sent, unexpired, latest version and win its deal with the quote's lines as items,
    in this one transaction: the deal's close is CloseDeal's own (crm_sales.commands.close_deal:
    won stage, DealStageChanged, DealClosed, audit), then QuoteAccepted. The items add up to the
    quote's net total (domain.deal_items). Accepting an accepted quote returns it."""
    view, status = await _locked(uow, quote_id, etag, today)
    row = view.row
    deal = await _deal_status(uow, row.deal_id)
    if not domain.check_accept(status, deal.status):
        return view
    now = datetime.now(UTC)
    await uow.conn.execute(_set_status(quote_id, QuoteStatus.ACCEPTED, decided_at=now))
    items = domain.deal_items(_sold(view), row.currency_code)
    await deal_commands.close_deal(uow, row.deal_id, won=True, items=items, lost_reason="")
    accepted = events_pb2.QuoteAccepted(
        quote_id=quote_id,
        number=row.number,
        version=row.version,
        deal_id=row.deal_id,
        lead_id=deal.lead_id,
        total=_money(row.total_minor, row.currency_code),
        actor=_actor(),
        accept_time=to_timestamp(now),
        net_total=_money(row.net_minor, row.currency_code),
    )
    await uow.record_event(accepted, time=now)
    details = {"number": row.number, "version": row.version, "deal_id": row.deal_id, "net_minor": row.net_minor}
    uow.audit("sales.AcceptQuote", "quote", quote_id, details)
    return await get_quote(uow, quote_id)


async def reject_quote(uow: UnitOfWork, quote_id: str, *, today: date, reason: str = "", etag: str = "") -> QuoteView:
    """The customer said no to a sent version (revise it to try again). Rejecting a rejected
    quote returns it."""
    reason = reason.strip()
    if len(reason) > domain.REJECT_REASON_MAX:
        raise InvalidArgument(
            "reason is too long", field_violations=[("reason", f"at most {domain.REJECT_REASON_MAX} characters")]
        )
    view, status = await _locked(uow, quote_id, etag, today)
    if not domain.check_reject(status):
        return view
    await uow.conn.execute(
        _set_status(quote_id, QuoteStatus.REJECTED, decided_at=datetime.now(UTC), reject_reason=reason)
    )
    uow.audit("sales.RejectQuote", "quote", quote_id, {"reason": reason} if reason else {})
    return await get_quote(uow, quote_id)


async def expire_quotes(db: Database, *, time_zone: str, batch_size: int = 100) -> int:
    """Store `expired` on sent versions past their last day (reads already show it), a batch per
    transaction, as the system; returns how many. Replicas share the work (SKIP LOCKED)."""
    expired = 0
    with caller.acting_as(caller.SYSTEM_ACTOR):
        while True:
            async with db.unit_of_work() as uow:
                today = domain.today_in(time_zone, datetime.now(UTC))
                due = await queries.lock_expired(uow, today, batch_size)
                if due:
                    ids = [row.id for row in due]
                    await uow.conn.execute(
                        update(quotes)
                        .where(quotes.c.id.in_(ids))
                        .values(
                            status=QuoteStatus.EXPIRED.value,
                            row_version=quotes.c.row_version + 1,
                            updated_at=datetime.now(UTC),
                        )
                    )
                    for row in due:
                        uow.audit("sales.ExpireQuote", "quote", row.id, {"valid_until": row.valid_until.isoformat()})
            expired += len(due)
            if len(due) < batch_size:
                return expired
