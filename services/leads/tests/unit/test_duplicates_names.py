"""Name matching keys with the spellings Israeli and Iranian sales teams really receive."""

from __future__ import annotations

import pytest

from crm_kit import names
from crm_leads.duplicates import domain as duplicates
from crm_leads.leads.domain import NewLead, normalize_email, normalize_phone

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "variant",
    ["מֹשֶׁה כֹּהֵן", "משה כהן", "כהן משה", "כהן, משה", "\u200fמשה  כהן\u200f", "משה-כהן"],
)
def test_hebrew_niqqud_order_bidi_marks_and_punctuation_fold_to_one_key(variant: str) -> None:
    assert names.name_key(variant) == names.name_key("משה כהן")


def test_hebrew_final_letters_and_geresh_fold() -> None:
    assert names.fold("ם ן ץ ף ך") == names.fold("מ נ צ פ כ")
    assert names.name_key("ג׳ורג׳ בוש") == names.name_key("ג'ורג' בוש") == names.name_key("גורג בוש")
    assert names.name_key('צה"ל') == names.name_key("צה״ל") == names.name_key("צהל")


def test_arabic_letter_shapes_fold_to_persian() -> None:
    assert names.name_key("عليرضا كريمي") == names.name_key("علیرضا کریمی")
    assert names.name_key("فاطمة") == names.name_key("فاطمه") == names.name_key("فاطمۀ")
    assert names.name_key("أحمد") == names.name_key("إحمد") == names.name_key("احمد")
    # harakat, shadda, tatweel and Arabic presentation forms
    assert names.name_key("مُحَمَّد") == names.name_key("محـــمد") == names.name_key("ﻣﺤﻤﺪ") == names.name_key("محمد")


def test_persian_compound_names_with_zwnj_space_or_nothing_share_the_compact_key() -> None:
    zwnj, joined, spaced = "محمد\u200cرضا", "محمدرضا", "محمد رضا"
    assert names.name_key(zwnj) == names.name_key(joined)
    # A space makes two words (their order then does not matter), the compact key joins them.
    assert names.name_key(spaced) != names.name_key(joined)
    assert names.name_compact(zwnj) == names.name_compact(joined) == names.name_compact(spaced)


def test_digits_and_case() -> None:
    assert names.name_key("علی ۱۲۳") == names.name_key("علی ١٢٣") == names.name_key("123 علی")
    assert names.name_key("MOSHE Cohen") == names.name_key("moshe cohen")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("משה כהן", "Moshe Cohen"),
        ("Moshe Cohen", "Moshe Kohen"),
        ("מֹשֶׁה כֹּהֵן", "Cohen Moshe"),
        ("محمدی رضا", "Reza Mohammadi"),
        ("علیرضا کریمی", "Alireza Karimi"),
        ("عليرضا كريمي", "Alireza Karimi"),
    ],
)
def test_cross_script_spellings_share_a_skeleton(a: str, b: str) -> None:
    assert names.name_skeleton(a) == names.name_skeleton(b) != ""


def test_different_people_and_too_short_names_have_no_common_skeleton() -> None:
    assert names.name_skeleton("משה כהן") != names.name_skeleton("משה לוי")
    assert names.name_skeleton("Dana Levi") != names.name_skeleton("Moshe Cohen")
    assert names.name_skeleton("Ali") == ""  # too common a skeleton to propose anyone


@pytest.mark.parametrize("raw", ["050-123-4567", "+972 50 1234567", "972501234567", "0501234567", "٠٥٠١٢٣٤٥٦٧"])
def test_israeli_phone_variants_are_one_number(raw: str) -> None:
    assert normalize_phone(raw, "he-IL") == "+972501234567"


def test_persian_digit_phone_is_e164() -> None:
    assert normalize_phone("۰۹۱۲۳۴۵۶۷۸۹", "fa-IR") == "+989123456789"
    assert normalize_phone("۰۹۱۲۳۴۵۶۷۸۹", "he-IL") == "+989123456789"


def test_email_is_trimmed_and_lower_cased() -> None:
    assert normalize_email("  Moshe.Cohen@Example.CO.IL ") == "moshe.cohen@example.co.il"


def _lead(phone: str) -> NewLead:
    return NewLead(
        full_name="x", phone_number=phone, email="a@b.c", source="radio", campaign="", locale="he-IL", product_line=""
    )


def test_a_lead_without_a_phone_number_is_incomplete() -> None:
    assert duplicates.missing_fields(_lead("")) == ("phone_number",)
    assert duplicates.missing_fields(_lead("+972501234567")) == ()


def test_pair_score_and_reasons() -> None:
    keys = names.name_keys("משה כהן")

    class Other:
        name_key = keys.key
        name_compact = "x"
        name_skeleton = keys.skeleton
        city = "תל-אביב"

    reasons = duplicates.match_reasons(keys, Other(), city="תל אביב")
    assert reasons == ["same_name", "similar_spelling", "same_city"]
    assert duplicates.pair_score(reasons) == 90
    assert duplicates.pair_score(["similar_spelling"]) == 50


def test_survivorship_fills_only_empty_fields() -> None:
    class Row:
        phone_number = ""
        email = "old@x.com"

    assert duplicates.fill_empty(Row(), {"phone_number": "+972501234567", "email": "new@x.com"}) == {
        "phone_number": "+972501234567"
    }
