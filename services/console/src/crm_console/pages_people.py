"""People: a rep's tasks (due today and overdue first), one customer with their whole timeline,
and the administrator's read-only screens (teams and their reps, the audit log).

Every screen reads the gateway as the signed-in user, so a rep sees their own tasks and the
customers of their own leads, a manager their team's; the menu only offers a screen to the roles
the gateway's permission table lets call it (crm_gateway.platform.authz).

Finding a customer by name, phone or e-mail is pages_search (the header's search box).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, tzinfo
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from crm_console.api import ApiError
from crm_console.i18n import ZONES, Translator, words
from crm_console.session import Session
from crm_console.web import PAGE_SIZE, api, ctx, menu_item

router = APIRouter()
# Who may call what comes from the gateway's POLICIES: list_tasks/complete_activity are the sales
# roles'; list_teams admins' and managers' (list_reps every sales role); list_audit_records admins'.
menu_item("my_tasks", "/tasks", "sales_rep", "sales_manager", "admin")
menu_item("teams_reps", "/admin/teams", "admin", "sales_manager")
menu_item("audit_log", "/admin/audit", "admin")

# The services whose audit trail the gateway serves (the enum of listAuditRecords' `service`).
AUDIT_SERVICES = ("leads", "sales", "customers", "orders", "notifications", "reporting")
AUDIT_FILTERS = ("record_type", "record_id", "actor")
TASK_GROUPS = ("tasks_overdue", "tasks_today", "tasks_later")

words(
    {
        "my_tasks": {"he": "המשימות שלי", "fa": "کارهای من", "en": "My tasks"},
        "tasks_overdue": {"he": "באיחור", "fa": "عقب‌افتاده", "en": "Overdue"},
        "tasks_today": {"he": "להיום", "fa": "امروز", "en": "Due today"},
        "tasks_later": {"he": "בהמשך", "fa": "بعداً", "en": "Later"},
        "tasks_none": {"he": "אין משימות פתוחות.", "fa": "کار بازی نیست.", "en": "No open tasks."},
        "task_done": {"he": "בוצע", "fa": "انجام شد", "en": "Done"},
        "task_of": {"he": "שייך ל", "fa": "مربوط به", "en": "For"},
        "rep": {"he": "נציג", "fa": "کارشناس", "en": "Rep"},
        "customer_leads": {"he": "הלידים של הלקוח", "fa": "سرنخ‌های مشتری", "en": "The customer's leads"},
        "customer_locale": {"he": "שפה מועדפת", "fa": "زبان ترجیحی", "en": "Preferred language"},
        "customer_timeline": {"he": "ציר הזמן", "fa": "خط زمانی", "en": "Timeline"},
        "timeline_empty": {"he": "עדיין אין אירועים.", "fa": "هنوز رویدادی نیست.", "en": "Nothing yet."},
        "customer_pending": {
            "he": "כרטיס הלקוח נוצר מאירועי הליד ועדיין לא מוכן. נסו שוב בעוד רגע.",
            "fa": "پرونده‌ی مشتری از رویدادهای سرنخ ساخته می‌شود و هنوز آماده نیست. کمی بعد دوباره امتحان کنید.",
            "en": "The customer is made from the lead's events and is not there yet; try again in a moment.",
        },
        "open_customer": {"he": "לכרטיס הלקוח", "fa": "پرونده‌ی مشتری", "en": "Customer page"},
        "channel": {"he": "ערוץ", "fa": "کانال", "en": "Channel"},
        "channel_web": {"he": "אתר", "fa": "وب‌سایت", "en": "Web"},
        "channel_phone": {"he": "טלפון", "fa": "تلفن", "en": "Phone"},
        "channel_email": {"he": "דוא״ל", "fa": "ایمیل", "en": "E-mail"},
        "channel_sms": {"he": "SMS", "fa": "پیامک", "en": "SMS"},
        "channel_meeting": {"he": "פגישה", "fa": "جلسه", "en": "Meeting"},
        "channel_internal": {"he": "פנימי", "fa": "داخلی", "en": "Internal"},
        "channel_system": {"he": "מערכת", "fa": "سامانه", "en": "System"},
        "when": {"he": "מתי", "fa": "زمان", "en": "When"},
        "tl_lead_captured": {"he": "ליד נקלט", "fa": "سرنخ ثبت شد", "en": "Lead captured"},
        "tl_deal_won": {"he": "עסקה נסגרה בהצלחה", "fa": "معامله موفق شد", "en": "Deal won"},
        "tl_deal_lost": {"he": "עסקה הופסדה", "fa": "معامله از دست رفت", "en": "Deal lost"},
        "tl_order_shipped": {"he": "הזמנה נשלחה", "fa": "سفارش ارسال شد", "en": "Order shipped"},
        "tl_sms_sent": {"he": "נשלח SMS", "fa": "پیامک فرستاده شد", "en": "SMS sent"},
        "tl_call_logged": {"he": "שיחה", "fa": "تماس", "en": "Call"},
        "tl_meeting_logged": {"he": "פגישה", "fa": "جلسه", "en": "Meeting"},
        "tl_note_logged": {"he": "הערה", "fa": "یادداشت", "en": "Note"},
        "tl_task_logged": {"he": "משימה", "fa": "کار", "en": "Task"},
        "tl_email_logged": {"he": "דוא״ל", "fa": "ایمیل", "en": "E-mail"},
        "tl_sms_logged": {"he": "SMS", "fa": "پیامک", "en": "SMS"},
        "tl_deal_stage_changed": {"he": "שלב העסקה השתנה", "fa": "مرحله‌ی معامله تغییر کرد", "en": "Deal stage changed"},
        "tl_quote_sent": {"he": "הצעת מחיר נשלחה", "fa": "پیش‌فاکتور فرستاده شد", "en": "Quote sent"},
        "tl_quote_accepted": {"he": "הצעת מחיר אושרה", "fa": "پیش‌فاکتور پذیرفته شد", "en": "Quote accepted"},
        "teams_reps": {"he": "צוותים ונציגים", "fa": "تیم‌ها و کارشناسان", "en": "Teams and reps"},
        "team": {"he": "צוות", "fa": "تیم", "en": "Team"},
        "team_manager": {"he": "מנהל הצוות", "fa": "مدیر تیم", "en": "Manager"},
        "team_active_reps": {"he": "נציגים פעילים", "fa": "کارشناسان فعال", "en": "Active reps"},
        "no_team": {"he": "ללא צוות", "fa": "بدون تیم", "en": "No team"},
        "state_active": {"he": "פעיל", "fa": "فعال", "en": "Active"},
        "state_inactive": {"he": "לא פעיל", "fa": "غیرفعال", "en": "Inactive"},
        "state_away": {"he": "לא זמין (בחופש)", "fa": "غایب", "en": "Away"},
        "rep_available": {"he": "זמין", "fa": "در دسترس", "en": "Available"},
        "availability": {"he": "זמינות", "fa": "در دسترس بودن", "en": "Availability"},
        "territories": {"he": "אזורים", "fa": "مناطق", "en": "Territories"},
        "product_lines": {"he": "קווי מוצרים", "fa": "خطوط محصول", "en": "Product lines"},
        "capacity": {"he": "קיבולת", "fa": "ظرفیت", "en": "Capacity"},
        "capacity_unlimited": {"he": "ללא הגבלה", "fa": "نامحدود", "en": "Unlimited"},
        "open_leads": {"he": "לידים פתוחים", "fa": "سرنخ‌های باز", "en": "Open leads"},
        "reps_none": {"he": "אין נציגים.", "fa": "کارشناسی نیست.", "en": "No reps."},
        "audit_log": {"he": "יומן ביקורת", "fa": "گزارش ممیزی", "en": "Audit log"},
        "audit_service": {"he": "שירות", "fa": "سرویس", "en": "Service"},
        "audit_record_type": {"he": "סוג רשומה", "fa": "نوع رکورد", "en": "Record type"},
        "audit_record_id": {"he": "מזהה רשומה", "fa": "شناسه‌ی رکورد", "en": "Record id"},
        "audit_actor": {"he": "מבצע", "fa": "انجام‌دهنده", "en": "Actor"},
        "audit_action": {"he": "פעולה", "fa": "عملیات", "en": "Action"},
        "audit_request": {"he": "מזהה בקשה", "fa": "شناسه‌ی درخواست", "en": "Request id"},
        "audit_details": {"he": "פרטים", "fa": "جزئیات", "en": "Details"},
        "audit_filter": {"he": "סינון", "fa": "فیلتر", "en": "Filter"},
        "audit_none": {"he": "אין רשומות.", "fa": "رکوردی نیست.", "en": "No records."},
    }
)


# ------------------------------------------------------------------ pure helpers (no I/O)


def _instant(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else None


def due_groups(tasks: Iterable[dict[str, Any]], now: datetime, zone: tzinfo) -> list[tuple[str, list[dict[str, Any]]]]:
    """Open tasks as (overdue, due today, later), each soonest first. "Today" is the calendar day
    in the company's zone (Israel or Iran), not the server's or UTC: a task due at 01:00 in Tel Aviv
    is today's there although it is yesterday in UTC. A task without a due time comes last."""
    today = now.astimezone(zone).date()
    groups: dict[str, list[tuple[datetime | None, dict[str, Any]]]] = {key: [] for key in TASK_GROUPS}
    for task in tasks:
        due = _instant(task.get("due_time"))
        if due is not None and due < now:
            key = "tasks_overdue"
        elif due is not None and due.astimezone(zone).date() == today:
            key = "tasks_today"
        else:
            key = "tasks_later"
        groups[key].append((due, task))
    return [
        (key, [task for _, task in sorted(found, key=lambda pair: (pair[0] is None, pair[0] or now))])
        for key, found in groups.items()
    ]


def reps_by_team(teams: list[dict[str, Any]], reps: list[dict[str, Any]]) -> list[tuple[dict[str, Any], list[Any]]]:
    """Each team with its reps (by name), and a last team-less group for reps of no listed team
    (so a rep is never missing from the screen because their team is on another page)."""
    known = {team["id"] for team in teams}
    grouped: list[tuple[dict[str, Any], list[Any]]] = [
        (team, sorted((r for r in reps if r.get("team_id") == team["id"]), key=lambda r: str(r.get("name"))))
        for team in teams
    ]
    stray = sorted((r for r in reps if r.get("team_id") not in known), key=lambda r: str(r.get("name")))
    if stray:
        grouped.append(({"id": "", "name": "", "manager_id": "", "active": True, "active_reps": 0}, stray))
    return grouped


def audit_query(params: Mapping[str, str]) -> dict[str, str]:
    """The audit filters of a request, trimmed; the service is required by the gateway, so an
    unknown or missing one falls back to the first (leads) rather than answering with an error."""
    service = params.get("service", "")
    query = {"service": service if service in AUDIT_SERVICES else AUDIT_SERVICES[0]}
    for name in AUDIT_FILTERS:
        value = params.get(name, "").strip()
        if value:
            query[name] = value
    return query


def next_href(path: str, query: Mapping[str, str], page_token: str) -> str:
    """The "next" link of a keyset-paged list: the same filters and the answer's page token."""
    return f"{path}?{urlencode({**query, 'page_token': page_token})}"


# ------------------------------------------------------------------ tasks


async def tasks_page(request: Request, session: Session, page_token: str, **extra: Any) -> HTMLResponse:
    found = (
        await api(request).call("listTasks", session.token, query={"page_size": PAGE_SIZE, "page_token": page_token})
    ).body
    zone = ZONES.get(ctx(request).locale_of(request), ZONES["he"])
    return ctx(request).render(
        request,
        "people_tasks.html",
        session,
        groups=due_groups(found["tasks"], datetime.now(zone), zone),
        next_page=next_href("/tasks", {}, found["next_page_token"]) if found["next_page_token"] else "",
        page_token=page_token,
        show_rep=session.has_any("sales_manager", "admin"),
        notice=extra.get("notice", ""),
        status_code=extra.get("status_code", 200),
    )


@router.get("/tasks", response_class=HTMLResponse)
async def tasks(request: Request, page_token: str = "") -> Response:
    return await tasks_page(request, ctx(request).require(request), page_token)


@router.post("/tasks/{activity_id}/done")
async def task_done(request: Request, activity_id: str) -> Response:
    session, form = await ctx(request).signed_form(request)
    page_token = str(form.get("page_token", ""))
    try:
        await api(request).call("completeActivity", session.token, path={"activity_id": activity_id})
    except ApiError as exc:
        if exc.status not in (409, 422):
            raise
        notice = str(exc.problem.get("detail", "")) or str(exc.problem.get("title", ""))
        return await tasks_page(request, session, page_token, notice=notice, status_code=exc.status)
    target = next_href("/tasks", {}, page_token) if page_token else "/tasks"
    return RedirectResponse(target, status_code=303)


# ------------------------------------------------------------------ customer


@router.get("/customers/{customer_id}", response_class=HTMLResponse)
async def customer(request: Request, customer_id: str, page_token: str = "") -> Response:
    session = ctx(request).require(request)
    gateway = api(request)
    found = (await gateway.call("getCustomer", session.token, path={"customer_id": customer_id})).body
    timeline = (
        await gateway.call(
            "listCustomerTimeline",
            session.token,
            path={"customer_id": customer_id},
            query={"page_size": PAGE_SIZE, "page_token": page_token},
        )
    ).body
    token = timeline["next_page_token"]
    return ctx(request).render(
        request,
        "people_customer.html",
        session,
        customer=found,
        entries=timeline["entries"],
        next_page=next_href(f"/customers/{quote(customer_id)}", {}, token) if token else "",
        first_page=f"/customers/{quote(customer_id)}" if page_token else "",
    )


@router.get("/leads/{lead_id}/customer", response_class=HTMLResponse)
async def customer_of_lead(request: Request, lead_id: str) -> Response:
    """The customer a lead became: the customers service makes it from the lead's events, so right
    after a capture there may be none yet — then a page that says so, with a 404 status."""
    session = ctx(request).require(request)
    found = (await api(request).call("listCustomers", session.token, query={"lead_id": lead_id, "page_size": 1})).body[
        "customers"
    ]
    if found:
        return RedirectResponse(f"/customers/{quote(found[0]['id'])}", status_code=303)
    return ctx(request).render(request, "people_customer_pending.html", session, lead_id=lead_id, status_code=404)


# ------------------------------------------------------------------ administration


@router.get("/admin/teams", response_class=HTMLResponse)
async def teams(request: Request, page_token: str = "") -> Response:
    session = ctx(request).require(request)
    gateway = api(request)
    listed = (
        await gateway.call(
            "listTeams", session.token, query={"show_inactive": True, "page_size": 100, "page_token": page_token}
        )
    ).body
    # One call for every rep the caller may see (the gateway holds a manager to their team), grouped
    # here by team, rather than one call per team.
    reps = (await gateway.call("listReps", session.token)).body["reps"]
    token = listed["next_page_token"]
    return ctx(request).render(
        request,
        "people_teams.html",
        session,
        groups=reps_by_team(listed["teams"], reps),
        next_page=next_href("/admin/teams", {}, token) if token else "",
    )


@router.get("/admin/audit", response_class=HTMLResponse)
async def audit(request: Request, page_token: str = "") -> Response:
    session = ctx(request).require(request)
    query = audit_query(request.query_params)
    listed = (
        await api(request).call(
            "listAuditRecords", session.token, query={**query, "page_size": PAGE_SIZE, "page_token": page_token}
        )
    ).body
    token = listed["next_page_token"]
    return ctx(request).render(
        request,
        "people_audit.html",
        session,
        query=query,
        services=AUDIT_SERVICES,
        records=listed["audit_records"],
        next_page=next_href("/admin/audit", query, token) if token else "",
    )


# ------------------------------------------------------------------ administration: editing teams and reps
# Admins create and change teams and reps; a manager changes their team's reps' availability and
# capacity (the gateway's update_rep policy); nobody else gets a form. Users themselves are not
# made here: they come from the identity provider, whose tokens name their team_id and rep_id.

# The gateway's working-hours days, in the order of the Israeli week (Sunday first).
WEEK = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# Time zones offered for a rep (empty: the company's default, Asia/Jerusalem); a rep's other zone
# is offered too, so an edit never loses it.
REP_ZONES = ("", "Asia/Jerusalem", "Asia/Tehran")
TEAM_FIELDS = ("name", "manager_id", "active")
REP_WHO_FIELDS = ("name", "team_id", "active", "territories", "product_lines")  # an admin's (ADMIN_FIELDS)
REP_AVAILABILITY_FIELDS = ("away", "capacity", "time_zone", "working_hours")
_DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")
_LIST_SEPARATORS = re.compile(r"[,،\n;]")

words(
    {
        "edit": {"he": "עריכה", "fa": "ویرایش", "en": "Edit"},
        "new_team": {"he": "צוות חדש", "fa": "تیم تازه", "en": "New team"},
        "new_rep": {"he": "נציג חדש", "fa": "کارشناس تازه", "en": "New rep"},
        "edit_team": {"he": "עריכת צוות", "fa": "ویرایش تیم", "en": "Edit team"},
        "edit_rep": {"he": "עריכת נציג", "fa": "ویرایش کارشناس", "en": "Edit rep"},
        "team_name": {"he": "שם הצוות", "fa": "نام تیم", "en": "Team name"},
        "rep_name": {"he": "שם הנציג", "fa": "نام کارشناس", "en": "Rep's name"},
        "directory_id": {"he": "מזהה (לא חובה)", "fa": "شناسه (اختیاری)", "en": "Id (optional)"},
        "team_id_hint": {
            "he": "ה-team_id שבאסימון של מנהל הצוות. אותיות לטיניות, ספרות ו-_.:- בלבד; ריק: נוצר אוטומטית.",
            "fa": "همان team_id در توکن مدیر تیم. فقط حروف لاتین، رقم و _.:-؛ خالی: خودکار ساخته می‌شود.",
            "en": "The team_id in its manager's token. Latin letters, digits and _.:- only; empty: generated.",
        },
        "rep_id_hint": {
            "he": "ה-rep_id שבאסימון של הנציג. אותיות לטיניות, ספרות ו-_.:- בלבד; ריק: נוצר אוטומטית.",
            "fa": "همان rep_id در توکن کارشناس. فقط حروف لاتین، رقم و _.:-؛ خالی: خودکار ساخته می‌شود.",
            "en": "The rep_id in the rep's token. Latin letters, digits and _.:- only; empty: generated.",
        },
        "manager_id_hint": {
            "he": "מזהה המשתמש של המנהל אצל ספק הזהויות; אליו מוסלמות חריגות SLA. ריק: אף אחד.",
            "fa": "شناسه‌ی کاربری مدیر نزد سرویس هویت؛ تخطی‌های SLA به او ارجاع می‌شود. خالی: هیچ‌کس.",
            "en": "The manager's user id at the identity provider; SLA breaches go to them. Empty: nobody.",
        },
        "team_active_hint": {
            "he": "צוות לא פעיל לא מקבל לידים; אי אפשר להשבית צוות שיש בו נציגים פעילים.",
            "fa": "تیم غیرفعال سرنخ نمی‌گیرد؛ تیمی که کارشناس فعال دارد غیرفعال نمی‌شود.",
            "en": "An inactive team gets no leads; a team with active reps cannot be deactivated.",
        },
        "rep_active_hint": {
            "he": "נציג לא פעיל לא מקבל לידים חדשים ושומר על הלידים שלו.",
            "fa": "کارشناس غیرفعال سرنخ تازه نمی‌گیرد و سرنخ‌هایش می‌مانند.",
            "en": "An inactive rep gets no new leads and keeps theirs.",
        },
        "rep_away": {"he": "בחופש (לא זמין זמנית)", "fa": "غایب (موقتاً در دسترس نیست)", "en": "Away for now"},
        "capacity_hint": {
            "he": "מספר הלידים הפתוחים המרבי; ריק: ללא הגבלה.",
            "fa": "بیشترین شمار سرنخ‌های باز؛ خالی: نامحدود.",
            "en": "The most open leads at once; empty: no limit.",
        },
        "time_zone": {"he": "אזור זמן", "fa": "منطقه‌ی زمانی", "en": "Time zone"},
        "tz_default": {"he": "ברירת המחדל (ירושלים)", "fa": "پیش‌فرض (اورشلیم)", "en": "Default (Jerusalem)"},
        "tz_Asia/Jerusalem": {"he": "ישראל (ירושלים)", "fa": "اسرائیل (اورشلیم)", "en": "Israel (Jerusalem)"},
        "tz_Asia/Tehran": {"he": "איראן (טהרן)", "fa": "ایران (تهران)", "en": "Iran (Tehran)"},
        "working_hours": {"he": "שעות עבודה", "fa": "ساعت‌های کاری", "en": "Working hours"},
        "working_hours_hint": {
            "he": "שורה לכל משמרת; שורה ריקה לא נשמרת. בלי שעות בכלל: תמיד בתורנות. סיום 00:00 הוא סוף היום.",
            "fa": "هر نوبت یک سطر؛ سطر خالی ذخیره نمی‌شود. بی ساعت: همیشه در نوبت. پایان ۰۰:۰۰ یعنی پایان روز.",
            "en": "One row per shift; empty rows are dropped. No hours: always on duty. An end of 00:00 is midnight.",
        },
        "hours_from": {"he": "משעה", "fa": "از ساعت", "en": "From"},
        "hours_to": {"he": "עד שעה", "fa": "تا ساعت", "en": "To"},
        "hours_incomplete": {
            "he": "בכל משמרת צריך שעת התחלה וגם שעת סיום.",
            "fa": "هر نوبت هم ساعت آغاز می‌خواهد هم ساعت پایان.",
            "en": "Each shift needs both a start and an end.",
        },
        "day_sun": {"he": "ראשון", "fa": "یکشنبه", "en": "Sunday"},
        "day_mon": {"he": "שני", "fa": "دوشنبه", "en": "Monday"},
        "day_tue": {"he": "שלישי", "fa": "سه‌شنبه", "en": "Tuesday"},
        "day_wed": {"he": "רביעי", "fa": "چهارشنبه", "en": "Wednesday"},
        "day_thu": {"he": "חמישי", "fa": "پنجشنبه", "en": "Thursday"},
        "day_fri": {"he": "שישי", "fa": "جمعه", "en": "Friday"},
        "day_sat": {"he": "שבת", "fa": "شنبه", "en": "Saturday"},
        "codes_hint": {
            "he": "מופרדים בפסיקים; ריק: הכול.",
            "fa": "با ویرگول جدا کنید؛ خالی: همه.",
            "en": "Separated by commas; empty: any.",
        },
        "not_a_number": {"he": "יש להזין מספר שלם.", "fa": "یک عدد صحیح وارد کنید.", "en": "Enter a whole number."},
        "rep_edit_availability_only": {
            "he": "כמנהל אפשר לשנות כאן את הזמינות והקיבולת; שם, צוות ואזורים משנה מנהל המערכת.",
            "fa": "شما به‌عنوان مدیر در دسترس بودن و ظرفیت را تغییر می‌دهید؛ نام، تیم و مناطق با مدیر سامانه است.",
            "en": "As a manager you change availability and capacity here; name, team and coverage are an admin's.",
        },
        "edit_changed_meanwhile": {
            "he": "מישהו אחר שינה את הרשומה בינתיים, והשינוי שלכם לא נשמר. טענו מחדש את הטופס ונסו שוב.",
            "fa": "کس دیگری در این فاصله رکورد را تغییر داد و تغییر شما ذخیره نشد. فرم را دوباره بارگذاری کنید.",
            "en": "Someone else changed this record meanwhile; your change was not saved. Reload the form.",
        },
        "reload_form": {"he": "טעינה מחדש", "fa": "بارگذاری دوباره", "en": "Reload"},
        "cancel": {"he": "ביטול", "fa": "انصراف", "en": "Cancel"},
        "users_from_idp": {
            "he": "משתמשים ותפקידים מנוהלים אצל ספק הזהויות; כאן מגדירים את הצוותים והנציגים שהם מייצגים.",
            "fa": "کاربران و نقش‌ها در سرویس هویت مدیریت می‌شوند؛ اینجا تیم‌ها و کارشناسان را تعریف می‌کنید.",
            "en": "Users and their roles live at the identity provider; here are the teams and reps they stand for.",
        },
    }
)


def ascii_digits(text: str) -> str:
    """Persian and Arabic-Indic digits as ASCII (a Persian keyboard types ۱۲۳)."""
    return text.translate(_DIGITS)


def split_codes(text: str) -> list[str]:
    """A list typed as "תל אביב, חיפה" (commas, the Arabic comma, semicolons or lines): trimmed,
    empty ones dropped, each once in the order typed."""
    return list(dict.fromkeys(part.strip() for part in _LIST_SEPARATORS.split(text) if part.strip()))


def changed_fields(new: Mapping[str, Any], old: Mapping[str, Any]) -> dict[str, Any]:
    """A PATCH body: only the fields whose value differs from what the form was filled with. The
    gateway's update masks are "the fields sent", so sending an untouched field would overwrite
    what someone else changed in it meanwhile."""
    return {name: value for name, value in new.items() if name not in old or old[name] != value}


def form_errors(field_errors: Mapping[str, str], fields: Iterable[str]) -> dict[str, str]:
    """The gateway's 422 errors by the form field they belong to ("budget.amount_minor" → budget,
    "working_hours.2.start" → working_hours); one naming no field of the form goes to "" and is
    shown above the form, so no refusal is lost."""
    known = set(fields)
    placed: dict[str, str] = {}
    for key, message in field_errors.items():
        name = next((part for part in key.split(".") if part in known), "")
        placed.setdefault(name, message)
    return placed


def team_values(team: Mapping[str, Any]) -> dict[str, Any]:
    """A team as the edit form's values (also what its PATCH is compared with)."""
    return {
        "name": str(team.get("name", "")),
        "manager_id": str(team.get("manager_id", "")),
        "active": bool(team.get("active")),
    }


def team_input(form: Mapping[str, Any]) -> dict[str, Any]:
    """The team form's values as the gateway's body (a checkbox sends "true" or nothing)."""
    return {
        "name": str(form.get("name", "")).strip(),
        "manager_id": str(form.get("manager_id", "")).strip(),
        "active": form.get("active") == "true",
    }


def _hour_key(span: Mapping[str, str]) -> tuple[int, str, str]:
    day = span.get("day", "")
    return (WEEK.index(day) if day in WEEK else len(WEEK), span.get("start", ""), span.get("end", ""))


def sorted_hours(spans: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Working hours by day of the week, then start: one order for the record and the form, so an
    untouched schedule compares equal."""
    hours = [
        {"day": str(s.get("day", "")), "start": str(s.get("start", "")), "end": str(s.get("end", ""))} for s in spans
    ]
    return sorted(hours, key=_hour_key)


def hours_input(days: list[str], starts: list[str], ends: list[str]) -> tuple[list[dict[str, str]], bool]:
    """The working-hours rows of the form (parallel lists) as spans, and whether a row was half
    filled. A row without times is dropped; an end of 00:00 is the end of the day (the gateway's
    24:00, which a time input cannot show)."""
    spans, incomplete = [], False
    for day, start, end in zip(days, starts, ends, strict=False):
        start, end = ascii_digits(start.strip()), ascii_digits(end.strip())
        if not start and not end:
            continue
        if not start or not end:
            incomplete = True
            continue
        spans.append({"day": day, "start": start, "end": "24:00" if end == "00:00" else end})
    return sorted_hours(spans), incomplete


def hours_rows(spans: list[dict[str, str]]) -> list[dict[str, str]]:
    """The form's rows: every span (24:00 shown as 00:00), then an empty row for each day without
    one and one more, so a split shift can be added without JavaScript."""
    rows = [{**s, "end": "00:00" if s["end"] == "24:00" else s["end"]} for s in spans]
    covered = {s["day"] for s in spans}
    rows += [{"day": day, "start": "", "end": ""} for day in WEEK if day not in covered]
    rows.append({"day": WEEK[0], "start": "", "end": ""})
    return rows


def rep_values(rep: Mapping[str, Any]) -> dict[str, Any]:
    """A rep as the edit form's values (also what its PATCH is compared with)."""
    capacity = rep.get("capacity")
    return {
        "name": str(rep.get("name", "")),
        "team_id": str(rep.get("team_id", "")),
        "active": bool(rep.get("active")),
        "territories": [str(c) for c in rep.get("territories") or []],
        "product_lines": [str(c) for c in rep.get("product_lines") or []],
        "away": bool(rep.get("away")),
        "capacity": int(capacity) if capacity is not None else None,
        "time_zone": str(rep.get("time_zone", "")),
        "working_hours": sorted_hours(rep.get("working_hours") or []),
    }


def rep_input(form: Any, fields: Iterable[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The rep form's values for ``fields`` as the gateway's body, and the fields that do not
    parse (field → message key). A capacity that is not a whole number keeps its text, so the
    form shows what was typed."""
    values: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for name in fields:
        if name in ("active", "away"):
            values[name] = form.get(name) == "true"
        elif name == "capacity":
            text = ascii_digits(str(form.get("capacity", "")).strip())
            try:
                values[name] = int(text) if text else None
            except ValueError:
                values[name], problems[name] = text, "not_a_number"
        elif name in ("territories", "product_lines"):
            values[name] = split_codes(str(form.get(name, "")))
        elif name == "working_hours":
            days, starts, ends = (
                [str(v) for v in form.getlist(key)] for key in ("hours_day", "hours_start", "hours_end")
            )
            values[name], incomplete = hours_input(days, starts, ends)
            if incomplete:
                problems[name] = "hours_incomplete"
        else:
            values[name] = str(form.get(name, "")).strip()
    return values, problems


def rep_fields(session: Session, *, new: bool) -> tuple[str, ...]:
    """What the caller may set on a rep: an admin everything; a manager availability and capacity."""
    if new or session.has_any("admin"):
        return REP_WHO_FIELDS + REP_AVAILABILITY_FIELDS
    return REP_AVAILABILITY_FIELDS


def refusal_errors(exc: ApiError, fields: Iterable[str], t: Translator) -> tuple[dict[str, str], str]:
    """A gateway refusal as (field errors, notice above the form): 412 is "changed meanwhile"; a
    409 or a 422 naming no field shows its detail."""
    if exc.status == 412:
        return {}, t("edit_changed_meanwhile")
    errors = form_errors(exc.field_errors, fields)
    notice = errors.pop("", "")
    if not errors and not notice:
        notice = str(exc.problem.get("detail") or exc.problem.get("title") or exc.status)
    return errors, notice


def form_original(form: Any) -> dict[str, Any]:
    """The values the edit form was filled with (a hidden field), to send only what changed."""
    try:
        found = json.loads(str(form.get("original", "")))
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


# Refusals the forms show next to the fields (the rest render the error page).
FORM_REFUSALS = (409, 412, 422)


async def _teams_to_choose(request: Request, session: Session) -> list[dict[str, Any]]:
    listed = (await api(request).call("listTeams", session.token, query={"show_inactive": True, "page_size": 100})).body
    return list(listed["teams"])


def _translator(request: Request) -> Translator:
    return Translator(ctx(request).locale_of(request))


async def team_form_page(request: Request, session: Session, team: dict[str, Any] | None, **extra: Any) -> HTMLResponse:
    values = extra.get("values") or (team_values(team) if team else {"name": "", "manager_id": "", "active": True})
    return ctx(request).render(
        request,
        "people_team_form.html",
        session,
        team=team,
        values=values,
        new_id=extra.get("new_id", ""),
        original=extra.get("original") or (json.dumps(team_values(team), ensure_ascii=False) if team else ""),
        etag=extra.get("etag") or (team or {}).get("etag", ""),
        errors=extra.get("errors", {}),
        notice=extra.get("notice", ""),
        conflict=extra.get("conflict", False),
        status_code=extra.get("status_code", 200),
    )


@router.get("/admin/teams/new", response_class=HTMLResponse)
async def new_team(request: Request) -> Response:
    return await team_form_page(request, ctx(request).require(request), None)


@router.post("/admin/teams/new")
async def create_team(request: Request) -> Response:
    session, form = await ctx(request).signed_form(request)
    values, new_id = team_input(form), str(form.get("id", "")).strip()
    try:
        await api(request).call("createTeam", session.token, body={"id": new_id, **values})
    except ApiError as exc:
        if exc.status not in FORM_REFUSALS:
            raise
        errors, notice = refusal_errors(exc, ("id", *TEAM_FIELDS), _translator(request))
        return await team_form_page(
            request, session, None, values=values, new_id=new_id, errors=errors, notice=notice, status_code=exc.status
        )
    return RedirectResponse("/admin/teams", status_code=303)


async def _team(request: Request, session: Session, team_id: str) -> dict[str, Any]:
    found: dict[str, Any] = (await api(request).call("getTeam", session.token, path={"team_id": team_id})).body
    return found


@router.get("/admin/teams/{team_id}/edit", response_class=HTMLResponse)
async def edit_team(request: Request, team_id: str) -> Response:
    session = ctx(request).require(request)
    return await team_form_page(request, session, await _team(request, session, team_id))


@router.post("/admin/teams/{team_id}/edit")
async def update_team(request: Request, team_id: str) -> Response:
    """Sends only what changed, with the ETag the form was read with (the gateway requires it):
    a team changed meanwhile is 412 and the form comes back with the user's input and a reload link."""
    session, form = await ctx(request).signed_form(request)
    values, etag = team_input(form), str(form.get("etag", ""))
    body = changed_fields(values, form_original(form))
    if body:
        try:
            await api(request).call(
                "updateTeam", session.token, path={"team_id": team_id}, headers={"If-Match": etag or "*"}, body=body
            )
        except ApiError as exc:
            if exc.status not in FORM_REFUSALS:
                raise
            errors, notice = refusal_errors(exc, TEAM_FIELDS, _translator(request))
            # The form comes back as it was sent (its original and ETag too): after a 412 another
            # save is refused again until the user reloads and sees the other change.
            return await team_form_page(
                request,
                session,
                await _team(request, session, team_id),
                values=values,
                original=str(form.get("original", "")),
                etag=etag,
                errors=errors,
                notice=notice,
                conflict=exc.status == 412,
                status_code=exc.status,
            )
    return RedirectResponse("/admin/teams", status_code=303)


def _zones(current: str) -> tuple[str, ...]:
    return REP_ZONES if current in REP_ZONES else (*REP_ZONES, current)


def blank_rep(team_id: str = "") -> dict[str, Any]:
    """A new rep's form: active, no cap, the company's time zone, always on duty, any coverage."""
    return rep_values({"team_id": team_id, "active": True})


async def rep_form_page(request: Request, session: Session, rep: dict[str, Any] | None, **extra: Any) -> HTMLResponse:
    fields = rep_fields(session, new=rep is None)
    values = extra.get("values") or (rep_values(rep) if rep else blank_rep())
    teams = await _teams_to_choose(request, session) if "team_id" in fields else []
    # New reps join active teams; the rep's own team is offered even when it was deactivated.
    teams = [team for team in teams if team.get("active") or team["id"] == values.get("team_id")]
    return ctx(request).render(
        request,
        "people_rep_form.html",
        session,
        rep=rep,
        fields=fields,
        values=values,
        rows=hours_rows(values.get("working_hours") or []),
        week=WEEK,
        zones=_zones(str(values.get("time_zone", ""))),
        teams=teams,
        new_id=extra.get("new_id", ""),
        original=extra.get("original") or (json.dumps(rep_values(rep), ensure_ascii=False) if rep else ""),
        etag=extra.get("etag") or (rep or {}).get("etag", ""),
        errors=extra.get("errors", {}),
        notice=extra.get("notice", ""),
        conflict=extra.get("conflict", False),
        status_code=extra.get("status_code", 200),
    )


def _problems(problems: Mapping[str, str], t: Translator) -> dict[str, str]:
    return {name: t(key) for name, key in problems.items()}


@router.get("/admin/reps/new", response_class=HTMLResponse)
async def new_rep(request: Request, team_id: str = "") -> Response:
    return await rep_form_page(request, ctx(request).require(request), None, values=blank_rep(team_id))


@router.post("/admin/reps/new")
async def create_rep(request: Request) -> Response:
    session, form = await ctx(request).signed_form(request, max_fields=400)
    fields = rep_fields(session, new=True)
    values, problems = rep_input(form, fields)
    new_id = str(form.get("id", "")).strip()
    t = _translator(request)
    if problems:
        return await rep_form_page(
            request, session, None, values=values, new_id=new_id, errors=_problems(problems, t), status_code=422
        )
    try:
        await api(request).call("createRep", session.token, body={"id": new_id, **values})
    except ApiError as exc:
        if exc.status not in FORM_REFUSALS:
            raise
        errors, notice = refusal_errors(exc, ("id", *fields), t)
        return await rep_form_page(
            request, session, None, values=values, new_id=new_id, errors=errors, notice=notice, status_code=exc.status
        )
    return RedirectResponse("/admin/teams", status_code=303)


async def _rep(request: Request, session: Session, rep_id: str) -> dict[str, Any]:
    """The rep, from the caller's list of reps (the gateway has no single-rep read): an admin finds
    any rep, a manager their team's; anyone else's is 404 like the gateway's."""
    reps = (await api(request).call("listReps", session.token)).body["reps"]
    found = next((rep for rep in reps if rep.get("id") == rep_id), None)
    if found is None:
        raise ApiError(404, {"title": "Not Found", "detail": f"No rep {rep_id}."})
    return dict(found)


@router.get("/admin/reps/{rep_id}/edit", response_class=HTMLResponse)
async def edit_rep(request: Request, rep_id: str) -> Response:
    session = ctx(request).require(request)
    return await rep_form_page(request, session, await _rep(request, session, rep_id))


@router.post("/admin/reps/{rep_id}/edit")
async def update_rep(request: Request, rep_id: str) -> Response:
    """Sends only the changed fields the caller may change, with the ETag read with the rep (a
    rep changed meanwhile is 412: the form comes back with the user's input and a reload link)."""
    session, form = await ctx(request).signed_form(request, max_fields=400)
    fields = rep_fields(session, new=False)
    values, problems = rep_input(form, fields)
    etag, original = str(form.get("etag", "")), str(form.get("original", ""))
    t = _translator(request)
    errors: dict[str, str] = _problems(problems, t)
    notice, status = "", 422
    body = changed_fields(values, form_original(form))
    if body and not errors:
        try:
            await api(request).call(
                "updateRep",
                session.token,
                path={"rep_id": rep_id},
                headers={"If-Match": etag} if etag else {},
                body=body,
            )
        except ApiError as exc:
            if exc.status not in FORM_REFUSALS:
                raise
            (errors, notice), status = refusal_errors(exc, fields, t), exc.status
    if not errors and not notice:
        return RedirectResponse("/admin/teams", status_code=303)
    return await rep_form_page(
        request,
        session,
        await _rep(request, session, rep_id),
        values=values,
        original=original,
        etag=etag,
        errors=errors,
        notice=notice,
        conflict=status == 412,
        status_code=status,
    )


# ------------------------------------------------------------------ dead letters (administration)

# Events a service's consumers gave up on, per backend service (listDeadLetters' `service` enum):
# the administrator reads them and replays one at a time (replayDeadLetter; 409 once replayed).
menu_item("dead_letters", "/admin/dead-letters", "admin")

DEAD_LETTER_SERVICES = ("leads", "sales", "customers", "orders", "notifications", "reporting")
# The gateway's limit on the consumer filter (listDeadLetters' `consumer`, maxLength).
CONSUMER_MAX_CHARS = 100
# An error shown in the table is cut here; the whole text is in a <details> under it.
ERROR_SHORT_CHARS = 90
# The only notice a redirect may name (anything else in ?notice= is ignored, never echoed).
DEAD_LETTER_NOTICES = ("dl_replayed_notice",)

words(
    {
        "dead_letters": {"he": "אירועים שנכשלו", "fa": "رویدادهای شکست‌خورده", "en": "Dead letters"},
        "dl_hint": {
            "he": "אירועים שצרכן ויתר עליהם אחרי ניסיונות חוזרים, או מיד כשלא ניתן היה לקרוא אותם. "
            "שליחה חוזרת מעבירה את האירוע שוב לאותו צרכן; אם ייכשל שוב, יירשם כאן מחדש.",
            "fa": "رویدادهایی که مصرف‌کننده پس از چند بار تلاش، یا بی‌درنگ چون خوانا نبودند، کنار گذاشت. "
            "ارسال دوباره، رویداد را باز به همان مصرف‌کننده می‌دهد؛ اگر باز شکست بخورد، دوباره اینجا ثبت می‌شود.",
            "en": "Events a consumer gave up on after repeated failures, or at once when they could not be read. "
            "Replay hands the event to the same consumer again; if it fails again, it is recorded here again.",
        },
        "dl_filter": {"he": "הצגה", "fa": "نمایش", "en": "Show"},
        "dl_service": {"he": "שירות", "fa": "سرویس", "en": "Service"},
        "dl_consumer": {"he": "צרכן", "fa": "مصرف‌کننده", "en": "Consumer"},
        "dl_open_only": {
            "he": "רק כאלה שעוד לא נשלחו מחדש",
            "fa": "فقط آن‌هایی که هنوز دوباره ارسال نشده‌اند",
            "en": "Only those not replayed yet",
        },
        "dl_event_type": {"he": "סוג אירוע", "fa": "نوع رویداد", "en": "Event type"},
        "dl_error": {"he": "שגיאה", "fa": "خطا", "en": "Error"},
        "dl_deliveries": {"he": "ניסיונות מסירה", "fa": "دفعات تحویل", "en": "Deliveries"},
        "dl_replayed": {"he": "נשלח מחדש", "fa": "دوباره ارسال شد", "en": "Replayed"},
        "dl_not_replayed": {"he": "עדיין לא", "fa": "هنوز نه", "en": "Not yet"},
        "dl_replay": {"he": "שליחה חוזרת", "fa": "ارسال دوباره", "en": "Replay"},
        "dl_event": {"he": "אירוע", "fa": "رویداد", "en": "Event"},
        "dl_none": {"he": "אין אירועים שנכשלו.", "fa": "رویداد شکست‌خورده‌ای نیست.", "en": "No dead letters."},
        "dl_replayed_notice": {
            "he": "האירוע נשלח מחדש לצרכן שלו.",
            "fa": "رویداد دوباره برای مصرف‌کننده‌اش فرستاده شد.",
            "en": "The event was sent to its consumer again.",
        },
        "dl_already_replayed": {
            "he": "האירוע הזה כבר נשלח מחדש, ואי אפשר לשלוח אותו שוב. אם נכשל שוב, הוא מופיע ברשימה כאירוע חדש.",
            "fa": "این رویداد پیش‌تر دوباره ارسال شده و نمی‌توان باز فرستاد. اگر باز شکست خورده باشد، "
            "به‌صورت رویدادی تازه در فهرست هست.",
            "en": "This event was already replayed and cannot be replayed again. If it failed again, it is "
            "listed as a new letter.",
        },
    }
)


def dead_letter_query(params: Mapping[str, Any]) -> dict[str, str]:
    """The dead-letter filters of a request or a replay form: a known service (the first, leads,
    when missing or unknown, as the audit screen does), the consumer trimmed and cut to the
    gateway's limit, and open_only ("1") when asked for; the page token is not a filter."""
    service = str(params.get("service", ""))
    query = {"service": service if service in DEAD_LETTER_SERVICES else DEAD_LETTER_SERVICES[0]}
    consumer = str(params.get("consumer", "")).strip()[:CONSUMER_MAX_CHARS]
    if consumer:
        query["consumer"] = consumer
    if params.get("open_only"):
        query["open_only"] = "1"
    return query


def short_error(error: str, limit: int = ERROR_SHORT_CHARS) -> str:
    """An error's first line, cut at `limit` characters with an ellipsis; "" when it is already
    short (then the table shows it whole and needs no <details>)."""
    text = error.strip()
    first = text.split("\n", 1)[0]
    if len(first) > limit:
        return first[: limit - 1].rstrip() + "…"
    return f"{first} …" if first != text else ""


async def dead_letters_page(
    request: Request, session: Session, query: Mapping[str, str], page_token: str, **extra: Any
) -> HTMLResponse:
    listed = (
        await api(request).call(
            "listDeadLetters",
            session.token,
            query={
                "service": query["service"],
                "consumer": query.get("consumer", ""),
                # The "replayed?" column needs the replayed letters too, unless only open ones are asked for.
                "include_replayed": "false" if query.get("open_only") else "true",
                "page_size": PAGE_SIZE,
                "page_token": page_token,
            },
        )
    ).body
    token = listed["next_page_token"]
    return ctx(request).render(
        request,
        "people_dead_letters.html",
        session,
        query=query,
        services=DEAD_LETTER_SERVICES,
        letters=listed["dead_letters"],
        short_error=short_error,
        page_token=page_token,
        next_page=next_href("/admin/dead-letters", query, token) if token else "",
        notice=extra.get("notice", ""),
        status_code=extra.get("status_code", 200),
    )


@router.get("/admin/dead-letters", response_class=HTMLResponse)
async def dead_letters(request: Request, page_token: str = "", notice: str = "") -> Response:
    session = ctx(request).require(request)
    query = dead_letter_query(request.query_params)
    shown = notice if notice in DEAD_LETTER_NOTICES else ""
    return await dead_letters_page(request, session, query, page_token, notice=shown)


@router.post("/admin/dead-letters/{service}/{dead_letter_id}/replay")
async def replay_dead_letter(request: Request, service: str, dead_letter_id: int) -> Response:
    """Replay one letter, then back to the list it was on (its filters and page) with a notice;
    a letter replayed meanwhile (409) is the same list with the reason, not an error page."""
    session, form = await ctx(request).signed_form(request)
    if service not in DEAD_LETTER_SERVICES:
        # Never fall back to another service here: that would replay some other service's letter.
        raise ApiError(404, {"title": "Not Found", "detail": f"No service {service!r}."})
    query = dead_letter_query({**form, "service": service})
    page_token = str(form.get("page_token", ""))
    try:
        await api(request).call(
            "replayDeadLetter",
            session.token,
            path={"service": query["service"], "dead_letter_id": str(dead_letter_id)},
        )
    except ApiError as exc:
        if exc.status != 409:
            raise
        return await dead_letters_page(
            request, session, query, page_token, notice="dl_already_replayed", status_code=409
        )
    back = {**query, "page_token": page_token} if page_token else dict(query)
    back["notice"] = "dl_replayed_notice"
    return RedirectResponse(f"/admin/dead-letters?{urlencode(back)}", status_code=303)
