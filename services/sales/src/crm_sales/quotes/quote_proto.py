"""The Quote message both ways: a stored version (with its status as read today) to proto, and
a request's quote to the draft the rules check. No SQL."""

from __future__ import annotations

from datetime import date
from typing import Any

from crm.common.v1 import types_pb2
from crm.sales.v1 import quotes_pb2
from crm_kit.protoconv import from_date, to_date, to_timestamp
from crm_sales.domain import etag
from crm_sales.quotes import domain
from crm_sales.quotes.domain import QuoteStatus
from crm_sales.quotes.queries import QuoteView

_STATUS = {
    QuoteStatus.DRAFT: quotes_pb2.QUOTE_STATUS_DRAFT,
    QuoteStatus.SENT: quotes_pb2.QUOTE_STATUS_SENT,
    QuoteStatus.ACCEPTED: quotes_pb2.QUOTE_STATUS_ACCEPTED,
    QuoteStatus.REJECTED: quotes_pb2.QUOTE_STATUS_REJECTED,
    QuoteStatus.EXPIRED: quotes_pb2.QUOTE_STATUS_EXPIRED,
    QuoteStatus.SUPERSEDED: quotes_pb2.QUOTE_STATUS_SUPERSEDED,
}


def _money(minor: int, currency: str) -> types_pb2.Money:
    return types_pb2.Money(amount_minor=minor, currency_code=currency)


def _line(line: Any, locale: str, currency: str) -> quotes_pb2.QuoteLine:
    return quotes_pb2.QuoteLine(
        id=line.line_id,
        product_id=line.product_id,
        quantity=line.quantity,
        discount_bp=line.discount_bp,
        sku=line.sku,
        description=domain.description(line.names, locale),
        unit=line.unit,
        tax_class=line.tax_class,
        unit_price=_money(line.unit_price_minor, currency),
        net=_money(line.net_minor, currency),
        tax_rate_bp=line.tax_rate_bp,
        tax=_money(line.tax_minor, currency),
        total=_money(line.total_minor, currency),
        discount_share=_money(line.document_discount_minor, currency),
    )


def quote_to_proto(view: QuoteView, today: date) -> quotes_pb2.Quote:
    """The version as a client reads it: a sent one past its last day is expired."""
    r = view.row
    currency = r.currency_code
    status = domain.effective_status(QuoteStatus(r.status), r.valid_until, today)
    return quotes_pb2.Quote(
        id=r.id,
        deal_id=r.deal_id,
        number=r.number,
        version=r.version,
        status=_STATUS[status],
        price_list_id=r.price_list_id,
        currency_code=currency,
        quote_date=to_date(r.quote_date),
        valid_until=to_date(r.valid_until),
        locale=r.locale,
        bill_to=quotes_pb2.BillTo(
            name=r.bill_to_name, tax_id=r.bill_to_tax_id, address=r.bill_to_address, phone=r.bill_to_phone
        ),
        lines=[_line(line, r.locale, currency) for line in view.lines],
        discount_bp=r.discount_bp,
        subtotal=_money(r.subtotal_minor, currency),
        discount=_money(r.discount_minor, currency),
        net_total=_money(r.net_minor, currency),
        tax=_money(r.tax_minor, currency),
        total=_money(r.total_minor, currency),
        notes=r.notes,
        etag=etag(r.row_version),
        create_time=to_timestamp(r.created_at),
        update_time=to_timestamp(r.updated_at),
        send_time=to_timestamp(r.sent_at),
        decide_time=to_timestamp(r.decided_at),
        revised_from_quote_id=r.revised_from_id or "",
        reject_reason=r.reject_reason,
    )


def draft_of(quote: quotes_pb2.Quote) -> domain.QuoteDraft:
    """What a request's quote sets (an unset valid_until is None: the default, or "not given")."""
    return domain.QuoteDraft(
        lines=tuple(
            domain.LineDraft(
                id=line.id,
                product_id=line.product_id,
                price_list_id=line.price_list_id,
                quantity=line.quantity,
                discount_bp=line.discount_bp,
            )
            for line in quote.lines
        ),
        discount_bp=quote.discount_bp,
        valid_until=from_date(quote.valid_until, "valid_until") if quote.HasField("valid_until") else None,
        locale=quote.locale.strip(),
        bill_to=domain.BillTo(
            name=quote.bill_to.name,
            tax_id=quote.bill_to.tax_id,
            address=quote.bill_to.address,
            phone=quote.bill_to.phone,
        ),
        notes=quote.notes,
    )
