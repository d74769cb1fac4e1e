"""Lead rules: the source catalogue's built-in codes, normalization of a captured lead's fields
(phone numbers of the home markets, locales, e-mail), request-id scopes and a caller's reach.
Pure, no I/O."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from crm_kit import phones
from crm_kit.errors import InvalidArgument, raise_all

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


class LeadStatus(StrEnum):
    NEW = "new"
    CONVERTED = "converted"


def normalize_source(source: str) -> str:
    """A source code of the catalogue's format; whether it exists and is active is checked against
    the catalogue (crm_leads.campaigns.queries) in the capture's unit of work."""
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
    """A phone number in E.164, reading local Israeli and Iranian formats (crm_kit.phones); a
    number that is not one is refused on the field."""
    number = phones.e164(raw, locale)
    if number is None:
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
    return number


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
    violations = _shape_violations(
        full_name=full_name, phone_number=phone_number, email=email, city=city, region=region, product_line=product_line
    )
    if violations:
        raise InvalidArgument("invalid lead", field_violations=violations)
    checked = _normalized(phone_number=phone_number, email=email, source=source, locale=locale)
    return NewLead(
        full_name=" ".join(full_name.split()),
        phone_number=checked.get("phone_number", ""),
        email=checked["email"],
        source=checked["source"],
        campaign=campaign.strip(),
        locale=checked["locale"],
        product_line=product_line.strip(),
        city=" ".join(city.split()),
        region=" ".join(region.split()),
    )


def _shape_violations(
    *, full_name: str, phone_number: str, email: str, city: str, region: str, product_line: str
) -> list[tuple[str, str]]:
    """What is missing or too long, checked before any normalization."""
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
    return violations


def _normalized(*, phone_number: str, email: str, source: str, locale: str) -> dict[str, str]:
    """Locale, source, e-mail and phone number normalized; every bad one is reported at once, so a
    client fixes all of them in one go. The phone number is read in the (valid) locale's country."""
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
    checked.setdefault("locale", DEFAULT_LOCALE)
    if phone_number.strip():
        try:
            checked["phone_number"] = normalize_phone(phone_number, checked["locale"])
        except InvalidArgument as exc:
            errors.append(exc)
    raise_all(errors)
    return checked


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
    (crm_gateway.platform.authz): every lead, a team's, a rep's own. The default reaches none (web forms,
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
