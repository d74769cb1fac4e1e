"""Promotions' pure rules: texts checked per locale like a preview, which text a recipient gets,
how it reads, the signed unsubscribe token, and which replies refuse advertising."""

from datetime import date, time

import pytest

from crm_notifications import advertising
from crm_notifications.promotions import (
    LocaleEstimate,
    Recipient,
    Text,
    check_test,
    check_texts,
    choose_text,
    estimate_sms,
    in_quiet_hours,
    promotion_key,
    quiet_hours,
    read_unsubscribe_token,
    render,
    request_key,
    unsubscribe_token,
)

pytestmark = pytest.mark.unit

IL = advertising.load("IL")
IR = advertising.load("IR")
ADVERTISER = advertising.Advertiser("רהיטי כהן", "03-5550123")
DAY = date(2026, 12, 3)
HE_SMS = "פרסומת: ספות במבצע עד {date}, {name}! {advertiser} {advertiser_contact}. להסרה השיבו הסר"
FA_SMS = "{name} عزیز، تخفیف مبل تا {date}. لغو ۱۱"


def problems(channel: str, texts: list[Text], rules: advertising.AdvertisingRules = IL) -> list[tuple[str, str]]:
    found = check_texts(channel, texts, rules=rules, advertiser=ADVERTISER, today=DAY, unsubscribe_link="https://x/u/t")
    return [(p.field, p.description.split(":")[0]) for p in found]


def test_texts_that_meet_the_rules_pass() -> None:
    assert problems("sms", [Text("he-IL", "", HE_SMS)]) == []
    assert problems("sms", [Text("fa-IR", "", FA_SMS)], IR) == []


def test_each_text_problem_is_named_by_its_place() -> None:
    found = problems(
        "sms",
        [
            Text("he-IL", "", "מבצע ספות! {advertiser} {advertiser_contact} השיבו הסר"),  # no marker
            Text("he-IL", "", HE_SMS),  # the same locale twice
            Text("en-US", "", HE_SMS + " {coupon}"),  # an unknown placeholder
        ],
    )
    assert found == [
        ("texts[0].body", "advertising_marker"),
        ("texts[1].locale", "one of he-IL, fa-IR, en-US, each once per variant"),
        ("texts[2].body", "unknown_field"),
    ]


def test_an_email_needs_a_subject_with_the_marker_and_the_recipients_unsubscribe_link() -> None:
    assert problems("email", [Text("he-IL", "", "שלום {name}")]) == [("texts[0].subject", "an e-mail needs a subject")]
    assert problems("email", [Text("he-IL", "מבצע", "שלום {name} {advertiser} {advertiser_contact}")]) == [
        ("texts[0].subject", "advertising_marker"),
        ("texts[0].body", "unsubscribe_link"),
    ]
    assert problems("sms", [Text("he-IL", "נושא", HE_SMS)]) == [("texts[0].subject", "an SMS has no subject")]
    assert problems("sms", []) == [("texts", "1 to 9 texts, one per locale and variant")]


def test_a_recipient_gets_their_locales_text_else_the_first_and_reads_their_own_date() -> None:
    texts = [Text("he-IL", "", HE_SMS), Text("fa-IR", "", FA_SMS)]
    assert choose_text(texts, "FA-ir").locale == "fa-IR"
    assert choose_text(texts, "ru-RU").locale == "he-IL"
    dana = Recipient("c1", "+972501234567", "fa-IR", "علی")
    _, body = render(choose_text(texts, "fa-IR"), dana, today=DAY, advertiser=ADVERTISER, unsubscribe_link="")
    assert body == "علی عزیز، تخفیف مبل تا ۱۴۰۵/۰۹/۱۲. لغو ۱۱"


def test_keys_are_one_per_person_and_a_request_key_is_its_callers_own() -> None:
    assert promotion_key("p1", "c1") == "promotion:p1:c1"
    assert request_key("alice", "r1") != request_key("bob", "r1")
    assert request_key("alice", "") is None


def test_an_unsubscribe_token_names_its_recipient_and_cannot_be_changed() -> None:
    secret = b"s3cret"
    token = unsubscribe_token(secret, "p1", "c1")
    assert read_unsubscribe_token(secret, token) == ("p1", "c1")
    forged = token.replace(".c1.", ".c2.")
    assert read_unsubscribe_token(secret, forged) is None
    assert read_unsubscribe_token(b"other", token) is None
    assert read_unsubscribe_token(secret, "p1.c1") is None


@pytest.mark.parametrize(
    "reply", ["הסר", " הסר ", "הסר בבקשה", "STOP", "stop.", "Stop please", "11", "۱۱", "لغو", "لغو ۱۱", "حذف", "הסרה"]
)
def test_a_refusal_is_recognised_in_any_of_its_forms(reply: str) -> None:
    assert advertising.is_refusal(reply, IL.sms)
    assert advertising.is_refusal(reply, IR.sms)


@pytest.mark.parametrize("reply", ["", "תודה", "מתי הספה מגיעה?", "12", "לא להסיר", "stopwatch"])
def test_other_replies_are_not_refusals(reply: str) -> None:
    assert not advertising.is_refusal(reply, IL.sms)


@pytest.mark.parametrize("reply", ["12", "۱۲", " 12 ", "12.", "12 لطفا"])
def test_12_re_subscribes_in_iran_only(reply: str) -> None:
    assert advertising.is_resubscription(reply, IR.sms)
    assert not advertising.is_resubscription(reply, IL.sms)  # Israel names no such word
    assert not advertising.is_refusal(reply, IR.sms)
    assert not advertising.is_resubscription("11", IR.sms) and not advertising.is_resubscription("123", IR.sms)


def test_a_re_subscribe_word_that_also_refuses_is_a_broken_rules_file() -> None:
    import json

    shipped = json.loads(advertising.SHIPPED["IR"].read_text(encoding="utf-8"))
    for word in ("11", "STOP", "۱۱"):
        shipped["sms"]["resubscribe_keywords"] = [word]
        with pytest.raises(advertising.InvalidAdvertisingRules, match="re-subscribe"):
            advertising.parse(shipped, "test")


def test_quiet_hours_may_cross_midnight_and_a_bad_window_is_refused() -> None:
    night = quiet_hours("21:00-08:00")
    assert in_quiet_hours(time(22, 30), night) and in_quiet_hours(time(7, 59), night)
    assert not in_quiet_hours(time(8, 0), night) and not in_quiet_hours(time(20, 59), night)
    lunch = quiet_hours("13:00-14:00")
    assert in_quiet_hours(time(13, 30), lunch) and not in_quiet_hours(time(14, 0), lunch)
    assert quiet_hours("") is None and not in_quiet_hours(time(3, 0), None)
    for bad in ("21-8", "21:00", "08:00-08:00", "25:00-08:00"):
        with pytest.raises(ValueError, match="quiet hours"):
            quiet_hours(bad)


def test_a_recipients_variant_is_fixed_by_the_hash_and_the_test_share_is_near_its_percent() -> None:
    from crm_notifications.promotions import VariantScore, assign_variant, pick_winner

    people = [f"c-{i}" for i in range(4000)]
    split = [assign_variant("p1", c, ("A", "B"), 0) for c in people]
    assert split == [assign_variant("p1", c, ("A", "B"), 0) for c in people]  # the same on every run
    assert 0.45 < split.count("A") / len(people) < 0.55
    tested = [assign_variant("p1", c, ("A", "B", "C"), 20) for c in people]
    assert 0.17 < sum(v is not None for v in tested) / len(people) < 0.23
    assert {v for v in tested if v} == {"A", "B", "C"}
    assert assign_variant("p1", "c-1", ("A",), 20) is None  # one variant: no test

    scores = [VariantScore("A", 100, 3, 50_000), VariantScore("B", 50, 2, 10_000)]
    assert pick_winner("clicks", scores) == "B"  # 4 % beats 3 %
    assert pick_winner("revenue", scores) == "A"  # 500 a message beats 200
    assert pick_winner("clicks", [VariantScore("B", 10, 1, 0), VariantScore("A", 10, 1, 0)]) == "A"  # a tie
    assert pick_winner("clicks", []) == "A"
    opened = [VariantScore("A", 100, 9, 0, opens=20), VariantScore("B", 100, 1, 0, opens=45)]
    assert (pick_winner("opens", opened), pick_winner("clicks", opened)) == ("B", "A")


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://furniture.example/sofas?ref=crm", True),
        ("http://x.example", True),
        ("https://\u00dd]\u0004", False),  # an unbalanced IPv6 bracket: urlsplit raises (schema fuzzing found it)
        ("https://x.example/\u0004", False),
        ("https://x.example/a b", False),
        ("ftp://x.example", False),
        ("https://", False),
        ("https://x.example/" + "a" * 500, False),
    ],
)
def test_a_promotions_link_is_a_printable_http_url_with_a_host(url: str, ok: bool) -> None:
    from crm_notifications.promotions_api import _web_address

    assert _web_address(url) is ok


def test_the_estimate_takes_each_locale_s_longest_message_and_puts_those_of_no_locale_on_the_first_text() -> None:
    texts = [
        Text("he-IL", "", "{name}" + "ש" * 60, "A"),
        Text("he-IL", "", "{name}" + "ש" * 70, "B"),
        Text("en-US", "", "Hi {name}"),
    ]
    sample = [Recipient("c-1", "+972501", "he-IL", "דנה"), Recipient("c-2", "+972502", "he-IL", "א" * 40)]

    def body_of(text: Text, recipient: Recipient) -> str:
        return render(text, recipient, today=DAY, advertiser=ADVERTISER, unsubscribe_link="")[1]

    found = estimate_sms(texts, 10, {"he-IL": 6, "en-US": 3}, sample, body_of)
    # Hebrew: variant B for the 40-letter name is 110 UCS-2 characters, 2 parts of 67. English: no
    # English recipient was sampled, so the sample's longest name stands in (an upper bound); A's
    # English text is 1 part, but variant B has no English text and its recipients get B's first
    # (Hebrew): 2. Those without a locale get each variant's first text: 2.
    assert found == [LocaleEstimate("he-IL", 6, 2), LocaleEstimate("en-US", 3, 2), LocaleEstimate("", 1, 2)]
    assert sum(e.sms_parts for e in found) == 20
    english_only = [Text("en-US", "", "Hi {name}")]
    assert estimate_sms(english_only, 3, {"en-US": 3}, sample, body_of) == [LocaleEstimate("en-US", 3, 1)]
    assert estimate_sms(texts, 0, {}, [], body_of) == []


def test_opens_choose_a_winner_only_where_the_e_mails_track_them() -> None:
    texts = [Text("he-IL", "פרסומת: א", "x", "A"), Text("he-IL", "פרסומת: ב", "y", "B")]
    assert [p.field for p in check_test(texts, 20, "opens", 60)] == ["winner_rule"]
    assert check_test(texts, 20, "opens", 60, track_opens=True) == []
