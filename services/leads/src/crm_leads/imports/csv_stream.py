"""Reading a lead list CSV as it streams in: UTF-8 decoding (BOM or not), records that may span
physical lines, the header's columns, and one row's fields. Pure: no I/O."""

from __future__ import annotations

import codecs
import csv
from dataclasses import dataclass

COLUMNS = ("full_name", "phone_number", "email", "product_line", "city", "region", "locale")
# A record longer than this is refused: an unclosed quote would otherwise swallow the whole file.
MAX_RECORD_CHARS = 65_536
_EMAIL_MAX = 254


class FileRejected(Exception):
    """The file as a whole cannot be imported (not UTF-8, not CSV, bad header, too many rows)."""

    def __init__(self, message: str, *, line_number: int = 0, field: str = "", row_number: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.line_number = line_number
        self.field = field
        self.row_number = row_number


@dataclass(frozen=True)
class Record:
    """One CSV record: the physical line it starts on, and its fields."""

    line_number: int
    fields: list[str]


class CsvStream:
    """Feed raw bytes as they arrive; get back the complete records they finish.

    A record ends at a newline outside quotes: with RFC 4180 quoting ("" inside a quoted field) that
    is a newline after an even number of quote characters, so records are split before csv parses
    them and a quoted field may span lines without the whole file being held in memory."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")("strict")
        self._bytes_seen = 0
        self._partial = ""
        self._lines: list[str] = []
        self._chars = 0
        self._quotes = 0
        self._line = 0
        self._start = 0

    def feed(self, data: bytes, final: bool = False) -> list[Record]:
        try:
            text = self._decoder.decode(data, final)
        except UnicodeDecodeError as exc:
            offset = self._bytes_seen + exc.start
            raise FileRejected(
                f"the file is not UTF-8 text (invalid byte at offset {offset}, after line {self._line})",
                line_number=self._line + 1,
            ) from None
        self._bytes_seen += len(data)
        if "\x00" in text:
            raise FileRejected("the file is not CSV text (it holds NUL bytes)", line_number=self._line + 1)
        pieces = (self._partial + text).split("\n")
        self._partial = pieces.pop()
        if len(self._partial) > MAX_RECORD_CHARS:
            raise FileRejected(f"a line longer than {MAX_RECORD_CHARS} characters", line_number=self._line + 1)
        records: list[Record] = []
        for piece in pieces:
            self._add_line(piece + "\n", records)
        if final:
            if self._partial:
                self._add_line(self._partial, records)
                self._partial = ""
            if self._lines:
                raise FileRejected("a quoted field is never closed", line_number=self._start)
        return records

    def _add_line(self, line: str, records: list[Record]) -> None:
        self._line += 1
        if not self._lines:
            self._start = self._line
        self._lines.append(line)
        self._chars += len(line)
        self._quotes += line.count('"')
        if self._chars > MAX_RECORD_CHARS:
            raise FileRejected(
                f"a record longer than {MAX_RECORD_CHARS} characters (is a quote left open?)", line_number=self._start
            )
        if self._quotes % 2:
            return
        lines, self._lines, self._chars, self._quotes = self._lines, [], 0, 0
        try:
            rows = list(csv.reader(lines, strict=True))
        except csv.Error as exc:
            raise FileRejected(f"the file is not valid CSV: {exc}", line_number=self._start) from None
        if len(rows) > 1:
            raise FileRejected("the file is not valid CSV: stray quote", line_number=self._start)
        if rows and any(field.strip() for field in rows[0]):
            records.append(Record(self._start, rows[0]))


def read_header(record: Record) -> list[str]:
    """The header's column names (normalized); FileRejected naming every problem."""
    names = [name.strip().lower() for name in record.fields]
    problems: list[str] = []
    unknown = [name for name in names if name not in COLUMNS]
    if unknown:
        problems.append(f"unknown columns: {', '.join(repr(n) for n in unknown)} (known: {', '.join(COLUMNS)})")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        problems.append(f"repeated columns: {', '.join(repeated)}")
    if "full_name" not in names:
        problems.append("required column missing: full_name")
    if "phone_number" not in names and "email" not in names:
        problems.append("required column missing: phone_number (or email)")
    if problems:
        raise FileRejected("bad header row: " + "; ".join(problems), line_number=record.line_number, field="header")
    return names


def row_values(columns: list[str], record: Record) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """A record's values by column, and the problems the lead validation does not see."""
    problems: list[tuple[str, str]] = []
    if len(record.fields) != len(columns):
        problems.append(("", f"has {len(record.fields)} fields, the header has {len(columns)}"))
    values = {name: value for name, value in zip(columns, record.fields, strict=False)}
    if len(values.get("email", "")) > _EMAIL_MAX:
        problems.append(("email", f"at most {_EMAIL_MAX} characters"))
    if len(values.get("locale", "")) > 20:
        problems.append(("locale", "at most 20 characters"))
    return values, problems
