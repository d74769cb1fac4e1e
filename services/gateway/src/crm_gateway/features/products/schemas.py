"""Request and response bodies of /products (what a company sells: a unique SKU, names in Hebrew,
English and Persian, a unit and a VAT class)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from google.protobuf import field_mask_pb2
from pydantic import BaseModel, Field, StrictBool, StringConstraints

from crm.sales.v1 import catalog_pb2
from crm_gateway.convert import NOT_BLANK, STRIPPED, RequestBody

# Spaces around it (pasted from a sheet) are allowed and dropped; none inside.
Sku = Annotated[str, StringConstraints(pattern=r"^\s*\S{1,100}\s*$", max_length=120), STRIPPED]
ProductName = Annotated[str, StringConstraints(min_length=1, max_length=200), STRIPPED, NOT_BLANK]
Language = Literal["he", "en", "fa"]
Unit = Literal["unit", "hour", "day", "week", "month", "year", "kg", "g", "m", "m2", "l", "licence"]
TaxClass = Literal["standard", "zero", "exempt"]
ProductLine = Annotated[str, StringConstraints(max_length=100), STRIPPED]
Names = Annotated[dict[Language, ProductName], Field(min_length=1, description="By language: he, en, fa; one at least")]


class CreateProductIn(RequestBody):
    sku: Sku = Field(description="Unique, without spaces")
    names: Names
    unit: Unit = Field("unit", description="What a quantity of 1 is")
    tax_class: TaxClass = Field("standard", description="Which VAT rate of the price list's country applies")
    product_line: ProductLine = ""
    active: StrictBool = True
    request_id: Annotated[str, StringConstraints(max_length=200), STRIPPED] = ""

    def to_proto(self, idempotency_key: str) -> catalog_pb2.CreateProductRequest:
        return catalog_pb2.CreateProductRequest(
            product=catalog_pb2.Product(
                sku=self.sku,
                names={str(lang): name for lang, name in self.names.items()},
                unit=self.unit,
                tax_class=self.tax_class,
                product_line=self.product_line,
                active=self.active,
            ),
            request_id=self.request_id or idempotency_key,
        )


class UpdateProductIn(RequestBody):
    """Only the fields sent change (they make the update_mask, AIP-134); `names` replaces the
    names as a whole; `active: false` deactivates (no new quote line can use the product)."""

    sku: Sku = ""
    names: Names | None = None
    unit: Unit = "unit"
    tax_class: TaxClass = "standard"
    product_line: ProductLine = ""
    active: StrictBool = True

    def to_proto(self, product_id: str, etag: str) -> catalog_pb2.UpdateProductRequest:
        return catalog_pb2.UpdateProductRequest(
            product=catalog_pb2.Product(
                id=product_id,
                sku=self.sku,
                names={str(lang): name for lang, name in (self.names or {}).items()},
                unit=self.unit,
                tax_class=self.tax_class,
                product_line=self.product_line,
                active=self.active,
            ),
            update_mask=field_mask_pb2.FieldMask(paths=sorted(self.model_fields_set)),
            etag=etag,
        )


class Product(BaseModel):
    id: str
    sku: str
    names: dict[str, str]
    unit: str
    tax_class: str
    product_line: str
    active: bool
    etag: str = Field(description="The ETag header's value: send it back in If-Match")
    create_time: datetime | None
    update_time: datetime | None


class ProductList(BaseModel):
    products: list[Product]
    next_page_token: str
