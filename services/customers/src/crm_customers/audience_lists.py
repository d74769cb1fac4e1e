"""Static audience lists from CSV files: the file read into one key per line (a customer id, an
E.164 number or an e-mail address) and the line errors. Pure: commands matches the keys to live
customers in a few statements and stores the list.

The file is UTF-8 (a byte-order mark is allowed, as Excel writes one), comma-separated, with a
header row naming at least one of `customer_id`, `phone_number`, `email` (any case, any order,
other columns ignored). A line is matched by the first of those columns it fills, in that order;
a local number is read as an Israeli one, then as an Iranian mobile (`crm_kit.phones`). Blank
lines are skipped; a line that repeats an earlier key counts once.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass

from crm_kit import phones

COLUMNS = ("customer_id", "phone_number", "email")
MAX_LINES = 250_000
MAX_NAME = 200
# The line errors a list keeps and shows (the count is of all of them).
MAX_KEPT_ERRORS = 1_000
MAX_VALUE = 320


class UnreadableList(ValueError):
    """The whole file cannot be read as a list: no line is looked at."""


@dataclass(frozen=True)
class Key:
    line_number: int
    field: str  # one of COLUMNS
    value: str  # as matched: a customer id, an E.164 number, a lower-case e-mail address


@dataclass(frozen=True)
class LineError:
    line_number: int
    field: str
    message: str


def _text(content: bytes) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableList(
            f"the file is not UTF-8 text (byte {exc.start + 1}): save it as CSV UTF-8 and upload it again"
        ) from exc


def _key(line_number: int, field: str, raw: str) -> Key | LineError:
    value = raw.strip()
    if len(value) > MAX_VALUE:
        return LineError(line_number, field, f"longer than {MAX_VALUE} characters")
    if field == "phone_number":
        number = phones.e164(value)
        return Key(line_number, field, number) if number else LineError(line_number, field, "not a phone number")
    if field == "email":
        if "@" not in value.strip("@"):
            return LineError(line_number, field, "not an e-mail address")
        return Key(line_number, field, value.lower())
    return Key(line_number, field, value)


def read(content: bytes) -> tuple[list[Key], list[LineError]]:
    """Every line's key, and the lines that cannot give one; UnreadableList for the whole file."""
    reader = csv.reader(io.StringIO(_text(content), newline=""))
    try:
        header = [name.strip().lower() for name in next(reader, [])]
    except csv.Error as exc:
        raise UnreadableList(f"the header row cannot be read as CSV: {exc}") from exc
    places = {name: header.index(name) for name in COLUMNS if name in header}
    if not places:
        raise UnreadableList(f"the header row names none of {', '.join(COLUMNS)}")
    keys: list[Key] = []
    errors: list[LineError] = []
    try:
        for row in reader:
            if reader.line_num - 1 > MAX_LINES:
                raise UnreadableList(f"more than {MAX_LINES:,} lines: split the file")
            cells = {name: row[at] for name, at in places.items() if at < len(row) and row[at].strip()}
            if not any(cell.strip() for cell in row):
                continue
            field = next((name for name in COLUMNS if name in cells), None)
            if field is None:
                errors.append(LineError(reader.line_num, next(iter(places)), "empty: no customer to match"))
                continue
            found = _key(reader.line_num, field, cells[field])
            (keys if isinstance(found, Key) else errors).append(found)  # type: ignore[arg-type]
    except csv.Error as exc:
        raise UnreadableList(f"line {reader.line_num} cannot be read as CSV: {exc}") from exc
    return keys, errors


def unmatched(keys: list[Key], matched: Mapping[tuple[str, str], object]) -> list[LineError]:
    """The lines whose key names no live customer (matched: (field, value) → the customers it names)."""
    return [
        LineError(k.line_number, k.field, f"no customer with this {k.field.replace('_', ' ')}")
        for k in keys
        if (k.field, k.value) not in matched
    ]
