"""Money arithmetic of quotes (crm_sales.catalog.money): integer minor units, half-up rounding per
line, VAT per rate on the document's total shared back to the lines, sums that always agree."""

import random

import pytest

from crm_kit.errors import InvalidArgument
from crm_sales.catalog import money
from crm_sales.catalog.money import LineAmounts, document_totals, line_amounts

pytestmark = pytest.mark.unit


def fields_of(err: pytest.ExceptionInfo[InvalidArgument]) -> list[str]:
    return [field for field, _ in err.value.field_violations]


def ils(quantity_milli: int, price: int, discount_bp: int = 0, rate: int = 1800) -> LineAmounts:
    return line_amounts(quantity_milli, price, discount_bp, rate, currency="ILS")


def assert_adds_up(totals: money.Totals) -> None:
    lines = totals.lines
    assert sum(line.net_minor for line in lines) == totals.net_minor
    assert sum(line.tax_minor for line in lines) == totals.tax_minor
    assert sum(line.total_minor for line in lines) == totals.total_minor
    assert sum(line.discount_minor for line in lines) == totals.discount_minor
    assert sum(line.gross_minor for line in lines) == totals.gross_minor
    assert totals.total_minor == totals.net_minor + totals.tax_minor
    assert totals.net_minor == totals.gross_minor - totals.discount_minor
    assert totals.discount_minor == totals.line_discount_minor + totals.document_discount_minor
    assert sum(t.tax_minor for t in totals.taxes) == totals.tax_minor
    assert sum(t.net_minor for t in totals.taxes) == totals.net_minor
    for line in lines:
        assert line.total_minor == line.net_minor + line.tax_minor
        assert line.net_minor >= 0 and line.tax_minor >= 0


def test_a_plain_line_is_quantity_times_price_plus_vat() -> None:
    assert ils(2000, 10_000) == LineAmounts(
        net_minor=20_000, discount_minor=0, tax_minor=3_600, total_minor=23_600, gross_minor=20_000, tax_rate_bp=1800
    )


def test_quantities_are_thousandths() -> None:
    # 1.5 hours at 350.00
    assert ils(1500, 35_000, rate=0).net_minor == 52_500
    # 0.333 kg at 10.00 = 3.33
    assert ils(333, 1_000, rate=0).net_minor == 333


def test_a_zero_discount_takes_nothing_and_a_full_one_everything() -> None:
    assert ils(1000, 9_999, 0).discount_minor == 0
    free = ils(3000, 9_999, 10_000)
    assert (free.gross_minor, free.discount_minor, free.net_minor, free.tax_minor, free.total_minor) == (
        29_997,
        29_997,
        0,
        0,
        0,
    )


@pytest.mark.parametrize("discount_bp", [10_001, -1, 1_000_000])
def test_a_discount_outside_0_to_100_percent_is_refused(discount_bp: int) -> None:
    with pytest.raises(InvalidArgument) as err:
        line_amounts(1000, 100, discount_bp, 1800, currency="ILS", field_prefix="lines[2].")
    assert fields_of(err) == ["lines[2].discount_bp"]


def test_each_bad_argument_is_named() -> None:
    with pytest.raises(InvalidArgument) as err:
        line_amounts(0, -1, 0, 10_001, currency="ILS")
    assert fields_of(err) == ["quantity_milli", "unit_price_minor", "tax_rate_bp"]


def test_an_unknown_currency_is_named() -> None:
    with pytest.raises(InvalidArgument) as err:
        line_amounts(1000, 100, 0, 0, currency="GBP")
    assert fields_of(err) == ["currency"]
    assert err.value.reason == "UNKNOWN_CURRENCY"


@pytest.mark.parametrize(
    ("quantity_milli", "price", "gross"),
    [(500, 1, 1), (499, 1, 0), (1500, 1, 2), (2500, 1, 3), (1, 499, 0), (1, 500, 1)],
)
def test_the_gross_rounds_half_up(quantity_milli: int, price: int, gross: int) -> None:
    assert ils(quantity_milli, price, rate=0).gross_minor == gross


@pytest.mark.parametrize(("net", "tax"), [(25, 5), (24, 4), (75, 14), (1, 0), (3, 1), (50, 9)])
def test_vat_rounds_half_up_on_the_line(net: int, tax: int) -> None:
    # 25 × 18 % = 4.5 → 5; 24 → 4.32 → 4; 75 → 13.5 → 14; 3 → 0.54 → 1; 50 → 9
    assert ils(1000, net).tax_minor == tax


def test_the_discount_rounds_half_up_and_vat_is_on_the_discounted_net() -> None:
    # 5 agorot less 10 % = 4.5 → discount 1 (0.5 rounds up), net 4, VAT 0.72 → 1
    line = ils(1000, 5, 1000)
    assert (line.discount_minor, line.net_minor, line.tax_minor) == (1, 4, 1)


def test_rials_are_rounded_to_whole_rials() -> None:
    # 123,456 rials (ISO minor units: 12,345,600) at 10 % VAT: 12,345.6 rials → 12,346
    line = line_amounts(1000, 12_345_600, 0, 1000, currency="IRR")
    assert line.tax_minor == 1_234_600
    # 7 % off 3 × 1,111 rials: 233.31 → 233 rials
    discounted = line_amounts(3000, 111_100, 700, 1000, currency="IRR")
    assert discounted.discount_minor == 23_300
    assert all(v % 100 == 0 for v in (discounted.gross_minor, discounted.net_minor, discounted.tax_minor))


def test_big_rial_amounts_are_exact() -> None:
    # 250,000 licences at 90 billion rials each: 2.25e16 rials, far beyond a float's exact integers.
    line = line_amounts(250_000_000, 9_000_000_000_000, 0, 1000, currency="IRR")
    assert line.gross_minor == 2_250_000_000_000_000_000
    assert line.tax_minor == 225_000_000_000_000_000
    assert line.total_minor == 2_475_000_000_000_000_000
    # 2**53 + 1 is not a float: an exact integer path keeps the last agora.
    assert ils(1000, 2**53 + 1, rate=0).net_minor == 2**53 + 1


def test_an_amount_beyond_int64_is_refused_not_wrapped() -> None:
    with pytest.raises(InvalidArgument) as err:
        line_amounts(1_000_000_000, 10_000_000_000_000, 0, 1000, currency="IRR", field_prefix="lines[0].")
    assert err.value.reason == "AMOUNT_TOO_LARGE"
    assert fields_of(err) == ["lines[0].quantity_milli"]
    # The largest line that fits, VAT included, passes.
    assert ils(1000, money.MAX_MINOR, rate=0).total_minor == money.MAX_MINOR


def test_document_totals_beyond_int64_are_refused_not_wrapped() -> None:
    # Each line fits on its own; their subtotal does not.
    half = money.MAX_MINOR // 2 + 1
    with pytest.raises(InvalidArgument) as err:
        document_totals([ils(1000, half, rate=0), ils(1000, half, rate=0)], 0, currency="ILS")
    assert err.value.reason == "AMOUNT_TOO_LARGE"
    assert fields_of(err) == ["lines"]
    # The nets fit, the VAT on them pushes the total over: named as the caller names its lines.
    big = money.MAX_MINOR * 45 // 100
    with pytest.raises(InvalidArgument) as err:
        document_totals([ils(1000, big), ils(1000, big)], 0, currency="ILS", lines_field="items")
    assert (err.value.reason, fields_of(err)) == ("AMOUNT_TOO_LARGE", ["items"])
    # A discount brings it back under: the document is what is checked, not the gross alone.
    fits = document_totals([ils(1000, big, rate=0), ils(1000, big, rate=0)], 0, currency="ILS")
    assert fits.total_minor == 2 * big <= money.MAX_MINOR


def test_minor_digits_follow_iso_4217() -> None:
    assert [money.minor_digits(c) for c in ("ILS", "USD", "EUR", "IRR")] == [2, 2, 2, 2]
    assert [money.rounding_step(c) for c in ("ILS", "USD", "EUR", "IRR")] == [1, 1, 1, 100]


def test_vat_is_computed_once_on_the_total_and_shared_to_the_lines() -> None:
    # Per line each 25 agorot would carry 4.5 → 5 (15 in all); an Israeli invoice shows 18 % of
    # 0.75 = 13.5 → 14, and the lines' shares add up to exactly that.
    totals = document_totals([ils(1000, 25)] * 3, 0, currency="ILS")
    assert totals.tax_minor == 14
    assert [line.tax_minor for line in totals.lines] == [5, 5, 4]
    assert totals.taxes == (money.TaxAmount(rate_bp=1800, net_minor=75, tax_minor=14),)
    assert_adds_up(totals)


def test_the_document_discount_is_shared_in_proportion() -> None:
    lines = [ils(1000, 100), ils(1000, 200), ils(1000, 300)]
    totals = document_totals(lines, 1000, currency="ILS")
    assert totals.document_discount_minor == 60
    assert [line.discount_minor for line in totals.lines] == [10, 20, 30]
    assert [line.net_minor for line in totals.lines] == [90, 180, 270]
    assert totals.tax_minor == 97  # 18 % of 540 = 97.2
    assert_adds_up(totals)


def test_line_and_document_discounts_stack() -> None:
    # 1,000.00 less 10 % on the line = 900.00, less 5 % on the document = 855.00, VAT 153.90
    totals = document_totals([ils(1000, 100_000, 1000)], 500, currency="ILS")
    assert (totals.line_discount_minor, totals.document_discount_minor) == (10_000, 4_500)
    assert (totals.net_minor, totals.tax_minor, totals.total_minor) == (85_500, 15_390, 100_890)
    assert_adds_up(totals)


def test_vat_is_per_rate_and_a_zero_rated_line_carries_none() -> None:
    totals = document_totals([ils(1000, 10_000), ils(1000, 5_000, rate=0)], 0, currency="ILS")
    assert totals.taxes == (
        money.TaxAmount(rate_bp=1800, net_minor=10_000, tax_minor=1_800),
        money.TaxAmount(rate_bp=0, net_minor=5_000, tax_minor=0),
    )
    assert [line.tax_minor for line in totals.lines] == [1_800, 0]
    assert_adds_up(totals)


def test_a_full_document_discount_leaves_nothing_to_pay() -> None:
    totals = document_totals([ils(1000, 333), ils(7000, 1_234, 500)], 10_000, currency="ILS")
    assert (totals.net_minor, totals.tax_minor, totals.total_minor) == (0, 0, 0)
    assert totals.discount_minor == totals.gross_minor
    assert_adds_up(totals)


@pytest.mark.parametrize("doc_discount_bp", [10_001, -5])
def test_a_document_discount_outside_0_to_100_percent_is_refused(doc_discount_bp: int) -> None:
    with pytest.raises(InvalidArgument) as err:
        document_totals([ils(1000, 100)], doc_discount_bp, currency="ILS")
    assert fields_of(err) == ["discount_bp"]


def test_an_empty_document_is_zero() -> None:
    totals = document_totals([], 1000, currency="EUR")
    assert (totals.gross_minor, totals.net_minor, totals.tax_minor, totals.total_minor) == (0, 0, 0, 0)
    assert totals.lines == () and totals.taxes == ()


def test_a_rial_document_stays_in_whole_rials() -> None:
    lines = [line_amounts(1000, 333_300, 0, 1000, currency="IRR") for _ in range(3)]
    totals = document_totals(lines, 333, currency="IRR")
    amounts = [totals.net_minor, totals.tax_minor, totals.document_discount_minor]
    amounts += [v for line in totals.lines for v in (line.net_minor, line.tax_minor, line.discount_minor)]
    assert all(v % 100 == 0 for v in amounts)
    assert_adds_up(totals)


def test_random_documents_always_add_up() -> None:
    rng = random.Random(15)
    for _ in range(500):
        currency = rng.choice(money.CURRENCIES)
        step = money.rounding_step(currency)
        lines = [
            line_amounts(
                rng.randint(1, 50_000),
                rng.randint(0, 5_000_000) * step,
                rng.choice([0, 0, 1, 333, 1000, 5000, 9999, 10_000]),
                rng.choice([0, 1000, 1700, 1800]),
                currency=currency,
            )
            for _ in range(rng.randint(1, 12))
        ]
        totals = document_totals(lines, rng.choice([0, 1, 250, 1234, 10_000]), currency=currency)
        assert_adds_up(totals)
        for original, final in zip(lines, totals.lines, strict=True):
            assert final.net_minor <= original.net_minor
            assert final.gross_minor == original.gross_minor


def test_allocate_gives_leftovers_to_the_largest_remainders() -> None:
    assert money.allocate(10, [1, 1, 1]) == [4, 3, 3]
    assert money.allocate(10, [1, 2]) == [3, 7]
    assert money.allocate(5, [0, 0]) == [0, 0]
    assert money.allocate(300, [1, 1], step=100) == [200, 100]
