"""Leads domain rules: sources, phone normalization, routing, deal closing. Pure, no I/O."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import phonenumbers

from crm_kit.errors import FailedPrecondition, InvalidArgument

# The source catalogue: code → display name (Hebrew first: the users' working language).
SOURCES: dict[str, str] = {
    "radio": "רדיו / Radio",
    "tv": "טלוויזיה / TV",
    "website": "אתר / Website",
    "web_form": "טופס אינטרנט / Web form",
    "referral": "חבר מביא חבר / Referral",
    "exhibition": "תערוכה / Exhibition",
    "press": "עיתונות / Press",
    "telemarketing": "טלמרקטינג / Telemarketing",
    "email": "דואר אלקטרוני / E-mail",
    "import": "ייבוא / Import",
}
SUPPORTED_LOCALES = ("he-IL", "fa-IR", "en-US")
DEFAULT_LOCALE = "he-IL"
# Where a number without a country code is read: the locale's country first, then the other
# home market (a Tehran number typed on an Israeli form still parses).
_REGIONS_BY_LOCALE = {"he-IL": ("IL", "IR"), "fa-IR": ("IR", "IL"), "en-US": ("IL", "IR", "US")}


class LeadStatus(StrEnum):
    NEW = "new"
    CONVERTED = "converted"


class DealStatus(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


def normalize_source(source: str) -> str:
    code = source.strip().lower()
    if code not in SOURCES:
        raise InvalidArgument(
            f"unknown source {source!r}; valid sources: {', '.join(SOURCES)}",
            reason="UNKNOWN_SOURCE",
            field_violations=[("source", f"must be one of: {', '.join(SOURCES)}")],
            metadata={"valid_sources": ",".join(SOURCES)},
        )
    return code


def normalize_locale(locale: str) -> str:
    if not locale:
        return DEFAULT_LOCALE
    for supported in SUPPORTED_LOCALES:
        if locale.lower() == supported.lower():
            return supported
    raise InvalidArgument(
        f"unsupported locale {locale!r}",
        field_violations=[("locale", f"must be one of: {', '.join(SUPPORTED_LOCALES)}")],
    )


def normalize_phone(raw: str, locale: str = DEFAULT_LOCALE) -> str:
    """A phone number in E.164, reading local Israeli and Iranian formats."""
    text = raw.strip()
    regions = _REGIONS_BY_LOCALE.get(locale, ("IL", "IR"))
    parsed_by_region: list[phonenumbers.PhoneNumber] = []
    for region in regions:
        try:
            parsed_by_region.append(phonenumbers.parse(text, region))
        except phonenumbers.NumberParseException:
            continue
    # A number in an allocated range wins; failing that, one of the right length for the
    # locale's own country (numbering plans grow faster than the library's metadata).
    candidates = [n for n in parsed_by_region if phonenumbers.is_valid_number(n)]
    candidates += [n for n in parsed_by_region[:1] if phonenumbers.is_possible_number(n)]
    for parsed in candidates:
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    raise InvalidArgument(
        f"phone_number {raw!r} is not a valid phone number",
        reason="INVALID_PHONE_NUMBER",
        field_violations=[("phone_number", "not a valid Israeli, Iranian or international number")],
    )


def normalize_email(raw: str) -> str:
    email = raw.strip().lower()
    if email and ("@" not in email or email.startswith("@") or email.endswith("@") or " " in email):
        raise InvalidArgument("email is not valid", field_violations=[("email", "not an e-mail address")])
    return email


@dataclass(frozen=True)
class NewLead:
    full_name: str
    phone_number: str
    email: str
    source: str
    campaign: str
    locale: str
    product_line: str


def validate_new_lead(
    *, full_name: str, phone_number: str, email: str, source: str, campaign: str, locale: str, product_line: str
) -> NewLead:
    violations: list[tuple[str, str]] = []
    if not full_name.strip():
        violations.append(("full_name", "is required"))
    if len(full_name) > 200:
        violations.append(("full_name", "at most 200 characters"))
    if not phone_number.strip() and not email.strip():
        violations.append(("phone_number", "a phone number or an e-mail is required"))
    if violations:
        raise InvalidArgument("invalid lead", field_violations=violations)
    # Every field is checked before answering, so a client fixes all of them in one go.
    checked: dict[str, str] = {}
    errors: list[InvalidArgument] = []
    normalizers: list[tuple[str, Callable[[str], str], str]] = [
        ("locale", normalize_locale, locale),
        ("source", normalize_source, source),
        ("email", normalize_email, email),
    ]
    for name, normalize, raw in normalizers:
        try:
            checked[name] = normalize(raw)
        except InvalidArgument as exc:
            errors.append(exc)
    loc = checked.get("locale", DEFAULT_LOCALE)
    if phone_number.strip():
        try:
            checked["phone_number"] = normalize_phone(phone_number, loc)
        except InvalidArgument as exc:
            errors.append(exc)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise InvalidArgument(
            "; ".join(e.message for e in errors),
            field_violations=[v for e in errors for v in e.field_violations],
            metadata={k: v for e in errors for k, v in e.metadata.items()},
        )
    return NewLead(
        full_name=" ".join(full_name.split()),
        phone_number=checked.get("phone_number", ""),
        email=checked["email"],
        source=checked["source"],
        campaign=campaign.strip(),
        locale=loc,
        product_line=product_line.strip(),
    )


@dataclass(frozen=True)
class RoutingRule:
    id: str
    team_id: str
    sources: tuple[str, ...]  # empty: matches every source (the fallback rule)
    priority: int


def match_rule(rules: list[RoutingRule], source: str) -> RoutingRule:
    """The first rule by priority that names the source; else the first catch-all rule."""
    ordered = sorted(rules, key=lambda r: (r.priority, r.id))
    for rule in ordered:
        if source in rule.sources:
            return rule
    for rule in ordered:
        if not rule.sources:
            return rule
    raise FailedPrecondition(f"no routing rule covers source {source!r}", reason="NO_ROUTING_RULE")


def pick_round_robin(rep_ids: list[str], turn: int) -> str:
    """The rep whose turn it is; turn is the team's ever-increasing counter (1-based)."""
    if not rep_ids:
        raise FailedPrecondition("the team has no active reps", reason="NO_ACTIVE_REPS")
    ordered = sorted(rep_ids)
    return ordered[(turn - 1) % len(ordered)]


@dataclass(frozen=True)
class Item:
    sku: str
    description: str
    quantity: int
    unit_price_minor: int
    currency_code: str


def validate_close(status: DealStatus, won: bool, items: list[Item]) -> tuple[int, str]:
    """Check a close is allowed; returns the total (minor units, currency) of a won deal."""
    if status is not DealStatus.OPEN:
        raise FailedPrecondition(f"deal is already {status.value}", reason="DEAL_ALREADY_CLOSED")
    if not won:
        return 0, ""
    if not items:
        raise InvalidArgument("a won deal needs its line items", field_violations=[("items", "at least one item")])
    violations: list[tuple[str, str]] = []
    for i, item in enumerate(items):
        if not item.sku.strip():
            violations.append((f"items[{i}].sku", "is required"))
        if item.quantity < 1:
            violations.append((f"items[{i}].quantity", "must be at least 1"))
        if item.unit_price_minor < 0:
            violations.append((f"items[{i}].unit_price.amount_minor", "must not be negative"))
        if len(item.currency_code) != 3 or not item.currency_code.isalpha():
            violations.append((f"items[{i}].unit_price.currency_code", "must be an ISO 4217 code"))
    currencies = {item.currency_code.upper() for item in items}
    if len(currencies) > 1:
        violations.append(("items", "all items must share one currency"))
    if violations:
        raise InvalidArgument("invalid line items", field_violations=violations)
    return sum(i.quantity * i.unit_price_minor for i in items), currencies.pop()
