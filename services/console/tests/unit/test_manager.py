"""The sales manager's screens: the chart's geometry (mirrored in right-to-left), the work-list
filter, the routing-rules form, and the pages against a recording fake of the gateway."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from starlette.datastructures import FormData

from crm_console.pages_manager import CHART_WIDTH, LABEL_WIDTH, open_work, rules_from_form, target_chart

from .conftest import CSRF, console_client

pytestmark = pytest.mark.unit


def report_row(percent: float) -> dict[str, Any]:
    return {"achieved_percent": percent}


def test_the_bars_grow_from_the_inline_start_and_mirror_in_right_to_left() -> None:
    rows = [report_row(50), report_row(100)]
    ltr, height, zero, hundred = target_chart(rows, ["a", "b"], rtl=False)
    rtl, _, rzero, rhundred = target_chart(rows, ["a", "b"], rtl=True)
    assert height > 0 and zero == LABEL_WIDTH and hundred > zero
    # Left to right: every bar starts at the axis after the labels; half the target is half as long.
    assert {bar.target.x for bar in ltr} == {bar.actual.x for bar in ltr} == {LABEL_WIDTH}
    assert ltr[0].actual.width == pytest.approx(ltr[0].target.width / 2, abs=0.1)
    # Right to left: the same lengths, ending at the axis on the right; labels on the right too.
    for left, right in zip(ltr, rtl, strict=True):
        assert right.target.width == left.target.width and right.actual.width == left.actual.width
        assert right.actual.x + right.actual.width == pytest.approx(CHART_WIDTH - LABEL_WIDTH, abs=0.1)
        assert right.label_x > CHART_WIDTH - LABEL_WIDTH > left.label_x
    assert rzero == CHART_WIDTH - LABEL_WIDTH and rhundred < rzero


def test_an_over_achiever_widens_the_scale_up_to_a_cap() -> None:
    [row], _, zero, hundred = target_chart([report_row(150)], ["a"], rtl=False)
    assert row.actual.width == pytest.approx(row.target.width * 1.5, abs=0.1)
    assert hundred - zero == pytest.approx(row.target.width, abs=0.1)  # the dashed 100% line ends the target
    [capped], _, _, _ = target_chart([report_row(900)], ["a"], rtl=False)
    assert capped.actual.width == pytest.approx(capped.target.width * 2, abs=0.1)
    assert capped.actual.percent == 900  # the tooltip still says the true figure


def item(lead_id: str, seconds: int, *, deadline: bool = True, responded: bool = False) -> dict[str, Any]:
    return {
        "lead": {"id": lead_id, "status": "new"},
        "seconds_left": seconds,
        "has_deadline": deadline,
        "responded": responded,
    }


def test_open_work_is_unanswered_leads_overdue_first_then_those_without_a_clock() -> None:
    items = [item("later", 900), item("done", 10, responded=True), item("free", 0, deadline=False), item("late", -60)]
    assert [i["lead"]["id"] for i in open_work(items)] == ["late", "later", "free"]


def test_the_rules_form_becomes_the_put_body_without_removed_or_empty_new_rules() -> None:
    form = FormData(
        [
            ("rules[0].id", "rule-a"),
            ("rules[0].name", "Radio"),
            ("rules[0].priority", "10"),
            ("rules[0].sources", "radio, tv,"),
            ("rules[0].languages", "he"),
            ("rules[0].languages", "fa"),
            ("rules[0].strategy", "least_loaded"),
            ("rules[0].team_id", " team-media "),
            ("rules[0].sla_seconds", "300"),
            ("rules[0].breach_action", "reassign"),
            ("rules[1].id", "rule-b"),
            ("rules[1].name", "Old"),
            ("rules[1].priority", "20"),
            ("rules[1].remove", "1"),
            ("rules[2].new", "1"),
            ("rules[2].name", ""),
            ("rules[2].priority", ""),
        ]
    )
    [rule] = rules_from_form(form)
    assert rule["id"] == "rule-a" and rule["priority"] == 10 and rule["sources"] == ["radio", "tv"]
    assert rule["languages"] == ["he", "fa"] and rule["team_id"] == "team-media"
    assert rule["sla_seconds"] == 300 and rule["breach_action"] == "reassign" and rule["strategy"] == "least_loaded"
    # A number that does not parse goes as typed, for the gateway to name the field.
    [typed] = rules_from_form(FormData([("rules[0].name", "x"), ("rules[0].priority", "ten")]))
    assert typed["priority"] == "ten" and typed["sla_seconds"] is None


# ------------------------------------------------------------------ pages against a fake gateway

LEAD = {
    "id": "l1",
    "full_name": "דנה כהן",
    "phone_number": "+972501234567",
    "email": "dana@example.com",
    "source": "radio",
    "campaign": "",
    "status": "new",
    "create_time": "2026-12-01T08:00:00Z",
    "touch_count": 2,
    "sla_reassign_count": 3,
    "assignment": {"rep_id": "rep-dana", "rep_name": "דנה", "team_id": "team-media"},
}
RULE = {
    "id": "rule-a",
    "name": "Radio",
    "priority": 10,
    "sources": ["radio"],
    "campaign_ids": [],
    "product_lines": [],
    "territories": [],
    "languages": [],
    "strategy": "round_robin",
    "team_id": "team-media",
    "rep_id": "",
    "sla_seconds": 300,
    "breach_action": "escalate",
}


class FakeGateway:
    """The gateway's answers for the manager's screens; records every request."""

    def __init__(self) -> None:
        self.calls: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        path = request.url.path
        answers: dict[str, Any] = {
            "/api/v1/me": {
                "subject": "manager-media",
                "roles": ["sales_manager"],
                "team_id": "team-media",
                "rep_id": "",
            },
            "/api/v1/teams": {"teams": [{"id": "team-media", "name": "מדיה"}], "next_page_token": ""},
            "/api/v1/reps": {"reps": [{"id": "rep-dana", "name": "דנה לוי", "away": False}]},
            "/api/v1/sla-breaches": {
                "sla_breaches": [
                    {
                        "id": "b1",
                        "lead_id": "l1",
                        "rep_id": "rep-dana",
                        "team_id": "team-media",
                        "breach_time": "2026-12-06T08:00:00Z",
                        "action": "escalate",
                        "new_rep_id": "",
                    }
                ],
                "next_page_token": "",
            },
            "/api/v1/leads/l1": LEAD,
            "/api/v1/leads/l2": {**LEAD, "id": "l2", "full_name": "דנה כהן-לוי", "phone_number": "+972501111111"},
            "/api/v1/possible-duplicates": {
                "possible_duplicates": [
                    {
                        "id": "p1",
                        "lead": {"id": "l2", "full_name": "דנה כהן-לוי"},
                        "other_lead": {"id": "l1", "full_name": "דנה כהן"},
                        "score": 80,
                        "reasons": ["same_name"],
                        "status": "open",
                        "create_time": "2026-12-06T08:00:00Z",
                    }
                ],
                "next_page_token": "",
            },
        }
        if path == "/api/v1/my-leads":
            items = [
                {"lead": LEAD, "seconds_left": -120, "has_deadline": True, "responded": False},
                {"lead": {**LEAD, "id": "l9", "full_name": "ענתה"}, "seconds_left": 0, "has_deadline": True,
                 "responded": True},
            ]  # fmt: skip
            return httpx.Response(200, json={"items": items, "next_page_token": ""})
        if path == "/api/v1/lead-queue":
            queued = {**LEAD, "id": "q1", "full_name": "ממתין בתור", "assignment": None}
            return httpx.Response(200, json={"leads": [queued], "next_page_token": ""})
        if path == "/api/v1/reports/targets":
            target = {"id": "t1", "subject_kind": "rep", "subject_id": "rep-dana", "metric": "won_deals", "count": 4}
            row = {"target": target, "actual_count": 1, "achieved_percent": 25.0, "projected_count": 6}
            period = {"start_date": "2026-12-01", "end_date": "2026-12-31"}
            return httpx.Response(200, json={"period": period, "rows": [row]})
        if request.method == "GET" and path == "/api/v1/routing-rules":
            return httpx.Response(200, json={"rules": [RULE], "version": 4}, headers={"ETag": '"4"'})
        if request.method == "PUT" and path == "/api/v1/routing-rules":
            return httpx.Response(
                422,
                json={"title": "Unprocessable", "errors": [{"field": "rules[0].team_id", "detail": "no such team"}]},
                headers={"Content-Type": "application/problem+json"},
            )
        if request.method == "POST" and path == "/api/v1/leads/l1/merge":
            return httpx.Response(409, json={"title": "Conflict", "detail": "already merged"})
        if path in answers:
            return httpx.Response(200, json=answers[path])
        return httpx.Response(404, json={"title": "Not Found"})


async def test_breaches_show_the_lead_rep_and_reassign_count_without_a_team_filter_unless_chosen() -> None:
    fake = FakeGateway()
    async with console_client(fake, "sales_manager") as browser:
        page = await browser.get("/manager/breaches")
        chosen = await browser.get("/manager/breaches", params={"team_id": "team-media"})
    assert page.status_code == 200
    assert '<a href="/leads/l1">דנה כהן</a>' in page.text and "דנה לוי" in page.text
    assert "<td>3</td>" in page.text  # the lead's reassign count
    breach_calls = [c for c in fake.calls if c.url.path == "/api/v1/sla-breaches"]
    assert "team_id" not in breach_calls[0].url.params and breach_calls[1].url.params["team_id"] == "team-media"
    assert chosen.status_code == 200


async def test_the_pair_page_shows_both_leads_and_a_refused_merge_on_the_page() -> None:
    fake = FakeGateway()
    async with console_client(fake, "sales_manager") as browser:
        page = await browser.get("/manager/duplicates/p1", params={"lead_id": "l2"})
        refused = await browser.post(
            "/manager/duplicates/p1/merge", data={"csrf": CSRF, "lead_id": "l2", "keep": "l1", "duplicate": "l2"}
        )
        forged = await browser.post("/manager/duplicates/p1/dismiss", data={"csrf": "x"})
    assert page.status_code == 200
    assert '<bdi dir="ltr">+972501234567</bdi>' in page.text and '<bdi dir="ltr">+972501111111</bdi>' in page.text
    assert page.text.count("מיזוג לתוך ליד זה") == 2
    merge = next(c for c in fake.calls if c.method == "POST" and c.url.path == "/api/v1/leads/l1/merge")
    assert json.loads(merge.content) == {"duplicate_lead_id": "l2"}
    assert refused.status_code == 409 and "already merged" in refused.text
    assert forged.status_code == 403
    assert not [c for c in fake.calls if c.url.path.endswith("/dismiss")]


async def test_a_rules_422_is_shown_next_to_the_field_it_names_and_managers_only_read() -> None:
    fake = FakeGateway()
    async with console_client(fake, "admin") as admin:
        form = {"csrf": CSRF, "etag": '"4"', "rules[0].name": "Radio", "rules[0].priority": "10"}
        refused = await admin.post("/manager/routing-rules", data={**form, "rules[0].team_id": "team-x"})
    put = next(c for c in fake.calls if c.method == "PUT")
    assert put.headers["If-Match"] == '"4"'
    assert json.loads(put.content)["rules"][0]["team_id"] == "team-x"
    assert refused.status_code == 422
    assert 'aria-invalid="true" aria-describedby="r0-team_id-err"' in refused.text
    assert '<p class="field-error" id="r0-team_id-err">no such team</p>' in refused.text
    async with console_client(FakeGateway(), "sales_manager") as manager:
        read = await manager.get("/manager/routing-rules")
    assert read.status_code == 200 and "readonly" in read.text and "rules[1].new" not in read.text


async def test_the_team_page_shows_each_reps_unanswered_leads_and_the_queue() -> None:
    fake = FakeGateway()
    async with console_client(fake, "sales_manager") as browser:
        page = await browser.get("/manager/team")
    assert page.status_code == 200
    assert "דנה לוי" in page.text and "דנה כהן" in page.text and "ממתין בתור" in page.text
    assert "ענתה" not in page.text  # answered: not waiting
    [work] = [c for c in fake.calls if c.url.path == "/api/v1/my-leads"]
    assert work.url.params["rep_id"] == "rep-dana"
    [reps] = [c for c in fake.calls if c.url.path == "/api/v1/reps"]
    assert reps.url.params["team_id"] == "team-media"  # the manager's team, from /me
    [queue] = [c for c in fake.calls if c.url.path == "/api/v1/lead-queue"]
    assert "team_id" not in queue.url.params


async def test_the_targets_page_asks_for_this_month_and_draws_a_labelled_chart() -> None:
    fake = FakeGateway()
    async with console_client(fake, "sales_manager") as browser:
        page = await browser.get("/manager/targets")
    assert page.status_code == 200
    [call] = [c for c in fake.calls if c.url.path == "/api/v1/reports/targets"]
    assert call.url.params["period_kind"] == "month" and len(call.url.params["date"]) == 10
    assert '<svg role="img" aria-labelledby="chart-title chart-desc"' in page.text
    assert page.text.count("<rect ") == 2 and "דנה לוי" in page.text and "25%" in page.text
