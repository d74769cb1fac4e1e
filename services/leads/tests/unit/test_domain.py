import pytest

from crm_kit.errors import FailedPrecondition, InvalidArgument
from crm_leads import domain

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("raw", "locale", "e164"),
    [
        ("050-123-4567", "he-IL", "+972501234567"),
        ("+972 50 123 4567", "he-IL", "+972501234567"),
        ("03-6123456", "he-IL", "+97236123456"),
        ("0912 345 6789", "fa-IR", "+989123456789"),
        ("0912 345 6789", "he-IL", "+989123456789"),
        ("۰۹۱۲۳۴۵۶۷۸۹", "fa-IR", "+989123456789"),
        ("021 8888 7777", "fa-IR", "+982188887777"),
    ],
)
def test_phone_numbers_become_e164(raw: str, locale: str, e164: str) -> None:
    assert domain.normalize_phone(raw, locale) == e164


def test_bad_phone_names_the_field() -> None:
    with pytest.raises(InvalidArgument) as err:
        domain.normalize_phone("12345", "he-IL")
    assert err.value.field_violations[0][0] == "phone_number"


def test_a_source_code_must_have_the_catalogue_format() -> None:
    # Whether it exists is the catalogue's (the database's) answer: see test_campaigns.
    assert domain.normalize_source(" TikTok ") == "tiktok"
    with pytest.raises(InvalidArgument) as err:
        domain.normalize_source("tik tok!")
    assert err.value.field_violations[0][0] == "source"


def test_rules_match_by_source_then_fall_back() -> None:
    rules = [
        domain.RoutingRule("fallback", "t2", (), 100),
        domain.RoutingRule("media", "t1", ("radio", "tv"), 10),
    ]
    assert domain.match_rule(rules, "tv").id == "media"
    assert domain.match_rule(rules, "referral").id == "fallback"
    with pytest.raises(FailedPrecondition):
        domain.match_rule(rules[1:], "referral")


def test_round_robin_cycles_evenly() -> None:
    picks = [domain.pick_round_robin(["b", "a", "c"], turn) for turn in range(1, 7)]
    assert picks == ["a", "b", "c", "a", "b", "c"]


def test_close_rules() -> None:
    items = [domain.Item("A", "a", 2, 100, "ILS"), domain.Item("B", "b", 1, 50, "ils")]
    assert domain.validate_close(domain.DealStatus.OPEN, True, items) == (250, "ILS")
    with pytest.raises(FailedPrecondition):
        domain.validate_close(domain.DealStatus.WON, True, items)
    with pytest.raises(InvalidArgument):
        domain.validate_close(domain.DealStatus.OPEN, True, [])
    with pytest.raises(InvalidArgument) as mixed:
        domain.validate_close(domain.DealStatus.OPEN, True, [*items, domain.Item("C", "c", 1, 1, "USD")])
    assert ("items", "all items must share one currency") in mixed.value.field_violations


def test_every_bad_field_is_reported_at_once() -> None:
    with pytest.raises(InvalidArgument) as err:
        domain.validate_new_lead(
            full_name="x", phone_number="050-12", email="", source="tik tok!", campaign="", locale="", product_line=""
        )
    assert {f for f, _ in err.value.field_violations} == {"phone_number", "source"}
