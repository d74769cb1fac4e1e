"""Reading a static audience list's CSV: the columns, local numbers, blank lines, the whole-file
refusals (encoding, no known column, too many lines)."""

from __future__ import annotations

import pytest

from crm_customers import audience_lists
from crm_customers.audience_lists import Key, LineError, UnreadableList

pytestmark = pytest.mark.unit


def test_each_line_is_matched_by_the_first_column_it_fills() -> None:
    content = "\ufeffEmail , PHONE_NUMBER,customer_id\n,050-123-4567,\nDana@Example.COM,050-7654321,\n,,c-9\n,,\n"
    keys, errors = audience_lists.read(content.encode())
    assert keys == [
        Key(2, "phone_number", "+972501234567"),
        Key(3, "phone_number", "+972507654321"),  # the number wins over the e-mail on its line
        Key(4, "customer_id", "c-9"),
    ]
    assert errors == []  # line 5 is blank: skipped


def test_a_line_that_cannot_give_a_key_is_an_error_with_its_line_number() -> None:
    keys, errors = audience_lists.read(b"email,name\nnot-an-address,x\n,only a name\n")
    assert keys == []
    assert errors == [
        LineError(2, "email", "not an e-mail address"),
        LineError(3, "email", "empty: no customer to match"),
    ]
    found = audience_lists.unmatched([Key(7, "email", "a@b.co")], {})
    assert found == [LineError(7, "email", "no customer with this email")]


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("phone_number\n050 דנה\n".encode("cp1255"), "not UTF-8"),
        (b"full_name\nDana\n", "names none of"),
        (b"", "names none of"),
    ],
)
def test_a_file_that_is_no_list_is_refused_whole(content: bytes, says: str) -> None:
    with pytest.raises(UnreadableList, match=says):
        audience_lists.read(content)


def test_a_file_longer_than_the_limit_is_refused_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audience_lists, "MAX_LINES", 3)
    assert len(audience_lists.read(b"customer_id\na\nb\nc\n")[0]) == 3
    with pytest.raises(UnreadableList, match="more than 3 lines"):
        audience_lists.read(b"customer_id\na\nb\nc\nd\n")
