"""Promotions' rules: the states a promotion goes through, its texts (checked like a preview, per
locale and A/B variant), which variant and text a recipient gets and how it reads, and which
variant wins an A/B test. Pure, no I/O.

A/B variants: texts of two or three variants (A, B, C; each with its own texts per locale). Each
recipient falls in a bucket by a hash of the promotion and the customer, so a restart, a second
runner or a re-resolved page puts everyone where they were. With `test_percent` 0 the variants
split the whole audience evenly. Otherwise that share of the audience gets the variants (evenly),
the rest waits; `winner_wait_minutes` after the last test message the winner is the variant with
the most clicks, or the most revenue (won deals within the wait, in the promotion's currency), or
the most opens, per message sent — a tie goes to the earlier letter — and the rest gets it.

Opens only where a promotion opts in (`track_opens`, e-mail only): its HTML then carries a 1×1
image under the message's link code, and the gateway's `/o/<code>` records the first fetch. An open
is a weak signal, and the report says so: mail clients that fetch images for privacy (Apple Mail
since 2021) open every message, others load no images; and an image that reports a reading costs
the reader some privacy, so it is off unless chosen. Clicks and revenue are the rules to prefer.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, time
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from crm_notifications import advertising, domain
from crm_notifications.preview import LOCALES, Draft, preview
from crm_notifications.sms_segments import count_parts

VARIANTS = ("A", "B", "C")
MAX_TEXTS = len(LOCALES) * len(VARIANTS)
MAX_NAME = 200
WINNER_RULES = ("clicks", "revenue", "opens")
MAX_TEST_PERCENT = 50
DEFAULT_WINNER_WAIT_MINUTES = 240
MAX_WINNER_WAIT_MINUTES = 7 * 24 * 60


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
    variant: str = "A"


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
        return [Problem("texts", f"1 to {MAX_TEXTS} texts, one per locale and variant")]
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    for i, text in enumerate(texts[:MAX_TEXTS]):
        where = f"texts[{i}]"
        if text.variant not in VARIANTS:
            problems.append(Problem(f"{where}.variant", f"one of {', '.join(VARIANTS)}"))
            continue
        if text.locale not in LOCALES or (text.variant, text.locale) in seen:
            problems.append(Problem(f"{where}.locale", f"one of {', '.join(LOCALES)}, each once per variant"))
            continue
        seen.add((text.variant, text.locale))
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
        problems.append(Problem("texts", f"at most {MAX_TEXTS} texts, one per locale and variant"))
    return problems


def stored_texts(rows: Sequence[Mapping[str, Any]]) -> list[Text]:
    """A promotion's texts as its row keeps them (JSON; rows before A/B variants have no variant: A)."""
    return [Text(t["locale"], t.get("subject", ""), t["body"], t.get("variant", VARIANTS[0])) for t in rows]


def variants_in(texts: Sequence[Text]) -> tuple[str, ...]:
    """The A/B variants the texts name, in order (("A",) without variants)."""
    return tuple(v for v in VARIANTS if any(t.variant == v for t in texts)) or ("A",)


def check_test(
    texts: Sequence[Text], test_percent: int, winner_rule: str, winner_wait_minutes: int, *, track_opens: bool = False
) -> list[Problem]:
    """Every reason the A/B settings do not fit the texts: variants from A on without a gap; a
    test share of 0 to 50 % only with two or three variants; a winner rule with a share, and a
    share with a rule; opens only where they are tracked; a wait of at most a week."""
    variants = variants_in(texts)
    problems: list[Problem] = []
    if variants != VARIANTS[: len(variants)]:
        problems.append(Problem("texts", f"variants are {', '.join(VARIANTS[: len(variants)])}: no letter skipped"))
    if len(variants) < 2 and (test_percent or winner_rule):
        problems.append(Problem("test_percent", "an A/B test needs texts of two or three variants"))
        return problems
    if not 0 <= test_percent <= MAX_TEST_PERCENT:
        problems.append(Problem("test_percent", f"0 (split all evenly) to {MAX_TEST_PERCENT} %"))
    if test_percent and winner_rule not in WINNER_RULES:
        problems.append(Problem("winner_rule", f"one of {', '.join(WINNER_RULES)}"))
    if winner_rule == "opens" and not track_opens:
        problems.append(Problem("winner_rule", "opens only when the e-mails track them (track_opens)"))
    if not test_percent and winner_rule:
        problems.append(Problem("winner_rule", "a winner needs a test share (test_percent 1 to 50)"))
    if not 1 <= winner_wait_minutes <= MAX_WINNER_WAIT_MINUTES:
        problems.append(Problem("winner_wait_minutes", f"1 to {MAX_WINNER_WAIT_MINUTES} (a week); 0: 240"))
    return problems


def assign_variant(promotion_id: str, customer_id: str, variants: Sequence[str], test_percent: int) -> str | None:
    """The recipient's variant: by a hash of the promotion and the customer, so it never changes;
    None without variants, or for the share that waits for the winner."""
    if len(variants) < 2:
        return None
    digest = hashlib.sha256(f"{promotion_id}:{customer_id}".encode()).digest()
    pick = variants[int.from_bytes(digest[4:8], "big") % len(variants)]
    if not test_percent:
        return pick
    return pick if int.from_bytes(digest[:4], "big") % 10_000 < test_percent * 100 else None


@dataclass(frozen=True)
class VariantScore:
    variant: str
    sent: int
    clicks: int
    revenue_minor: int
    opens: int = 0


def pick_winner(rule: str, scores: Sequence[VariantScore]) -> str:
    """The variant with the most clicks, revenue or opens per message sent; a tie (or nothing
    sent) goes to the earliest letter."""

    def per_message(score: VariantScore) -> float:
        achieved = {"clicks": score.clicks, "opens": score.opens}.get(rule, score.revenue_minor)
        return achieved / score.sent if score.sent else 0.0

    ranked = sorted(scores, key=lambda s: (-per_message(s), s.variant))
    return ranked[0].variant if ranked else VARIANTS[0]


def _uses_link(text: Text) -> bool:
    return "link" in advertising.placeholders(text.body) | advertising.placeholders(text.subject)


def choose_text(texts: Sequence[Text], locale: str, variant: str | None = None) -> Text:
    """The variant's text in the recipient's locale, else the variant's first (its main language)."""
    own = [t for t in texts if t.variant == (variant or VARIANTS[0])] or list(texts)
    wanted = locale.strip().lower()
    return next((t for t in own if t.locale.lower() == wanted), own[0])


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


@dataclass(frozen=True)
class Personalizer:
    """What makes a text one recipient's own message: their unsubscribe link (signed for them and
    the promotion) and, when the promotion has a landing page, their own short tracked link."""

    secret: bytes
    advertiser: advertising.Advertiser
    # The recipient's unsubscribe page (the console) and the short links' base (the gateway's /r).
    unsubscribe_page_url: str
    short_link_url: str

    def message(
        self, promotion_id: str, text: Text, recipient: Recipient, *, today: date, with_link: bool
    ) -> tuple[str, str, str | None]:
        """(subject, body, the short link's code or None)."""
        token = unsubscribe_token(self.secret, promotion_id, recipient.customer_id)
        code = new_link_code() if with_link else None
        subject, body = render(
            text,
            recipient,
            today=today,
            advertiser=self.advertiser,
            unsubscribe_link=unsubscribe_link(self.unsubscribe_page_url, token),
            link=f"{self.short_link_url.rstrip('/')}/{code}" if code else "",
        )
        return subject, body, code


@dataclass(frozen=True)
class LocaleEstimate:
    locale: str
    recipients: int
    parts_per_message: int

    @property
    def sms_parts(self) -> int:
        return self.recipients * self.parts_per_message


# Stands in for a recipient when no sampled one is of a locale (a customer id is a UUID: its length
# is what the unsubscribe link's length depends on).
_SOMEONE = Recipient("00000000-0000-0000-0000-000000000000", "", "", "")


def recipient_groups(reachable: int, by_locale: Mapping[str, int]) -> dict[str, int]:
    """The reachable recipients per locale, those of no known locale under ""."""
    groups = {locale: n for locale, n in by_locale.items() if n}
    if reachable > sum(groups.values()):
        groups[""] = reachable - sum(groups.values())
    return groups


def estimate_sms(
    texts: Sequence[Text],
    reachable: int,
    by_locale: Mapping[str, int],
    sample: Sequence[Recipient],
    body_of: Callable[[Text, Recipient], str],
) -> list[LocaleEstimate]:
    """Per recipients' locale ("" for those with none, who get the first text): how many, and the
    most SMS parts one message takes, each variant's text rendered (`body_of`) for each sampled
    recipient of that locale, or for the sample's longest name when none is of it. An upper bound
    per message, so the total is what a budget can hold the promotion to."""
    longest = max(sample, key=lambda r: len(r.full_name), default=_SOMEONE)
    found = []
    for locale, recipients in recipient_groups(reachable, by_locale).items():
        who = [r for r in sample if r.locale.lower() == locale.lower()] or [replace(longest, locale=locale)]
        parts = max(
            count_parts(body_of(choose_text(texts, locale, variant), r)).parts
            for variant in variants_in(texts)
            for r in who
        )
        found.append(LocaleEstimate(locale, recipients, parts))
    return found


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
    """A message's short link and open image code (`/r/<code>`, `/o/<code>`): random, so it names nothing."""
    return secrets.token_urlsafe(LINK_CODE_BYTES)


def landing_url(link_url: str, channel: str, promotion_name: str) -> str:
    """Where a click lands: the promotion's page with UTM parameters naming the channel and the
    promotion (the landing page's own parameters kept; theirs win)."""
    parts = urlsplit(link_url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    utm = {"utm_source": channel, "utm_medium": "promotion", "utm_campaign": promotion_name}
    return urlunsplit(parts._replace(query=urlencode({**utm, **query})))
