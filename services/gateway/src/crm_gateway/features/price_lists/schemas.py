"""Request and response bodies of /price-lists (prices per product in one currency, for one VAT
country, valid between two dates) and of their items."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from google.protobuf import field_mask_pb2
from pydantic import BaseModel, Field, StrictBool, StrictInt, StringConstraints

from crm.common.v1 import types_pb2
from crm.sales.v1 import catalog_pb2
from crm_gateway.convert import NOT_BLANK, STRIPPED, IsoDate, Money, RecordId, RequestBody
from crm_kit import protoconv

PriceListName = Annotated[str, StringConstraints(min_length=1, max_length=200), STRIPPED, NOT_BLANK]
Currency = Literal["ILS", "IRR", "USD", "EUR"]
Country = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]


class UnitPriceIn(RequestBody):
    """Integer minor units (a JSON integer: not true, 1.0 or "1"), in the list's currency."""

    amount_minor: StrictInt = Field(
        ge=0, le=2**63 - 1, description="Minor units (agorot, cents); IRR: whole rials ×100"
    )
    currency_code: Currency | None = Field(None, description="The list's currency; omit it to mean that")

    def to_proto(self) -> types_pb2.Money:
        return types_pb2.Money(amount_minor=self.amount_minor, currency_code=self.currency_code or "")


class PriceListItemIn(RequestBody):
    product_id: RecordId
    unit_price: UnitPriceIn

    def to_proto(self) -> catalog_pb2.PriceListItem:
        return catalog_pb2.PriceListItem(product_id=self.product_id, unit_price=self.unit_price.to_proto())


class SetPriceListItemIn(RequestBody):
    unit_price: UnitPriceIn

    def to_proto(self, price_list_id: str, product_id: str, etag: str) -> catalog_pb2.SetPriceListItemRequest:
        return catalog_pb2.SetPriceListItemRequest(
            price_list_id=price_list_id,
            item=catalog_pb2.PriceListItem(product_id=product_id, unit_price=self.unit_price.to_proto()),
            etag=etag,
        )


class CreatePriceListIn(RequestBody):
    name: PriceListName
    currency_code: Currency
    country_code: Country = Field(description="ISO 3166-1 alpha-2: whose VAT applies; it must have rates")
    valid_from: IsoDate
    valid_to: IsoDate | None = Field(None, description="The last day (inclusive); null for open-ended")
    active: StrictBool = True
    items: list[PriceListItemIn] = Field([], max_length=1000)
    request_id: Annotated[str, StringConstraints(max_length=200), STRIPPED] = ""

    def to_proto(self, idempotency_key: str) -> catalog_pb2.CreatePriceListRequest:
        return catalog_pb2.CreatePriceListRequest(
            price_list=catalog_pb2.PriceList(
                name=self.name,
                currency_code=self.currency_code,
                country_code=self.country_code,
                valid_from=protoconv.to_date(self.valid_from),
                valid_to=protoconv.to_date(self.valid_to),
                active=self.active,
                items=[item.to_proto() for item in self.items],
            ),
            request_id=self.request_id or idempotency_key,
        )


class UpdatePriceListIn(RequestBody):
    """Only the fields sent change (they make the update_mask, AIP-134); `valid_to: null` makes the
    list open-ended. Currency and country are fixed: create another list for another."""

    name: PriceListName = Field("", description="Not empty")
    valid_from: IsoDate | None = None
    valid_to: IsoDate | None = None
    active: StrictBool = Field(True, description="An inactive list prices no quote")

    def to_proto(self, price_list_id: str, etag: str) -> catalog_pb2.UpdatePriceListRequest:
        return catalog_pb2.UpdatePriceListRequest(
            price_list=catalog_pb2.PriceList(
                id=price_list_id,
                name=self.name,
                valid_from=protoconv.to_date(self.valid_from),
                valid_to=protoconv.to_date(self.valid_to),
                active=self.active,
            ),
            update_mask=field_mask_pb2.FieldMask(paths=sorted(self.model_fields_set)),
            etag=etag,
        )


class PriceListItem(BaseModel):
    product_id: str
    unit_price: Money | None
    sku: str


class PriceList(BaseModel):
    id: str
    name: str
    currency_code: str
    country_code: str
    valid_from: date | None
    valid_to: date | None
    active: bool
    items: list[PriceListItem] = Field(description="Empty in lists of price lists: GET one for its items")
    etag: str = Field(description="The ETag header's value: send it back in If-Match")
    create_time: datetime | None
    update_time: datetime | None


class PriceListList(BaseModel):
    price_lists: list[PriceList]
    next_page_token: str
