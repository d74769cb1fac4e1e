"""Phone numbers of the home markets (Israel, Iran) in E.164: one reading for every service, so
a number captured on a lead, stored on a customer and searched for by an agent is the same text
whichever way it was typed (050-123-4567, +972 50 123 4567, 00972501234567, ۰۹۱۲۳۴۵۶۷۸۹). Pure.
"""

from __future__ import annotations

import re

import phonenumbers

# Where a number without a country code is read: the locale's country first, then the other
# home market (a Tehran number typed on an Israeli form still parses).
_REGIONS_BY_LOCALE = {"he-IL": ("IL", "IR"), "fa-IR": ("IR", "IL"), "en-US": ("IL", "IR", "US")}


def e164(raw: str, locale: str = "he-IL") -> str | None:
    """A phone number in E.164, reading local Israeli and Iranian formats.

    A number without a country code is the locale's country's when it is valid there or has the
    exact shape of its numbers (numbering plans grow faster than the library's metadata: 050-1xx
    is in use, but not in the metadata). Failing that, it is read as a *mobile* number of the
    other home market (a Tehran mobile typed on a Hebrew form); any other reading there would
    turn a local number with a digit too many (054-433-20488) into someone's Iranian landline.
    Whatever is left is None: the library's lenient parse keeps every digit typed."""
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
    return None


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
