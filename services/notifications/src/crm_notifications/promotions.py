"""Promotions' rules: the states a promotion goes through, its texts (checked like a preview, per
locale), which text a recipient gets and how it reads. Pure, no I/O."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, time
from enum import StrEnum
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from crm_notifications import advertising, domain
from crm_notifications.preview import LOCALES, Draft, preview

MAX_TEXTS = len(LOCALES)
MAX_NAME = 200


class PromotionStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    AWAITING_APPROVAL = "awaiting_approval"


FINISHED = frozenset({PromotionStatus.COMPLETED, PromotionStatus.CANCELLED})
# What each action may start from; anything else is FAILED_PRECONDITION naming the status.
PAUSABLE = frozenset({PromotionStatus.SCHEDULED, PromotionStatus.SENDING})
CANCELLABLE = frozenset(
    {
        PromotionStatus.DRAFT,
        PromotionStatus.AWAITING_APPROVAL,
        PromotionStatus.SCHEDULED,
        PromotionStatus.SENDING,
        PromotionStatus.PAUSED,
    }
)


@dataclass(frozen=True)
class Text:
    locale: str
    subject: str
    body: str


@dataclass(frozen=True)
class Problem:
    field: str
    description: str


def promotion_key(promotion_id: str, customer_id: str) -> str:
    """The idempotency key of a promotion's message to one customer: one per person, whatever
    the restarts, pauses or overlapping runners."""
    return f"promotion:{promotion_id}:{customer_id}"


def request_key(created_by: str, request_id: str) -> str | None:
    """A create request's retry key, its caller's own (None without a request id)."""
    if not request_id:
        return None
    return hashlib.sha256(f"{created_by}\x00{request_id}".encode()).hexdigest()


def check_texts(
    channel: str,
    texts: Sequence[Text],
    *,
    rules: advertising.AdvertisingRules,
    advertiser: advertising.Advertiser,
    today: date,
    unsubscribe_link: str,
    has_link: bool = False,
) -> list[Problem]:
    """Every reason the texts cannot be sent as advertising on channel: a locale that is unknown
    or repeated, a missing subject (e-mail) or one on an SMS, unknown placeholders, and what the
    country's advertising rules find missing — each named by its place (``texts[1].body``)."""
    if not texts:
        return [Problem("texts", f"1 to {MAX_TEXTS} texts, one per locale")]
    problems: list[Problem] = []
    seen: set[str] = set()
    for i, text in enumerate(texts[:MAX_TEXTS]):
        where = f"texts[{i}]"
        if text.locale not in LOCALES or text.locale in seen:
            problems.append(Problem(f"{where}.locale", f"one of {', '.join(LOCALES)}, each once"))
            continue
        seen.add(text.locale)
        if not text.body.strip():
            problems.append(Problem(f"{where}.body", "a text to send"))
            continue
        if (channel == domain.EMAIL) != bool(text.subject.strip()):
            wanted = "an e-mail needs a subject" if channel == domain.EMAIL else "an SMS has no subject"
            problems.append(Problem(f"{where}.subject", wanted))
            continue
        shown = preview(
            Draft(channel, True, text.locale, text.subject, text.body),
            rules=rules,
            advertiser=advertiser,
            today=today,
            unsubscribe_link=unsubscribe_link,
        )
        problems += [Problem(f"{where}.{v.field}", f"{v.rule}: {v.description}") for v in shown.violations]
        if not has_link and not shown.violations and _uses_link(text):
            problems.append(Problem(f"{where}.body", "unknown_field: {link} needs the promotion's link_url"))
    if len(texts) > MAX_TEXTS:
        problems.append(Problem("texts", f"at most {MAX_TEXTS} texts, one per locale"))
    return problems


def _uses_link(text: Text) -> bool:
    return "link" in advertising.placeholders(text.body) | advertising.placeholders(text.subject)


def choose_text(texts: Sequence[Text], locale: str) -> Text:
    """The recipient's locale's text, else the first (the promotion's main language)."""
    wanted = locale.strip().lower()
    return next((t for t in texts if t.locale.lower() == wanted), texts[0])


@dataclass(frozen=True)
class Recipient:
    customer_id: str
    address: str
    locale: str
    full_name: str


def render(
    text: Text,
    recipient: Recipient,
    *,
    today: date,
    advertiser: advertising.Advertiser,
    unsubscribe_link: str,
    link: str = "",
) -> tuple[str, str]:
    """(subject, body) as this recipient reads them; the date in the text's locale, {link} their
    own tracked short link."""
    values = domain.KeepUnknown(
        name=recipient.full_name,
        date=domain.LocalDay(today, text.locale),
        advertiser=advertiser.name,
        advertiser_contact=advertiser.contact,
        unsubscribe_link=unsubscribe_link,
        link=link,
    )
    return text.subject.format_map(values), text.body.format_map(values)


def unsubscribe_token(secret: bytes, promotion_id: str, customer_id: str) -> str:
    """The recipient's own unsubscribe token: who and which promotion, signed (HMAC-SHA256, 128
    bits), so a link can neither be guessed nor changed to unsubscribe someone else."""
    payload = f"{promotion_id}.{customer_id}"
    return f"{payload}.{hmac.new(secret, payload.encode(), hashlib.sha256).hexdigest()[:32]}"


def read_unsubscribe_token(secret: bytes, token: str) -> tuple[str, str] | None:
    """(promotion id, customer id) of a token this service signed; None for any other text."""
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        return None
    expected = unsubscribe_token(secret, parts[0], parts[1])
    return (parts[0], parts[1]) if hmac.compare_digest(expected.encode(), token.encode()) else None


def unsubscribe_link(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/u/{token}"


def quiet_hours(window: str) -> tuple[time, time] | None:
    """A daily window "HH:MM-HH:MM" (it may cross midnight: "21:00-08:00"), or None for ""."""
    if not window.strip():
        return None
    try:
        start, end = (time.fromisoformat(part.strip()) for part in window.split("-"))
    except ValueError as exc:
        raise ValueError(f"quiet hours {window!r}: write HH:MM-HH:MM, e.g. 21:00-08:00") from exc
    if start == end:
        raise ValueError(f"quiet hours {window!r}: the window starts and ends at the same time")
    return start, end


def in_quiet_hours(now: time, window: tuple[time, time] | None) -> bool:
    """Whether `now` (the company's local time) falls in the quiet window."""
    if window is None:
        return False
    start, end = window
    return start <= now < end if start < end else now >= start or now < end


LINK_CODE_BYTES = 6  # 8 URL-safe characters: 48 bits, one per message, never guessed in practice


def new_link_code() -> str:
    """A message's short link code (`/r/<code>`): random, so it names nothing by itself."""
    return secrets.token_urlsafe(LINK_CODE_BYTES)


def landing_url(link_url: str, channel: str, promotion_name: str) -> str:
    """Where a click lands: the promotion's page with UTM parameters naming the channel and the
    promotion (the landing page's own parameters kept; theirs win)."""
    parts = urlsplit(link_url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    utm = {"utm_source": channel, "utm_medium": "promotion", "utm_campaign": promotion_name}
    return urlunsplit(parts._replace(query=urlencode({**utm, **query})))
