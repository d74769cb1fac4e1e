"""The form plumbing every edit form shares (crm_console.forms): typed digits, only the changed
fields in a PATCH, and the gateway's refusals placed by field or shown above the form."""

from __future__ import annotations

import pytest
from starlette.datastructures import FormData

from crm_console.api import ApiError
from crm_console.forms import (
    Refusal,
    answer_or_refusal,
    ascii_digits,
    changed_fields,
    form_errors,
    form_original,
    form_state,
    refusal_errors,
)
from crm_console.i18n import Translator

pytestmark = pytest.mark.unit


def test_persian_and_arabic_digits_read_as_ascii() -> None:
    assert ascii_digits("۱۲:۳۰ ٤٥") == "12:30 45"


def test_only_changed_fields_make_the_patch() -> None:
    old = {"name": "צפון", "manager_id": "mgr-1", "active": True, "territories": ["a", "b"]}
    new = {"name": "צפון", "manager_id": "", "active": True, "territories": ["a", "b"]}
    assert changed_fields(new, old) == {"manager_id": ""}
    assert changed_fields(old, old) == {}
    assert changed_fields({"capacity": None}, {}) == {"capacity": None}  # unknown before: sent


def test_gateway_errors_land_on_their_form_field() -> None:
    errors = {"budget.amount_minor": "too big", "working_hours.2.start": "bad", "rep.name": "empty", "x": "?"}
    assert form_errors(errors, ("budget", "working_hours", "name")) == {
        "budget": "too big",
        "working_hours": "bad",
        "name": "empty",
        "": "?",
    }


def test_a_refusal_lands_by_field_a_conflict_says_reload_and_a_bare_one_shows_its_detail() -> None:
    t = Translator("en")
    refused = ApiError(422, {"title": "Unprocessable", "errors": [{"field": "name", "detail": "empty"}]})
    assert refusal_errors(refused, ("name",), t) == ({"name": "empty"}, "")
    assert refusal_errors(ApiError(412, {"title": "Precondition Failed"}), ("name",), t) == (
        {},
        t("edit_changed_meanwhile"),
    )
    assert refusal_errors(ApiError(409, {"title": "Conflict", "detail": "taken"}), ("name",), t) == ({}, "taken")


def test_the_forms_original_values_are_read_back_or_nothing() -> None:
    assert form_original(FormData([("original", '{"name": "x"}')])) == {"name": "x"}
    assert form_original(FormData([("original", "not json")])) == {}
    assert form_original(FormData([("original", "[1]")])) == {}


async def refused_with(error: ApiError) -> None:
    raise error


async def answered() -> str:
    return "the answer"


async def test_a_forms_call_gives_its_answer_or_the_refusal_the_form_shows() -> None:
    t = Translator("en")
    assert await answer_or_refusal(answered(), ("name",), t) == "the answer"
    refused = ApiError(422, {"title": "Unprocessable", "errors": [{"field": "name", "detail": "empty"}]})
    assert await answer_or_refusal(refused_with(refused), ("name",), t) == Refusal({"name": "empty"}, "", 422)
    conflict = await answer_or_refusal(refused_with(ApiError(412, {"title": "Precondition Failed"})), ("name",), t)
    assert isinstance(conflict, Refusal)
    assert conflict.page() == {
        "errors": {},
        "notice": t("edit_changed_meanwhile"),
        "status_code": 412,
        "conflict": True,
    }
    # A refusal the form does not show (here a 412 where only 409 and 422 are) is the error page's.
    with pytest.raises(ApiError):
        await answer_or_refusal(refused_with(ApiError(412, {"title": "x"})), ("name",), t, (409, 422))
    with pytest.raises(ApiError):
        await answer_or_refusal(refused_with(ApiError(500, {"title": "Internal"})), ("name",), t)
    assert Refusal({"name": "required"}).page()["status_code"] == 422


def test_a_form_page_reads_the_record_first_and_what_was_sent_after_a_refusal() -> None:
    record = {"id": "t1", "name": "צפון", "etag": "7"}
    first = form_state(record, {"name": "צפון"}, {})
    assert first == {
        "new_id": "",
        "original": '{"name": "צפון"}',
        "etag": "7",
        "errors": {},
        "notice": "",
        "conflict": False,
        "status_code": 200,
    }
    sent = {"original": '{"name": "old"}', "etag": "6", "errors": {"name": "x"}, "conflict": True, "status_code": 412}
    again = form_state(record, {"name": "צפון"}, sent)
    assert again == {**sent, "new_id": "", "notice": ""}
    new = form_state(None, None, {"new_id": "south"})
    assert (new["new_id"], new["original"], new["etag"]) == ("south", "", "")
