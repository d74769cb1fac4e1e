"""The catalog's bodies (/products, /price-lists, /tax-rates): what reaches the sales service, the
update masks made of the fields sent, and the 422s raised before any call."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from crm.common.v1 import types_pb2
from crm.sales.v1 import catalog_pb2
from crm_gateway.convert import to_model
from crm_gateway.features.price_lists.schemas import CreatePriceListIn, PriceList, SetPriceListItemIn, UpdatePriceListIn
from crm_gateway.features.products.schemas import CreateProductIn, UpdateProductIn
from crm_gateway.features.tax_rates.schemas import CreateTaxRateIn

pytestmark = pytest.mark.unit


def errors_of(err: pytest.ExceptionInfo[ValidationError]) -> set[str]:
    return {".".join(str(p) for p in e["loc"]) for e in err.value.errors()}


def test_a_new_product_takes_its_names_and_the_idempotency_key() -> None:
    body = CreateProductIn.model_validate({"sku": " SOFA-3 ", "names": {"he": "ספה", "fa": "مبل"}, "unit": "hour"})
    sent = body.to_proto("key-1")
    assert (sent.product.sku, dict(sent.product.names), sent.product.unit) == (
        "SOFA-3",
        {"he": "ספה", "fa": "مبل"},
        "hour",
    )
    assert (sent.product.tax_class, sent.product.active, sent.request_id) == ("standard", True, "key-1")


def test_bad_product_fields_are_named_before_any_call() -> None:
    with pytest.raises(ValidationError) as err:
        CreateProductIn.model_validate(
            {"sku": "SO FA", "names": {"de": "Sofa"}, "unit": "crate", "tax_class": "luxury", "price": 1}
        )
    assert errors_of(err) == {"sku", "names.de.[key]", "unit", "tax_class", "price"}
    with pytest.raises(ValidationError) as empty:
        CreateProductIn.model_validate({"sku": "A", "names": {}})
    assert errors_of(empty) == {"names"}


def test_a_product_update_masks_only_the_fields_sent() -> None:
    sent = UpdateProductIn.model_validate({"active": False, "names": {"en": "Sofa"}}).to_proto("p-1", '"3"')
    assert list(sent.update_mask.paths) == ["active", "names"]
    assert (sent.product.id, sent.product.active, dict(sent.product.names), sent.etag) == (
        "p-1",
        False,
        {"en": "Sofa"},
        '"3"',
    )


def test_a_price_list_sends_its_dates_and_items_in_its_currency() -> None:
    body = CreatePriceListIn.model_validate(
        {
            "name": "מחירון",
            "currency_code": "ILS",
            "country_code": "IL",
            "valid_from": "2026-01-01",
            "items": [{"product_id": "p-1", "unit_price": {"amount_minor": 459_900}}],
        }
    )
    sent = body.to_proto("")
    assert sent.price_list.valid_from == types_pb2.Date(year=2026, month=1, day=1)
    assert not sent.price_list.HasField("valid_to")
    assert sent.price_list.items[0].unit_price == types_pb2.Money(amount_minor=459_900, currency_code="")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"currency_code": "GBP"}, "currency_code"),
        ({"country_code": "Israel"}, "country_code"),
        ({"valid_from": "01/01/2026"}, "valid_from"),
        ({"items": [{"product_id": "p-1", "unit_price": {"amount_minor": -1}}]}, "items.0.unit_price.amount_minor"),
        ({"items": [{"product_id": "p-1", "unit_price": {"amount_minor": 1.5}}]}, "items.0.unit_price.amount_minor"),
    ],
)
def test_bad_price_list_fields_are_named(change: dict[str, object], field: str) -> None:
    good = {"name": "x", "currency_code": "ILS", "country_code": "IL", "valid_from": "2026-01-01"}
    with pytest.raises(ValidationError) as err:
        CreatePriceListIn.model_validate({**good, **change})
    assert errors_of(err) == {field}


def test_a_null_valid_to_makes_the_list_open_ended_and_currency_cannot_change() -> None:
    sent = UpdatePriceListIn.model_validate({"valid_to": None}).to_proto("pl-1", "")
    assert list(sent.update_mask.paths) == ["valid_to"] and not sent.price_list.HasField("valid_to")
    with pytest.raises(ValidationError) as err:
        UpdatePriceListIn.model_validate({"currency_code": "USD"})
    assert errors_of(err) == {"currency_code"}


def test_an_item_price_names_its_product_and_the_lists_etag() -> None:
    sent = SetPriceListItemIn.model_validate({"unit_price": {"amount_minor": 100}}).to_proto("pl-1", "p-1", '"2"')
    assert (sent.price_list_id, sent.item.product_id, sent.item.unit_price.amount_minor, sent.etag) == (
        "pl-1",
        "p-1",
        100,
        '"2"',
    )


def test_a_price_list_reads_back_with_dates_and_money() -> None:
    message = catalog_pb2.PriceList(
        id="pl-1",
        currency_code="IRR",
        valid_from=types_pb2.Date(year=2025, month=3, day=21),
        items=[
            catalog_pb2.PriceListItem(
                product_id="p-1", sku="SOFA-3", unit_price=types_pb2.Money(amount_minor=100, currency_code="IRR")
            )
        ],
        etag='"1"',
    )
    read = to_model(PriceList, message)
    assert (read.valid_from, read.valid_to, read.items[0].unit_price.model_dump()) == (
        date(2025, 3, 21),
        None,
        {"amount_minor": 100, "currency_code": "IRR"},
    )


def test_a_tax_rate_is_basis_points_from_a_day() -> None:
    sent = CreateTaxRateIn.model_validate(
        {"country_code": "IR", "tax_class": "standard", "rate_bp": 1200, "valid_from": "2026-03-21"}
    ).to_proto()
    assert (sent.tax_rate.rate_bp, sent.tax_rate.valid_from.day) == (1200, 21)
    with pytest.raises(ValidationError) as err:
        CreateTaxRateIn.model_validate({"country_code": "IR", "tax_class": "standard", "rate_bp": 10_001})
    assert errors_of(err) == {"rate_bp", "valid_from"}
