"""The rules an advertising message must meet before it may be sent, per country, as configuration
— checked on the text as the recipient will read it (placeholders filled in). Pure.

Shipped: Israel (`IL`, the default: Communications Law §30A — "פרסומת" at the start of an
advertising SMS and of an e-mail's subject, the advertiser's name and a way to reach them, and how
to refuse by a reply in the same channel) and Iran (`IR`: the CRA's rules — an SMS ends with
"لغو ۱۱", a reply of 11 stops them). `CRM_ADVERTISING_RULES` names one of them or a JSON file of
the same shape. Every advertising e-mail carries the recipient's unsubscribe link (the
`{unsubscribe_link}` placeholder) wherever it is sent. Consent to advertising is a separate check,
per recipient, where messages leave (customers' consent rules).
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crm_kit import country_rules
from crm_kit.calendars import latin_digits, persian_digits

DATA = Path(__file__).resolve().parent / "data"
SHIPPED = {"IL": DATA / "advertising_il.json", "IR": DATA / "advertising_ir.json"}
SMS = "sms"
EMAIL = "email"
UNSUBSCRIBE_LINK = "unsubscribe_link"


@dataclass(frozen=True)
class SmsRules:
    # The word the text must start with (None: no marker asked).
    marker: str | None
    # The words a recipient replies to refuse; the text must name one of them.
    opt_out_keywords: tuple[str, ...]
    # What the text must end with (None: nothing asked).
    suffix: str | None
    advertiser_identity: bool
    # The words a recipient who refused replies to subscribe again (Iran's 12); none: a refusal
    # is lifted only by a new consent recorded in customers.
    resubscribe_keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class EmailRules:
    subject_marker: str | None
    advertiser_identity: bool


@dataclass(frozen=True)
class AdvertisingRules:
    country: str
    law: str
    sms: SmsRules
    email: EmailRules


@dataclass(frozen=True)
class Advertiser:
    """Who advertises, as every advertising message must name them where the law asks."""

    name: str
    contact: str


@dataclass(frozen=True)
class Violation:
    field: str  # "subject" or "body"
    rule: str  # advertising_marker, opt_out, opt_out_suffix, advertiser_identity, unsubscribe_link
    description: str


class InvalidAdvertisingRules(ValueError):
    """A rules file that cannot be right; the service refuses to start with it."""


def parse(data: Any, where: str) -> AdvertisingRules:
    try:
        sms, email = data["sms"], data["email"]
        rules = AdvertisingRules(
            country=str(data["country"]),
            law=str(data["law"]),
            sms=SmsRules(
                marker=sms["marker"],
                opt_out_keywords=tuple(sms["opt_out_keywords"]),
                suffix=sms["suffix"],
                advertiser_identity=sms["advertiser_identity"],
                resubscribe_keywords=tuple(sms.get("resubscribe_keywords", ())),
            ),
            email=EmailRules(subject_marker=email["subject_marker"], advertiser_identity=email["advertiser_identity"]),
        )
    except (KeyError, TypeError) as exc:
        raise InvalidAdvertisingRules(f"{where}: missing or malformed {exc}") from exc
    texts = (
        rules.sms.marker,
        rules.sms.suffix,
        rules.email.subject_marker,
        *rules.sms.opt_out_keywords,
        *rules.sms.resubscribe_keywords,
    )
    if not all(t is None or (isinstance(t, str) and t.strip()) for t in texts):
        raise InvalidAdvertisingRules(f"{where}: markers, suffix and keywords are non-empty text or null")
    if not rules.sms.opt_out_keywords:
        raise InvalidAdvertisingRules(f"{where}: an advertising SMS must say how to refuse: name its opt-out keywords")
    if _keys(rules.sms.resubscribe_keywords) & (REFUSAL_WORDS | _keys(rules.sms.opt_out_keywords)):
        raise InvalidAdvertisingRules(f"{where}: a re-subscribe keyword cannot also refuse")
    if not all(isinstance(b, bool) for b in (rules.sms.advertiser_identity, rules.email.advertiser_identity)):
        raise InvalidAdvertisingRules(f"{where}: advertiser_identity must be true or false")
    return rules


def load(name: str) -> AdvertisingRules:
    """A shipped country's rules by its code (IL, IR), or a rules file by its path."""
    try:
        data, where = country_rules.read(name, SHIPPED, "advertising rules")
    except country_rules.UnreadableRules as exc:
        raise InvalidAdvertisingRules(str(exc)) from exc
    return parse(data, where)


def _names_word(text: str, word: str) -> bool:
    """`word` stands alone in text (not inside another word: "להסרה" does not name "הסר")."""
    return re.search(rf"(?<!\w){re.escape(latin_digits(word))}(?!\w)", latin_digits(text), re.IGNORECASE) is not None


def _identity(text: str, advertiser: Advertiser) -> bool:
    return bool(advertiser.name and advertiser.contact) and advertiser.name in text and advertiser.contact in text


def check_sms(body: str, rules: SmsRules, advertiser: Advertiser) -> list[Violation]:
    """What the advertising SMS `body` (as the recipient reads it) lacks under `rules`."""
    found = []
    text = body.strip()
    if rules.marker and not text.startswith(rules.marker):
        found.append(Violation("body", "advertising_marker", f"an advertising SMS starts with “{rules.marker}”"))
    if not any(_names_word(text, k) for k in rules.opt_out_keywords):
        words = " / ".join(rules.opt_out_keywords)
        found.append(Violation("body", "opt_out", f"say how to refuse by a reply: name one of {words}"))
    if rules.suffix and not latin_digits(text.rstrip(" .!")).endswith(latin_digits(rules.suffix)):
        found.append(
            Violation("body", "opt_out_suffix", f"an advertising SMS ends with “{persian_digits(rules.suffix)}”")
        )
    if rules.advertiser_identity and not _identity(text, advertiser):
        found.append(
            Violation(
                "body",
                "advertiser_identity",
                "name the advertiser and a way to reach them: {advertiser} {advertiser_contact}",
            )
        )
    return found


def check_email(
    subject: str, body_template: str, body: str, rules: EmailRules, advertiser: Advertiser
) -> list[Violation]:
    """What the advertising e-mail lacks: its subject's marker, the advertiser, the recipient's own
    unsubscribe link (a placeholder of the template: the link differs per recipient)."""
    found = []
    if rules.subject_marker and not subject.strip().startswith(rules.subject_marker):
        found.append(
            Violation(
                "subject", "advertising_marker", f"an advertising e-mail's subject starts with “{rules.subject_marker}”"
            )
        )
    if UNSUBSCRIBE_LINK not in placeholders(body_template):
        found.append(Violation("body", "unsubscribe_link", "an advertising e-mail carries {unsubscribe_link}"))
    if rules.advertiser_identity and not _identity(body, advertiser):
        found.append(
            Violation(
                "body",
                "advertiser_identity",
                "name the advertiser and a way to reach them: {advertiser} {advertiser_contact}",
            )
        )
    return found


def placeholders(template: str) -> set[str]:
    """The placeholder names a template uses ("date" for {date:long}); ValueError when its braces
    do not balance."""
    return {
        field.split(".")[0].split("[")[0] for _, field, _, _ in string.Formatter().parse(template) if field is not None
    }


# Words a reply refuses advertising with, whatever the country: Israel's (הסר, STOP), Iran's (11,
# لغو, حذف) and the usual English ones. Honouring a refusal too broadly costs nothing; missing one
# costs NIS 1,000 a message in Israel. The country's own keywords are added to these.
REFUSAL_WORDS = frozenset({"הסר", "הסירו", "הסרה", "stop", "unsubscribe", "11", "لغو", "حذف", "انصراف"})
_REPLY_PUNCTUATION = re.compile(r"[\s.,!?;:\"'()\-–—،؛؟]+")


def _keys(words: tuple[str, ...] | frozenset[str]) -> set[str]:
    return {latin_digits(w).casefold() for w in words}


def _first_word(text: str) -> str:
    words = [w for w in _REPLY_PUNCTUATION.split(latin_digits(text).casefold()) if w]
    return words[0] if words else ""


def is_refusal(text: str, rules: SmsRules) -> bool:
    """Whether an inbound SMS refuses advertising: its first word (any case, any digits, no
    punctuation) is a refusal word or one of the country's keywords ("הסר", "STOP please",
    "لغو ۱۱", "۱۱")."""
    first = _first_word(text)
    return bool(first) and first in REFUSAL_WORDS | _keys(rules.opt_out_keywords)


def is_resubscription(text: str, rules: SmsRules) -> bool:
    """Whether an inbound SMS asks for advertising again: its first word is one of the country's
    re-subscribe keywords (Iran's "12", "۱۲"); never where the country names none."""
    first = _first_word(text)
    return bool(first) and first in _keys(rules.resubscribe_keywords)
