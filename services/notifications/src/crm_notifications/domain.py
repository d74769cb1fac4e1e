"""Notifications domain rules: message states, template choice, rendering. Pure, no I/O."""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from crm_kit.calendars import UnknownDateFormat, format_day

DEFAULT_LOCALE = "he-IL"
ORDER_SHIPPED_TEMPLATE = "order_shipped"
TICKET_SURVEY_TEMPLATE = "ticket_survey"
TICKET_SURVEY_EMAIL_TEMPLATE = "ticket_survey_email"
SMS = "sms"
EMAIL = "email"


@dataclass(frozen=True)
class Template:
    """A message template of one locale: the body, and an e-mail's subject ("" for SMS)."""

    body: str
    subject: str = ""


@dataclass(frozen=True)
class Route:
    """Which channel a message goes by, and to whom."""

    channel: str
    recipient: str


class MessageStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    SUPPRESSED = "suppressed"


# A message in one of these states is settled: a redelivered event must not touch it again.
SETTLED = frozenset({MessageStatus.SENT, MessageStatus.FAILED, MessageStatus.SUPPRESSED})


class SuppressionReason(StrEnum):
    NO_CONSENT = "no consent"
    NO_PHONE = "no phone"


PROVIDER_REJECTED = "provider rejected"


def order_shipped_key(order_id: str) -> str:
    """The idempotency key of the shipment SMS: one per order, whatever the event id."""
    return f"order-shipped:{order_id}"


def choose_locale(requested: str, available: Iterable[str]) -> str:
    """The template locale for a customer: theirs when a template exists (any case), else he-IL."""
    by_lower = {loc.lower(): loc for loc in available}
    return by_lower.get(requested.strip().lower(), DEFAULT_LOCALE)


def format_delivery_date(day: date, locale: str, spec: str = "") -> str:
    """The day as the customer's locale (BCP 47) writes it (crm_kit.calendars.format_day).

    For 2026-12-03: he-IL ``3.12.2026`` (CLDR's short date), fa-IR ``۱۴۰۵/۰۹/۱۲`` (12 Azar 1405:
    the Solar Hijri calendar in Persian digits, as Iran writes a date), en-US ``12/3/26``; a
    template asks for another form with ``{date:long}``, ``{date:gregorian}``, ``{date:latn}``…
    """
    return format_day(day, locale, spec)


@dataclass(frozen=True)
class LocalDay:
    """A day in a template: ``{date}`` the locale's own numeric form, ``{date:long}`` with the
    month's name, ``gregorian``/``jalali`` and ``latn`` digits where the template asks for them."""

    day: date
    locale: str

    def __format__(self, spec: str) -> str:
        try:
            return format_delivery_date(self.day, self.locale, spec)
        except UnknownDateFormat:
            # A stored template with a mistyped format still gives the customer a right date.
            return format_delivery_date(self.day, self.locale)


class KeepUnknown(dict[str, object]):
    # A template edited with a typo in a placeholder still renders the rest instead of failing.
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


@dataclass(frozen=True)
class Shipment:
    name: str
    carrier: str
    tracking: str
    delivery_date: date


def render_order_shipped(template: str, locale: str, shipment: Shipment) -> str:
    """The shipment SMS text: template placeholders {name} {carrier} {tracking} {date} filled in."""
    return template.format_map(
        KeepUnknown(
            name=shipment.name,
            carrier=shipment.carrier,
            tracking=shipment.tracking,
            date=LocalDay(shipment.delivery_date, locale),
        )
    )


def suppression_reason(*, phone_number: str, transactional_sms_allowed: bool) -> SuppressionReason | None:
    """Why a transactional SMS must not go out to this customer, or None when it may."""
    if not transactional_sms_allowed:
        return SuppressionReason.NO_CONSENT
    if not phone_number.strip():
        return SuppressionReason.NO_PHONE
    return None


def service_route(
    *, phone_number: str, sms_allowed: bool, email: str, email_allowed: bool, email_enabled: bool
) -> Route | SuppressionReason:
    """Where a service message that may go by SMS or e-mail (a survey) goes: by SMS when the
    customer allows service SMS and has a number (one tap on the phone they called from), else by
    e-mail when they allow service e-mail, have an address and an SMTP relay is configured; else
    why neither may (the SMS's reason: it is the channel tried first)."""
    reason = suppression_reason(phone_number=phone_number, transactional_sms_allowed=sms_allowed)
    if reason is None:
        return Route(SMS, phone_number)
    if email_enabled and email_allowed and email.strip():
        return Route(EMAIL, email.strip())
    return reason


_URL = re.compile(r"https?://[^\s<>\"]+")


def email_html(text: str, locale: str, open_image: str = "") -> str:
    """An e-mail's HTML part from its text: the text escaped, paragraphs at blank lines, links made
    clickable (a bare link line becomes a button), right-to-left for Hebrew and Persian; with
    open_image, a 1×1 image from that URL at the end (a promotion that tracks opens)."""
    lang = (locale.split("-")[0] or "he").lower()
    direction = "rtl" if lang in ("he", "fa", "ar") else "ltr"
    align = "right" if direction == "rtl" else "left"
    paragraphs = []
    for block in re.split(r"\n\s*\n", text.strip()):
        stripped = block.strip()
        if _URL.fullmatch(stripped):
            url = html.escape(stripped, quote=True)
            paragraphs.append(
                f'<p><a href="{url}" style="display:inline-block;padding:12px 20px;background:#1d4ed8;'
                f'color:#ffffff;text-decoration:none;border-radius:6px">{url}</a></p>'
            )
            continue
        escaped = html.escape(stripped).replace("\n", "<br>")
        paragraphs.append("<p>" + _URL.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', escaped) + "</p>")
    if open_image:
        src = html.escape(open_image, quote=True)
        paragraphs.append(f'<img src="{src}" width="1" height="1" alt="" style="display:block;border:0">')
    body = "\n".join(paragraphs)
    return (
        f'<!DOCTYPE html>\n<html lang="{html.escape(lang)}" dir="{direction}">\n'
        '<head><meta charset="utf-8"><meta name="viewport" content="width=device-width"></head>\n'
        f'<body style="direction:{direction};text-align:{align};font-family:Arial,Tahoma,sans-serif;'
        f'font-size:16px;line-height:1.5">\n{body}\n</body>\n</html>\n'
    )


def metric_reason(reason: str) -> str:
    """A failure reason as a Prometheus label value (``no consent`` → ``no_consent``)."""
    return reason.replace(" ", "_")


def ticket_survey_key(ticket_id: str, survey_token: str) -> str:
    """One survey SMS per resolution: a reopened ticket resolved again has a new token, so a new
    key. The token itself stays out of the key (the provider logs keys)."""
    return f"ticket-survey:{ticket_id}:{hashlib.sha256(survey_token.encode()).hexdigest()[:16]}"


def survey_link(base_url: str, token: str, locale: str) -> str:
    """The one-tap survey page in the console, in the customer's language."""
    lang = locale.split("-")[0].lower() if locale else "he"
    return f"{base_url.rstrip('/')}/s/{token}?lang={lang if lang in ('he', 'fa', 'en') else 'he'}"


_SURVEY_TOKEN = re.compile(r"/s/[A-Za-z0-9_-]{8,}")


def redacted(body: str) -> str:
    """A message's text as anyone but its recipient reads it (the API, the customer's timeline): a
    survey link's token is the customer's credential to score the ticket, so it is cut out."""
    return _SURVEY_TOKEN.sub("/s/…", body)


def render_survey(template: str, *, name: str, number: int, link: str) -> str:
    """The survey SMS text: placeholders {name} {number} {link} filled in."""
    return template.format_map(KeepUnknown(name=name, number=str(number), link=link))
