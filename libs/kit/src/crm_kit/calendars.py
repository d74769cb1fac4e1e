"""Days as people in Israel and Iran write them, in one place: the Solar Hijri (Jalali) calendar
of Iran with Persian digits, and CLDR's Gregorian patterns (babel) for Hebrew and English. Pure.

`format_day(day, locale, spec)` is what a message template's date placeholder calls: `spec` is a
comma-separated list of words, each optional —

- the length: `short` (the default: numeric) or `long` (the month's name);
- the calendar: `jalali` (the default for Persian) or `gregorian` (the default otherwise);
- the digits: `native` (the default: Persian digits for Persian) or `latn` (ASCII digits).

For 2026-12-03 (12 Azar 1405): he-IL `3.12.2026` / long `3 בדצמבר 2026`; fa-IR `۱۴۰۵/۰۹/۱۲` /
long `۱۲ آذر ۱۴۰۵` / `gregorian` `۲۰۲۶/۱۲/۳`; en-US `12/3/26` / long `December 3, 2026`.
"""

from __future__ import annotations

from datetime import date
from functools import cache

import jdatetime
from babel import Locale
from babel.dates import format_date

PERSIAN_DIGITS = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
# Persian (Extended Arabic-Indic) and Arabic-Indic digits, as people type them, to ASCII.
_LATIN_DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")
JALALI_MONTHS = (
    "فروردین", "اردیبهشت", "خرداد", "تیر", "مرداد", "شهریور", "مهر", "آبان", "آذر", "دی", "بهمن", "اسفند",
)  # fmt: skip
SPEC_WORDS = frozenset({"short", "long", "jalali", "gregorian", "native", "latn"})


class UnknownDateFormat(ValueError):
    """A date spec word that is none of SPEC_WORDS (or two that contradict each other)."""


def persian_digits(text: str) -> str:
    """ASCII digits as Persian (Extended Arabic-Indic) digits; everything else unchanged."""
    return text.translate(PERSIAN_DIGITS)


def latin_digits(text: str) -> str:
    """Persian and Arabic-Indic digits as ASCII digits; everything else unchanged."""
    return text.translate(_LATIN_DIGITS)


def is_persian(locale: str) -> bool:
    """fa, fa-IR, fa_IR: Persian as Iran writes it."""
    return locale.replace("_", "-").split("-", 1)[0].lower() == "fa"


def jalali(day: date) -> tuple[int, int, int]:
    """The Solar Hijri (year, month, day) of a Gregorian day."""
    converted = jdatetime.date.fromgregorian(date=day)
    return converted.year, converted.month, converted.day


def jalali_long(day: date) -> str:
    """ "۱۲ آذر ۱۴۰۵": day, month name, year, in Persian digits (how Iranians write a date out)."""
    year, month, dd = jalali(day)
    return persian_digits(f"{dd} {JALALI_MONTHS[month - 1]} {year}")


def jalali_numeric(day: date) -> str:
    """ "۱۴۰۵/۰۹/۱۲": year/month/day with two-digit month and day (the official numeric form)."""
    year, month, dd = jalali(day)
    return persian_digits(f"{year}/{month:02d}/{dd:02d}")


@cache
def _babel(locale: str) -> Locale:
    return Locale.parse(locale.replace("-", "_"))


def parse_spec(spec: str) -> frozenset[str]:
    """The words of a date spec; UnknownDateFormat for a word it does not know or a contradiction."""
    words = frozenset(w.strip().lower() for w in spec.split(",") if w.strip())
    unknown = words - SPEC_WORDS
    if unknown:
        raise UnknownDateFormat(
            f"unknown date format {', '.join(sorted(unknown))}: use {', '.join(sorted(SPEC_WORDS))}"
        )
    for pair in ({"short", "long"}, {"jalali", "gregorian"}, {"native", "latn"}):
        if pair <= words:
            raise UnknownDateFormat(f"date format asks for both {' and '.join(sorted(pair))}")
    return words


def format_day(day: date, locale: str, spec: str = "") -> str:
    """day as `locale` (BCP 47) writes it, as `spec` asks (module docstring)."""
    words = parse_spec(spec)
    persian = is_persian(locale)
    long = "long" in words
    if "jalali" in words or (persian and "gregorian" not in words):
        text = jalali_long(day) if long else jalali_numeric(day)
        if not persian:
            # A Jalali date in a Hebrew or English message keeps its month name in Persian.
            text = text.translate(_LATIN_DIGITS)
    else:
        text = format_date(day, format="long" if long else "short", locale=_babel(locale))
    if "latn" in words:
        return text.translate(_LATIN_DIGITS)
    return persian_digits(text) if persian else text
