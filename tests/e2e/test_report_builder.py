"""The report builder through the whole system (issue 20): leads and a won deal of a campaign reach
reporting as events; the API reports them by source and by Jalali month (the Persian names of the
months), held to a rep's own leads, refuses a measure that does not fit a dimension naming the
field, and exports a right-to-left XLSX. In the console a manager builds a report, saves it shared
with the team's reps, and the rep opens it — with their own figures. A scheduled report reaches the
company's address as a Persian PDF with its chart."""

from __future__ import annotations

import asyncio
import base64
import io
import subprocess
import uuid
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook

from crm_kit.testing import eventually

from .conftest import ARTIFACTS
from .test_campaigns import create_campaign
from .test_promotions import PATIENCE, unique_phone

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

DANA = "rep-dana"  # the console's demo rep of team-media
ITEMS = [{"sku": "SOFA-3", "quantity": 1, "unit_price": {"amount_minor": 459900, "currency_code": "ILS"}}]


async def capture(api: httpx.AsyncClient, source: str, campaign: str) -> dict[str, Any]:
    person = {"full_name": "ליד לדוח", "phone_number": unique_phone("+97252"), "source": source}
    if campaign:
        person["campaign"] = campaign
    lead = await api.post("/api/v1/leads", json=person)
    assert lead.status_code == 201, lead.text
    return dict(lead.json())


async def campaign(api: httpx.AsyncClient, *sources: str) -> str:
    """A campaign of this name under each source, running around today."""
    name = f"rb-{uuid.uuid4().hex[:8]}"
    days = {
        "starts_on": (date.today() - timedelta(days=30)).isoformat(),
        "ends_on": (date.today() + timedelta(days=30)).isoformat(),
    }
    for source in sources:
        await create_campaign(api, source, name=name, **days)
    return name


def report(campaign: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "measures": ["leads", "deals_won", "revenue"],
        "dimensions": ["source"],
        "filters": {"campaign": [campaign]},
        "range": "last_7_days",
    }
    return body | changes


async def test_reports_by_source_and_jalali_month_in_the_callers_reach_and_as_a_sheet(
    api: httpx.AsyncClient, stack: Any
) -> None:
    name = await campaign(api, "radio", "website")
    leads = [await capture(api, "radio", name) for _ in range(3)] + [await capture(api, "website", name)]
    deal = (await api.post(f"/api/v1/leads/{leads[0]['id']}/convert", json={"title": "ספה"})).json()
    won = await api.post(f"/api/v1/deals/{deal['id']}/close", json={"outcome": "won", "items": ITEMS})
    assert won.status_code == 200, won.text

    async def counted() -> dict[str, Any] | None:
        found = await api.post("/api/v1/reports/builder/run", json=report(name))
        assert found.status_code == 200, found.text
        rows = {r["keys"][0]: r["values"] for r in found.json()["rows"]}
        return found.json() if rows.get("radio") == [3, 1, 459900] and rows.get("website") == [1, 0, 0] else None

    result = await eventually(counted, timeout=PATIENCE)
    assert [(c["name"], c["currency_code"]) for c in result["columns"]] == [
        ("source", ""),
        ("leads", ""),
        ("deals_won", ""),
        ("revenue", "ILS"),
    ]
    assert result["total"]["values"] == [4, 1, 459900] and result["chart"]["type"] == "bar"

    # By Jalali month, named in Persian: these days are in Azar or Dey 1405.
    by_month = await api.post(
        "/api/v1/reports/builder/run",
        params={"locale": "fa"},
        json=report(name, dimensions=["period"], periods={"grain": "month", "calendar": "jalali"}),
    )
    assert by_month.status_code == 200, by_month.text
    labels = {r["labels"][0]: r["values"][0] for r in by_month.json()["rows"]}
    assert sum(labels.values()) == 4 and all(label.endswith("۱۴۰۵") for label in labels), labels
    assert by_month.json()["chart"]["type"] == "line"

    # A rep's report counts their own leads only.
    danas = sum(1 for lead in leads if lead["assignment"]["rep_id"] == DANA)
    async with httpx.AsyncClient(
        base_url=stack.gateway_url,
        timeout=15,
        headers=stack.auth_headers("sales_rep", subject=DANA, team_id="team-media"),
    ) as rep:
        own = await rep.post("/api/v1/reports/builder/run", json=report(name, measures=["leads"], dimensions=[]))
        assert own.status_code == 200, own.text
        assert own.json()["total"]["values"] == [danas]
        tickets = await rep.post("/api/v1/reports/builder/run", json={"measures": ["tickets"], "range": "last_7_days"})
        assert tickets.status_code == 403, tickets.text

    # A measure that does not fit a dimension: 422 naming the field, never an empty chart.
    unfit = await api.post("/api/v1/reports/builder/run", json=report(name, measures=["tickets"]))
    assert unfit.status_code == 422 and unfit.headers["content-type"] == "application/problem+json"
    assert any(e["field"] == "dimensions" and "tickets" in e["detail"] for e in unfit.json()["errors"]), unfit.text

    sheet = await api.post(
        "/api/v1/reports/builder/export", params={"format": "xlsx", "locale": "he"}, json=report(name)
    )
    assert sheet.status_code == 200 and "attachment" in sheet.headers["content-disposition"]
    book = load_workbook(io.BytesIO(sheet.content)).active
    assert book is not None and book.sheet_view.rightToLeft
    assert [c.value for c in book[1]] == ["מקור", "לידים", "עסקאות שנסגרו", "הכנסות (ILS)"]
    assert ["radio", 3, 1, 4599] in [[c.value for c in row] for row in book.iter_rows(min_row=2)]


async def test_a_manager_saves_a_report_for_the_team_and_a_rep_opens_it_with_their_own_figures(
    api: httpx.AsyncClient, console: Any
) -> None:
    await capture(api, "radio", await campaign(api, "radio"))
    page = await console.page()
    await console.sign_in(page, "sales_manager", "/reports/builder")
    await page.get_by_label("לידים", exact=True).check()
    await page.get_by_label("עסקאות שנסגרו").check()
    await page.select_option("#dim1", "source")
    await page.select_option("#range", "last_30_days")
    await page.get_by_role("button", name="הצגה").click()
    table = page.locator("table.report")
    await table.wait_for()
    assert "מקור" in await table.locator("thead").inner_text()
    assert await page.locator("svg.bar-chart").count() == 1
    await console.no_serious_axe_violations(page, "report builder (he, manager)")
    await console.shot(page, "report-builder-he")

    name = f"לידים לפי מקור {uuid.uuid4().hex[:4]}"
    await page.fill("#report-name", name)
    await page.get_by_label("נציגי מכירות").check()
    await page.get_by_label("רק בצוות שלי").check()
    await page.get_by_role("button", name="שמירת הדוח").click()
    await page.wait_for_url("**/reports/saved/*")
    assert await page.locator("h1").inner_text() == name
    report_id = page.url.rsplit("/", 1)[1]

    # By e-mail every Sunday at 07:00, sent now once to see it.
    address = f"media-{uuid.uuid4().hex[:6]}@galil.example"
    await page.fill("#rs-recipients", address)
    await page.select_option("#rs-weekday", "6")
    await page.fill("#rs-hour", "7")
    await page.get_by_role("button", name="הוספת שליחה").click()
    await page.wait_for_url(f"**/reports/saved/{report_id}*")
    schedules = page.locator("section.report-mail table")
    assert address in await schedules.inner_text() and "כל שבוע · ראשון · 07:00" in await schedules.inner_text()
    await page.get_by_role("button", name="שליחה עכשיו").click()
    await page.get_by_role("status").filter(has_text="הדוח יישלח").wait_for()
    await console.no_serious_axe_violations(page, "saved report by e-mail (he, manager)")
    await console.shot(page, "report-schedule-he")

    rep_page = await console.page()
    await console.sign_in(rep_page, "sales_rep", "/reports/builder")
    await rep_page.get_by_role("link", name=name).click()
    await rep_page.wait_for_url(f"**/reports/saved/{report_id}")
    await rep_page.locator("table.report").wait_for()
    # Shared, not theirs: no delete button for the rep.
    assert await rep_page.locator(f"form[action='/reports/saved/{report_id}/delete']").count() == 0
    await console.shot(rep_page, "report-builder-saved-he-rep")


async def test_the_funnel_and_the_speed_to_lead_curve_follow_a_deal_from_first_call_to_won(
    api: httpx.AsyncClient, console: Any
) -> None:
    """A lead answered at once, its deal moved a stage and won: the speed-to-lead curve counts it
    under five minutes and won; the default pipeline's funnel counts it in every stage to won, and
    the report builder by stage names the stage it reached."""
    before = (await api.get("/api/v1/reports/funnel", params={"dimension": "source"})).json()
    stage_ids = [s["id"] for s in before["stages"]]
    assert stage_ids[0] == "default-new" and "default-lost" not in stage_ids
    speed_before = {b["band"]: b for b in (await api.get("/api/v1/reports/speed-to-lead")).json()["bands"]}
    lead = await capture(api, "referral", "")
    call = await api.post(f"/api/v1/leads/{lead['id']}/activities", json={"kind": "call", "outcome": "answered"})
    assert call.status_code == 201, call.text
    deal = await api.post(f"/api/v1/leads/{lead['id']}/convert", json={"title": "מטבח"})
    moved = await api.post(
        f"/api/v1/deals/{deal.json()['id']}/stage",
        json={"stage_id": "default-qualified"},
        headers={"If-Match": "*"},
    )
    assert moved.status_code == 200, moved.text
    won = await api.post(f"/api/v1/deals/{deal.json()['id']}/close", json={"outcome": "won", "items": ITEMS})
    assert won.status_code == 200, won.text

    def referral(report: dict[str, Any]) -> list[int]:
        rows = {r["group"]: r["reached"] for r in report["rows"]}
        return list(rows.get("referral", [0] * len(report["stages"])))

    async def funnel() -> dict[str, Any] | None:
        found = (await api.get("/api/v1/reports/funnel", params={"dimension": "source"})).json()
        grew = [a - b for a, b in zip(referral(found), referral(before), strict=True)]
        return found if grew == [1] * len(found["stages"]) else None

    found = await eventually(funnel, timeout=PATIENCE)
    assert found["stages"][-1]["id"] == "default-won"

    # The builder by stage: the deal reached "Qualified" (as sales names the stage), once.
    by_stage = await api.post(
        "/api/v1/reports/builder/run",
        json={"measures": ["deals_reached"], "dimensions": ["stage"], "range": "last_7_days"},
    )
    assert by_stage.status_code == 200, by_stage.text
    stages = {r["keys"][0]: r["values"][0] for r in by_stage.json()["rows"]}
    assert stages.get("Qualified", 0) >= 1 and "" not in stages, stages

    async def fast() -> dict[str, Any] | None:
        bands = {b["band"]: b for b in (await api.get("/api/v1/reports/speed-to-lead")).json()["bands"]}
        quick, earlier = bands["under_5_minutes"], speed_before["under_5_minutes"]
        return quick if (quick["leads"], quick["won"]) == (earlier["leads"] + 1, earlier["won"] + 1) else None

    quick = await eventually(fast, timeout=PATIENCE)
    assert quick["win_rate"] is not None and quick["win_rate"] > 0

    # The buyer's value: what they bought to date (ranked once the company has 20 buyers).
    async def valued() -> dict[str, Any] | None:
        found = (await api.get("/api/v1/customers", params={"lead_id": lead["id"]})).json()["customers"]
        if not found:
            return None
        worth = (await api.get(f"/api/v1/customers/{found[0]['id']}/value")).json()["value"]
        return worth if worth["purchases"] == 1 else None

    worth = await eventually(valued, timeout=PATIENCE)
    assert worth["status"] in ("scored", "too_few_buyers") and worth["lifetime_value"]["amount_minor"] == 459900

    # The admin's console page: the funnel by source (referral among them) and the curve.
    page = await console.page()
    await console.sign_in(page, "admin", "/reports/funnel")
    await page.locator("table.funnel tr[data-group='referral']").wait_for()
    assert await page.locator("table.speed tr[data-band='under_5_minutes']").count() == 1
    await console.no_serious_axe_violations(page, "funnel and speed to lead (he, admin)")
    await console.shot(page, "report-funnel-he")


async def test_a_manager_schedules_a_report_and_the_team_gets_it_by_e_mail_as_pdf_and_chart(
    api: httpx.AsyncClient, stack: Any
) -> None:
    """A manager schedules a saved report weekly to the company's address, in Persian; "send now"
    puts the PDF (the manager's team's figures, right to left) and its PNG chart in the mail sink
    once. An address outside the company is refused naming it; another manager cannot send it."""
    name = await campaign(api, "radio")
    await capture(api, "radio", name)
    manager = stack.auth_headers("sales_manager", team_id="team-media")
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=manager) as http:
        saved = await http.post(
            "/api/v1/saved-reports",
            json={"name": f"گزارش هفتگی {name}", "definition": report(name, measures=["leads"])},
        )
        assert saved.status_code == 201, saved.text
        schedules = f"/api/v1/saved-reports/{saved.json()['id']}/schedules"
        outside = await http.post(
            schedules,
            json={"cadence": "weekly", "weekday": 5, "hour": 9, "recipients": ["boss@gmail.com"], "locale": "fa"},
        )
        assert outside.status_code == 422, outside.text
        assert [e["field"] for e in outside.json()["errors"]] == ["recipients[0]"]
        address = f"team-{uuid.uuid4().hex[:6]}@galil.example"
        made = await http.post(
            schedules, json={"cadence": "weekly", "weekday": 5, "hour": 9, "recipients": [address], "locale": "fa"}
        )
        assert made.status_code == 201, made.text
        schedule = made.json()
        assert schedule["recipients"] == [address] and schedule["next_run_time"]

    other = stack.auth_headers("sales_manager", subject="manager-digital", team_id="team-digital")
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=other) as http:
        stranger = await http.post(f"/api/v1/report-schedules/{schedule['id']}/send-now")
        assert stranger.status_code == 404, stranger.text

    async with (
        httpx.AsyncClient(base_url=stack.gateway_url, timeout=15, headers=manager) as http,
        httpx.AsyncClient(base_url=stack.mail_url, timeout=15) as mail,
    ):
        # The lead is in the manager's report before the e-mail is asked for.
        async def counted() -> bool:
            found = await http.get(f"/api/v1/saved-reports/{saved.json()['id']}/result")
            return found.status_code == 200 and found.json()["total"]["values"] == [1]

        assert await eventually(counted, timeout=PATIENCE)
        sent = await http.post(f"/api/v1/report-schedules/{schedule['id']}/send-now")
        assert sent.status_code == 202, sent.text

        async def delivered() -> list[dict[str, Any]] | None:
            found = [m for m in (await mail.get("/messages")).json() if m["rcpt_to"] == [address]]
            return found or None

        [message] = await eventually(delivered, timeout=PATIENCE)
        assert name in message["subject"] and "هر هفته" in message["text"]
        pdf, png = message["attachments"]
        assert (pdf["media_type"], png["media_type"]) == ("application/pdf", "image/png")
        content = base64.b64decode(pdf["content_base64"])
        assert content.startswith(b"%PDF") and base64.b64decode(png["content_base64"]).startswith(b"\x89PNG")
        await asyncio.to_thread(ARTIFACTS.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread((ARTIFACTS / "scheduled-report-fa.pdf").write_bytes, content)
        text = (
            await asyncio.to_thread(subprocess.run, ["pdftotext", "-", "-"], input=content, capture_output=True)
        ).stdout
        assert name in text.decode() and "جمع" in text.decode()

        listed = (await http.get("/api/v1/report-schedules")).json()["schedules"]
        [kept] = [s for s in listed if s["id"] == schedule["id"]]
        assert kept["last_error"] == "" and kept["last_run_time"]
        assert kept["next_run_time"] == schedule["next_run_time"]  # the regular time kept
        await asyncio.sleep(3)  # another delivery round: still one e-mail
        assert len([m for m in (await mail.get("/messages")).json() if m["rcpt_to"] == [address]]) == 1
        assert (await http.delete(f"/api/v1/report-schedules/{schedule['id']}")).status_code == 204
