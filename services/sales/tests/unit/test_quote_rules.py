"""The rules of quotes without a database: a version's life (draft → sent → accepted, rejected or
expired; superseded by its revision), what a draft may hold, the amounts, and the deal items an
accepted quote becomes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import ValidationError

from crm_kit.errors import FailedPrecondition, InvalidArgument
from crm_sales.main import SalesSettings
from crm_sales.quotes import domain
from crm_sales.quotes.domain import LineDraft, QuoteDraft, QuoteStatus, SoldLine

pytestmark = pytest.mark.unit

TODAY = date(2026, 12, 14)
S = QuoteStatus


def reason(exc: pytest.ExceptionInfo[FailedPrecondition] | pytest.ExceptionInfo[InvalidArgument]) -> str:
    return exc.value.reason


# ---------------------------------------------------------------- the state machine


def test_a_sent_version_reads_as_expired_the_day_after_its_last_day() -> None:
    assert domain.effective_status(S.SENT, TODAY, TODAY) is S.SENT
    assert domain.effective_status(S.SENT, TODAY - timedelta(days=1), TODAY) is S.EXPIRED
    # Only a sent version expires: a draft is not in the customer's hands, a decision stays.
    for status in (S.DRAFT, S.ACCEPTED, S.REJECTED, S.SUPERSEDED, S.EXPIRED):
        assert domain.effective_status(status, TODAY - timedelta(days=9), TODAY) is status


def test_the_company_day_is_its_time_zones() -> None:
    late_evening_utc = datetime(2026, 12, 14, 22, 30, tzinfo=UTC)
    assert domain.today_in("Asia/Jerusalem", late_evening_utc) == date(2026, 12, 15)
    assert domain.today_in("Asia/Tehran", late_evening_utc) == date(2026, 12, 15)
    assert domain.today_in("UTC", late_evening_utc) == date(2026, 12, 14)


def test_only_a_draft_changes() -> None:
    domain.check_editable(S.DRAFT)
    for status in (S.SENT, S.ACCEPTED, S.REJECTED, S.EXPIRED, S.SUPERSEDED):
        with pytest.raises(FailedPrecondition) as err:
            domain.check_editable(status)
        assert reason(err) == "QUOTE_NOT_DRAFT"


def test_sending_needs_a_draft_with_lines_still_valid_and_is_idempotent() -> None:
    assert domain.check_send(S.DRAFT, lines=1, valid_until=TODAY, today=TODAY) is True
    assert domain.check_send(S.SENT, lines=1, valid_until=TODAY, today=TODAY) is False
    cases = [
        ((S.DRAFT, 0, TODAY), "QUOTE_EMPTY"),
        ((S.DRAFT, 2, TODAY - timedelta(days=1)), "QUOTE_EXPIRED"),
        ((S.ACCEPTED, 2, TODAY), "QUOTE_NOT_DRAFT"),
        ((S.SUPERSEDED, 2, TODAY), "QUOTE_NOT_DRAFT"),
    ]
    for (status, lines, valid_until), expected in cases:
        with pytest.raises(FailedPrecondition) as err:
            domain.check_send(status, lines=lines, valid_until=valid_until, today=TODAY)
        assert reason(err) == expected


def test_only_a_sent_unexpired_latest_version_on_an_open_deal_is_accepted() -> None:
    assert domain.check_accept(S.SENT, "open") is True
    assert domain.check_accept(S.ACCEPTED, "won") is False  # a replay returns it as it is
    cases = [
        (S.EXPIRED, "open", "QUOTE_EXPIRED", "valid_until"),
        (S.SUPERSEDED, "open", "QUOTE_SUPERSEDED", "status"),
        (S.DRAFT, "open", "QUOTE_NOT_SENT", "status"),
        (S.REJECTED, "open", "QUOTE_NOT_SENT", "status"),
        (S.SENT, "lost", "DEAL_ALREADY_CLOSED", "deal_id"),
        (S.SENT, "won", "DEAL_ALREADY_CLOSED", "deal_id"),
    ]
    for status, deal, expected, field in cases:
        with pytest.raises(FailedPrecondition) as err:
            domain.check_accept(status, deal)
        assert (reason(err), err.value.field_violations[0][0]) == (expected, field)


def test_rejecting_needs_a_sent_version() -> None:
    assert domain.check_reject(S.SENT) is True
    assert domain.check_reject(S.REJECTED) is False
    for status in (S.DRAFT, S.EXPIRED, S.ACCEPTED, S.SUPERSEDED):
        with pytest.raises(FailedPrecondition):
            domain.check_reject(status)


def test_revising_takes_the_latest_version_once_it_left_draft() -> None:
    for status in (S.SENT, S.REJECTED, S.EXPIRED):
        domain.check_revise(status, latest=True)
    cases = [
        (S.SENT, False, "QUOTE_NOT_LATEST"),
        (S.SUPERSEDED, False, "QUOTE_NOT_LATEST"),
        (S.DRAFT, True, "QUOTE_IS_DRAFT"),
        (S.ACCEPTED, True, "QUOTE_ACCEPTED"),
    ]
    for status, latest, expected in cases:
        with pytest.raises(FailedPrecondition) as err:
            domain.check_revise(status, latest=latest)
        assert reason(err) == expected
    # What the revised version becomes: a sent one is replaced; a decision or an expiry stays.
    assert domain.status_after_revision(S.SENT) is S.SUPERSEDED
    assert domain.status_after_revision(S.REJECTED) is S.REJECTED
    assert domain.status_after_revision(S.EXPIRED) is S.EXPIRED


def test_quotes_are_made_on_open_deals_only() -> None:
    domain.check_deal_open("open")
    with pytest.raises(FailedPrecondition) as err:
        domain.check_deal_open("won")
    assert reason(err) == "DEAL_ALREADY_CLOSED"


# ---------------------------------------------------------------- what a draft holds


def line(**overrides: object) -> LineDraft:
    values: dict[str, object] = {"id": "", "product_id": "p-1", "price_list_id": "", "quantity": 1, "discount_bp": 0}
    values.update(overrides)
    return LineDraft(**values)  # type: ignore[arg-type]


def test_a_new_quote_gets_the_default_validity_and_is_trimmed() -> None:
    draft = QuoteDraft(lines=(line(product_id=" p-1 "),), bill_to=domain.BillTo(name=' ACME בע"מ '), notes=" x ")
    made = domain.validate_new_quote(draft, today=TODAY)
    assert made.valid_until == TODAY + timedelta(days=domain.DEFAULT_VALIDITY_DAYS)
    assert (made.lines[0].product_id, made.bill_to.name, made.notes) == ("p-1", 'ACME בע"מ', "x")


def test_every_bad_field_of_a_draft_is_named() -> None:
    draft = QuoteDraft(
        lines=(line(quantity=0, discount_bp=10_001), line(product_id=" "), line(id="someone-elses")),
        discount_bp=10_001,
        valid_until=TODAY - timedelta(days=1),
        locale="de",
        bill_to=domain.BillTo(name="x" * 201, phone="1" * 51),
        notes="n" * 2001,
    )
    with pytest.raises(InvalidArgument) as err:
        domain.validate_new_quote(draft, today=TODAY)
    assert [f for f, _ in err.value.field_violations] == [
        "lines[0].quantity",
        "lines[0].discount_bp",
        "lines[1].product_id",
        "lines[2].id",
        "discount_bp",
        "valid_until",
        "locale",
        "bill_to.name",
        "bill_to.phone",
        "notes",
    ]
    over_100 = dict(err.value.field_violations)["discount_bp"]
    assert "over 100 %" in over_100


def test_a_discount_of_exactly_100_percent_is_allowed() -> None:
    made = domain.validate_new_quote(QuoteDraft(lines=(line(discount_bp=10_000),), discount_bp=10_000), today=TODAY)
    assert made.discount_bp == 10_000


def test_an_update_names_known_fields_and_keeps_lines_by_id_once() -> None:
    kept = line(id="l-1", product_id="")
    updated = domain.validate_quote_update(
        QuoteDraft(lines=(kept, line())), ["lines"], line_ids=["l-1", "l-2"], today=TODAY
    )
    assert [x.id for x in updated.lines] == ["l-1", ""]
    with pytest.raises(InvalidArgument) as err:
        domain.validate_quote_update(QuoteDraft(lines=(kept, kept)), ["lines"], line_ids=["l-1"], today=TODAY)
    assert [f for f, _ in err.value.field_violations] == ["lines[1].id"]
    for mask in ([], ["price_list_id"], ["status"]):
        with pytest.raises(InvalidArgument) as err:
            domain.validate_quote_update(QuoteDraft(), mask, line_ids=[], today=TODAY)
        assert err.value.field_violations[0][0] == "update_mask"
    with pytest.raises(InvalidArgument) as err:
        domain.validate_quote_update(QuoteDraft(), ["valid_until"], line_ids=[], today=TODAY)
    assert err.value.field_violations == [("valid_until", "is required")]


def test_a_line_comes_from_the_quotes_one_price_list_in_its_currency() -> None:
    domain.check_line_price_list(0, "pl-ils", "ILS", "pl-ils", "ILS")
    with pytest.raises(InvalidArgument) as err:
        domain.check_line_price_list(3, "pl-usd", "USD", "pl-ils", "ILS")
    assert (reason(err), err.value.field_violations[0][0]) == ("CURRENCY_MISMATCH", "lines[3].price_list_id")
    with pytest.raises(InvalidArgument) as err:
        domain.check_line_price_list(1, "pl-ils-2", "ILS", "pl-ils", "ILS")
    assert reason(err) == "PRICE_LIST_MISMATCH"


def test_a_quote_is_made_from_a_price_list_in_force_today() -> None:
    domain.check_price_list("pl", active=True, valid_from=TODAY, valid_to=TODAY, today=TODAY)
    cases = [
        ({"active": False, "valid_from": TODAY, "valid_to": None}, "PRICE_LIST_INACTIVE"),
        ({"active": True, "valid_from": date(2026, 1, 1), "valid_to": date(2026, 12, 13)}, "PRICE_LIST_EXPIRED"),
        ({"active": True, "valid_from": date(2027, 1, 1), "valid_to": None}, "PRICE_LIST_NOT_YET_VALID"),
    ]
    for terms, expected in cases:
        with pytest.raises(InvalidArgument) as err:
            domain.check_price_list("pl", today=TODAY, **terms)  # type: ignore[arg-type]
        assert (reason(err), err.value.field_violations[0][0]) == (expected, "price_list_id")


def test_names_numbers_and_file_names() -> None:
    names = {"he": "כיסא משרדי", "en": "Office chair", "fa": "صندلی اداری"}
    assert [domain.description(names, loc) for loc in ("he", "fa", "en")] == [names["he"], names["fa"], names["en"]]
    assert domain.description({"he": "כיסא"}, "fa") == "כיסא"
    assert domain.description({"en": " ", "fa": "صندلی"}, "he") == "صندلی"
    assert domain.default_locale("IL") == "he" and domain.default_locale("IR") == "fa"
    assert domain.default_locale("DE") == "en"
    assert domain.format_number(42) == "Q-000042"
    assert domain.file_name("Q-000042", 3) == "Q-000042-v3.pdf"
    assert domain.file_name('Q-1"; evil\r\n/..', 1) == "Q-1___evil_____-v1.pdf"


# ---------------------------------------------------------------- amounts and the deal they win


def test_the_lines_add_up_to_the_quote_with_both_discounts_and_two_rates() -> None:
    lines = [
        domain.PricedLine(quantity=3, unit_price_minor=33_333, discount_bp=1000, tax_rate_bp=1800),
        domain.PricedLine(quantity=1, unit_price_minor=10_001, discount_bp=0, tax_rate_bp=0),
    ]
    line_totals, totals = domain.amounts(lines, 500, "ILS")
    assert totals.subtotal_minor == sum(x.net_minor for x in line_totals)
    assert totals.discount_minor == sum(x.document_discount_minor for x in line_totals)
    assert totals.net_minor == totals.subtotal_minor - totals.discount_minor
    assert totals.tax_minor == sum(x.tax_minor for x in line_totals)
    assert totals.total_minor == sum(x.total_minor for x in line_totals) == totals.net_minor + totals.tax_minor
    # 3 × 333.33 = 999.99, less 10 % (99.999, rounded half up to 100.00) = 899.99; the zero rate adds no VAT.
    assert line_totals[0].net_minor == 89_999 and line_totals[1].tax_minor == 0


def test_a_bad_amount_names_the_quote_field() -> None:
    with pytest.raises(InvalidArgument) as err:
        domain.amounts([domain.PricedLine(0, 100, 0, 1800)], 0, "ILS")
    assert err.value.field_violations[0][0] == "lines[0].quantity"


def test_the_deal_is_won_for_the_quotes_net_total_exactly() -> None:
    sold = [
        SoldLine("CHAIR", "כיסא", 3, 99_999),  # divides: one item
        SoldLine("DESK", "שולחן", 3, 100_000),  # remainder 1: one item a minor unit dearer
        SoldLine("LAMP", "מנורה", 3, 100_001),  # remainder 2: two of them
        SoldLine("FREE", "מתנה", 2, 0),  # 100 % off
    ]
    items = domain.deal_items(sold, "ILS")
    assert [(i.sku, i.quantity, i.unit_price_minor) for i in items] == [
        ("CHAIR", 3, 33_333),
        ("DESK", 2, 33_333),
        ("DESK", 1, 33_334),
        ("LAMP", 1, 33_333),
        ("LAMP", 2, 33_334),
        ("FREE", 2, 0),
    ]
    assert sum(i.quantity * i.unit_price_minor for i in items) == 99_999 + 100_000 + 100_001
    assert {i.currency_code for i in items} == {"ILS"}
    assert [i.description for i in items][:2] == ["כיסא", "שולחן"]


def test_rial_items_stay_whole_rials_and_add_up_to_the_net() -> None:
    # 1,000 rials (100,000 minor units) over 3: 333 rials twice and 334 once, never 333.33 rials.
    sold = [SoldLine("TEA", "چای", 3, 100_000), SoldLine("RUG", "فرش", 7, 7 * 2_500_000)]
    items = domain.deal_items(sold, "IRR")
    assert [(i.sku, i.quantity, i.unit_price_minor) for i in items] == [
        ("TEA", 2, 33_300),
        ("TEA", 1, 33_400),
        ("RUG", 7, 2_500_000),
    ]
    assert all(i.unit_price_minor % 100 == 0 for i in items)
    assert sum(i.quantity * i.unit_price_minor for i in items) == 100_000 + 7 * 2_500_000
    # Fewer whole rials than units: some units at nothing, the rest a rial each.
    few = domain.deal_items([SoldLine("PIN", "سنجاق", 5, 300)], "IRR")
    assert [(i.quantity, i.unit_price_minor) for i in few] == [(2, 0), (3, 100)]


def test_a_rial_net_with_a_fraction_is_still_split_exactly() -> None:
    """A net stored before rials were rounded keeps its fraction rather than lose it."""
    [cheap, dear] = domain.deal_items([SoldLine("OLD", "قدیمی", 3, 100_001)], "IRR")
    assert (cheap.quantity, cheap.unit_price_minor, dear.quantity, dear.unit_price_minor) == (1, 33_333, 2, 33_334)


def test_the_amounts_of_a_quote_too_large_for_int64_are_refused() -> None:
    half = 2**62  # two lines of 2**62 each fit on their own; together they pass 2**63 - 1
    lines = [domain.PricedLine(1, half, 0, 0), domain.PricedLine(1, half, 0, 0)]
    with pytest.raises(InvalidArgument) as err:
        domain.amounts(lines, 0, "ILS")
    assert (reason(err), [f for f, _ in err.value.field_violations]) == ("AMOUNT_TOO_LARGE", ["lines"])


def test_the_company_time_zone_must_be_known() -> None:
    """An unknown zone stops the service at start, not every quote later."""
    assert domain.company_zone("Asia/Tehran").key == "Asia/Tehran"
    for bad in ("Asia/Atlantis", "", "../etc/passwd"):
        with pytest.raises(ValueError, match="unknown time zone"):
            domain.company_zone(bad)
    with pytest.raises(ValidationError, match="company_time_zone"):
        SalesSettings(company_time_zone="Asia/Atlantis")
    assert SalesSettings().company_time_zone == "Asia/Jerusalem"
