"""Numbers, money, dates and text direction as a quote document prints them, per locale (he/fa/en).

Babel (CLDR) gives each locale's patterns, separators and currency symbols; two things it leaves
to us: it keeps ASCII digits even for the Persian numbering system, so fa output is transliterated
to Persian digits here (docs/selling.md "Quote documents" says why fa prints them), and it puts
no space between a letter symbol and the number ("IRR1,000"), which CLDR's currency spacing asks
for. No I/O.
"""

from __future__ import annotations

import copy
import unicodedata
from datetime import date
from decimal import Decimal
from functools import cache
from types import MappingProxyType

from babel import Locale
from babel.dates import format_date
from babel.numbers import NumberPattern, get_currency_name, parse_pattern

from crm_kit import calendars
from crm_kit.errors import InvalidArgument
from crm_sales.catalog import money as catalog_money

# he and fa as written in Israel and Iran; en with CLDR's root English patterns ("December 5, 2026").
_BABEL_LOCALES = MappingProxyType({"he": "he_IL", "fa": "fa_IR", "en": "en"})
LOCALES = frozenset(_BABEL_LOCALES)


# CLDR's fa pattern puts the symbol first ("‎ریال ۱۲۰"); invoices in Iran write the amount and then
# the currency ("۱۲۰ ریال"), as spoken.
_FA_CURRENCY = parse_pattern("#,##0.00\u00a0¤")
_STRONG_RTL = frozenset({"R", "AL"})
_ALM = "\u061c"  # ARABIC LETTER MARK


def shown_digits(amount_minor: int, currency: str) -> int:
    """Fraction digits to print: the currency's ISO 4217 minor digits, less those its rounding
    step never uses (rials are whole: IRR shows none), unless this amount does use them."""
    digits = catalog_money.minor_digits(currency)  # INVALID_ARGUMENT naming `currency` when unknown
    step = catalog_money.rounding_step(currency)
    unused = len(str(step)) - 1 if step > 1 and amount_minor % step == 0 else 0
    return digits - unused


def check_locale(locale: str) -> None:
    if locale not in LOCALES:
        raise InvalidArgument(
            f"no quote document in locale {locale!r}",
            field_violations=[("locale", f"must be one of {', '.join(sorted(LOCALES))}")],
        )


@cache
def _babel(locale: str) -> Locale:
    return Locale.parse(_BABEL_LOCALES[locale])


def native_digits(text: str, locale: str) -> str:
    """Persian digits for fa, the text unchanged otherwise."""
    return calendars.persian_digits(text) if locale == "fa" else text


def _apply(
    pattern: NumberPattern, value: Decimal, locale: str, fraction: tuple[int, int], currency: str | None = None
) -> str:
    fixed = copy.copy(pattern)
    fixed.frac_prec = fraction
    loc = _babel(locale)
    text = fixed.apply(value, loc, currency=currency, currency_digits=False, numbering_system="default")
    # Babel keeps ASCII "%" whatever the numbering system; Persian uses its own sign.
    text = text.replace("%", loc.number_symbols[loc.default_numbering_system]["percentSign"])
    return native_digits(text, locale)


def _space_letter_symbol(text: str) -> str:
    """NBSP between a letter currency symbol and a digit (CLDR currency spacing: "IRR 1,000")."""
    out: list[str] = []
    for char in text:
        if out and ((out[-1].isalpha() and char.isdigit()) or (out[-1].isdigit() and char.isalpha())):
            out.append("\u00a0")
        out.append(char)
    return "".join(out)


def _scaled(amount_minor: int, currency: str) -> tuple[Decimal, tuple[int, int]]:
    digits = shown_digits(amount_minor, currency)
    return Decimal(amount_minor).scaleb(-catalog_money.minor_digits(currency)), (digits, digits)


def money(amount_minor: int, currency: str, locale: str) -> str:
    """An amount with its currency symbol: he "1,234.50 ₪" (with CLDR's RLMs), fa "۱٬۲۳۴ ریال",
    en "$1,234.50"."""
    value, fraction = _scaled(amount_minor, currency)
    pattern = _FA_CURRENCY if locale == "fa" else _babel(locale).currency_formats["standard"]
    return _space_letter_symbol(_apply(pattern, value, locale, fraction, currency=currency))


def amount(amount_minor: int, currency: str, locale: str) -> str:
    """An amount without symbol, for table cells under a header that names the currency."""
    value, fraction = _scaled(amount_minor, currency)
    return _apply(_babel(locale).decimal_formats[None], value, locale, fraction)


def number(value: int, locale: str) -> str:
    """A whole number (quantities, line numbers) with the locale's grouping and digits."""
    return _apply(_babel(locale).decimal_formats[None], Decimal(value), locale, (0, 0))


def percent(basis_points: int, locale: str) -> str:
    """A rate in basis points as a percentage with up to two decimals: 1250 → "12.5%", "۱۲٫۵٪".

    Persian starts with an Arabic letter mark: the bidi algorithm then treats the digits as
    Arabic numbers, so the sign stands after them in reading order (left of them on the page)
    wherever the rate is printed, as it does in running Persian text."""
    value = Decimal(basis_points).scaleb(-4)
    text = _apply(_babel(locale).percent_formats[None], value, locale, (0, 2))
    return _ALM + text if locale == "fa" else text


def currency_name(currency: str, locale: str) -> str:
    return get_currency_name(currency, locale=_babel(locale))


def gregorian_date(day: date, locale: str) -> str:
    """The locale's long date: "5 בדצמבר 2026", "۵ دسامبر ۲۰۲۶", "December 5, 2026"."""
    return native_digits(format_date(day, format="long", locale=_babel(locale)), locale)


def jalali_date(day: date) -> str:
    """The Solar Hijri date as Iranians write it: "۱۴ آذر ۱۴۰۵"."""
    return calendars.jalali_long(day)


def text_direction(text: str, default: str) -> str:
    """ "rtl" or "ltr" by the first strong character (the Unicode rule behind dir="auto", which
    the renderer does not implement); `default` when the text has none (digits, punctuation)."""
    for char in text:
        kind = unicodedata.bidirectional(char)
        if kind in _STRONG_RTL:
            return "rtl"
        if kind == "L":
            return "ltr"
    return default
