"""What the console's edit forms share (no routes, no I/O): reading typed digits, sending only the
changed fields, placing the gateway's refusals next to the fields they name, and the words every
edit form uses (edit, cancel, "changed meanwhile" and its reload link).

The area modules (pages_org's teams and reps, pages_marketing's campaigns) import these from here,
never from each other, so one area's screens change without touching another's.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from crm_console.api import ApiError
from crm_console.i18n import Translator, words

# Refusals the forms show next to the fields (the rest render the error page).
FORM_REFUSALS = (409, 412, 422)
_DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")

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
    "working_hours.2.start" → working_hours); one naming no field of the form goes to "" and is
    shown above the form, so no refusal is lost."""
    known = set(fields)
    placed: dict[str, str] = {}
    for key, message in field_errors.items():
        name = next((part for part in key.split(".") if part in known), "")
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
