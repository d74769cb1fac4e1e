"""Advertising rules per country (Israel's §30A, Iran's CRA) and the preview that applies them."""

import json
from datetime import date
from pathlib import Path

import pytest

from crm_notifications import advertising
from crm_notifications.preview import Draft, preview

pytestmark = pytest.mark.unit

IL = advertising.load("IL")
IR = advertising.load("ir")
ADVERTISER = advertising.Advertiser("רהיטי כהן", "03-5550123")
DAY = date(2026, 12, 3)
LINK = "https://crm.example/u/sample"
GOOD_HE_SMS = "פרסומת: מבצע ספות עד {date}! {advertiser} {advertiser_contact}. להסרה השיבו הסר"


def shown(channel: str, body: str, *, subject: str = "", locale: str = "he-IL", rules=IL, ads: bool = True):
    draft = Draft(channel, ads, locale, subject, body)
    return preview(draft, rules=rules, advertiser=ADVERTISER, today=DAY, unsubscribe_link=LINK)


def rules_of(result) -> list[tuple[str, str]]:
    return [(v.field, v.rule) for v in result.violations]


def test_an_israeli_advertising_sms_that_meets_30a_passes_and_shows_its_cost() -> None:
    result = shown("sms", GOOD_HE_SMS)
    assert result.violations == []
    assert result.body == "פרסומת: מבצע ספות עד 3.12.2026! רהיטי כהן 03-5550123. להסרה השיבו הסר"
    assert (result.parts.encoding, result.parts.units, result.parts.parts) == ("ucs-2", 69, 1)


@pytest.mark.parametrize(
    ("body", "missing"),
    [
        ("מבצע ספות! {advertiser} {advertiser_contact}. להסרה השיבו הסר", "advertising_marker"),
        ("פרסומת: מבצע ספות! {advertiser} {advertiser_contact}. להסרה", "opt_out"),  # no word to reply
        ("פרסומת: מבצע ספות! {advertiser}. להסרה השיבו הסר", "advertiser_identity"),
    ],
)
def test_what_an_israeli_advertising_sms_lacks_is_named(body: str, missing: str) -> None:
    assert rules_of(shown("sms", body)) == [("body", missing)]


def test_a_service_message_is_not_held_to_advertising_rules() -> None:
    assert shown("sms", "ההזמנה שלך נשלחה, {name}", ads=False).violations == []


def test_an_iranian_advertising_sms_ends_with_the_opt_out_in_either_digits() -> None:
    for ending in ("لغو ۱۱", "لغو 11"):
        result = shown("sms", "تخفیف مبل تا {date:long}. " + ending, locale="fa-IR", rules=IR)
        assert result.violations == [], ending
        assert result.body.startswith("تخفیف مبل تا ۱۲ آذر ۱۴۰۵")
    result = shown("sms", "تخفیف مبل! برای لغو ۱۱ را بفرستید", locale="fa-IR", rules=IR)
    assert rules_of(result) == [("body", "opt_out_suffix")]


def test_an_israeli_advertising_email_needs_the_subject_marker_identity_and_unsubscribe_link() -> None:
    body = "שלום {name}, מבצע! {advertiser} {advertiser_contact}. להסרה: {unsubscribe_link}"
    assert shown("email", body, subject="פרסומת: מבצע חורף").violations == []
    assert shown("email", body, subject="פרסומת: מבצע").body.endswith(LINK)
    bare = shown("email", "שלום {name}, מבצע!", subject="מבצע חורף")
    assert rules_of(bare) == [
        ("subject", "advertising_marker"),
        ("body", "unsubscribe_link"),
        ("body", "advertiser_identity"),
    ]


def test_an_unknown_field_or_a_stray_brace_is_named_and_nothing_is_rendered() -> None:
    unknown = shown("sms", "פרסומת {nmae} הסר")
    assert rules_of(unknown) == [("body", "unknown_field")] and "{nmae}" in unknown.violations[0].description
    assert unknown.body == "פרסומת {nmae} הסר"
    assert rules_of(shown("sms", "{unsubscribe_link} הסר")) == [("body", "unknown_field")]  # e-mail only
    assert rules_of(shown("sms", "פרסומת {name הסר")) == [("body", "template_syntax")]
    assert rules_of(shown("email", "x {name:%d} {unsubscribe_link}", subject="פרסומת")) == [("body", "template_syntax")]


def test_another_countrys_rules_come_from_a_file_checked_whole(tmp_path: Path) -> None:
    data = json.loads(advertising.SHIPPED["IL"].read_text(encoding="utf-8"))
    data["country"] = "CY"
    good = tmp_path / "cy.json"
    good.write_text(json.dumps(data), encoding="utf-8")
    assert advertising.load(str(good)).country == "CY"
    data["sms"]["opt_out_keywords"] = []
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(advertising.InvalidAdvertisingRules, match="opt-out"):
        advertising.load(str(bad))
    with pytest.raises(advertising.InvalidAdvertisingRules, match="IL, IR"):
        advertising.load("XX")
