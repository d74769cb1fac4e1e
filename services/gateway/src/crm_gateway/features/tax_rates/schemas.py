"""Request and response bodies of /tax-rates (VAT by country and tax class, with its history)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StrictInt, StringConstraints

from crm.sales.v1 import catalog_pb2
from crm_gateway.convert import IsoDate, RequestBody
from crm_kit import protoconv

Country = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]


class CreateTaxRateIn(RequestBody):
    country_code: Country = Field(description="ISO 3166-1 alpha-2, e.g. IL")
    tax_class: Literal["standard", "zero", "exempt"]
    rate_bp: StrictInt = Field(ge=0, le=10_000, description="Basis points: 1800 is 18 %; zero and exempt are 0")
    valid_from: IsoDate = Field(description="In force from this day until the next rate's")

    def to_proto(self) -> catalog_pb2.CreateTaxRateRequest:
        return catalog_pb2.CreateTaxRateRequest(
            tax_rate=catalog_pb2.TaxRate(
                country_code=self.country_code,
                tax_class=self.tax_class,
                rate_bp=self.rate_bp,
                valid_from=protoconv.to_date(self.valid_from),
            )
        )


class TaxRate(BaseModel):
    country_code: str
    tax_class: str
    rate_bp: int
    valid_from: date | None
    create_time: datetime | None


class TaxRateList(BaseModel):
    tax_rates: list[TaxRate]
