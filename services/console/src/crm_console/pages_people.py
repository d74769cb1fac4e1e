"""People: a rep's tasks (overdue first, then due today, in the company's day) and the way from a
lead to the customer it became (the customer page itself is pages_customer).

Every screen reads the gateway as the signed-in user, so a rep sees their own tasks and the
customers of their own leads, a manager their team's; the menu only offers a screen to the roles
the gateway's permission table lets call it (crm_gateway.platform.authz).

Teams and reps are pages_org; the audit log and dead letters pages_admin; finding a customer by
name, phone or e-mail is pages_search (the header's search box).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, tzinfo
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from crm_console.api import ApiError
from crm_console.i18n import ZONES, words
from crm_console.session import Session
from crm_console.web import PAGE_SIZE, api, ctx, menu_item, next_href

router = APIRouter()
# Who may call what comes from the gateway's POLICIES: list_tasks/complete_activity are the sales roles'.
menu_item("my_tasks", "/tasks", "sales_rep", "sales_manager", "admin")

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
        "tl_consent_changed": {"he": "הסכמה עודכנה", "fa": "رضایت به‌روز شد", "en": "Consent changed"},
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
