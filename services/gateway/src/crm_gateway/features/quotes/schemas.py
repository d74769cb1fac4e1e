"""Request and response bodies of quotes (/deals/{deal_id}/quotes, /quotes/{quote_id}): a quote
version on a deal, its lines from one price list, discounts in basis points, money in minor units."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from google.protobuf import field_mask_pb2
from pydantic import BaseModel, Field, StrictInt, StringConstraints

from crm.sales.v1 import quotes_pb2
from crm_gateway.convert import STRIPPED, IsoDate, Money, RecordId, RequestBody, ShortText
from crm_kit import protoconv

OptionalId = Annotated[str, StringConstraints(max_length=100), STRIPPED]
Locale = Literal["he", "fa", "en"]
BasisPoints = Annotated[StrictInt, Field(ge=0, le=10_000, description="Basis points: 1000 = 10 %, at most 100 %")]


class QuoteLineIn(RequestBody):
    """A new line names a product of the quote's price list (priced now); a line sent back with
    its id keeps the price it was added at."""

    id: OptionalId = Field("", description="A line of this quote to keep; empty for a new one")
    product_id: OptionalId = Field("", description="Required for a new line")
    price_list_id: OptionalId = Field("", description="Empty: the quote's price list (the only one allowed)")
    quantity: StrictInt = Field(ge=1, le=1_000_000, description="Whole units")
    discount_bp: BasisPoints = 0

    def to_proto(self) -> quotes_pb2.QuoteLine:
        return quotes_pb2.QuoteLine(
            id=self.id,
            product_id=self.product_id,
            price_list_id=self.price_list_id,
            quantity=self.quantity,
            discount_bp=self.discount_bp,
        )


class BillToIn(RequestBody):
    name: ShortText = Field("", description="Empty: the deal's title")
    tax_id: Annotated[str, StringConstraints(max_length=50), STRIPPED] = ""
    address: Annotated[str, StringConstraints(max_length=500), STRIPPED] = ""
    phone: Annotated[str, StringConstraints(max_length=50), STRIPPED] = ""

    def to_proto(self) -> quotes_pb2.BillTo:
        return quotes_pb2.BillTo(name=self.name, tax_id=self.tax_id, address=self.address, phone=self.phone)


Notes = Annotated[str, StringConstraints(max_length=2000), STRIPPED]


class CreateQuoteIn(RequestBody):
    price_list_id: RecordId = Field(description="An active price list valid today; its currency is the quote's")
    lines: list[QuoteLineIn] = Field([], max_length=500)
    discount_bp: BasisPoints = 0
    valid_until: IsoDate | None = Field(None, description="Default: 30 days from today")
    locale: Locale | None = Field(None, description="The document's language; default by the price list's country")
    bill_to: BillToIn | None = None
    notes: Notes = ""
    request_id: Annotated[str, StringConstraints(max_length=200), STRIPPED] = ""

    def to_proto(self, deal_id: str, idempotency_key: str) -> quotes_pb2.CreateQuoteRequest:
        return quotes_pb2.CreateQuoteRequest(
            quote=quotes_pb2.Quote(
                deal_id=deal_id,
                price_list_id=self.price_list_id,
                lines=[line.to_proto() for line in self.lines],
                discount_bp=self.discount_bp,
                valid_until=protoconv.to_date(self.valid_until),
                locale=self.locale or "",
                bill_to=self.bill_to.to_proto() if self.bill_to else None,
                notes=self.notes,
            ),
            request_id=self.request_id or idempotency_key,
        )


class UpdateQuoteIn(RequestBody):
    """Only the fields sent change (they make the update_mask, AIP-134); `lines` replaces the list
    as a whole and `bill_to` the addressee as a whole."""

    lines: list[QuoteLineIn] = Field([], max_length=500)
    discount_bp: BasisPoints = 0
    valid_until: IsoDate | None = Field(None, description="Not before today")
    locale: Locale | None = None
    bill_to: BillToIn | None = Field(None, description="null clears it (the name falls back to the deal's title)")
    notes: Notes = ""

    def to_proto(self, quote_id: str, etag: str) -> quotes_pb2.UpdateQuoteRequest:
        return quotes_pb2.UpdateQuoteRequest(
            quote=quotes_pb2.Quote(
                id=quote_id,
                lines=[line.to_proto() for line in self.lines],
                discount_bp=self.discount_bp,
                valid_until=protoconv.to_date(self.valid_until),
                locale=self.locale or "",
                bill_to=self.bill_to.to_proto() if self.bill_to else None,
                notes=self.notes,
            ),
            update_mask=field_mask_pb2.FieldMask(paths=sorted(self.model_fields_set)),
            etag=etag,
        )


class RejectQuoteIn(RequestBody):
    reason: Annotated[str, StringConstraints(max_length=500), STRIPPED] = ""


class QuoteLine(BaseModel):
    id: str
    product_id: str
    price_list_id: str
    quantity: int
    discount_bp: int
    sku: str
    description: str = Field(description="The product's name in the quote's language")
    unit: str
    tax_class: str
    unit_price: Money | None
    net: Money | None = Field(description="After the line's discount")
    tax_rate_bp: int
    tax: Money | None = Field(description="The line's share of the quote's VAT")
    total: Money | None
    discount_share: Money | None = Field(description="The line's share of the quote's discount")


class BillTo(BaseModel):
    name: str
    tax_id: str
    address: str
    phone: str


class Quote(BaseModel):
    id: str
    deal_id: str
    number: str = Field(description="Shared by the quote's versions")
    version: int
    status: Literal["unspecified", "draft", "sent", "accepted", "rejected", "expired", "superseded"]
    price_list_id: str
    currency_code: str
    quote_date: date | None
    valid_until: date | None
    locale: str
    bill_to: BillTo | None
    lines: list[QuoteLine]
    discount_bp: int
    subtotal: Money | None
    discount: Money | None
    net_total: Money | None = Field(description="What the deal is won for")
    tax: Money | None
    total: Money | None
    notes: str
    etag: str = Field(description="The ETag header's value: send it back in If-Match")
    create_time: datetime | None
    update_time: datetime | None
    send_time: datetime | None
    decide_time: datetime | None
    revised_from_quote_id: str
    reject_reason: str


class QuoteList(BaseModel):
    quotes: list[Quote]
    next_page_token: str
