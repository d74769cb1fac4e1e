"""SMS parts per text: GSM-7 vs UCS-2, and the split rules at the boundaries."""

import pytest

from crm_notifications.sms_segments import GSM7, UCS2, count_parts

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "encoding", "units", "parts"),
    [
        ("", GSM7, 0, 1),
        ("a" * 160, GSM7, 160, 1),
        ("a" * 161, GSM7, 161, 2),
        ("a" * 306, GSM7, 306, 2),
        ("a" * 307, GSM7, 307, 3),
        ("€" * 80, GSM7, 160, 1),  # an extension character is two septets
        ("€" * 81, GSM7, 162, 2),
        ("ש" * 70, UCS2, 70, 1),  # Hebrew: UCS-2, 70 in one message
        ("ש" * 71, UCS2, 71, 2),
        ("س" * 134, UCS2, 134, 2),  # Persian: 67 per part
        ("س" * 135, UCS2, 135, 3),
        ("Hello ש", UCS2, 7, 1),  # one Hebrew letter makes the whole text UCS-2
        ("😀" * 35, UCS2, 70, 1),  # outside the BMP: two UTF-16 units
    ],
)
def test_parts_per_encoding(text: str, encoding: str, units: int, parts: int) -> None:
    counted = count_parts(text)
    assert (counted.encoding, counted.units, counted.parts) == (encoding, units, parts)


def test_an_escape_pair_is_never_split_between_parts() -> None:
    # 152 plain septets then "€": the pair does not fit the first part's last septet.
    counted = count_parts("a" * 152 + "€" + "a" * 10)
    assert (counted.units, counted.parts, counted.remaining) == (164, 2, 153 - 12)


def test_a_surrogate_pair_is_never_split_between_parts() -> None:
    counted = count_parts("ש" * 66 + "😀" + "ש" * 10)
    assert (counted.units, counted.parts, counted.remaining) == (78, 2, 67 - 12)


def test_the_hebrew_shipment_sms_fits_two_parts() -> None:
    text = "שלום דנה כהן, ההזמנה שלך נשלחה עם דואר ישראל (מעקב RR123IL). מועד מסירה משוער: 3.12.2026."
    counted = count_parts(text)
    assert counted.encoding == UCS2 and counted.parts == 2 and counted.units == len(text)
