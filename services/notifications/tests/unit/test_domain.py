from datetime import date

import pytest

from crm.orders.v1 import events_pb2 as order_events
from crm_kit.bus import EventBus
from crm_notifications import domain
from crm_notifications.main import NotificationsSettings

pytestmark = pytest.mark.unit

DELIVERY = date(2026, 12, 3)
HE = "שלום {name}, ההזמנה שלך נשלחה עם {carrier} (מעקב {tracking}). מועד מסירה משוער: {date}."
FA = "سلام {name}، سفارش شما با {carrier} ارسال شد (کد رهگیری {tracking}). تاریخ تقریبی تحویل: {date}."
EN = "Hello {name}, your order has shipped with {carrier} (tracking {tracking}). Estimated delivery: {date}."


@pytest.mark.parametrize(
    ("locale", "expected"),
    [("he-IL", "3.12.2026"), ("fa-IR", "۱۴۰۵/۰۹/۱۲"), ("en-US", "12/3/26")],
)
def test_delivery_date_is_the_locales_short_date(locale: str, expected: str) -> None:
    assert domain.format_delivery_date(DELIVERY, locale) == expected


@pytest.mark.parametrize(
    ("template", "locale", "name", "carrier", "expected"),
    [
        (
            HE,
            "he-IL",
            "דנה כהן",
            "דואר ישראל",
            "שלום דנה כהן, ההזמנה שלך נשלחה עם דואר ישראל (מעקב RR123IL). מועד מסירה משוער: 3.12.2026.",
        ),
        (
            FA,
            "fa-IR",
            "علی رضایی",
            "پست ایران",
            "سلام علی رضایی، سفارش شما با پست ایران ارسال شد (کد رهگیری RR123IL). تاریخ تقریبی تحویل: ۱۴۰۵/۰۹/۱۲.",
        ),
        (
            EN,
            "en-US",
            "Noa Levi",
            "UPS",
            "Hello Noa Levi, your order has shipped with UPS (tracking RR123IL). Estimated delivery: 12/3/26.",
        ),
    ],
)
def test_shipment_text_in_each_language(template: str, locale: str, name: str, carrier: str, expected: str) -> None:
    shipment = domain.Shipment(name=name, carrier=carrier, tracking="RR123IL", delivery_date=DELIVERY)
    assert domain.render_order_shipped(template, locale, shipment) == expected


@pytest.mark.parametrize(
    ("template", "locale", "expected"),
    [
        ("{date:long}", "fa-IR", "۱۲ آذر ۱۴۰۵"),
        ("{date:latn}", "fa-IR", "1405/09/12"),
        ("{date:gregorian}", "fa-IR", "۲۰۲۶/۱۲/۳"),
        ("{date:long}", "he-IL", "3 בדצמבר 2026"),
        ("{date:long}", "en-US", "December 3, 2026"),
        # A mistyped format in a stored template: still the right date, in the locale's own form.
        ("{date:lng}", "fa-IR", "۱۴۰۵/۰۹/۱۲"),
    ],
)
def test_a_template_asks_for_the_dates_form(template: str, locale: str, expected: str) -> None:
    shipment = domain.Shipment(name="", carrier="", tracking="", delivery_date=DELIVERY)
    assert domain.render_order_shipped(template, locale, shipment) == expected


def test_an_unknown_placeholder_is_left_as_written() -> None:
    shipment = domain.Shipment(name="Noa", carrier="UPS", tracking="1Z", delivery_date=DELIVERY)
    assert domain.render_order_shipped("{name}: {eta} / {date}", "en-US", shipment) == "Noa: {eta} / 12/3/26"


@pytest.mark.parametrize(
    ("requested", "chosen"),
    [("he-IL", "he-IL"), ("fa-IR", "fa-IR"), ("EN-us", "en-US"), ("ru-RU", "he-IL"), ("", "he-IL")],
)
def test_unknown_locale_falls_back_to_hebrew(requested: str, chosen: str) -> None:
    assert domain.choose_locale(requested, {"he-IL", "fa-IR", "en-US"}) == chosen


@pytest.mark.parametrize(
    ("phone", "allowed", "reason"),
    [
        ("+972501234567", True, None),
        ("+972501234567", False, domain.SuppressionReason.NO_CONSENT),
        ("", True, domain.SuppressionReason.NO_PHONE),
        ("  ", False, domain.SuppressionReason.NO_CONSENT),
    ],
)
def test_suppression_needs_consent_and_a_phone(phone: str, allowed: bool, reason: str | None) -> None:
    assert domain.suppression_reason(phone_number=phone, transactional_sms_allowed=allowed) == reason


def test_one_key_per_order() -> None:
    assert domain.order_shipped_key("o-1") == "order-shipped:o-1"
    assert domain.metric_reason(domain.SuppressionReason.NO_CONSENT) == "no_consent"


async def _noop(envelope: object) -> None:
    return None


def test_inbox_consumer_is_the_chassis_durable_name() -> None:
    bus = EventBus(NotificationsSettings(), None)
    bus.subscribe(order_events.OrderShipped, _noop, transactional=False)
    assert bus.subscriptions[0].durable == bus.durable_for(order_events.OrderShipped) == "notifications-order-shipped"


def test_production_refuses_the_development_sms_key() -> None:
    with pytest.raises(ValueError, match="sms_api_key"):
        NotificationsSettings(environment="production")
    assert NotificationsSettings(environment="production", sms_api_key="k-live-123").sms_api_key == "k-live-123"


@pytest.mark.parametrize(
    ("sms_allowed", "phone", "email_allowed", "email", "enabled", "expected"),
    [
        (True, "+972501234567", True, "d@example.com", True, domain.Route("sms", "+972501234567")),
        (False, "+972501234567", True, " d@example.com ", True, domain.Route("email", "d@example.com")),
        (True, "", True, "d@example.com", True, domain.Route("email", "d@example.com")),
        (False, "+972501234567", True, "d@example.com", False, domain.SuppressionReason.NO_CONSENT),
        (False, "+972501234567", False, "d@example.com", True, domain.SuppressionReason.NO_CONSENT),
        (True, "", True, "", True, domain.SuppressionReason.NO_PHONE),
    ],
    ids=["sms-first", "email-when-no-sms-consent", "email-when-no-phone", "no-relay", "no-consent", "nothing"],
)
def test_a_service_message_goes_by_sms_first_then_e_mail(
    sms_allowed: bool, phone: str, email_allowed: bool, email: str, enabled: bool, expected: object
) -> None:
    route = domain.service_route(
        phone_number=phone, sms_allowed=sms_allowed, email=email, email_allowed=email_allowed, email_enabled=enabled
    )
    assert route == expected


def test_the_e_mail_html_is_escaped_right_to_left_and_makes_the_link_a_button() -> None:
    text = "שלום <דנה> & שות׳,\nשורה שנייה\n\nhttps://crm.example/s/tok?lang=he\n\nתודה"
    page = domain.email_html(text, "he-IL")
    assert '<html lang="he" dir="rtl">' in page and "text-align:right" in page
    assert "<p>שלום &lt;דנה&gt; &amp; שות׳,<br>שורה שנייה</p>" in page
    assert '<p><a href="https://crm.example/s/tok?lang=he" style=' in page
    assert "<script" not in domain.email_html("<script>alert(1)</script>", "en-US")
    assert '<html lang="en" dir="ltr">' in domain.email_html("Hi https://x.example/a", "en-US")
    assert '<a href="https://x.example/a">https://x.example/a</a>' in domain.email_html(
        "Hi https://x.example/a", "en-US"
    )


def test_smtp_settings_refuse_a_login_in_clear_and_a_weak_password_in_production() -> None:
    assert NotificationsSettings().smtp() is None  # no host: no e-mail
    with pytest.raises(ValueError, match="in clear"):
        NotificationsSettings(smtp_host="relay.example", smtp_username="crm", smtp_security="none")
    with pytest.raises(ValueError, match="smtp_from_address"):
        NotificationsSettings(smtp_host="relay.example", smtp_from_address="crm")
    with pytest.raises(ValueError, match="smtp_password"):
        NotificationsSettings(
            environment="production", sms_api_key="k" * 32, smtp_host="relay.example", smtp_username="crm"
        )
    relay = NotificationsSettings(smtp_host="relay.example", smtp_port=465, smtp_security="tls").smtp()
    assert relay is not None and (relay.host, relay.port, relay.security) == ("relay.example", 465, "tls")


def test_a_tracked_e_mail_carries_its_open_image_last_and_an_untracked_one_none() -> None:
    tracked = domain.email_html("שלום", "he-IL", open_image='https://crm.example/o/Ab_9"x')
    assert tracked.index("<p>שלום</p>") < tracked.index('<img src="https://crm.example/o/Ab_9&quot;x" width="1"')
    assert 'alt=""' in tracked
    assert "<img" not in domain.email_html("שלום", "he-IL")
