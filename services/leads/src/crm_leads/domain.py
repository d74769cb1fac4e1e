"""Leads domain rules: sources, phone normalization, routing, web-to-lead keys.
Pure, no I/O."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

import phonenumbers

from crm_kit.errors import FailedPrecondition, InvalidArgument, PermissionDenied, raise_all

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
# The format of a source code (built-in or added by an admin).
SOURCE_CODE = re.compile(r"[a-z][a-z0-9_]{1,49}")
SUPPORTED_LOCALES = ("he-IL", "fa-IR", "en-US")
DEFAULT_LOCALE = "he-IL"
# Where a number without a country code is read: the locale's country first, then the other
# home market (a Tehran number typed on an Israeli form still parses).
_REGIONS_BY_LOCALE = {"he-IL": ("IL", "IR"), "fa-IR": ("IR", "IL"), "en-US": ("IL", "IR", "US")}


class LeadStatus(StrEnum):
    NEW = "new"
    CONVERTED = "converted"


def normalize_source(source: str) -> str:
    """A source code of the catalogue's format; whether it exists and is active is checked against
    the catalogue (crm_leads.campaigns) in the capture's unit of work."""
    code = source.strip().lower()
    if not SOURCE_CODE.fullmatch(code):
        raise InvalidArgument(
            f"unknown source {source!r}: a source code is [a-z][a-z0-9_]{{1,49}}",
            reason="UNKNOWN_SOURCE",
            field_violations=[("source", "not a source code of the catalogue ([a-z][a-z0-9_]{1,49})")],
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
    """A phone number in E.164, reading local Israeli and Iranian formats.

    A number without a country code is the locale's country's when it is valid there or has the
    exact shape of its numbers (numbering plans grow faster than the library's metadata: 050-1xx
    is in use, but not in the metadata). Failing that, it is read as a *mobile* number of the
    other home market (a Tehran mobile typed on a Hebrew form); any other reading there would
    turn a local number with a digit too many (054-433-20488) into someone's Iranian landline.
    Whatever is left is refused: the library's lenient parse keeps every digit typed."""
    text = raw.strip()
    own, *others = _REGIONS_BY_LOCALE.get(locale, ("IL", "IR"))
    mine = _parse(text, own)
    if mine is not None and (phonenumbers.is_valid_number(mine) or _has_national_shape(mine)):
        return phonenumbers.format_number(mine, phonenumbers.PhoneNumberFormat.E164)
    for region in others:
        theirs = _parse(text, region)
        if theirs is None:
            continue
        kind = phonenumbers.number_type(theirs)
        # A mobile there, or a number of that market's mobile shape (its mobile leading digit)
        # in a range the library does not know yet (an Israeli 052-12x on a Persian form) —
        # never a known landline or other kind.
        newer_mobile = (
            kind == phonenumbers.PhoneNumberType.UNKNOWN
            and phonenumbers.national_significant_number(theirs).startswith(_MOBILE_LEADING_DIGIT.get(region, "-"))
            and _has_national_shape(theirs)
        )
        if (phonenumbers.is_valid_number(theirs) and kind in _MOBILE_TYPES) or newer_mobile:
            return phonenumbers.format_number(theirs, phonenumbers.PhoneNumberFormat.E164)
    raise InvalidArgument(
        f"phone_number {raw!r} is not a valid phone number",
        reason="INVALID_PHONE_NUMBER",
        field_violations=[
            (
                "phone_number",
                "not a valid Israeli, Iranian or international number "
                "(check the digits; a number of another country needs its country code, e.g. +98)",
            )
        ],
    )


# The first digit of mobile numbers (national significant number) in the home markets: 05x, 09xx.
_MOBILE_LEADING_DIGIT = {"IL": "5", "IR": "9"}

_MOBILE_TYPES = frozenset({phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE})


def _parse(text: str, region: str) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None


def _has_national_shape(number: phonenumbers.PhoneNumber) -> bool:
    """Whether the number is possible for its country and its digits fit one of the country's
    national formats for its leading digits. is_possible_number alone checks the length against
    every kind of number of the country (Israel: 7 to 12 digits), so a mobile number with a
    digit too many (050-123-45678) would pass and be stored as another person's number."""
    country = number.country_code
    if country is None or not phonenumbers.is_possible_number(number):
        return False
    region = phonenumbers.region_code_for_country_code(country)
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(country, region)
    if metadata is None:
        return False
    digits = phonenumbers.national_significant_number(number)
    for form in metadata.number_format:
        if form.leading_digits_pattern and not re.match(form.leading_digits_pattern[-1], digits):
            continue
        if form.pattern and re.fullmatch(form.pattern, digits):
            return True
    return False


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
    city: str = ""
    region: str = ""


def validate_new_lead(
    *,
    full_name: str,
    phone_number: str,
    email: str,
    source: str,
    campaign: str,
    locale: str,
    product_line: str,
    city: str = "",
    region: str = "",
) -> NewLead:
    violations: list[tuple[str, str]] = []
    if not full_name.strip():
        violations.append(("full_name", "is required"))
    if len(full_name) > 200:
        violations.append(("full_name", "at most 200 characters"))
    for name, value in (("city", city), ("region", region), ("product_line", product_line)):
        if len(value.strip()) > 100:
            violations.append((name, "at most 100 characters"))
    if not phone_number.strip() and not email.strip():
        # Either one is enough (an e-mail enquiry has no number): a lead needs a way to reach the person.
        violations.append(("phone_number", "a phone number or an e-mail is required"))
        violations.append(("email", "an e-mail or a phone number is required"))
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
    raise_all(errors)
    return NewLead(
        full_name=" ".join(full_name.split()),
        phone_number=checked.get("phone_number", ""),
        email=checked["email"],
        source=checked["source"],
        campaign=campaign.strip(),
        locale=loc,
        product_line=product_line.strip(),
        city=" ".join(city.split()),
        region=" ".join(region.split()),
    )


# ---------------------------------------------------------------- who a capture acts for


# Request ids (AIP-155) are unique per scope, never company-wide: a caller's retry finds its own
# first capture, and nobody can claim or replay another's request id (or read its lead through
# it). The scope is set by the service from who is calling, never taken from the request: an API
# caller's subject, a web form's key, an import. The prefixes keep the three apart (a token
# subject "import:…" is still an actor scope).
def actor_request_scope(actor: str) -> str:
    return f"actor:{actor}"


def web_form_request_scope(web_form_key_id: str) -> str:
    return f"web-form-key:{web_form_key_id}"


def import_request_scope(import_id: str) -> str:
    return f"import:{import_id}"


@dataclass(frozen=True)
class LeadReach:
    """Whose leads the caller of a capture may change, as the gateway's permission table says
    (crm_gateway.authz): every lead, a team's, a rep's own. The default reaches none (web forms,
    imports, calls without it)."""

    all_leads: bool = False
    team_id: str = ""
    rep_id: str = ""

    def covers(self, *, rep_id: str, team_id: str) -> bool:
        """Whether a lead owned by (rep_id, team_id) is within reach."""
        return (
            self.all_leads
            or (bool(self.team_id) and self.team_id == team_id)
            or (bool(self.rep_id) and self.rep_id == rep_id)
        )


# What a touch (a capture of a person who is already a lead) may fill in on that lead when the
# lead's field is empty, and only when the lead is within the capturing caller's reach: a caller
# must not change (e.g. give an attacker's e-mail to) a lead it may not even read.
TOUCH_FILLABLE_FIELDS = ("phone_number", "email", "city", "region", "product_line")


class Strategy(StrEnum):
    ROUND_ROBIN = "round_robin"
    LEAST_LOADED = "least_loaded"
    NAMED_REP = "named_rep"


class BreachAction(StrEnum):
    REASSIGN = "reassign"
    ESCALATE = "escalate"


@dataclass(frozen=True)
class RoutingRule:
    """One routing rule. Every criterion is a list; an empty list matches anything."""

    id: str
    team_id: str
    sources: tuple[str, ...]  # empty: matches every source (the fallback rule)
    priority: int
    name: str = ""
    campaign_ids: tuple[str, ...] = ()
    product_lines: tuple[str, ...] = ()
    territories: tuple[str, ...] = ()  # city or region names
    languages: tuple[str, ...] = ()  # he, fa, en: the lead's locale's language
    strategy: Strategy = Strategy.ROUND_ROBIN
    rep_id: str = ""  # the named rep (strategy named_rep)
    sla_seconds: int | None = None
    breach_action: BreachAction = BreachAction.ESCALATE


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


# A web-to-lead secret is `wfk_<key id>_<43 url-safe characters: 32 random bytes>`. The key id in
# it finds the stored key in one indexed lookup; only the SHA-256 of the whole secret is stored: the
# secret is 256 random bits, so a fast hash is as safe as a slow one and keeps capture cheap.
WEB_FORM_KEY_PREFIX = "wfk_"
WEB_FORM_SECRET_BYTES = 32
WEB_FORM_SECRET_PREFIX_LENGTH = 12  # "wfk_" and the first 8 characters of the key id
_MAX_SECRET_LENGTH = 200
_NAME_MAX = 100


def new_web_form_secret(key_id: str) -> str:
    """A new secret for the key key_id (shown to its creator once, never stored)."""
    return f"{WEB_FORM_KEY_PREFIX}{key_id}_{secrets.token_urlsafe(WEB_FORM_SECRET_BYTES)}"


def hash_web_form_secret(secret: str) -> str:
    """The stored form of a secret: SHA-256, hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


def web_form_secret_prefix(secret: str) -> str:
    """The first characters of a secret, shown in lists to recognise a key; never the whole secret."""
    return secret[:WEB_FORM_SECRET_PREFIX_LENGTH]


def invalid_web_form_key() -> PermissionDenied:
    # One answer for malformed, unknown and wrong secrets: a caller learns nothing about which keys exist.
    return PermissionDenied("web_form_key is not a valid web-to-lead key", reason="WEB_FORM_KEY_INVALID")


def web_form_key_id(secret: str) -> str:
    """The key id a secret names; PermissionDenied when the secret is not of the key format."""
    if len(secret) > _MAX_SECRET_LENGTH or not secret.startswith(WEB_FORM_KEY_PREFIX):
        raise invalid_web_form_key()
    key_id, sep, random_part = secret[len(WEB_FORM_KEY_PREFIX) :].partition("_")
    if not sep or not random_part:
        raise invalid_web_form_key()
    try:
        canonical = str(uuid.UUID(key_id))
    except ValueError:
        raise invalid_web_form_key() from None
    if canonical != key_id:
        raise invalid_web_form_key()
    return key_id


def web_form_secret_matches(secret: str, secret_hash: str) -> bool:
    """Whether secret is the one whose hash is stored (constant-time comparison)."""
    return hmac.compare_digest(hash_web_form_secret(secret), secret_hash)


@dataclass(frozen=True)
class NewWebFormKey:
    display_name: str
    source: str
    campaign: str


def validate_new_web_form_key(*, display_name: str, source: str, campaign: str) -> NewWebFormKey:
    """Check a new key's fields, reporting every bad one at once."""
    violations: list[tuple[str, str]] = []
    name = " ".join(display_name.split())
    if not name:
        violations.append(("display_name", "is required"))
    elif len(name) > _NAME_MAX:
        violations.append(("display_name", f"at most {_NAME_MAX} characters"))
    if len(campaign.strip()) > _NAME_MAX:
        violations.append(("campaign", f"at most {_NAME_MAX} characters"))
    if not source.strip():
        violations.append(("source", "is required"))
    errors: list[InvalidArgument] = []
    if violations:
        message = "invalid web form key: " + "; ".join(f"{f} {d}" for f, d in violations)
        errors.append(InvalidArgument(message, field_violations=violations))
    code = ""
    if source.strip():
        try:
            code = normalize_source(source)
        except InvalidArgument as exc:
            errors.append(exc)
    raise_all(errors)
    return NewWebFormKey(display_name=name, source=code, campaign=campaign.strip())


def check_web_form_capture(*, source: str, campaign: str) -> None:
    """A capture with a web-to-lead key takes source and campaign from the key, never from the form."""
    violations = [
        (name, "must be empty when web_form_key is set: the key's is used")
        for name, value in (("source", source), ("campaign", campaign))
        if value.strip()
    ]
    if violations:
        raise InvalidArgument(
            "source and campaign come from the web_form_key; leave them empty", field_violations=violations
        )


# ---------------------------------------------------------------- sources and campaigns

_CURRENCY = re.compile(r"[A-Z]{3}")
MAX_MINOR_UNITS = 2**63 - 1


@dataclass(frozen=True)
class NewSource:
    code: str
    display_name: str


def validate_new_source(*, code: str, display_name: str) -> NewSource:
    """A source an admin adds: a code of the catalogue's format and a display name."""
    violations: list[tuple[str, str]] = []
    normalized = code.strip()
    if not SOURCE_CODE.fullmatch(normalized):
        violations.append(("code", "must match [a-z][a-z0-9_]{1,49}"))
    name = " ".join(display_name.split())
    if not name:
        violations.append(("display_name", "is required"))
    elif len(name) > _NAME_MAX:
        violations.append(("display_name", f"at most {_NAME_MAX} characters"))
    if violations:
        raise InvalidArgument("invalid source", field_violations=violations)
    return NewSource(code=normalized, display_name=name)


@dataclass(frozen=True)
class CampaignFields:
    """A campaign's editable fields; money in integer minor units of one ISO 4217 currency."""

    name: str
    starts_on: date | None
    ends_on: date | None
    budget_minor: int
    actual_cost_minor: int
    budget_currency: str
    actual_cost_currency: str


@dataclass(frozen=True)
class ValidCampaign:
    name: str
    starts_on: date | None
    ends_on: date | None
    budget_minor: int
    actual_cost_minor: int
    currency_code: str


def validate_campaign(fields: CampaignFields) -> ValidCampaign:
    """Check a campaign (new, or as it would be after an update), reporting every bad field at once."""
    violations: list[tuple[str, str]] = []
    name = " ".join(fields.name.split())
    if not name:
        violations.append(("name", "is required"))
    elif len(name) > _NAME_MAX:
        violations.append(("name", f"at most {_NAME_MAX} characters"))
    if fields.starts_on and fields.ends_on and fields.ends_on < fields.starts_on:
        violations.append(("ends_on", "must not be before starts_on"))
    currencies: dict[str, str] = {}
    for label, amount, currency in (
        ("budget", fields.budget_minor, fields.budget_currency),
        ("actual_cost", fields.actual_cost_minor, fields.actual_cost_currency),
    ):
        if amount < 0 or amount > MAX_MINOR_UNITS:
            violations.append((f"{label}.amount_minor", "must be a non-negative integer of minor units"))
        code = currency.strip().upper()
        if code and not _CURRENCY.fullmatch(code):
            violations.append((f"{label}.currency_code", "must be an ISO 4217 code, e.g. ILS"))
        elif code:
            currencies[label] = code
        elif amount > 0:
            violations.append((f"{label}.currency_code", "is required with an amount"))
    if len(set(currencies.values())) > 1:
        violations.append(("actual_cost.currency_code", "must be the budget's currency"))
    if violations:
        message = "invalid campaign: " + "; ".join(f"{f} {d}" for f, d in violations)
        raise InvalidArgument(message, field_violations=violations)
    return ValidCampaign(
        name=name,
        starts_on=fields.starts_on,
        ends_on=fields.ends_on,
        budget_minor=fields.budget_minor,
        actual_cost_minor=fields.actual_cost_minor,
        currency_code=next(iter(currencies.values()), ""),
    )
