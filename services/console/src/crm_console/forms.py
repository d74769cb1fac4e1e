"""What the console's edit forms share (no routes; the only I/O is awaiting the caller's own gateway
call): reading typed digits, sending only the changed fields, placing the gateway's refusals next to
the fields they name, what every form page renders besides its fields, and the words every edit
form uses (edit, cancel, "changed meanwhile" and its reload link).

The area modules (pages_org's teams and reps, pages_marketing's campaigns) import these from here,
never from each other, so one area's screens change without touching another's.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from crm_console.api import ApiError
from crm_console.i18n import Translator, words

# Refusals the forms show next to the fields (the rest render the error page).
FORM_REFUSALS = (409, 412, 422)
_DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")
T = TypeVar("T")

words(
    {
        "edit": {"he": "עריכה", "fa": "ویرایش", "en": "Edit"},
        "cancel": {"he": "ביטול", "fa": "انصراف", "en": "Cancel"},
        "edit_changed_meanwhile": {
            "he": "מישהו אחר שינה את הרשומה בינתיים, והשינוי שלכם לא נשמר. טענו מחדש את הטופס ונסו שוב.",
            "fa": "کس دیگری در این فاصله رکورد را تغییر داد و تغییر شما ذخیره نشد. فرم را دوباره بارگذاری کنید.",
            "en": "Someone else changed this record meanwhile; your change was not saved. Reload the form.",
        },
        "reload_form": {"he": "טעינה מחדש", "fa": "بارگذاری دوباره", "en": "Reload"},
    }
)


def ascii_digits(text: str) -> str:
    """Persian and Arabic-Indic digits as ASCII (a Persian keyboard types ۱۲۳)."""
    return text.translate(_DIGITS)


def changed_fields(new: Mapping[str, Any], old: Mapping[str, Any]) -> dict[str, Any]:
    """A PATCH body: only the fields whose value differs from what the form was filled with. The
    gateway's update masks are "the fields sent", so sending an untouched field would overwrite
    what someone else changed in it meanwhile."""
    return {name: value for name, value in new.items() if name not in old or old[name] != value}


def form_errors(field_errors: Mapping[str, str], fields: Iterable[str]) -> dict[str, str]:
    """The gateway's 422 errors by the form field they belong to ("budget.amount_minor" → budget,
    "working_hours.2.start" → working_hours, "recipients[1]" → recipients); one naming no field of
    the form goes to "" and is shown above the form, so no refusal is lost."""
    known = set(fields)
    placed: dict[str, str] = {}
    for key, message in field_errors.items():
        name = next((base for part in key.split(".") if (base := part.split("[", 1)[0]) in known), "")
        placed.setdefault(name, message)
    return placed


def refusal_errors(exc: ApiError, fields: Iterable[str], t: Translator) -> tuple[dict[str, str], str]:
    """A gateway refusal as (field errors, notice above the form): 412 is "changed meanwhile"; a
    409 or a 422 naming no field shows its detail."""
    if exc.status == 412:
        return {}, t("edit_changed_meanwhile")
    errors = form_errors(exc.field_errors, fields)
    notice = errors.pop("", "")
    if not errors and not notice:
        notice = str(exc.problem.get("detail") or exc.problem.get("title") or exc.status)
    return errors, notice


def form_original(form: Any) -> dict[str, Any]:
    """The values the edit form was filled with (a hidden field), to send only what changed."""
    try:
        found = json.loads(str(form.get("original", "")))
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


@dataclass(frozen=True)
class Refusal:
    """Why a posted form comes back instead of a redirect: errors by field, a notice above the form,
    and the status to answer with (422 for the form's own checks)."""

    errors: dict[str, str] = field(default_factory=dict)
    notice: str = ""
    status: int = 422

    def page(self) -> dict[str, Any]:
        """The form page's keywords; a 412 (changed meanwhile) also asks for the reload link."""
        return {
            "errors": self.errors,
            "notice": self.notice,
            "status_code": self.status,
            "conflict": self.status == 412,
        }


async def answer_or_refusal(
    sending: Awaitable[T], fields: Iterable[str], t: Translator, refusals: Iterable[int] = FORM_REFUSALS
) -> T | Refusal:
    """The gateway's answer to a form's call, or, when the gateway refuses it with one of
    `refusals`, that refusal placed on the form's `fields`. Any other error goes on to the error page."""
    try:
        return await sending
    except ApiError as exc:
        if exc.status not in tuple(refusals):
            raise
        errors, notice = refusal_errors(exc, fields, t)
        return Refusal(errors, notice, exc.status)


def form_state(
    record: Mapping[str, Any] | None, read: Mapping[str, Any] | None, extra: Mapping[str, Any]
) -> dict[str, Any]:
    """What an edit form page renders besides its fields: the values the form was `read` with as
    JSON (the post sends only what changed), the `record`'s ETag, a new record's typed id, and a
    refusal's errors, notice, reload link and status. A re-render after a refusal passes the form
    as it was sent in `extra`, and that wins, so a 412 keeps being refused until the user reloads."""
    return {
        "new_id": extra.get("new_id", ""),
        "original": extra.get("original") or (json.dumps(read, ensure_ascii=False) if read is not None else ""),
        "etag": extra.get("etag") or (record or {}).get("etag", ""),
        "errors": extra.get("errors", {}),
        "notice": extra.get("notice", ""),
        "conflict": extra.get("conflict", False),
        "status_code": extra.get("status_code", 200),
    }


# Currencies money is typed in (campaigns, promotions); amounts are integer minor units (1/100, like t.money).
CURRENCIES = ("ILS", "IRR", "USD", "EUR")
# "1,234.50", "1 234,5" is not accepted (one decimal mark: "." or the Persian "٫"); "٬" and ","
# group thousands.
_AMOUNT = re.compile(r"^\d{1,3}(?:[,٬]?\d{3})*(?:[.٫]\d{1,2})?$|^\d+(?:[.٫]\d{1,2})?$")


def parse_money(amount: str, currency: str) -> dict[str, Any] | None:
    """A typed amount ("1,250.50", Persian digits too) as the gateway's money in minor units; empty
    is None (no budget). ValueError for a negative or unreadable amount, more than two decimals,
    or a currency not offered, so nothing is sent to the gateway."""
    text = ascii_digits(amount.strip()).replace(" ", "")
    if not text:
        return None
    if not _AMOUNT.match(text) or currency not in CURRENCIES:
        raise ValueError(amount)
    try:
        minor = Decimal(re.sub(r"[,٬]", "", text).replace("٫", ".")) * 100
    except InvalidOperation as exc:
        raise ValueError(amount) from exc
    return {"amount_minor": int(minor), "currency_code": currency}


def money_text(money: dict[str, Any] | None) -> str:
    """Minor units as the amount field shows them: "1250.5" → "1250.50", whole amounts bare."""
    if not money:
        return ""
    whole, cents = divmod(int(money.get("amount_minor", 0)), 100)
    return f"{whole}.{cents:02d}" if cents else str(whole)


def idempotency_key(given: str) -> str:
    """The form's key when it is one we issued (a uuid), else a new one: nothing else reaches the header."""
    try:
        return str(uuid.UUID(given))
    except ValueError:
        return str(uuid.uuid4())
