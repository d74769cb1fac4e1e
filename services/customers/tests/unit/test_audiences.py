"""The pure rules of audiences: reading a filter, paging, LIKE patterns, a won deal's purchase lines,
and what a merge keeps of the facts audiences filter on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crm_customers import domain

pytestmark = pytest.mark.unit

T0 = datetime(2026, 6, 1, tzinfo=UTC)


def read(**overrides: Any) -> tuple[domain.Audience, list[tuple[str, str]]]:
    asked: dict[str, Any] = {
        "channel": "sms",
        "purpose": "marketing",
        "lists": {},
        "purchased_after": None,
        "purchased_before": None,
        "min_lifetime_value_minor": 0,
        "currency_code": "",
    }
    return domain.audience(**{**asked, **overrides})


def test_an_empty_filter_is_every_live_customer_with_the_default_exclusions() -> None:
    audience, problems = read()
    assert problems == []
    assert audience == domain.Audience(channel="sms", purpose="marketing")
    assert not audience.include_open_complaints and not audience.include_low_satisfaction
    assert not audience.purchase_window


def test_values_are_tidied_tags_keep_their_spelling_the_rest_ignore_case() -> None:
    audience, problems = read(
        lists={
            "tags": ["  VIP ", "vip", "VIP"],
            "cities": ["Tel  Aviv", "tel aviv", "חיפה"],
            "sources": ["Radio"],
            "products": ["Sofa-1"],
            "locales": ["he-IL"],
        },
        currency_code=" ils ",
    )
    assert problems == []
    assert audience.tags == ("VIP", "vip")
    assert audience.cities == ("tel aviv", "חיפה")
    assert (audience.sources, audience.products, audience.locales) == (("radio",), ("sofa-1",), ("he-il",))
    assert audience.currency_code == "ILS" and audience.purchase_window


@pytest.mark.parametrize(
    ("overrides", "fields"),
    [
        ({"channel": "fax"}, {"channel"}),
        ({"channel": "phone"}, {"channel"}),  # consent has a phone channel; no message goes by it
        ({"purpose": "spam"}, {"purpose"}),
        ({"lists": {"tags": [str(n) for n in range(51)]}}, {"tags"}),
        ({"lists": {"cities": ["x" * 101]}}, {"cities"}),
        ({"lists": {"products": ["  "]}}, {"products"}),
        ({"lists": {"locales": [""], "sources": ["s"] * 51}}, {"locales", "sources"}),
        ({"purchased_after": T0, "purchased_before": T0}, {"purchased_before"}),
        ({"purchased_after": T0, "purchased_before": T0 - timedelta(days=1)}, {"purchased_before"}),
        ({"min_lifetime_value_minor": 100}, {"currency_code"}),
        ({"min_lifetime_value_minor": 100, "currency_code": "shekel"}, {"currency_code"}),
        ({"min_lifetime_value_minor": -1, "currency_code": "ILS"}, {"min_lifetime_value_minor"}),
        ({"currency_code": "12"}, {"currency_code"}),
    ],
)
def test_each_wrong_field_is_named(overrides: dict[str, Any], fields: set[str]) -> None:
    _, problems = read(**overrides)
    assert {f for f, _ in problems} == fields


def test_every_wrong_field_is_named_at_once() -> None:
    _, problems = read(channel="", purpose="", lists={"tags": [""]}, min_lifetime_value_minor=5)
    assert [f for f, _ in problems] == ["channel", "purpose", "tags", "currency_code"]


@pytest.mark.parametrize(
    ("page_size", "after", "limit", "fields"),
    [
        (0, "", 1000, set()),
        (1, "abc", 1, set()),
        (5000, "", 5000, set()),
        (5001, "", 5001, {"page_size"}),
        (-1, "", -1, {"page_size"}),
        (10, "x" * 65, 10, {"after_customer_id"}),
    ],
)
def test_a_page_is_1_to_5000_members(page_size: int, after: str, limit: int, fields: set[str]) -> None:
    got, problems = domain.audience_page(page_size, after)
    assert got == limit and {f for f, _ in problems} == fields


@pytest.mark.parametrize(("size", "ok"), [(0, True), (20, True), (21, False), (-1, False)])
def test_a_sample_is_at_most_20(size: int, ok: bool) -> None:
    assert (domain.audience_sample(size) == []) is ok


@pytest.mark.parametrize(
    ("value", "pattern"),
    [("sofa", "%sofa%"), ("50%", "%50\\%%"), ("a_b", "%a\\_b%"), ("c:\\x", "%c:\\\\x%"), ("ספה", "%ספה%")],
)
def test_contains_matches_the_value_s_own_wildcards_as_themselves(value: str, pattern: str) -> None:
    assert domain.contains_pattern(value) == pattern


def item(sku: str, quantity: int, unit: int, currency: str = "ILS", description: str = "") -> domain.DealItem:
    return domain.DealItem(sku, description, quantity, unit, currency)


def test_a_deal_s_items_are_its_purchase_lines() -> None:
    lines = domain.purchase_lines(
        [item(" SOFA-1 ", 2, 250_000, description=" Corner   sofa "), item("", 1, 15_000, "")], 515_000, "ils"
    )
    assert lines == [
        domain.PurchaseLine(1, "SOFA-1", "Corner sofa", 500_000, "ILS"),
        domain.PurchaseLine(2, "", "", 15_000, "ILS"),  # no currency of its own: the deal's
    ]


def test_a_deal_without_items_is_one_line_with_its_total() -> None:
    assert domain.purchase_lines([], 99_000, "IRR") == [domain.PurchaseLine(1, "", "", 99_000, "IRR")]
    # Items no currency can be given to: the total stands for them.
    assert domain.purchase_lines([item("X", 1, 5, "")], 7, "ILS") == [domain.PurchaseLine(1, "X", "", 5, "ILS")]
    assert domain.purchase_lines([item("X", 1, 5, "")], 7, "") == []
    assert domain.purchase_lines([], 7, "") == []


def test_lines_keep_their_place_in_the_deal_and_their_lengths() -> None:
    lines = domain.purchase_lines([item("A", 1, 1, "??"), item("B" * 150, 3, 2, description="d" * 600)], 0, "")
    assert [(line.line, len(line.sku), len(line.description), line.amount_minor) for line in lines] == [
        (2, domain.MAX_SKU, domain.MAX_DESCRIPTION, 6)
    ]


@dataclass
class Facts:
    acquiring_source: str = ""
    acquired_at: datetime | None = None
    latest_survey_score: int | None = None
    latest_survey_at: datetime | None = None


def test_a_merge_keeps_the_earlier_acquisition_and_the_later_survey() -> None:
    survivor = Facts("radio", T0, 5, T0)
    earlier = Facts("tv", T0 - timedelta(days=1), 1, T0 - timedelta(days=1))
    assert domain.merged_facts(survivor, earlier) == {"acquiring_source": "tv", "acquired_at": earlier.acquired_at}
    later = Facts("tv", T0 + timedelta(days=1), 2, T0 + timedelta(days=1))
    assert domain.merged_facts(survivor, later) == {
        "latest_survey_score": 2,
        "latest_survey_at": later.latest_survey_at,
    }
    assert domain.merged_facts(Facts(), later) == {
        "acquiring_source": "tv",
        "acquired_at": later.acquired_at,
        "latest_survey_score": 2,
        "latest_survey_at": later.latest_survey_at,
    }
    assert domain.merged_facts(survivor, Facts()) == {}
