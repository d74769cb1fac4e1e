"""Teams and reps (pages_org): the pure helpers (reps grouped by team, lists typed with commas,
working hours, the forms' values), and the list and forms against a recording fake of the gateway
(If-Match sent, only changed fields, refusals kept next to fields)."""

from __future__ import annotations

import json

import httpx
import pytest
from starlette.datastructures import FormData

from crm_console.forms import changed_fields
from crm_console.pages_org import (
    hours_input,
    hours_rows,
    rep_input,
    rep_values,
    reps_by_team,
    split_codes,
    team_input,
    team_values,
)

from .conftest import CSRF, RecordingGateway, as_role, hidden

pytestmark = pytest.mark.unit


def test_reps_are_grouped_under_their_team_and_strays_last() -> None:
    teams = [{"id": "t1", "name": "North"}, {"id": "t2", "name": "South"}]
    reps = [
        {"id": "r2", "name": "Yossi", "team_id": "t1"},
        {"id": "r1", "name": "Dana", "team_id": "t1"},
        {"id": "r3", "name": "Omid", "team_id": "t9"},
    ]
    grouped = [(team["id"], [r["id"] for r in found]) for team, found in reps_by_team(teams, reps)]
    assert grouped == [("t1", ["r1", "r2"]), ("t2", []), ("", ["r3"])]
    assert [team["id"] for team, _ in reps_by_team(teams, reps[:2])] == ["t1", "t2"]


def test_lists_are_split_on_any_comma_trimmed_and_kept_once() -> None:
    assert split_codes("תל אביב, חיפה،تهران;\n חיפה ,, ") == ["תל אביב", "חיפה", "تهران"]
    assert split_codes("  ") == []


def test_working_hours_rows_become_sorted_spans_and_midnight_is_the_days_end() -> None:
    spans, incomplete = hours_input(
        ["mon", "sun", "tue", "wed"], ["۰۹:۰۰", "08:00", "", "10:00"], ["17:00", "00:00", "", ""]
    )
    assert spans == [{"day": "sun", "start": "08:00", "end": "24:00"}, {"day": "mon", "start": "09:00", "end": "17:00"}]
    assert incomplete  # Wednesday has a start and no end
    rows = hours_rows(spans)
    assert rows[0] == {"day": "sun", "start": "08:00", "end": "00:00"}  # a time input cannot show 24:00
    assert [r["day"] for r in rows[2:] if not r["start"]] == ["tue", "wed", "thu", "fri", "sat", "sun"]


def test_an_untouched_rep_form_changes_nothing_and_a_bad_capacity_keeps_its_text() -> None:
    rep = {
        "name": "Dana",
        "team_id": "t1",
        "active": True,
        "away": False,
        "capacity": 5,
        "time_zone": "",
        "working_hours": [
            {"day": "mon", "start": "09:00", "end": "17:00"},
            {"day": "sun", "start": "09:00", "end": "24:00"},
        ],
        "territories": ["IL-TA"],
        "product_lines": [],
    }
    rows = hours_rows(rep_values(rep)["working_hours"])
    form = FormData(
        [
            ("name", "Dana"),
            ("team_id", "t1"),
            ("active", "true"),
            ("capacity", "۵"),
            ("time_zone", ""),
            ("territories", "IL-TA"),
            ("product_lines", ""),
        ]
        + [
            (key, row[part])
            for row in rows
            for key, part in (("hours_day", "day"), ("hours_start", "start"), ("hours_end", "end"))
        ]
    )
    fields = tuple(rep_values(rep))
    values, problems = rep_input(form, fields)
    assert problems == {} and changed_fields(values, rep_values(rep)) == {}
    values, problems = rep_input(FormData([("capacity", "lots")]), ("capacity", "away"))
    assert values == {"capacity": "lots", "away": False} and problems == {"capacity": "not_a_number"}
    assert rep_input(FormData([("capacity", "")]), ("capacity",))[0] == {"capacity": None}  # no cap


def test_the_team_form_reads_a_checkbox_as_true_or_absent() -> None:
    assert team_input(FormData([("name", " דרום "), ("active", "true")])) == {
        "name": "דרום",
        "manager_id": "",
        "active": True,
    }
    assert team_input(FormData([("name", "x")]))["active"] is False
    assert team_values({"name": "x", "manager_id": "m", "active": 1, "etag": "e"}) == {
        "name": "x",
        "manager_id": "m",
        "active": True,
    }


# ------------------------------------------------------------------ the pages against a fake gateway

TEAM = {"id": "t1", "name": "צפון", "manager_id": "mgr-1", "active": True, "active_reps": 1, "etag": "7"}
REP = {
    "id": "rep-dana",
    "name": "Dana",
    "team_id": "t1",
    "active": True,
    "away": False,
    "available": True,
    "unavailable_reason": "",
    "capacity": None,
    "time_zone": "",
    "working_hours": [],
    "territories": ["IL-TA"],
    "product_lines": ["tv"],
    "open_leads": 3,
    "etag": "3",
}


class FakeGateway(RecordingGateway):
    """The gateway's teams and reps, behind the recording and refusing of RecordingGateway."""

    def answer(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method in ("POST", "PATCH"):
            return httpx.Response(201 if request.method == "POST" else 200, json=json.loads(request.content))
        if path == "/api/v1/teams":
            inactive = {**TEAM, "id": "t2", "name": "ישן", "active": False}
            return httpx.Response(200, json={"teams": [TEAM, inactive], "next_page_token": ""})
        if path == "/api/v1/teams/t1":
            return httpx.Response(200, json=TEAM, headers={"ETag": "7"})
        if path == "/api/v1/reps":
            return httpx.Response(200, json={"reps": [REP]})
        return httpx.Response(404, json={"title": "Not Found"})


@pytest.fixture
def fake() -> FakeGateway:
    return FakeGateway()


async def test_the_teams_list_shows_each_teams_reps_and_their_coverage(browser: httpx.AsyncClient) -> None:
    as_role(browser, "admin")
    teams = await browser.get("/admin/teams")
    assert teams.status_code == 200
    assert "צפון" in teams.text and '<bdi dir="ltr" class="tag">IL-TA</bdi>' in teams.text
    assert "ללא הגבלה" in teams.text  # no capacity limit


async def test_only_an_admin_gets_the_team_forms_and_a_manager_edits_reps(browser: httpx.AsyncClient) -> None:
    as_role(browser, "admin")
    page = await browser.get("/admin/teams")
    assert 'href="/admin/teams/new"' in page.text and 'href="/admin/teams/t1/edit"' in page.text
    assert 'href="/admin/reps/rep-dana/edit"' in page.text
    as_role(browser, "sales_manager")
    page = await browser.get("/admin/teams")
    assert "/admin/teams/new" not in page.text and "/admin/teams/t1/edit" not in page.text
    assert 'href="/admin/reps/rep-dana/edit"' in page.text
    form = await browser.get("/admin/reps/rep-dana/edit")
    assert form.status_code == 200
    assert 'name="capacity"' in form.text and 'name="away"' in form.text
    assert 'name="name"' not in form.text and 'name="team_id"' not in form.text  # an admin's fields


async def test_a_new_team_is_posted_and_the_list_follows(browser: httpx.AsyncClient, fake: FakeGateway) -> None:
    as_role(browser, "admin")
    form = await browser.get("/admin/teams/new")
    assert form.status_code == 200 and 'id="name"' in form.text and 'for="name"' in form.text
    refused = await browser.post("/admin/teams/new", data={"csrf": "no", "name": "x"})
    assert refused.status_code == 403 and fake.writes() == []
    done = await browser.post("/admin/teams/new", data={"csrf": CSRF, "id": "south", "name": "דרום", "active": "true"})
    assert done.status_code == 303 and done.headers["location"] == "/admin/teams"
    assert json.loads(fake.writes()[0].content) == {"id": "south", "name": "דרום", "manager_id": "", "active": True}


async def test_a_team_edit_sends_only_the_change_with_if_match(browser: httpx.AsyncClient, fake: FakeGateway) -> None:
    as_role(browser, "admin")
    form = await browser.get("/admin/teams/t1/edit")
    original, etag = hidden(form.text, "original"), hidden(form.text, "etag")
    assert etag == "7"
    data = {
        "csrf": CSRF,
        "etag": etag,
        "original": original,
        "name": "צפון רבתי",
        "manager_id": "mgr-1",
        "active": "true",
    }
    done = await browser.post("/admin/teams/t1/edit", data=data)
    assert done.status_code == 303
    sent = fake.writes()[0]
    assert sent.method == "PATCH" and sent.headers["if-match"] == "7"
    assert json.loads(sent.content) == {"name": "צפון רבתי"}


async def test_a_team_changed_meanwhile_comes_back_with_the_input_and_a_reload_link(
    browser: httpx.AsyncClient, fake: FakeGateway
) -> None:
    as_role(browser, "admin", locale="fa")
    form = await browser.get("/admin/teams/t1/edit")
    fake.refusal = httpx.Response(412, json={"title": "Precondition Failed", "status": 412, "detail": "etag"})
    data = {"csrf": CSRF, "etag": "6", "original": hidden(form.text, "original"), "name": "نام تازه", "active": "true"}
    page = await browser.post("/admin/teams/t1/edit", data=data)
    assert page.status_code == 412
    assert "کس دیگری در این فاصله" in page.text and 'href="/admin/teams/t1/edit"' in page.text
    assert 'value="نام تازه"' in page.text and hidden(page.text, "etag") == "6"  # a resend is refused again


async def test_a_refused_rep_field_shows_its_error_next_to_it(browser: httpx.AsyncClient, fake: FakeGateway) -> None:
    as_role(browser, "admin")
    form = await browser.get("/admin/reps/new?team_id=t1")
    assert '<option value="t1" selected>' in form.text and 'value="t2"' not in form.text  # active teams only
    fake.refusal = httpx.Response(
        422,
        json={
            "title": "Unprocessable",
            "status": 422,
            "detail": "bad",
            "errors": [{"field": "id", "detail": "bad id"}],
        },
    )
    data = {
        "csrf": CSRF,
        "id": "no spaces",
        "name": "יוסי",
        "team_id": "t1",
        "active": "true",
        "territories": "חיפה, עכו",
    }
    page = await browser.post("/admin/reps/new", data=data)
    assert page.status_code == 422
    assert 'aria-invalid="true" aria-describedby="id-err id-hint"' in page.text
    assert '<p class="field-error" id="id-err">bad id</p>' in page.text
    assert 'value="יוסי"' in page.text and 'value="חיפה, עכו"' in page.text
    body = json.loads(fake.writes()[0].content)
    assert body["territories"] == ["חיפה", "עכו"] and body["capacity"] is None and body["working_hours"] == []


async def test_a_manager_changes_capacity_only_with_the_reps_etag(
    browser: httpx.AsyncClient, fake: FakeGateway
) -> None:
    as_role(browser, "sales_manager")
    form = await browser.get("/admin/reps/rep-dana/edit")
    data = {
        "csrf": CSRF,
        "etag": hidden(form.text, "etag"),
        "original": hidden(form.text, "original"),
        "capacity": "12",
    }
    done = await browser.post("/admin/reps/rep-dana/edit", data=data)
    assert done.status_code == 303
    sent = fake.writes()[0]
    assert sent.headers["if-match"] == "3" and json.loads(sent.content) == {"capacity": 12}
    bad = await browser.post("/admin/reps/rep-dana/edit", data={**data, "capacity": "many"})
    assert bad.status_code == 422 and 'id="capacity-err"' in bad.text and len(fake.writes()) == 1
