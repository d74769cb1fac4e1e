"""The console's people and administration screens (pages_people, pages_org, pages_admin) in a
real browser against the whole system: a rep sees a task due today and marks it done, opens the
lead's customer (made from the lead's events) with its timeline in Hebrew and Persian; an
administrator reads the teams with their reps and the audit log of the lead (a rep is refused it),
creates a team and a rep (a refused id shown beside its field), edits the rep's capacity and hours
(then the rep's and the team's forms in Persian), and replays a dead letter once (a second replay
says it was done already).
axe-core on each screen; screenshots per locale."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import nats
import pytest
from playwright.async_api import expect

from crm_devstack.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
JERUSALEM = ZoneInfo("Asia/Jerusalem")


def due_later_today() -> str:
    """A due time still ahead and still today in Israel (the company's day for Hebrew): half way
    to local midnight, at most an hour ahead."""
    now = datetime.now(UTC)
    local = now.astimezone(JERUSALEM)
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (now + min(timedelta(hours=1), (midnight - local) / 2)).isoformat()


async def test_a_rep_completes_todays_task_and_reads_the_customers_timeline(console: Any, stack: Stack) -> None:
    suffix = random.randint(1000, 9999)
    name, subject = f"מיכל אברהם {suffix}", f"להתקשר בחזרה {suffix}"
    late, later = f"לשלוח הצעה {suffix}", f"פגישת המשך {suffix}"
    now = datetime.now(UTC)
    due = {subject: due_later_today(), late: (now - timedelta(hours=3)).isoformat()}
    lead = await console.lead_for_dana(name, due | {later: (now + timedelta(days=3)).isoformat()})
    page = await console.page()
    await console.sign_in(page, "sales_rep", "/tasks")
    # Overdue first, then today's, then later ones.
    sections = page.locator("section.task-group")
    await sections.first.wait_for()
    order = [await s.get_attribute("class") for s in await sections.all()]
    assert order == ["task-group tasks_overdue", "task-group tasks_today", "task-group tasks_later"], order
    assert await page.locator("section.tasks_overdue tr", has_text=late).count() == 1
    assert await page.locator("section.tasks_later tr", has_text=later).count() == 1
    today = page.locator("section.tasks_today")
    await today.get_by_role("heading", name=re.compile("להיום")).wait_for()
    row = today.locator("tr", has_text=subject)
    await row.wait_for()
    await console.shot(page, "tasks-he")
    await console.no_serious_axe_violations(page, "tasks (he)")
    await row.get_by_role("button", name=re.compile("בוצע")).click()
    await page.wait_for_url(re.compile(r"/tasks$"))
    assert await page.locator("tr", has_text=subject).count() == 0
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, headers=stack.auth_headers("sales_rep"), timeout=15
    ) as mine:
        still_open = (await mine.get("/api/v1/tasks", params={"page_size": 100})).json()["tasks"]
    assert subject not in {t["subject"] for t in still_open}

    # The customer is made from the lead's events: the page says so until it is there.
    await page.goto(f"{stack.console_url}/leads/{lead['id']}/customer")
    heading = page.get_by_role("heading", level=1, name=re.compile(re.escape(name)))
    await console.reload_until(page, heading)
    assert re.search(r"/customers/[^/]+$", page.url)
    assert await page.locator(f"bdi[dir=ltr]:has-text('{lead['phone_number']}')").count() == 1
    await console.reload_until(page, page.locator(".customer-timeline li[data-kind=task_logged]"))
    captured = page.locator(".customer-timeline li[data-kind=lead_captured]")
    # Timeline entries skip rendering while off screen (content-visibility: auto): scroll to the
    # entry, as a reader would, before reading what it shows.
    await captured.scroll_into_view_if_needed()
    await expect(captured).to_contain_text("ליד נקלט", use_inner_text=True)
    await console.shot(page, "customer-he")
    await console.no_serious_axe_violations(page, "customer (he)")

    await page.get_by_role("link", name="فارسی").click()
    assert await page.locator("html").get_attribute("dir") == "rtl"
    await page.get_by_role("heading", name="خط زمانی").wait_for()
    await captured.scroll_into_view_if_needed()
    # The capture time in the Solar Hijri calendar and Persian digits (the year is 14xx).
    await expect(captured).to_contain_text(re.compile(r"۱۴[۰-۹]{2}"), use_inner_text=True)
    await expect(captured).to_contain_text("سرنخ ثبت شد", use_inner_text=True)
    await console.shot(page, "customer-fa")
    await console.no_serious_axe_violations(page, "customer (fa)")
    await page.goto(f"{stack.console_url}/tasks")
    await page.get_by_role("heading", name=re.compile("عقب‌افتاده")).wait_for()
    await page.locator("section.tasks_later tr", has_text=later).wait_for()
    await console.shot(page, "tasks-fa")
    await console.no_serious_axe_violations(page, "tasks (fa)")


async def test_an_admin_reads_teams_with_reps_and_the_audit_log(console: Any, stack: Stack) -> None:
    lead = await console.lead_for_dana(f"רון שלום {random.randint(1000, 9999)}")
    page = await console.page()
    await console.sign_in(page, "admin", "/admin/teams")
    await page.get_by_role("heading", level=1, name="צוותים ונציגים").wait_for()
    await page.locator("tr[data-rep=rep-dana]").wait_for()
    assert await console.menu_link(page, "יומן ביקורת").count() == 1  # the admin's menu
    await console.shot(page, "teams-he")
    await console.no_serious_axe_violations(page, "teams (he)")

    await console.menu(page, "יומן ביקורת")
    await page.get_by_label("מזהה רשומה").fill(lead["id"])
    await page.get_by_role("button", name="סינון").click()
    await page.wait_for_url(re.compile(rf"record_id={lead['id']}"))
    rows = page.locator("table.audit tbody tr")
    await rows.first.wait_for()
    assert await rows.count() >= 1
    for text in await rows.all_inner_texts():
        assert lead["id"] in text
    await console.shot(page, "audit-he")
    await console.no_serious_axe_violations(page, "audit (he)")

    await page.get_by_role("link", name="فارسی").click()
    await page.get_by_role("heading", level=1, name="گزارش ممیزی").wait_for()
    await console.shot(page, "audit-fa")
    await page.goto(f"{stack.console_url}/admin/teams")
    await page.locator("tr[data-rep=rep-dana]").wait_for()
    await console.shot(page, "teams-fa")
    await console.no_serious_axe_violations(page, "teams (fa)")

    # A rep has neither screen in the menu, and the gateway refuses the audit log to them.
    rep = await console.page()
    await console.sign_in(rep, "sales_rep", "/admin/audit")
    assert await console.menu_link(rep, "יומן ביקורת").count() == 0
    await rep.get_by_text("אין לך הרשאה לזה.").wait_for()


async def new_team_in_the_console(console: Any, page: Any, team_id: str, team_name: str) -> None:
    """The admin's "new team" form, filled and saved; the team list then shows the team."""
    await page.get_by_role("link", name="צוות חדש", exact=True).click()
    await page.get_by_role("heading", level=1, name="צוות חדש").wait_for()
    await page.get_by_label("מזהה (לא חובה)").fill(team_id)
    await page.get_by_label("שם הצוות").fill(team_name)
    await console.no_serious_axe_violations(page, "new team (he)")
    await page.get_by_role("button", name="שמירה").click()
    await page.wait_for_url(re.compile(r"/admin/teams$"))
    await page.get_by_role("heading", level=2, name=team_name).wait_for()


async def test_an_admin_creates_a_team_and_a_rep_and_edits_the_rep(console: Any, stack: Stack) -> None:
    suffix = random.randint(1000, 9999)
    team_id, rep_id = f"team-e2e-{suffix}", f"rep-e2e-{suffix}"
    team_name, rep_name = f"צוות הדרום {suffix}", f"אורי גולן {suffix}"
    page = await console.page()
    await console.sign_in(page, "admin", "/admin/teams")
    await new_team_in_the_console(console, page, team_id, team_name)

    # A rep in the new team; the gateway refuses an id with a space, and the form says so beside it.
    await page.goto(f"{stack.console_url}/admin/reps/new?team_id={team_id}")
    await page.get_by_label("מזהה (לא חובה)").fill(f"rep e2e {suffix}")
    await page.get_by_label("שם הנציג").fill(rep_name)
    assert await page.get_by_label("צוות", exact=True).input_value() == team_id
    await page.get_by_label("אזורים").fill("באר שבע, אילת")
    await page.get_by_role("button", name="שמירה").click()
    field = page.get_by_label("מזהה (לא חובה)")
    await page.locator("#id-err").wait_for()
    assert await field.get_attribute("aria-invalid") == "true"
    assert "id-err" in (await field.get_attribute("aria-describedby") or "")
    assert await page.get_by_label("שם הנציג").input_value() == rep_name  # the input is kept
    await console.shot(page, "rep-refused-he")
    await console.no_serious_axe_violations(page, "rep refused (he)")
    await field.fill(rep_id)
    await page.get_by_role("button", name="שמירה").click()
    await page.wait_for_url(re.compile(r"/admin/teams$"))
    row = page.locator(f"tr[data-rep={rep_id}]")
    await row.wait_for()
    assert "באר שבע" in await row.inner_text() and "אילת" in await row.inner_text()

    # Edit the rep: a capacity and a Sunday shift; the list shows the new capacity.
    await row.get_by_role("link", name=re.compile("עריכה")).click()
    await page.get_by_role("heading", level=1, name=re.compile(re.escape(rep_name))).wait_for()
    await page.get_by_label("קיבולת").fill("7")
    await page.get_by_label("משעה 1", exact=True).fill("09:00")
    await page.get_by_label("עד שעה 1", exact=True).fill("17:00")
    await console.shot(page, "rep-edit-he")
    await console.no_serious_axe_violations(page, "rep edit (he)")
    await page.get_by_role("button", name="שמירה").click()
    await page.wait_for_url(re.compile(r"/admin/teams$"))
    assert (await row.locator("td").nth(5).inner_text()).strip() == "7"
    async with httpx.AsyncClient(base_url=stack.gateway_url, headers=stack.auth_headers(), timeout=15) as api:
        reps = (await api.get("/api/v1/reps", params={"team_id": team_id})).json()["reps"]
    saved = next(r for r in reps if r["id"] == rep_id)
    assert saved["capacity"] == 7 and saved["working_hours"] == [{"day": "sun", "start": "09:00", "end": "17:00"}]
    assert set(saved["territories"]) == {"באר שבע", "אילת"} and saved["name"] == rep_name

    await page.goto(f"{stack.console_url}/lang/fa?next=/admin/reps/{rep_id}/edit")
    await page.get_by_role("heading", level=1, name=re.compile("ویرایش کارشناس")).wait_for()
    assert await page.get_by_label("ظرفیت").input_value() == "7"
    await console.shot(page, "rep-edit-fa")
    await console.no_serious_axe_violations(page, "rep edit (fa)")
    await page.goto(f"{stack.console_url}/admin/teams/{team_id}/edit")
    await page.get_by_label("نام تیم").wait_for()
    await console.shot(page, "team-edit-fa")
    await console.no_serious_axe_violations(page, "team edit (fa)")


async def test_an_admin_replays_a_dead_letter_once(console: Any, stack: Stack) -> None:
    """A poison DealClosed (not protobuf) the orders service gave up on: listed in Hebrew, replayed
    once (the row then says so and has no button), and a second replay from a page read before
    says it was done already."""
    event_id = f"e2e-console-{random.randint(10**8, 10**9)}"
    nc = await nats.connect(stack.nats_url)
    try:
        headers = {"Nats-Msg-Id": event_id, "ce-id": event_id, "ce-type": "crm.sales.v1.DealClosed"}
        await nc.jetstream().publish("crm.sales.deal_closed", b"\xff\xff not a protobuf", headers=headers)
    finally:
        await nc.close()
    path = "/admin/dead-letters?service=orders&consumer=orders-deal-closed"
    page = await console.page()
    await console.sign_in(page, "admin", path)
    await page.get_by_role("heading", level=1, name="אירועים שנכשלו").wait_for()
    assert await console.menu_link(page, "אירועים שנכשלו").count() == 1  # the admin's menu
    await console.reload_until(page, page.locator(f"tr[data-event='{event_id}']"))
    letter_id = await page.locator(f"tr[data-event='{event_id}']").get_attribute("data-dead-letter")
    row = page.locator(f"tr[data-dead-letter='{letter_id}']")
    assert "crm.sales.v1.DealClosed" in await row.inner_text() and "עדיין לא" in await row.inner_text()
    await console.shot(page, "dead-letters-he")
    await console.no_serious_axe_violations(page, "dead letters (he)")
    stale = await console.page()  # the same list, read before the replay
    await console.sign_in(stale, "admin", path)
    await stale.locator(f"tr[data-dead-letter='{letter_id}']").wait_for()

    await row.get_by_role("button", name=re.compile("שליחה חוזרת")).click()
    await page.wait_for_url(re.compile(r"notice=dl_replayed_notice"))
    await page.get_by_role("status").filter(has_text="האירוע נשלח מחדש לצרכן שלו.").wait_for()
    assert "נשלח מחדש" in await row.inner_text()
    assert await row.get_by_role("button").count() == 0
    assert await row.get_attribute("class") == "replayed"

    await stale.locator(f"tr[data-dead-letter='{letter_id}']").get_by_role("button").click()
    await stale.get_by_role("alert").filter(has_text="האירוע הזה כבר נשלח מחדש").wait_for()
    async with httpx.AsyncClient(base_url=stack.gateway_url, headers=stack.auth_headers(), timeout=15) as api:
        stored = (await api.get(f"/api/v1/dead-letters/orders/{letter_id}")).json()
    assert stored["event_id"] == event_id and stored["replay_time"] is not None

    await page.get_by_role("link", name="فارسی").click()
    await page.get_by_role("heading", level=1, name="رویدادهای شکست‌خورده").wait_for()
    await page.locator(f"tr[data-dead-letter='{letter_id}']").wait_for()
    await console.shot(page, "dead-letters-fa")
    await console.no_serious_axe_violations(page, "dead letters (fa)")
