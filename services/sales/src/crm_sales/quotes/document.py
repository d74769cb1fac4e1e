"""What a quote document shows, already computed: the PDF renderer only lays it out.

The quote service builds a `QuoteDocument` from a stored quote version (amounts in minor units,
rates in basis points); keeping the renderer's input free of database rows lets it be tested and
benchmarked on its own. No I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class CompanyDetails:
    """The seller as printed in the document's header."""

    name: str
    address: str
    tax_id: str
    phone: str
    email: str


@dataclass(frozen=True)
class QuoteDocLine:
    """One priced line; `net_minor` is after the line discount, `total_minor` = net + tax."""

    sku: str
    description: str
    quantity: int
    unit: str
    unit_price_minor: int
    discount_bp: int
    net_minor: int
    tax_rate_bp: int
    tax_minor: int
    total_minor: int


@dataclass(frozen=True)
class QuoteDocument:
    """A quote version ready to print; `locale` is one of "he", "fa", "en"."""

    locale: str
    number: str
    version: int
    issue_date: date
    valid_until: date
    company: CompanyDetails
    bill_to_name: str
    bill_to_tax_id: str
    bill_to_address: str
    bill_to_phone: str
    currency: str
    lines: tuple[QuoteDocLine, ...]
    subtotal_minor: int
    discount_bp: int
    discount_minor: int
    tax_minor: int
    total_minor: int
    notes: str
