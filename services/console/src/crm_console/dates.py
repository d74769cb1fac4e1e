"""Picking a date in the user's calendar (templates/_date.html's `date_field`).

Persian users pick dates in the Solar Hijri calendar: day, month name and year selects named
`<name>__jd`, `<name>__jm`, `<name>__jy`; everyone else gets the browser's `<input type="date">`
named `<name>`. The gateway takes Gregorian ISO dates, so a handler reads every date field with
`picked_date` (`picked_datetime` for a date and a time), which converts the Jalali selects when
the form had them. A day that does not
exist (31 Mehr, 30 Esfand of a common year) or a date half picked is refused on the field, never
moved to a neighbouring day.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

import jdatetime

from crm_console.i18n import gregorian_of_jalali, jalali_parts

PARTS = ("__jy", "__jm", "__jd")


def jalali_of(value: Any) -> tuple[int, int, int] | None:
    """The Solar Hijri (year, month, day) of an ISO date (or the date part of a date-time), or
    None when there is none."""
    text = str(value or "")[:10]
    try:
        date.fromisoformat(text)
    except ValueError:
        return None
    return jalali_parts(text)


def jalali_years(value: Any, back: int = 1, ahead: int = 2) -> list[int]:
    """The years a Jalali year select offers: around today's, and always the value's own."""
    this_year = int(jdatetime.date.today().year)
    years = set(range(this_year - back, this_year + ahead + 1))
    if (picked := jalali_of(value)) is not None:
        years.add(picked[0])
    return sorted(years)


def picked_date(form: Mapping[str, Any], name: str) -> tuple[str, bool]:
    """The ISO date a form's date field holds, and whether it is one: the Jalali selects when the
    form had them, else the `<input type="date">` value as sent ("" when left empty)."""
    if not any(f"{name}{part}" in form for part in PARTS):
        return str(form.get(name, "") or "").strip(), True
    year, month, day = (str(form.get(f"{name}{part}", "") or "").strip() for part in PARTS)
    if not (year or month or day):
        return "", True
    gregorian = gregorian_of_jalali(year, month, day)
    return (gregorian, True) if gregorian else ("", False)


def picked_datetime(form: Mapping[str, Any], name: str) -> tuple[str, bool]:
    """A date-time field as a datetime-local value (YYYY-MM-DDTHH:MM, the user's wall clock): the
    Jalali date selects and `<name>__time` in Persian, else the `<input type="datetime-local">`."""
    if not any(f"{name}{part}" in form for part in PARTS):
        return str(form.get(name, "") or "").strip(), True
    day, ok = picked_date(form, name)
    clock = str(form.get(f"{name}__time", "") or "").strip()
    if not ok or (clock and not day):
        return "", False
    return (f"{day}T{clock or '09:00'}" if day else ""), True
