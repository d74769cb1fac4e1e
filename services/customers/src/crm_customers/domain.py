"""Customers domain rules: touch kinds, channels, timeline summaries, contact policy, reading a
search. Pure, no I/O."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

from crm_customers.consent_rules import ConsentRules
from crm_kit import names, phones
from crm_kit.errors import InvalidArgument

DEFAULT_LOCALE = "he-IL"

# The channel a lead came through, by its source code; anything else is a system touch.
_CHANNEL_BY_SOURCE = {
    "website": "web",
    "web_form": "web",
    "telemarketing": "phone",
    "email": "email",
}
SYSTEM_CHANNEL = "system"
SMS_CHANNEL = "sms"


class TouchKind(StrEnum):
    LEAD_CAPTURED = "lead_captured"
    DEAL_WON = "deal_won"
    DEAL_LOST = "deal_lost"
    ORDER_SHIPPED = "order_shipped"
    SMS_SENT = "sms_sent"
    # Activities reps log in leads (ActivityLogged), by the activity's kind.
    CALL_LOGGED = "call_logged"
    MEETING_LOGGED = "meeting_logged"
    NOTE_LOGGED = "note_logged"
    TASK_LOGGED = "task_logged"
    EMAIL_LOGGED = "email_logged"
    SMS_LOGGED = "sms_logged"
    # Selling in sales: a deal entering an open stage, a quote sent or accepted.
    DEAL_STAGE_CHANGED = "deal_stage_changed"
    QUOTE_SENT = "quote_sent"
    QUOTE_ACCEPTED = "quote_accepted"
    # A consent given or withdrawn (RecordConsent).
    CONSENT_CHANGED = "consent_changed"
    # The service desk: a ticket opened or resolved, a satisfaction survey answered.
    TICKET_OPENED = "ticket_opened"
    TICKET_RESOLVED = "ticket_resolved"
    SURVEY_ANSWERED = "survey_answered"
    TICKET_SLA_BREACHED = "ticket_sla_breached"
    # Reporting's hourly scoring moved the customer's churn risk to another band (CustomerAtRisk).
    RISK_CHANGED = "risk_changed"


def channel_for_source(source: str) -> str:
    """The timeline channel of a lead's source: web, phone, email, else system."""
    return _CHANNEL_BY_SOURCE.get(source.strip().lower(), SYSTEM_CHANNEL)


# The timeline channel of a ticket's channel (support's words).
_CHANNEL_BY_TICKET_CHANNEL = {
    "phone": "phone",
    "email": "email",
    "sms": SMS_CHANNEL,
    "web_form": "web",
    "walk_in": "walk_in",
}


def ticket_channel(channel: str) -> str:
    return _CHANNEL_BY_TICKET_CHANNEL.get(channel, SYSTEM_CHANNEL)


def ticket_summary(what: str, number: int, kind: str, subject: str) -> str:
    """E.g. "Ticket 1042 opened (complaint): The sofa arrived broken"."""
    text = f"Ticket {number} {what} ({kind or 'ticket'})"
    return f"{text}: {subject.strip()}" if subject.strip() else text


def normalize_email(raw: str) -> str:
    """E-mail as stored and matched: trimmed and lower-case."""
    return raw.strip().lower()


def normalize_locale(raw: str) -> str:
    return raw.strip() or DEFAULT_LOCALE


def format_money(amount_minor: int, currency_code: str) -> str:
    """Minor units as a display amount, e.g. 469900 ILS → "4,699.00 ILS"."""
    amount = f"{Decimal(amount_minor) / 100:,.2f}"
    return f"{amount} {currency_code}".strip()


def facts(**values: Any) -> dict[str, str]:
    """A timeline entry's facts as text, the empty ones left out (a date as YYYY-MM-DD)."""
    out: dict[str, str] = {}
    for name, value in values.items():
        text = value.isoformat() if isinstance(value, date) else str(value if value is not None else "").strip()
        if text:
            out[name] = text
    return out


def lead_captured_summary(source: str, campaign: str) -> str:
    text = f"Lead captured from {source.strip() or 'an unknown source'}"
    return f"{text}, campaign {campaign.strip()}" if campaign.strip() else text


def lead_touched_summary(source: str, campaign: str) -> str:
    """A known person coming in again, e.g. "Came in again from radio, campaign Summer"."""
    text = f"Came in again from {source.strip() or 'an unknown source'}"
    return f"{text}, campaign {campaign.strip()}" if campaign.strip() else text


def deal_closed_summary(*, won: bool, amount_minor: int, currency_code: str, lost_reason: str) -> str:
    if won:
        return f"Deal won: {format_money(amount_minor, currency_code)}"
    return f"Deal lost: {lost_reason.strip()}" if lost_reason.strip() else "Deal lost"


def deal_stage_summary(stage_name: str) -> str:
    return f"Deal moved to {stage_name.strip() or 'another stage'}"


def quote_summary(*, accepted: bool, number: str, version: int, total_minor: int, currency_code: str) -> str:
    what = "accepted" if accepted else "sent"
    return f"Quote {number.strip()} v{version} {what}: {format_money(total_minor, currency_code)}"


def order_shipped_summary(carrier: str, tracking_number: str, estimated_delivery: date | None) -> str:
    parts = [f"Order shipped with {carrier.strip() or 'an unknown carrier'}"]
    if tracking_number.strip():
        parts.append(f"tracking {tracking_number.strip()}")
    if estimated_delivery is not None:
        parts.append(f"arrives {estimated_delivery.isoformat()}")
    return ", ".join(parts)


# ---------------------------------------------------------------- activities (ActivityLogged)

# Activity kind → (touch kind, timeline channel, what the entry says the rep did).
ACTIVITY_TOUCHES: dict[str, tuple[TouchKind, str, str]] = {
    "call": (TouchKind.CALL_LOGGED, "phone", "Call"),
    "meeting": (TouchKind.MEETING_LOGGED, "meeting", "Meeting"),
    "note": (TouchKind.NOTE_LOGGED, "internal", "Note"),
    "task": (TouchKind.TASK_LOGGED, "internal", "Task"),
    "email": (TouchKind.EMAIL_LOGGED, "email", "E-mail sent"),
    "sms": (TouchKind.SMS_LOGGED, "sms", "SMS sent"),
}


def activity_summary(
    *, kind: str, outcome: str, summary: str, actor: str, duration_seconds: int, actor_name: str = ""
) -> str:
    """Who did what, e.g. "Call — no answer (2 min) by דנה לוי: לנסות שוב בערב" (the rep's name,
    else the actor's subject)."""
    head = ACTIVITY_TOUCHES[kind][2] if kind in ACTIVITY_TOUCHES else kind.strip().capitalize()
    if outcome.strip():
        head += f" — {outcome.strip().replace('_', ' ')}"
    if duration_seconds > 0:
        minutes, seconds = divmod(duration_seconds, 60)
        head += f" ({minutes} min)" if minutes else f" ({seconds} s)"
    who = actor_name.strip() or actor.strip()
    if who:
        head += f" by {who}"
    return f"{head}: {summary.strip()}" if summary.strip() else head


def transactional_sms_allowed(*, opted_out: bool, phone_number: str) -> bool:
    """Delivery-date SMS go out unless the customer opted out, and only to a known number."""
    return not opted_out and bool(phone_number.strip())


def transactional_email_allowed(*, opted_out: bool, email: str) -> bool:
    """Service e-mail (a survey) goes out unless the customer opted out, and only to a known address."""
    return not opted_out and bool(email.strip())


# ---------------------------------------------------------------- merges (survivorship)


class Consent(Protocol):
    """The consent flags of a customer profile."""

    @property
    def transactional_sms_opt_out(self) -> bool: ...

    @property
    def marketing_sms_consent(self) -> bool: ...

    @property
    def transactional_email_opt_out(self) -> bool: ...

    @property
    def marketing_email_consent(self) -> bool: ...


def merged_consent(survivor: Consent, duplicate: Consent) -> dict[str, bool]:
    """An opt-out on either wins; marketing only with both profiles' consent (per channel)."""
    return {
        "transactional_sms_opt_out": bool(survivor.transactional_sms_opt_out or duplicate.transactional_sms_opt_out),
        "marketing_sms_consent": bool(survivor.marketing_sms_consent and duplicate.marketing_sms_consent),
        "transactional_email_opt_out": bool(
            survivor.transactional_email_opt_out or duplicate.transactional_email_opt_out
        ),
        "marketing_email_consent": bool(survivor.marketing_email_consent and duplicate.marketing_email_consent),
    }


# ---------------------------------------------------------------- search


class SearchKind(StrEnum):
    PHONE = "phone"
    EMAIL = "email"
    NAME = "name"


# The fewest characters a search may have (after folding): one letter matches half the directory.
MIN_SEARCH_CHARS = 2
# Words of a name search beyond these are dropped: no one types more of a person's name.
MAX_SEARCH_WORDS = 5
# A word's consonant skeleton shorter than this is too common to match on ("כהן" → KN is fine,
# "לי" → L matches every Levi and Ali).
MIN_WORD_SKELETON = 2
# Only phone punctuation and digits (any script, folded to ASCII): a phone search.
_PHONE_TEXT = re.compile(r"^\+?[\d\s().\-/]+$")
_MIN_PHONE_DIGITS = 7
# The first code point past any word that starts with a prefix, for a range scan in "C" order.
_AFTER_PREFIX = "\U0010ffff"


@dataclass(frozen=True)
class NameWord:
    """One folded word of a name with its consonant skeleton ("" when too short to match on)."""

    word: str
    skeleton: str


@dataclass(frozen=True)
class SearchQuery:
    kind: SearchKind
    # phone: the E.164 readings (Israeli, then Iranian); email: the address; name: unused.
    values: tuple[str, ...] = ()
    # name: the query's words, the last also matched as a prefix (typing "כה" finds "כהן").
    words: tuple[NameWord, ...] = ()

    @property
    def prefix_upper(self) -> str:
        """The exclusive upper bound of words starting with the last query word."""
        return self.words[-1].word + _AFTER_PREFIX if self.words else ""


def name_words(full_name: str) -> list[NameWord]:
    """The words a customer is found by: folded as lead duplicates fold them (crm_kit.names), each
    with its skeleton, so "Cohen", "Kohen" and "כהן" meet and "محمدی" meets "محمدي"."""
    out: list[NameWord] = []
    for word in names.words(full_name)[:20]:
        skeleton = names.word_skeleton(word)
        out.append(NameWord(word[:100], skeleton[:100] if len(skeleton) >= MIN_WORD_SKELETON else ""))
    return out


def parse_search(text: str) -> SearchQuery:
    """What the searcher typed, read as a phone number (any format, Persian digits too), an
    e-mail address or a name. Fewer than MIN_SEARCH_CHARS characters is refused on `query`."""
    folded = names.fold(text).strip()
    if len(folded.replace(" ", "")) < MIN_SEARCH_CHARS:
        raise InvalidArgument(
            f"a search needs at least {MIN_SEARCH_CHARS} characters",
            reason="SEARCH_TOO_SHORT",
            field_violations=[("query", f"at least {MIN_SEARCH_CHARS} letters or digits")],
        )
    if "@" in text:
        return SearchQuery(SearchKind.EMAIL, values=(text.strip().lower(),))
    # \d and isdigit take Persian and Arabic-Indic digits too, and so does the phone parser.
    typed = text.strip()
    if _PHONE_TEXT.match(typed) and sum(ch.isdigit() for ch in typed) >= _MIN_PHONE_DIGITS:
        readings = dict.fromkeys(n for locale in ("he-IL", "fa-IR") if (n := phones.e164(typed, locale)))
        return SearchQuery(SearchKind.PHONE, values=tuple(readings))
    return SearchQuery(SearchKind.NAME, words=tuple(name_words(text)[:MAX_SEARCH_WORDS]))


# ---------------------------------------------------------------- profile edits

EDITABLE_FIELDS = ("full_name", "phone_number", "email", "locale", "tags")
MAX_TAGS = 30
MAX_TAG = 50
PROFILE_LOCALES = ("he-IL", "fa-IR", "en-US")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _locale(value: str, _locale: str) -> tuple[str, str]:
    return value, "" if value in PROFILE_LOCALES else f"one of {', '.join(PROFILE_LOCALES)}"


def _full_name(value: str, _locale: str) -> tuple[str, str]:
    name = " ".join(value.split())
    return name, "" if 0 < len(name) <= 200 else "1 to 200 characters"


def _phone(value: str, locale: str) -> tuple[str, str]:
    if not value.strip():
        return "", ""
    number = phones.e164(value, locale)
    return number or "", "" if number else "not a valid Israeli, Iranian or international number"


def _email(value: str, _locale: str) -> tuple[str, str]:
    address = normalize_email(value)
    bad = address and (len(address) > 254 or not _EMAIL.match(address))
    return address, "not an e-mail address" if bad else ""


# In this order: a phone number is read in the locale the same edit sets.
_NORMALIZERS = {"locale": _locale, "full_name": _full_name, "phone_number": _phone, "email": _email}


def normalize_tags(raw: Sequence[str]) -> tuple[list[str], str]:
    """Tags as kept: spaces collapsed, empty ones dropped, the first spelling of a repeat kept
    (compared case-folded); a problem when one is too long or has control characters, or too many."""
    kept: dict[str, str] = {}
    for tag in raw:
        text = " ".join(tag.split())
        if not text:
            continue
        if len(text) > MAX_TAG or any(unicodedata.category(ch).startswith("C") for ch in text):
            return [], f"each tag 1 to {MAX_TAG} characters, no control characters"
        kept.setdefault(text.casefold(), text)
    if len(kept) > MAX_TAGS:
        return [], f"at most {MAX_TAGS} tags"
    return list(kept.values()), ""


def profile_changes(mask: list[str], values: dict[str, str], current: Any, tags: Sequence[str] = ()) -> dict[str, Any]:
    """The columns an edit sets, normalized as capture stores them (E.164 read in the customer's
    locale, e-mail lower-case); every bad field is reported at once, so nothing is half-applied.
    A profile keeps a way to reach the person: clearing both the phone and the e-mail is refused."""
    violations: list[tuple[str, str]] = [
        (f, f"not an editable field ({', '.join(EDITABLE_FIELDS)})") for f in mask if f not in EDITABLE_FIELDS
    ]
    if not mask:
        violations.append(("update_mask", f"name at least one of: {', '.join(EDITABLE_FIELDS)}"))
    changes: dict[str, Any] = {}
    if "tags" in mask:
        changes["tags"], problem = normalize_tags(tags)
        if problem:
            violations.append(("tags", problem))
    for field, normalize in _NORMALIZERS.items():
        if field in mask:
            changes[field], problem = normalize(values.get(field, ""), str(changes.get("locale", current.locale)))
            if problem:
                violations.append((field, problem))
    reachable = changes.get("phone_number", current.phone_number) or changes.get("email", current.email)
    if not reachable and not violations:
        violations += [("phone_number", "a phone number or an e-mail is required"), ("email", "or an e-mail")]
    if violations:
        raise InvalidArgument("invalid customer profile", field_violations=violations)
    return changes


# ---------------------------------------------------------------- consent

CONSENT_CHANNELS = ("sms", "email", "phone")
CONSENT_PURPOSES = ("service", "marketing")
CONSENT_SOURCES = ("web_form", "recorded_call", "written", "reply", "agent")
# What holds before anyone said anything, and which ways of saying yes to advertising count, are the
# country's rules (`consent_rules`: Israel's Communications Law §30A, amendment 40, by default;
# Iran's as shipped configuration). A refusal is honoured at once whatever its source, everywhere.
MAX_EVIDENCE = 500


@dataclass(frozen=True)
class ConsentChange:
    channel: str
    purpose: str
    granted: bool
    source: str
    evidence: str


def consent_change(
    *,
    channel: str,
    purpose: str,
    granted: bool,
    source: str,
    evidence: str,
    occurred: Any,
    now: Any,
    rules: ConsentRules,
) -> ConsentChange:
    """A consent record as given, checked against the country's rules: every bad field at once. A
    grant of advertising needs a source the rules accept and, where they say so, its evidence (the
    checkbox text's version, the recording, the document): a regulator asks for it."""
    violations: list[tuple[str, str]] = []
    if channel not in CONSENT_CHANNELS:
        violations.append(("channel", f"one of {', '.join(CONSENT_CHANNELS)}"))
    if purpose not in CONSENT_PURPOSES:
        violations.append(("purpose", f"one of {', '.join(CONSENT_PURPOSES)}"))
    advertising_yes = granted and purpose == "marketing"
    if source not in CONSENT_SOURCES:
        violations.append(("source", f"how it was given is required: one of {', '.join(CONSENT_SOURCES)}"))
    elif advertising_yes and source not in rules.marketing_grant_sources:
        violations.append(("source", f"a consent to advertising needs proof ({rules.country} rules): not {source!r}"))
    if len(evidence) > MAX_EVIDENCE:
        violations.append(("evidence", f"at most {MAX_EVIDENCE} characters"))
    elif advertising_yes and rules.marketing_evidence_required and not evidence.strip():
        violations.append(
            ("evidence", "a consent to advertising needs its evidence (text version, recording, document)")
        )
    if occurred > now:
        violations.append(("occur_time", "not in the future"))
    if violations:
        raise InvalidArgument("invalid consent record", field_violations=violations)
    return ConsentChange(channel, purpose, granted, source, evidence.strip())


@dataclass(frozen=True)
class ConsentState:
    channel: str
    purpose: str
    granted: bool
    record: Any  # the latest record of this channel and purpose, or None (the default holds)


def consent_states(records: list[Any], rules: ConsentRules) -> list[ConsentState]:
    """The state in force per channel and purpose: the latest record by when it happened (then by
    id), else the country's default."""
    latest: dict[tuple[str, str], Any] = {}
    for record in records:
        key = (record.channel, record.purpose)
        if key not in latest or (record.occurred_at, record.id) > (latest[key].occurred_at, latest[key].id):
            latest[key] = record
    return [
        ConsentState(channel, purpose, latest[(channel, purpose)].granted, latest[(channel, purpose)])
        if (channel, purpose) in latest
        else ConsentState(channel, purpose, rules.defaults[purpose], None)
        for channel in CONSENT_CHANNELS
        for purpose in CONSENT_PURPOSES
    ]


# The channels whose state in force the customer row keeps (GetContactInfo reads it per message).
FLAGGED_CHANNELS = ("sms", "email")


def consent_flags(states: list[ConsentState]) -> dict[str, bool]:
    """The customer row's flags from the states in force: per flagged channel, the service opt-out
    and the marketing consent."""
    granted = {(s.channel, s.purpose): s.granted for s in states}
    flags: dict[str, bool] = {}
    for channel in FLAGGED_CHANNELS:
        flags[f"transactional_{channel}_opt_out"] = not granted[(channel, "service")]
        flags[f"marketing_{channel}_consent"] = granted[(channel, "marketing")]
    return flags


def consent_summary(change: ConsentChange) -> str:
    """The timeline's English line for a consent record (e.g. "SMS marketing: consent given (web form)")."""
    channel = {"sms": "SMS", "email": "E-mail", "phone": "Phone"}[change.channel]
    verb = "consent given" if change.granted else "consent withdrawn"
    return f"{channel} {change.purpose}: {verb} ({change.source.replace('_', ' ')})"


# ---------------------------------------------------------------- touches logged on the customer

TOUCH_KINDS_LOGGED = ("call", "meeting", "note", "email", "sms")
CALL_OUTCOMES = ("answered", "no_answer", "busy", "voicemail", "wrong_number", "callback_requested")
MAX_TOUCH_TEXT = 2000


def check_touch(*, kind: str, text: str, outcome: str, duration_seconds: int, occurred: Any, now: Any) -> None:
    """A touch an agent logs: every bad field named at once."""
    violations: list[tuple[str, str]] = []
    if kind not in TOUCH_KINDS_LOGGED:
        violations.append(("kind", f"one of {', '.join(TOUCH_KINDS_LOGGED)}"))
    if not text.strip() or len(text) > MAX_TOUCH_TEXT:
        violations.append(("text", f"1 to {MAX_TOUCH_TEXT} characters"))
    if outcome and (kind != "call" or outcome not in CALL_OUTCOMES):
        violations.append(("outcome", f"a call's: one of {', '.join(CALL_OUTCOMES)}"))
    if not 0 <= duration_seconds <= 24 * 3600:
        violations.append(("duration_seconds", "0 to 86400"))
    if occurred > now:
        violations.append(("occur_time", "not in the future"))
    if violations:
        raise InvalidArgument("invalid touch", field_violations=violations)


# ---------------------------------------------------------------- contact persons and addresses

MAX_CONTACTS = 50
MAX_ADDRESSES = 20
ADDRESS_KINDS = ("billing", "shipping", "home", "office", "other")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


@dataclass(frozen=True)
class ContactPerson:
    full_name: str
    role: str
    phone_number: str
    email: str
    is_primary: bool


@dataclass(frozen=True)
class Address:
    kind: str
    line1: str
    line2: str
    city: str
    postal_code: str
    country_code: str


def _bounded(name: str, value: str, low: int, high: int) -> tuple[str, list[tuple[str, str]]]:
    text = " ".join(value.split())
    return text, [] if low <= len(text) <= high else [(name, f"{low} to {high} characters")]


def contact_person(
    *, full_name: str, role: str, phone_number: str, email: str, is_primary: bool, locale: str
) -> ContactPerson:
    """A contact person as kept (the phone in E.164, read in the customer's locale; the e-mail
    lower-case), or InvalidArgument naming every bad field; a phone number or an e-mail is required."""
    name, violations = _bounded("full_name", full_name, 1, 200)
    role_text, role_problems = _bounded("role", role, 0, 100)
    phone, phone_problem = _phone(phone_number, locale)
    address, email_problem = _email(email, locale)
    violations += role_problems + [(f, p) for f, p in (("phone_number", phone_problem), ("email", email_problem)) if p]
    if not violations and not phone and not address:
        violations += [("phone_number", "a phone number or an e-mail is required"), ("email", "or an e-mail")]
    if violations:
        raise InvalidArgument("invalid contact person", field_violations=violations)
    return ContactPerson(name, role_text, phone, address, is_primary)


def address(*, kind: str, line1: str, line2: str, city: str, postal_code: str, country_code: str) -> Address:
    """An address as kept, or InvalidArgument naming every bad field."""
    first, violations = _bounded("line1", line1, 1, 200)
    second, problems = _bounded("line2", line2, 0, 200)
    town, town_problems = _bounded("city", city, 1, 100)
    postal, postal_problems = _bounded("postal_code", postal_code, 0, 20)
    violations += problems + town_problems + postal_problems
    if kind not in ADDRESS_KINDS:
        violations.append(("kind", f"one of {', '.join(ADDRESS_KINDS)}"))
    country = country_code.strip().upper()
    if not _COUNTRY.match(country):
        violations.append(("country_code", "an ISO 3166 code of two letters, e.g. IL or IR"))
    if violations:
        raise InvalidArgument("invalid address", field_violations=violations)
    return Address(kind, first, second, town, postal, country)


# ---------------------------------------------------------------- audiences (issue 19)

AUDIENCE_CHANNELS = ("sms", "email")
# An audience's open-ticket criterion: either ("": not asked), at least one open, none open.
AUDIENCE_OPEN_TICKETS = ("", "some", "none")
AUDIENCE_PURPOSES = ("marketing", "service")
# The filter's lists; a value matches as spelled for tags, ignoring case for the others.
AUDIENCE_LISTS = ("tags", "cities", "sources", "products", "locales")
AUDIENCE_MAX_VALUES = 50
AUDIENCE_MAX_VALUE_LENGTH = 100
AUDIENCE_MAX_SAMPLE = 20
AUDIENCE_DEFAULT_PAGE = 1000
AUDIENCE_MAX_PAGE = 5000
MAX_CUSTOMER_ID = 64
# A satisfaction survey's scores; a latest one this low (1 or 2) keeps a customer out of an
# audience unless included.
SURVEY_SCORES = range(1, 6)
LOW_SATISFACTION_SCORE = 2
# support's TicketKind word of a complaint: an open one keeps the customer out unless included.
COMPLAINT = "complaint"
_CURRENCY = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True)
class Audience:
    """An audience filter, normalized: every list value's spaces collapsed (lower-case where
    matching ignores case), repeats dropped; every criterion given ANDed together."""

    channel: str
    purpose: str
    tags: tuple[str, ...] = ()
    cities: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    products: tuple[str, ...] = ()
    purchased_after: datetime | None = None
    purchased_before: datetime | None = None
    min_lifetime_value_minor: int = 0
    currency_code: str = ""
    include_open_complaints: bool = False
    include_low_satisfaction: bool = False
    locales: tuple[str, ...] = ()
    # Members of this static list only ("": no list).
    list_id: str = ""
    # The latest purchase (of anything) in [last_purchased_after, last_purchased_before).
    last_purchased_after: datetime | None = None
    last_purchased_before: datetime | None = None
    # "some" or "none" open tickets of any kind ("": either).
    open_tickets: str = ""

    @property
    def purchase_window(self) -> bool:
        """Whether a purchase criterion was given (products, or a period)."""
        return bool(self.products or self.purchased_after or self.purchased_before)


def _listed(name: str, values: Iterable[str]) -> tuple[tuple[str, ...], list[tuple[str, str]]]:
    cleaned = [" ".join(v.split()) for v in values]
    problems = []
    if len(cleaned) > AUDIENCE_MAX_VALUES:
        problems.append((name, f"at most {AUDIENCE_MAX_VALUES} values"))
    if any(not v or len(v) > AUDIENCE_MAX_VALUE_LENGTH for v in cleaned):
        problems.append((name, f"each value 1 to {AUDIENCE_MAX_VALUE_LENGTH} characters"))
    # lower(), not casefold(): PostgreSQL's lower() is what the stored side is compared through.
    kept = tuple(dict.fromkeys(v if name == "tags" else v.lower() for v in cleaned if v))
    return kept, problems


def _lifetime_problems(min_lifetime_value_minor: int, currency: str) -> list[tuple[str, str]]:
    """A lifetime value is not negative and comes with its currency; a currency is ISO 4217."""
    if min_lifetime_value_minor < 0:
        return [("min_lifetime_value_minor", "must not be negative")]
    if min_lifetime_value_minor and not _CURRENCY.match(currency):
        return [("currency_code", "an ISO 4217 code (ILS, IRR…) is required with min_lifetime_value_minor")]
    if currency and not _CURRENCY.match(currency):
        return [("currency_code", "an ISO 4217 code of three letters")]
    return []


def audience(
    *,
    channel: str,
    purpose: str,
    lists: Mapping[str, Iterable[str]],
    purchased_after: datetime | None,
    purchased_before: datetime | None,
    min_lifetime_value_minor: int,
    currency_code: str,
    include_open_complaints: bool = False,
    include_low_satisfaction: bool = False,
    list_id: str = "",
    last_purchased_after: datetime | None = None,
    last_purchased_before: datetime | None = None,
    open_tickets: str = "",
) -> tuple[Audience, list[tuple[str, str]]]:
    """The normalized audience and every (field, problem) found in what was asked; a filter's
    field is named by its own name (tags, currency_code, purchased_before…)."""
    problems: list[tuple[str, str]] = []
    if channel not in AUDIENCE_CHANNELS:
        problems.append(("channel", "sms or email"))
    if purpose not in AUDIENCE_PURPOSES:
        problems.append(("purpose", "marketing or service"))
    cleaned: dict[str, tuple[str, ...]] = {}
    for name in AUDIENCE_LISTS:
        cleaned[name], found = _listed(name, lists.get(name, ()))
        problems += found
    windows = {"": (purchased_after, purchased_before), "last_": (last_purchased_after, last_purchased_before)}
    for prefix, (after, before) in windows.items():
        if after and before and after >= before:
            problems.append((f"{prefix}purchased_before", f"must be after {prefix}purchased_after"))
    currency = currency_code.strip().upper()
    problems += _lifetime_problems(min_lifetime_value_minor, currency)
    if len(list_id) > MAX_CUSTOMER_ID:
        problems.append(("list_id", "an audience list's id"))
    if open_tickets.strip().lower() not in AUDIENCE_OPEN_TICKETS:
        problems.append(("open_tickets", 'some, none or "" (either)'))
    return (
        Audience(
            channel=channel,
            purpose=purpose,
            **cleaned,
            purchased_after=purchased_after,
            purchased_before=purchased_before,
            min_lifetime_value_minor=max(min_lifetime_value_minor, 0),
            currency_code=currency,
            include_open_complaints=include_open_complaints,
            include_low_satisfaction=include_low_satisfaction,
            list_id=list_id.strip(),
            last_purchased_after=last_purchased_after,
            last_purchased_before=last_purchased_before,
            open_tickets=open_tickets.strip().lower(),
        ),
        problems,
    )


def audience_page(page_size: int, after_customer_id: str) -> tuple[int, list[tuple[str, str]]]:
    """ResolveAudience's page size (0: the default) and the problems of the paging fields."""
    problems = []
    if not 0 <= page_size <= AUDIENCE_MAX_PAGE:
        problems.append(("page_size", f"1 to {AUDIENCE_MAX_PAGE} (0: {AUDIENCE_DEFAULT_PAGE})"))
    if len(after_customer_id) > MAX_CUSTOMER_ID:
        problems.append(("after_customer_id", "a customer id from next_after_customer_id"))
    return page_size or AUDIENCE_DEFAULT_PAGE, problems


def audience_sample(sample_size: int) -> list[tuple[str, str]]:
    """The problem of CountAudience's sample size, if any."""
    return [] if 0 <= sample_size <= AUDIENCE_MAX_SAMPLE else [("sample_size", f"0 to {AUDIENCE_MAX_SAMPLE}")]


def contains_pattern(value: str) -> str:
    """A LIKE pattern for "contains value", its own %, _ and \\ matched as themselves (LIKE's
    escape character is the backslash)."""
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# ---------------------------------------------------------------- purchases and the facts audiences filter on

MAX_SKU = 100
MAX_DESCRIPTION = 500
MAX_PRODUCT_LINE = 100
MAX_SOURCE = 50


@dataclass(frozen=True)
class DealItem:
    """A won deal's line as DealClosed carries it."""

    sku: str
    description: str
    quantity: int
    unit_price_minor: int
    currency_code: str


@dataclass(frozen=True)
class PurchaseLine:
    line: int
    sku: str
    description: str
    amount_minor: int
    currency_code: str


def purchase_lines(items: Sequence[DealItem], total_minor: int, total_currency: str) -> list[PurchaseLine]:
    """A won deal's purchases: each item (numbered from 1 by its place in the deal, so a redelivery
    numbers it alike) at quantity × unit price, in its price's currency (else the deal's); an item
    with no currency at all is left out. A deal without (usable) items is one line, sku '', with
    its total; a deal without even a total's currency buys nothing that can be counted."""
    lines = [
        PurchaseLine(
            n,
            item.sku.strip()[:MAX_SKU],
            " ".join(item.description.split())[:MAX_DESCRIPTION],
            item.quantity * item.unit_price_minor,
            (item.currency_code.strip() or total_currency.strip()).upper(),
        )
        for n, item in enumerate(items, start=1)
    ]
    lines = [line for line in lines if _CURRENCY.match(line.currency_code)]
    if lines:
        return lines
    currency = total_currency.strip().upper()
    return [PurchaseLine(1, "", "", total_minor, currency)] if _CURRENCY.match(currency) else []


class AudienceFacts(Protocol):
    """The facts of a customer profile an audience filters on."""

    @property
    def acquiring_source(self) -> str: ...

    @property
    def acquired_at(self) -> datetime | None: ...

    @property
    def latest_survey_score(self) -> int | None: ...

    @property
    def latest_survey_at(self) -> datetime | None: ...


def merged_facts(survivor: AudienceFacts, duplicate: AudienceFacts) -> dict[str, Any]:
    """The survivor's facts that a merge changes: the earlier acquisition of the two profiles (the
    customer's first lead) and the later survey answer (the latest score)."""
    changes: dict[str, Any] = {}
    if duplicate.acquired_at is not None and (
        survivor.acquired_at is None or duplicate.acquired_at < survivor.acquired_at
    ):
        changes.update(acquiring_source=duplicate.acquiring_source, acquired_at=duplicate.acquired_at)
    later = duplicate.latest_survey_at is not None and (
        survivor.latest_survey_at is None or duplicate.latest_survey_at > survivor.latest_survey_at
    )
    if later:
        changes.update(latest_survey_score=duplicate.latest_survey_score, latest_survey_at=duplicate.latest_survey_at)
    return changes
