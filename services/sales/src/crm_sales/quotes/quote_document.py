"""A stored quote version as the document the PDF renderer lays out. No I/O.

Each line reads on its own: its net after its own discount, the VAT at its rate on that net, and
their sum. The quote's discount and VAT come after the lines, as on an Israeli tax document
(subtotal, discount, VAT on the discounted net, total), so with a quote discount the lines' VAT
adds up to more than the quote's; the API's lines carry their exact shares (QuoteLine.tax).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from crm_sales.catalog import money
from crm_sales.quotes import domain
from crm_sales.quotes.document import CompanyDetails, QuoteDocLine, QuoteDocument


def _line(line: Any, locale: str, currency: str) -> QuoteDocLine:
    alone = money.line_amounts(
        line.quantity * money.MILLI, line.unit_price_minor, line.discount_bp, line.tax_rate_bp, currency=currency
    )
    return QuoteDocLine(
        sku=line.sku,
        description=domain.description(line.names, locale),
        quantity=line.quantity,
        unit=line.unit,
        unit_price_minor=line.unit_price_minor,
        discount_bp=line.discount_bp,
        net_minor=alone.net_minor,
        tax_rate_bp=line.tax_rate_bp,
        tax_minor=alone.tax_minor,
        total_minor=alone.total_minor,
    )


def quote_document(row: Any, lines: Sequence[Any], company: CompanyDetails) -> QuoteDocument:
    """The document of a version (its quotes row and quote_lines rows)."""
    r = row
    return QuoteDocument(
        locale=r.locale,
        number=r.number,
        version=r.version,
        issue_date=r.quote_date,
        valid_until=r.valid_until,
        company=company,
        bill_to_name=r.bill_to_name,
        bill_to_tax_id=r.bill_to_tax_id,
        bill_to_address=r.bill_to_address,
        bill_to_phone=r.bill_to_phone,
        currency=r.currency_code,
        lines=tuple(_line(line, r.locale, r.currency_code) for line in lines),
        subtotal_minor=r.subtotal_minor,
        discount_bp=r.discount_bp,
        discount_minor=r.discount_minor,
        tax_minor=r.tax_minor,
        total_minor=r.total_minor,
        notes=r.notes,
    )
