"""Matching keys of a person's name, Hebrew/Persian/Latin aware. Pure, no I/O.

Three keys, each stored in its own indexed column of `leads`, so a lookup is an equality:

- `name_key`: the folded name with its words sorted ("כהן משה" = "משה כהן").
- `name_compact`: the folded words in their written order with no spaces, so a compound written
  as one word, with a zero-width non-joiner or with a space ("محمدرضا" / "محمد‌رضا" /
  "محمد رضا") is one key.
- `name_skeleton`: a consonant skeleton of every word (sorted) in one phonetic alphabet shared
  by Hebrew, Persian and Latin spellings, so "כהן" / "Cohen" / "Kohen" and "محمدی" / "Mohammadi"
  meet. It is deliberately coarse (vowels and the letters that are mostly vowels are dropped),
  so it only ever proposes a pair for a person to review; see docs/lead-acquisition.md.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Removed outright: bidi marks and embeddings, zero-width (non-)joiners, BOM, tatweel, Hebrew
# points and cantillation (U+0591–U+05C7 except the maqaf, a hyphen), Arabic harakat, tanwin,
# shadda, sukun and the superscript alef, geresh/gershayim and the quote marks used for them.
_REMOVED = (
    "\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"
    "\u0640"
    + "".join(chr(c) for c in range(0x0591, 0x05C8) if c != 0x05BE)
    + "".join(chr(c) for c in range(0x064B, 0x0660))
    + "\u0670"
    + "\u05f3\u05f4'\"`\u2018\u2019\u201c\u201d\u00b4"
)
_FOLDS = {
    # Hebrew final letters
    "ך": "כ",
    "ם": "מ",
    "ן": "נ",
    "ף": "פ",
    "ץ": "צ",
    # Arabic letter shapes → the Persian ones Persian keyboards type
    "ي": "ی",
    "ى": "ی",
    "ئ": "ی",
    "ك": "ک",
    "ة": "ه",
    "ۀ": "ه",
    "أ": "ا",
    "إ": "ا",
    "آ": "ا",
    "ٱ": "ا",
    "ؤ": "و",
    # the Hebrew maqaf is a hyphen
    "\u05be": " ",
}
_TABLE = str.maketrans(
    {
        **dict.fromkeys(_REMOVED, None),
        **_FOLDS,
        # Persian and Arabic-Indic digits → ASCII
        **{chr(0x06F0 + d): str(d) for d in range(10)},
        **{chr(0x0660 + d): str(d) for d in range(10)},
    }
)


def fold(text: str) -> str:
    """NFKC, casefold and the script folds above; punctuation and symbols become spaces."""
    folded = unicodedata.normalize("NFKC", text).translate(_TABLE).casefold()
    # NFKC may decompose presentation forms into base + point: remove what it produced.
    folded = folded.translate(_TABLE)
    return "".join(" " if unicodedata.category(ch)[0] in "PSZC" else ch for ch in folded)


def words(full_name: str) -> list[str]:
    """The folded words of a name, in written order."""
    return fold(full_name).split()


def name_key(full_name: str) -> str:
    """The folded words, sorted: word order does not matter."""
    return " ".join(sorted(words(full_name)))[:200]


def name_compact(full_name: str) -> str:
    """The folded words in written order without separators: "محمد رضا" = "محمدرضا"."""
    return "".join(words(full_name))[:200]


# ---------------------------------------------------------------- consonant skeleton

# One phonetic class per consonant group; letters missing here (vowels, matres lectionis
# א ע ו י / ا ع و ی, glottal stops, digits) are dropped.
_CLASS_BY_LETTER: dict[str, str] = {}
for _cls, _letters in {
    "B": "bpfvבפب پف",
    "G": "gqגگغق",
    "K": "kxhכקחהکخحه",
    "D": "dtדטתتطدث",
    "S": "szסשזצسصزذضظشژ",
    "J": "jجچ",
    "L": "lלل",
    "M": "mמم",
    "N": "nנن",
    "R": "rרر",
}.items():
    for _letter in _letters.replace(" ", ""):
        _CLASS_BY_LETTER[_letter] = _cls

# Latin digraphs first (Hebrew-style transliteration: "ch" is ח as in Chaim, Cohen's c is k).
_DIGRAPHS = re.compile(r"sh|ch|kh|gh|ph|th|tz|ts|zh|ck|c")
_DIGRAPH_CLASS = {
    "sh": "s",
    "ch": "k",
    "kh": "k",
    "gh": "g",
    "ph": "f",
    "th": "t",
    "tz": "s",
    "ts": "s",
    "zh": "s",
    "ck": "k",
}
_FINAL_H = ("h", "ה", "ه")
# Fewer consonant classes than this across the whole name is too common a skeleton to propose.
MIN_SKELETON_CLASSES = 4


def _latin_c(match: re.Match[str]) -> str:
    group = match.group(0)
    if group != "c":
        return _DIGRAPH_CLASS[group]
    following = match.string[match.end() : match.end() + 1]
    return "s" if following in ("e", "i", "y") else "k"


def word_skeleton(word: str) -> str:
    """The consonant classes of one folded word, repeats collapsed: "cohen" → "KN"."""
    # A final h/ה/ه is a vowel sign (Moshe, משה, Fatemeh, فاطمه).
    while len(word) > 1 and word.endswith(_FINAL_H):
        word = word[:-1]
    word = _DIGRAPHS.sub(_latin_c, word)
    classes: list[str] = []
    for ch in word:
        cls = _CLASS_BY_LETTER.get(ch)
        if cls and (not classes or classes[-1] != cls):
            classes.append(cls)
    return "".join(classes)


def name_skeleton(full_name: str) -> str:
    """Sorted word skeletons, or "" when the name has too few consonants to mean anything."""
    parts = sorted(s for s in (word_skeleton(w) for w in words(full_name)) if s)
    if sum(len(p) for p in parts) < MIN_SKELETON_CLASSES:
        return ""
    return " ".join(parts)[:200]


@dataclass(frozen=True)
class NameKeys:
    key: str
    compact: str
    skeleton: str


def name_keys(full_name: str) -> NameKeys:
    return NameKeys(key=name_key(full_name), compact=name_compact(full_name), skeleton=name_skeleton(full_name))
