from datetime import date

import pytest

from crm_customers import domain

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("source", "channel"),
    [
        ("website", "web"),
        ("web_form", "web"),
        ("telemarketing", "phone"),
        ("email", "email"),
        ("Email ", "email"),
        ("radio", "system"),
        ("referral", "system"),
        ("", "system"),
    ],
)
def test_channel_follows_the_lead_source(source: str, channel: str) -> None:
    assert domain.channel_for_source(source) == channel


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (469900, "ILS", "4,699.00 ILS"),
        (5, "ILS", "0.05 ILS"),
        (0, "ILS", "0.00 ILS"),
        (123456789012, "IRR", "1,234,567,890.12 IRR"),
        (-2550, "USD", "-25.50 USD"),
    ],
)
def test_money_is_minor_units_over_100_with_two_decimals(minor: int, currency: str, text: str) -> None:
    assert domain.format_money(minor, currency) == text


def test_lead_captured_summary_names_source_and_campaign() -> None:
    assert domain.lead_captured_summary("radio", "Spring sale") == "Lead captured from radio, campaign Spring sale"
    assert domain.lead_captured_summary("tv", "  ") == "Lead captured from tv"


def test_deal_summaries() -> None:
    won = domain.deal_closed_summary(won=True, amount_minor=469900, currency_code="ILS", lost_reason="")
    assert won == "Deal won: 4,699.00 ILS"
    lost = domain.deal_closed_summary(won=False, amount_minor=0, currency_code="", lost_reason="price too high")
    assert lost == "Deal lost: price too high"
    assert domain.deal_closed_summary(won=False, amount_minor=0, currency_code="", lost_reason="") == "Deal lost"


def test_order_shipped_summary_carries_carrier_tracking_and_date() -> None:
    text = domain.order_shipped_summary("Israel Post", "RR123456789IL", date(2026, 12, 3))
    assert text == "Order shipped with Israel Post, tracking RR123456789IL, arrives 2026-12-03"
    assert domain.order_shipped_summary("DHL", "", None) == "Order shipped with DHL"


def test_transactional_sms_needs_a_phone_and_no_opt_out() -> None:
    assert domain.transactional_sms_allowed(opted_out=False, phone_number="+972501234567")
    assert not domain.transactional_sms_allowed(opted_out=True, phone_number="+972501234567")
    assert not domain.transactional_sms_allowed(opted_out=False, phone_number="")


def test_transactional_email_needs_an_address_and_no_opt_out() -> None:
    assert domain.transactional_email_allowed(opted_out=False, email="dana@example.com")
    assert not domain.transactional_email_allowed(opted_out=True, email="dana@example.com")
    assert not domain.transactional_email_allowed(opted_out=False, email=" ")


def test_email_and_locale_normalization() -> None:
    assert domain.normalize_email("  Dana@Example.CO.IL ") == "dana@example.co.il"
    assert domain.normalize_locale("") == "he-IL"
    assert domain.normalize_locale("fa-IR") == "fa-IR"


def test_consent_survivorship() -> None:
    """Per channel: an opt-out on either profile wins, advertising only with both profiles' yes."""

    class P:
        def __init__(self, opt_out: bool, marketing: bool, email_opt_out: bool = False, email_marketing: bool = False):
            self.transactional_sms_opt_out, self.marketing_sms_consent = opt_out, marketing
            self.transactional_email_opt_out, self.marketing_email_consent = email_opt_out, email_marketing

    assert domain.merged_consent(P(False, True, False, True), P(False, True, False, True)) == {
        "transactional_sms_opt_out": False,
        "marketing_sms_consent": True,
        "transactional_email_opt_out": False,
        "marketing_email_consent": True,
    }
    assert domain.merged_consent(P(False, True, True, True), P(True, False, False, False)) == {
        "transactional_sms_opt_out": True,
        "marketing_sms_consent": False,
        "transactional_email_opt_out": True,
        "marketing_email_consent": False,
    }
