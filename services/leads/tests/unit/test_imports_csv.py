"""Reading a streamed lead list: encodings, records over several lines, header, rows."""

from __future__ import annotations

import pytest

from crm_leads.imports.csv_stream import CsvStream, FileRejected, Record, read_header, row_values

pytestmark = pytest.mark.unit


def read_all(data: bytes, chunk: int) -> list[Record]:
    stream = CsvStream()
    records: list[Record] = []
    for start in range(0, len(data), chunk):
        records += stream.feed(data[start : start + chunk])
    return records + stream.feed(b"", final=True)


CSV = (
    "\ufefffull_name,phone_number,city\r\n"
    'דנה כהן,050-1234567,"תל אביב"\r\n'
    '"علی ""رضایی""",0912 345 6789,"تهران\r\nمرکز"\r\n'
    "\r\n"
    "משה לוי,052-7654321,חיפה"
).encode()


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 4096])
def test_records_keep_their_physical_line_whatever_the_chunking(chunk: int) -> None:
    records = read_all(CSV, chunk)

    assert [r.line_number for r in records] == [1, 2, 3, 6]
    assert records[0].fields == ["full_name", "phone_number", "city"]  # the BOM is gone
    assert records[2].fields == ['علی "رضایی"', "0912 345 6789", "تهران\r\nمرکز"]
    assert records[3].fields == ["משה לוי", "052-7654321", "חיפה"]


def test_a_file_that_is_not_utf8_is_rejected_with_its_line() -> None:
    data = "full_name,phone_number\nדנה,050\n".encode() + "משה".encode("cp1255") + b",052\n"
    with pytest.raises(FileRejected) as err:
        read_all(data, 5)
    assert "not UTF-8" in err.value.message
    assert err.value.line_number == 3


def test_an_unclosed_quote_is_rejected_at_the_line_it_opened() -> None:
    with pytest.raises(FileRejected) as err:
        read_all(b'full_name,phone_number\n"open,050\nmore\n', 4)
    assert err.value.line_number == 2
    assert "never closed" in err.value.message


def test_binary_data_is_not_csv() -> None:
    with pytest.raises(FileRejected):
        read_all(b"full_name\x00,phone\n", 100)


def test_header_names_unknown_repeated_and_missing_columns_at_once() -> None:
    with pytest.raises(FileRejected) as err:
        read_header(Record(1, ["Full_Name", "tel", "city", "city"]))
    message = err.value.message
    assert "'tel'" in message and "repeated columns: city" in message and "phone_number" in message
    with pytest.raises(FileRejected) as missing:
        read_header(Record(1, ["phone_number", "email"]))
    assert "full_name" in missing.value.message
    assert read_header(Record(1, [" FULL_NAME ", "email"])) == ["full_name", "email"]


def test_a_row_with_the_wrong_number_of_fields_is_a_row_error() -> None:
    values, problems = row_values(["full_name", "phone_number"], Record(4, ["דנה", "050", "extra"]))
    assert values == {"full_name": "דנה", "phone_number": "050"}
    assert problems == [("", "has 3 fields, the header has 2")]
