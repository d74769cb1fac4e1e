"""A message as a recipient would read it, before anything is sent: placeholders filled in with a
sample recipient, the SMS parts it costs, and for advertising what the country's rules find
missing (crm_notifications.advertising). Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from crm_notifications import advertising, domain
from crm_notifications.sms_segments import SmsParts, count_parts

LOCALES = ("he-IL", "fa-IR", "en-US")
FIELDS = {
    domain.SMS: frozenset({"name", "date", "advertiser", "advertiser_contact", "link"}),
    domain.EMAIL: frozenset({"name", "date", "advertiser", "advertiser_contact", "link", advertising.UNSUBSCRIBE_LINK}),
}
# {link}: the promotion's landing page as the recipient's own short tracked link.
SAMPLE_LINK = "https://crm.example/r/Ab3dE9xQ"
SAMPLE_NAMES = {"he-IL": "דנה כהן", "fa-IR": "علی رضایی", "en-US": "Noa Levi"}


@dataclass(frozen=True)
class Draft:
    channel: str
    advertising: bool
    locale: str
    subject: str
    body: str


@dataclass(frozen=True)
class Preview:
    subject: str
    body: str
    parts: SmsParts | None
    violations: list[advertising.Violation] = field(default_factory=list)


def _template_problems(name: str, template: str, allowed: frozenset[str]) -> list[advertising.Violation]:
    try:
        used = advertising.placeholders(template)
    except ValueError:
        return [advertising.Violation(name, "template_syntax", "unbalanced { or }: write {{ and }} for a brace")]
    unknown = sorted(used - allowed)
    if unknown:
        known = ", ".join("{" + f + "}" for f in sorted(allowed))
        named = ", ".join("{" + f + "}" for f in unknown)
        return [advertising.Violation(name, "unknown_field", f"unknown fields {named}: use {known}")]
    return []


def preview(
    draft: Draft,
    *,
    rules: advertising.AdvertisingRules,
    advertiser: advertising.Advertiser,
    today: date,
    unsubscribe_link: str,
) -> Preview:
    """`draft` rendered for a sample recipient of its locale, with every problem found (nothing
    is rendered from a template whose fields are wrong: those are the problems then)."""
    allowed = FIELDS[draft.channel]
    problems = _template_problems("subject", draft.subject, allowed) + _template_problems("body", draft.body, allowed)
    if problems:
        return Preview(
            draft.subject, draft.body, count_parts(draft.body) if draft.channel == domain.SMS else None, problems
        )
    values = domain.KeepUnknown(
        name=SAMPLE_NAMES[draft.locale],
        date=domain.LocalDay(today, draft.locale),
        advertiser=advertiser.name,
        advertiser_contact=advertiser.contact,
        unsubscribe_link=unsubscribe_link,
        link=SAMPLE_LINK,
    )
    try:
        subject, body = draft.subject.format_map(values), draft.body.format_map(values)
    except ValueError as exc:  # a format a field cannot take ("{name:%d}")
        return Preview(draft.subject, draft.body, None, [advertising.Violation("body", "template_syntax", str(exc))])
    violations: list[advertising.Violation] = []
    if draft.channel == domain.SMS:
        if draft.advertising:
            violations = advertising.check_sms(body, rules.sms, advertiser)
        return Preview(subject, body, count_parts(body), violations)
    if draft.advertising:
        violations = advertising.check_email(subject, draft.body, body, rules.email, advertiser)
    return Preview(subject, body, None, violations)
