"""How many SMS parts a text costs: GSM-7 (160 characters, 153 per part of a long message) when
every character is in the GSM 03.38 alphabet, else UCS-2 (70, 67 per part) — which is every
Hebrew or Persian message. Pure; the sender shows the figure before sending and records it per
message (cost = parts × the provider's price per part).

Counted as the phone network splits: a GSM-7 extension character (``€ [ ] { } ^ ~ | \\`` and form
feed) takes two septets and is never split between parts; in UCS-2 a character outside the Basic
Multilingual Plane (most emoji) takes two UTF-16 units and is never split either.
"""

from __future__ import annotations

from dataclasses import dataclass

GSM7 = "gsm-7"
UCS2 = "ucs-2"

# GSM 03.38 default alphabet (one septet each) and its extension table (escape + one septet).
_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

# (one message, each part of a long one), in the encoding's units.
_LIMITS = {GSM7: (160, 153), UCS2: (70, 67)}


@dataclass(frozen=True)
class SmsParts:
    """The encoding a text is sent in, its length in that encoding's units, and its parts."""

    encoding: str
    units: int
    parts: int
    # Units left in the last part before another part is needed.
    remaining: int


def encoding_of(text: str) -> str:
    return GSM7 if all(c in _GSM7_BASIC or c in _GSM7_EXTENSION for c in text) else UCS2


def _unit_sizes(text: str, encoding: str) -> list[int]:
    if encoding == GSM7:
        return [2 if c in _GSM7_EXTENSION else 1 for c in text]
    return [2 if ord(c) > 0xFFFF else 1 for c in text]


def count_parts(text: str) -> SmsParts:
    """The parts `text` is sent as (an empty text is one part: a message is still sent)."""
    encoding = encoding_of(text)
    sizes = _unit_sizes(text, encoding)
    units = sum(sizes)
    single, per_part = _LIMITS[encoding]
    if units <= single:
        return SmsParts(encoding, units, 1, single - units)
    parts, used = 1, 0
    for size in sizes:
        if used + size > per_part:  # never split an escape pair or a surrogate pair
            parts, used = parts + 1, 0
        used += size
    return SmsParts(encoding, units, parts, per_part - used)
