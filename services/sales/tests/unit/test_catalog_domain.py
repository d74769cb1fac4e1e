"""The catalog's rules (crm_sales.catalog.domain): each bad product, price list, price or VAT rate
names its field."""

from datetime import date

import pytest

from crm_kit.errors import InvalidArgument
from crm_sales.catalog import domain
from crm_sales.catalog.domain import ItemDraft, PriceListDraft, ProductDraft, TaxRateDraft

pytestmark = pytest.mark.unit

SOFA = ProductDraft(
    sku="SOFA-3",
    names={"he": " ספה ", "en": "Sofa", "fa": "مبل"},
    unit="unit",
    tax_class="standard",
    product_line=" furniture ",
    active=True,
)
LIST = PriceListDraft(
    name="2026 ILS", currency="ILS", country="IL", valid_from=date(2026, 1, 1), valid_to=date(2026, 12, 31), active=True
)


def fields_of(err: pytest.ExceptionInfo[InvalidArgument]) -> list[str]:
    return [field for field, _ in err.value.field_violations]


def test_a_good_product_is_trimmed() -> None:
    product = domain.validate_product(SOFA)
    assert product.names == {"he": "ספה", "en": "Sofa", "fa": "مبل"}
    assert product.product_line == "furniture"


@pytest.mark.parametrize("names", [{}, {"he": "  "}, {"en": ""}])
def test_a_product_needs_a_name_in_some_language(names: dict[str, str]) -> None:
    with pytest.raises(InvalidArgument) as err:
        domain.validate_product(ProductDraft(**{**vars(SOFA), "names": names}))
    assert fields_of(err) == ["names"]


def test_a_name_in_a_language_we_do_not_write_is_named() -> None:
    with pytest.raises(InvalidArgument) as err:
        domain.validate_product(ProductDraft(**{**vars(SOFA), "names": {"he": "ספה", "de": "Sofa"}}))
    assert fields_of(err) == ["names.de"]


def test_every_bad_product_field_is_named() -> None:
    bad = ProductDraft(
        sku="SO FA", names={"en": "x" * 201}, unit="crate", tax_class="luxury", product_line="p" * 101, active=True
    )
    with pytest.raises(InvalidArgument) as err:
        domain.validate_product(bad)
    assert fields_of(err) == ["sku", "names.en", "unit", "tax_class", "product_line"]


def test_an_update_checks_only_the_fields_it_changes() -> None:
    partial = ProductDraft(sku="", names={}, unit="", tax_class="zero", product_line="", active=True)
    assert domain.validate_product(partial, ["tax_class"]).tax_class == "zero"


def test_an_update_mask_names_known_fields() -> None:
    with pytest.raises(InvalidArgument) as err:
        domain.check_mask(["sku", "price"], domain.PRODUCT_FIELDS)
    assert fields_of(err) == ["update_mask"]
    with pytest.raises(InvalidArgument):
        domain.check_mask([], domain.PRODUCT_FIELDS)
    assert domain.check_mask(["sku", "sku", "active"], domain.PRODUCT_FIELDS) == ["sku", "active"]


def test_a_good_price_list_takes_its_items_in_its_currency() -> None:
    draft = PriceListDraft(**{**vars(LIST), "items": (ItemDraft(" p1 ", 100, ""), ItemDraft("p2", 0, "ILS"))})
    checked = domain.validate_new_price_list(draft)
    assert checked.items == (ItemDraft("p1", 100, "ILS"), ItemDraft("p2", 0, "ILS"))


def test_every_bad_price_list_field_is_named() -> None:
    bad = PriceListDraft(name=" ", currency="GBP", country="Israel", valid_from=None, valid_to=None, active=True)
    with pytest.raises(InvalidArgument) as err:
        domain.validate_new_price_list(bad)
    assert fields_of(err) == ["name", "currency_code", "country_code", "valid_from"]


def test_a_price_list_cannot_end_before_it_starts() -> None:
    with pytest.raises(InvalidArgument) as err:
        domain.validate_new_price_list(PriceListDraft(**{**vars(LIST), "valid_to": date(2025, 12, 31)}))
    assert fields_of(err) == ["valid_to"]
    one_day = PriceListDraft(**{**vars(LIST), "valid_to": LIST.valid_from})
    assert domain.validate_new_price_list(one_day).valid_to == LIST.valid_from


def test_bad_item_prices_name_the_item() -> None:
    items = (ItemDraft("p1", -1, ""), ItemDraft("p2", 5, "USD"))
    with pytest.raises(InvalidArgument) as err:
        domain.validate_new_price_list(PriceListDraft(**{**vars(LIST), "items": items}))
    assert fields_of(err) == ["items[0].unit_price.amount_minor"]
    with pytest.raises(InvalidArgument) as err:
        domain.validate_new_price_list(PriceListDraft(**{**vars(LIST), "items": items[1:]}))
    assert fields_of(err) == ["items[0].unit_price.currency_code"]


def test_a_product_is_once_in_a_list() -> None:
    items = (ItemDraft("p1", 1, ""), ItemDraft("p1", 2, ""))
    with pytest.raises(InvalidArgument) as err:
        domain.validate_new_price_list(PriceListDraft(**{**vars(LIST), "items": items}))
    assert fields_of(err) == ["items[1].product_id"]


def test_rial_prices_are_whole_rials() -> None:
    with pytest.raises(InvalidArgument) as err:
        domain.validate_item(ItemDraft("p1", 150, ""), "IRR")
    assert fields_of(err) == ["unit_price.amount_minor"]
    assert domain.validate_item(ItemDraft("p1", 1_500_000_00, ""), "IRR").unit_price_minor == 150_000_000


def test_a_price_list_update_keeps_validity_in_order() -> None:
    later = PriceListDraft(**{**vars(LIST), "valid_from": date(2027, 1, 1)})
    with pytest.raises(InvalidArgument) as err:
        domain.apply_price_list_update(LIST, later, ["valid_from"])
    assert fields_of(err) == ["valid_to"]
    open_ended = PriceListDraft(**{**vars(later), "valid_to": None})
    updated = domain.apply_price_list_update(LIST, open_ended, ["valid_from", "valid_to"])
    assert (updated.valid_from, updated.valid_to, updated.name) == (date(2027, 1, 1), None, LIST.name)


def test_every_bad_tax_rate_field_is_named() -> None:
    with pytest.raises(InvalidArgument) as err:
        domain.validate_tax_rate(TaxRateDraft(country="isr", tax_class="reduced", rate_bp=10_001, valid_from=None))
    assert fields_of(err) == ["country_code", "tax_class", "rate_bp", "valid_from"]


def test_zero_and_exempt_rates_are_zero() -> None:
    with pytest.raises(InvalidArgument) as err:
        domain.validate_tax_rate(TaxRateDraft(country="IL", tax_class="zero", rate_bp=100, valid_from=date(2026, 1, 1)))
    assert fields_of(err) == ["rate_bp"]
    rate = domain.validate_tax_rate(
        TaxRateDraft(country="IR", tax_class="standard", rate_bp=1200, valid_from=date(2026, 3, 21))
    )
    assert rate == domain.TaxRate(country="IR", tax_class="standard", rate_bp=1200, valid_from=date(2026, 3, 21))
