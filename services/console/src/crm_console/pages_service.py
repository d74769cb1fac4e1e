"""The service desk: the tickets list, opening a ticket, one ticket (its SLA clocks, the
conversation, status moves and assignment), the support report, and the customer's public
one-tap satisfaction survey.

The gateway decides who reaches which ticket (an agent their queues, a manager their team's, a
rep only the tickets of a customer they may read, without internal notes); the pages only leave
out the forms a role could not use anyway. The survey page (/s/{token}) has no session: the
link's unguessable token is the credential, so it posts with the token in the path and no CSRF
value, and calls the gateway's public route without a user's bearer token.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from crm_console.api import ApiError
from crm_console.forms import Refusal, answer_or_refusal
from crm_console.i18n import LOCALES, Translator, words
from crm_console.session import Session
from crm_console.web import PAGE_SIZE, api, ctx, menu_item, next_href

router = APIRouter()

DESK_ROLES = ("service_agent", "sales_manager", "admin")
MANAGER_ROLES = ("sales_manager", "admin")
menu_item("svc_tickets", "/service/tickets", *DESK_ROLES)
menu_item("svc_report", "/service/report", *DESK_ROLES)

KINDS = ("complaint", "question", "return", "repair", "billing")
CHANNELS = ("phone", "email", "sms", "web_form", "walk_in")
PRIORITIES = ("low", "normal", "high", "urgent")
STATUSES = ("new", "open", "pending_customer", "resolved", "closed")
METRICS = ("first_response", "next_response", "resolution")
VISIBILITIES = ("public_reply", "internal_note", "customer_message")
GROUPINGS = ("queue", "agent", "category")
TICKET_FIELDS = ("customer_id", "order_id", "kind", "channel", "priority", "category_id", "subject", "description")
SCORES = (1, 2, 3, 4, 5)

# Where a ticket may go from each status (crm_support.domain.TRANSITIONS): the page offers these
# buttons only, and the gateway still refuses a move it does not allow (409 naming `status`).
MOVES: dict[str, tuple[str, ...]] = {
    "new": ("open", "pending_customer", "resolved"),
    "open": ("pending_customer", "resolved"),
    "pending_customer": ("open", "resolved"),
    "resolved": ("open", "closed"),
    "closed": (),
}

words(
    {
        "svc_tickets": {"he": "פניות שירות", "fa": "درخواست‌های پشتیبانی", "en": "Service tickets"},
        "svc_report": {"he": "דוח שירות", "fa": "گزارش پشتیبانی", "en": "Support report"},
        "svc_ticket": {"he": "פנייה", "fa": "درخواست", "en": "Ticket"},
        "svc_new_ticket": {"he": "פתיחת פנייה", "fa": "ثبت درخواست", "en": "Open a ticket"},
        "svc_open_complaint": {
            "he": "פתיחת תלונה על ההזמנה",
            "fa": "ثبت شکایت درباره‌ی این سفارش",
            "en": "Open a complaint about this order",
        },
        "svc_number": {"he": "מספר", "fa": "شماره", "en": "Number"},
        "svc_priority": {"he": "עדיפות", "fa": "اولویت", "en": "Priority"},
        "svc_queue": {"he": "תור", "fa": "صف", "en": "Queue"},
        "svc_assignee": {"he": "מטפל", "fa": "مسئول", "en": "Assignee"},
        "svc_agent": {"he": "נציג", "fa": "کارشناس", "en": "Agent"},
        "svc_unassigned": {"he": "לא שויך", "fa": "واگذار نشده", "en": "Unassigned"},
        "svc_category": {"he": "קטגוריה", "fa": "دسته", "en": "Category"},
        "svc_sla": {"he": "יעד לפתרון", "fa": "مهلت حل", "en": "Resolution target"},
        "svc_filter": {"he": "סינון", "fa": "فیلتر", "en": "Filter"},
        "svc_at_risk": {"he": "בסיכון בלבד", "fa": "فقط در خطر", "en": "At risk only"},
        "svc_mine": {"he": "שלי בלבד", "fa": "فقط مال من", "en": "Mine only"},
        "svc_any": {"he": "הכול", "fa": "همه", "en": "Any"},
        "svc_no_tickets": {"he": "אין פניות.", "fa": "درخواستی نیست.", "en": "No tickets."},
        "svc_kind_complaint": {"he": "תלונה", "fa": "شکایت", "en": "Complaint"},
        "svc_kind_question": {"he": "שאלה", "fa": "پرسش", "en": "Question"},
        "svc_kind_return": {"he": "החזרה", "fa": "مرجوعی", "en": "Return"},
        "svc_kind_repair": {"he": "תיקון", "fa": "تعمیر", "en": "Repair"},
        "svc_kind_billing": {"he": "חיוב", "fa": "صورت‌حساب", "en": "Billing"},
        "svc_kind_task": {"he": "משימה", "fa": "کار", "en": "Task"},
        "svc_channel_phone": {"he": "טלפון", "fa": "تلفن", "en": "Phone"},
        "svc_channel_email": {"he": "דוא״ל", "fa": "ایمیل", "en": "E-mail"},
        "svc_channel_sms": {"he": "SMS", "fa": "پیامک", "en": "SMS"},
        "svc_channel_web_form": {"he": "טופס באתר", "fa": "فرم وب", "en": "Web form"},
        "svc_channel_walk_in": {"he": "הגעה לסניף", "fa": "مراجعه‌ی حضوری", "en": "Walk-in"},
        "svc_priority_low": {"he": "נמוכה", "fa": "کم", "en": "Low"},
        "svc_priority_normal": {"he": "רגילה", "fa": "عادی", "en": "Normal"},
        "svc_priority_high": {"he": "גבוהה", "fa": "بالا", "en": "High"},
        "svc_priority_urgent": {"he": "דחופה", "fa": "فوری", "en": "Urgent"},
        "svc_status_new": {"he": "חדשה", "fa": "جدید", "en": "New"},
        "svc_status_open": {"he": "בטיפול", "fa": "در حال رسیدگی", "en": "Open"},
        "svc_status_pending_customer": {
            "he": "ממתינה ללקוח",
            "fa": "در انتظار مشتری",
            "en": "Waiting for the customer",
        },
        "svc_status_resolved": {"he": "נפתרה", "fa": "حل شد", "en": "Resolved"},
        "svc_status_closed": {"he": "סגורה", "fa": "بسته", "en": "Closed"},
        "svc_move_open": {"he": "התחלת טיפול", "fa": "شروع رسیدگی", "en": "Start working on it"},
        "svc_move_pending_customer": {"he": "המתנה ללקוח", "fa": "انتظار برای مشتری", "en": "Wait for the customer"},
        "svc_move_resolved": {"he": "סימון כנפתרה", "fa": "علامت حل‌شده", "en": "Mark resolved"},
        "svc_move_closed": {"he": "סגירה", "fa": "بستن", "en": "Close"},
        "svc_move_reopen": {"he": "פתיחה מחדש", "fa": "بازگشایی", "en": "Reopen"},
        "svc_due_in": {"he": "יעד בעוד {span}", "fa": "مهلت: {span} دیگر", "en": "due in {span}"},
        "svc_breached_ago": {"he": "חרגה לפני {span}", "fa": "{span} از مهلت گذشته", "en": "breached {span} ago"},
        "svc_paused_customer": {
            "he": "מושהה — ממתינים ללקוח",
            "fa": "متوقف — در انتظار مشتری",
            "en": "paused — waiting for the customer",
        },
        "svc_paused": {"he": "מושהה", "fa": "متوقف", "en": "paused"},
        "svc_met": {"he": "עמדה ביעד", "fa": "در مهلت انجام شد", "en": "met"},
        "svc_span_d": {"he": "{n} ימ׳", "fa": "{n} روز", "en": "{n}d"},
        "svc_span_h": {"he": "{n} שע׳", "fa": "{n} ساعت", "en": "{n}h"},
        "svc_span_m": {"he": "{n} דק׳", "fa": "{n} دقیقه", "en": "{n}m"},
        "svc_esc_1": {"he": "קרוב לחריגה", "fa": "نزدیک به پایان مهلت", "en": "Close to the deadline"},
        "svc_esc_2": {"he": "חרגה מהיעד", "fa": "از مهلت گذشته", "en": "Target breached"},
        "svc_esc_3": {"he": "חרגה והועברה לטיפול בכיר", "fa": "از مهلت گذشته و ارجاع شد", "en": "Breached, escalated"},
        "svc_metric_first_response": {"he": "מענה ראשון", "fa": "پاسخ نخست", "en": "First response"},
        "svc_metric_next_response": {"he": "מענה הבא", "fa": "پاسخ بعدی", "en": "Next response"},
        "svc_metric_resolution": {"he": "פתרון", "fa": "حل", "en": "Resolution"},
        "svc_state_running": {"he": "רץ", "fa": "در جریان", "en": "Running"},
        "svc_state_paused": {"he": "מושהה", "fa": "متوقف", "en": "Paused"},
        "svc_state_met": {"he": "עמד ביעד", "fa": "انجام در مهلت", "en": "Met"},
        "svc_state_breached": {"he": "חרג", "fa": "گذشته از مهلت", "en": "Breached"},
        "svc_state_unspecified": {"he": "—", "fa": "—", "en": "—"},
        "svc_clocks": {"he": "יעדי זמן (SLA)", "fa": "مهلت‌ها (SLA)", "en": "SLA clocks"},
        "svc_measure": {"he": "מדד", "fa": "سنجه", "en": "Measure"},
        "svc_state": {"he": "מצב", "fa": "وضعیت", "en": "State"},
        "svc_target": {"he": "יעד", "fa": "هدف", "en": "Target"},
        "svc_elapsed": {"he": "זמן שחלף", "fa": "زمان سپری‌شده", "en": "Elapsed"},
        "svc_when": {"he": "מועד", "fa": "زمان", "en": "When"},
        "svc_due_at": {"he": "יעד:", "fa": "موعد:", "en": "Due:"},
        "svc_met_at": {"he": "הושלם:", "fa": "انجام:", "en": "Met:"},
        "svc_breached_at": {"he": "חריגה:", "fa": "گذشتن از مهلت:", "en": "Breached:"},
        "svc_pause_reason": {"he": "סיבת השהיה", "fa": "دلیل توقف", "en": "Paused because"},
        "svc_reason_pending_customer": {
            "he": "ממתינים ללקוח",
            "fa": "در انتظار مشتری",
            "en": "Waiting for the customer",
        },
        "svc_business_time": {
            "he": "בשעות פעילות (שעות:דקות)",
            "fa": "در ساعت‌های کاری (ساعت:دقیقه)",
            "en": "In business hours (h:mm)",
        },
        "svc_conversation": {"he": "שיחה", "fa": "گفتگو", "en": "Conversation"},
        "svc_vis_public_reply": {"he": "תשובה ללקוח", "fa": "پاسخ به مشتری", "en": "Public reply"},
        "svc_vis_internal_note": {"he": "הערה פנימית", "fa": "یادداشت داخلی", "en": "Internal note"},
        "svc_vis_customer_message": {"he": "הודעת הלקוח", "fa": "پیام مشتری", "en": "The customer's message"},
        "svc_internal": {"he": "פנימי", "fa": "داخلی", "en": "internal"},
        "svc_from_customer": {"he": "מהלקוח", "fa": "از مشتری", "en": "from the customer"},
        "svc_reply": {"he": "הוספת הודעה", "fa": "افزودن پیام", "en": "Add a message"},
        "svc_send": {"he": "שליחה", "fa": "ارسال", "en": "Send"},
        "svc_message_text": {"he": "תוכן ההודעה", "fa": "متن پیام", "en": "Message"},
        "svc_visibility": {"he": "סוג ההודעה", "fa": "نوع پیام", "en": "Kind of message"},
        "svc_no_messages": {"he": "אין הודעות עדיין.", "fa": "هنوز پیامی نیست.", "en": "No messages yet."},
        "svc_change_status": {"he": "שינוי סטטוס", "fa": "تغییر وضعیت", "en": "Change the status"},
        "svc_final": {
            "he": "פנייה סגורה אינה משתנה.",
            "fa": "درخواست بسته تغییر نمی‌کند.",
            "en": "A closed ticket is final.",
        },
        "svc_assign": {"he": "שיוך", "fa": "واگذاری", "en": "Assign"},
        "svc_agent_id": {"he": "מזהה נציג", "fa": "شناسه‌ی کارشناس", "en": "Agent id"},
        "svc_agent_hint": {
            "he": "ריק: התור יבחר נציג.",
            "fa": "خالی: صف کارشناس را انتخاب می‌کند.",
            "en": "Empty: the queue chooses an agent.",
        },
        "svc_order_id": {"he": "מזהה הזמנה", "fa": "شناسه‌ی سفارش", "en": "Order id"},
        "svc_customer_id": {"he": "מזהה לקוח", "fa": "شناسه‌ی مشتری", "en": "Customer id"},
        "svc_customer_id_hint": {
            "he": "מופיע בכתובת של דף הלקוח.",
            "fa": "در نشانی صفحه‌ی مشتری آمده است.",
            "en": "It is in the address of the customer's page.",
        },
        "svc_read_only": {
            "he": "צפייה בלבד: הפנייה מטופלת בידי מחלקת השירות.",
            "fa": "فقط خواندنی: این درخواست را واحد پشتیبانی پیگیری می‌کند.",
            "en": "Read only: the service desk works on this ticket.",
        },
        "svc_tickets_unavailable": {
            "he": "לא ניתן להציג את הפניות כרגע.",
            "fa": "اکنون نمی‌توان درخواست‌ها را نشان داد.",
            "en": "The tickets cannot be shown right now.",
        },
        "svc_group_by": {"he": "קיבוץ לפי", "fa": "گروه‌بندی بر اساس", "en": "Group by"},
        "svc_show": {"he": "הצגה", "fa": "نمایش", "en": "Show"},
        "svc_opened": {"he": "נפתחו", "fa": "باز شده", "en": "Opened"},
        "svc_resolved": {"he": "נפתרו", "fa": "حل شده", "en": "Resolved"},
        "svc_backlog": {"he": "פתוחות כעת", "fa": "باز در حال حاضر", "en": "Backlog"},
        "svc_csat": {"he": "שביעות רצון (1–5)", "fa": "رضایت (۱ تا ۵)", "en": "CSAT (1–5)"},
        "svc_satisfied": {"he": "מרוצים", "fa": "راضی", "en": "Satisfied"},
        "svc_answers": {"he": "תשובות לסקר", "fa": "پاسخ‌های نظرسنجی", "en": "Survey answers"},
        "svc_met_of": {"he": "{met} מתוך {done}", "fa": "{met} از {done}", "en": "{met} of {done}"},
        "svc_report_period": {
            "he": "פניות שנפתחו ב-30 הימים האחרונים; הפתוחות — נכון לעכשיו.",
            "fa": "درخواست‌های باز شده در ۳۰ روز گذشته؛ ستون باز: همین حالا.",
            "en": "Tickets opened in the last 30 days; the backlog is as of now.",
        },
        "svc_report_empty": {
            "he": "אין פניות בתקופה הזו.",
            "fa": "در این دوره درخواستی نیست.",
            "en": "No tickets in this period.",
        },
        "svc_chart_title": {"he": "עמידה ביעדי SLA", "fa": "رعایت مهلت‌های SLA", "en": "SLA attainment"},
        "svc_chart_desc": {
            "he": "אחוז השעונים שעמדו ביעד, לכל שורה ולכל מדד; המספרים בטבלה.",
            "fa": "درصد مهلت‌های رعایت‌شده برای هر ردیف و هر سنجه؛ اعداد در جدول آمده است.",
            "en": "The share of clocks that met their target, per row and measure; the figures are in the table.",
        },
        "svc_survey_title": {"he": "סקר שביעות רצון", "fa": "نظرسنجی رضایت", "en": "Satisfaction survey"},
        "svc_survey_question": {
            "he": "עד כמה אתם מרוצים מהטיפול בפנייה שלכם?",
            "fa": "از نحوه‌ی رسیدگی به درخواستتان چقدر راضی هستید؟",
            "en": "How satisfied are you with how we handled your request?",
        },
        "svc_survey_scale": {
            "he": "1 — לא מרוצים בכלל, 5 — מרוצים מאוד",
            "fa": "۱ یعنی اصلاً راضی نیستم، ۵ یعنی خیلی راضی هستم",
            "en": "1 — not satisfied at all, 5 — very satisfied",
        },
        "svc_survey_score": {"he": "ציון {n} מתוך 5", "fa": "امتیاز {n} از ۵", "en": "Score {n} of 5"},
        "svc_survey_thanks": {
            "he": "תודה! התשובה שלכם נשמרה.",
            "fa": "سپاس! پاسخ شما ثبت شد.",
            "en": "Thank you! Your answer was saved.",
        },
        "svc_survey_ref": {"he": "פנייה מספר {number}", "fa": "درخواست شماره‌ی {number}", "en": "Ticket {number}"},
        "svc_survey_invalid": {
            "he": "הקישור הזה אינו תקף.",
            "fa": "این پیوند معتبر نیست.",
            "en": "This link is not valid.",
        },
        "svc_survey_pick": {
            "he": "בחרו ציון בין 1 ל-5.",
            "fa": "امتیازی بین ۱ تا ۵ انتخاب کنید.",
            "en": "Pick a score from 1 to 5.",
        },
    }
)


# ------------------------------------------------------------------ pure helpers (no I/O)


def parse_moment(value: Any) -> datetime | None:
    """An ISO instant from the gateway as an aware datetime (None when empty or unreadable)."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def span(t: Translator, seconds: float) -> str:
    """A length of time as its two largest units ("2h 10m", "3d 4h", "5m"), in the locale's words
    and digits; under a minute reads as one minute (a clock never says "0m")."""
    minutes = max(1, int(abs(seconds)) // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [(days, "svc_span_d"), (hours, "svc_span_h"), (mins, "svc_span_m")]
    shown = [t(key).format(n=t.number(n)) for n, key in parts if n]
    return " ".join(shown[:2])


@dataclass(frozen=True)
class ClockView:
    """What a page says about one SLA clock: its state (a CSS hook), the sentence, and the moment
    the sentence is about (due, met or breached), shown beside it in a <time>."""

    state: str
    text: str
    moment: str = ""


def clock_view(t: Translator, clock: Mapping[str, Any] | None, now: datetime) -> ClockView:
    """ "due in 2h 10m", "breached 3h ago", "paused — waiting for the customer" or "met". A running
    clock past its due time reads as breached before the support service's scan marks it so."""
    if not clock:
        return ClockView("none", "")
    state = str(clock.get("state", ""))
    due = parse_moment(clock.get("due_time"))
    if state == "paused":
        reason = str(clock.get("paused_reason", ""))
        return ClockView("paused", t("svc_paused_customer") if reason == "pending_customer" else t("svc_paused"))
    if state == "met":
        return ClockView("met", t("svc_met"), str(clock.get("met_time") or ""))
    breach = parse_moment(clock.get("breach_time")) or due
    if state == "breached" or (state == "running" and due is not None and due <= now):
        ago = (now - breach).total_seconds() if breach else 0
        return ClockView(
            "breached", t("svc_breached_ago").format(span=span(t, ago)), breach.isoformat() if breach else ""
        )
    if state == "running" and due is not None:
        return ClockView("running", t("svc_due_in").format(span=span(t, (due - now).total_seconds())), due.isoformat())
    return ClockView("none", "")


def resolution_clock(ticket: Mapping[str, Any]) -> Mapping[str, Any] | None:
    return next((c for c in ticket.get("sla") or [] if c.get("metric") == "resolution"), None)


def escalation_level(ticket: Mapping[str, Any]) -> int:
    """The highest escalation level of the clocks still counting or breached (a clock met after a
    warning no longer warns): 1 a warning, 2 the breach, 3 long past it."""
    levels = [
        int(c.get("escalation_level") or 0)
        for c in ticket.get("sla") or []
        if c.get("state") in ("running", "paused", "breached")
    ]
    return max(levels, default=0)


def status_moves(status: str) -> list[tuple[str, str]]:
    """The status buttons a ticket in `status` offers: (target status, label key). Resolved → open
    is labelled "reopen"."""
    return [
        (target, "svc_move_reopen" if status == "resolved" and target == "open" else f"svc_move_{target}")
        for target in MOVES.get(status, ())
    ]


def category_options(categories: Iterable[Mapping[str, Any]], locale: str) -> list[tuple[str, str]]:
    """The category tree as a select's (id, label): each parent followed by its children, a child's
    name indented by a dash per level, in the reader's language (English when a name is missing).
    A category whose parent is unknown is shown at the top level rather than lost."""
    found = list(categories)
    known = {str(c["id"]) for c in found}
    children: dict[str, list[Mapping[str, Any]]] = {}
    for c in found:
        parent = str(c.get("parent_id") or "")
        children.setdefault(parent if parent in known else "", []).append(c)

    def name(c: Mapping[str, Any]) -> str:
        names = c.get("names") or {}
        return str(names.get(locale) or names.get("en") or c["id"])

    options: list[tuple[str, str]] = []

    def walk(parent: str, depth: int) -> None:
        for c in children.get(parent, []):
            options.append((str(c["id"]), "— " * depth + name(c)))
            if depth < 10:  # a cycle in bad data must not hang the page
                walk(str(c["id"]), depth + 1)

    walk("", 0)
    return options


def names_by_id(items: Iterable[Mapping[str, Any]], locale: str) -> dict[str, str]:
    """Queues' or categories' names in the reader's language, by id."""
    out: dict[str, str] = {}
    for item in items:
        names = item.get("names") or {}
        out[str(item["id"])] = str(names.get(locale) or names.get("en") or item["id"])
    return out


def percent(t: Translator, share: float) -> str:
    """A share as a whole percentage; Persian writes the Arabic percent sign (٪) after its digits."""
    return t.digits(f"{round(share * 100)}") + ("٪" if t.locale == "fa" else "%")


def report_row(t: Translator, row: Mapping[str, Any], label: str) -> dict[str, Any]:
    """One row of the support report as shown: its counts, per metric the attainment ("—" when no
    clock of it has finished) with met/breached, and CSAT to one decimal ("—" without answers)."""
    by_metric = {str(a.get("metric")): a for a in row.get("sla") or []}
    metrics = []
    for metric in METRICS:
        found = by_metric.get(metric, {})
        met, breached = int(found.get("met") or 0), int(found.get("breached") or 0)
        done = met + breached
        metrics.append(
            {
                "metric": metric,
                "met": met,
                "breached": breached,
                "share": met / done if done else None,
                "text": percent(t, met / done) if done else "—",
                "detail": t("svc_met_of").format(met=t.number(met), done=t.number(done)) if done else "",
            }
        )
    answers = int(row.get("survey_answers") or 0)
    return {
        "key": str(row.get("key", "")),
        "label": label,
        "opened": int(row.get("opened") or 0),
        "resolved": int(row.get("resolved") or 0),
        "backlog": int(row.get("backlog") or 0),
        "metrics": metrics,
        "answers": answers,
        "csat": t.digits(f"{float(row.get('csat_average') or 0):.1f}") if answers else "—",
        "satisfied": percent(t, float(row.get("csat_satisfied") or 0)) if answers else "—",
    }


# The attainment chart's geometry (px): the label column, the bars' full length, a bar's height.
CHART_WIDTH, CHART_LABEL, CHART_BARS, BAR_HEIGHT, BAR_GAP, GROUP_GAP = 560, 150, 340, 10, 3, 14


@dataclass(frozen=True)
class Bar:
    metric: str
    x: float
    y: float
    width: float
    text: str
    text_x: float


@dataclass(frozen=True)
class BarGroup:
    label: str
    label_x: float
    label_y: float
    bars: tuple[Bar, ...]


def attainment_chart(rows: Sequence[Mapping[str, Any]], rtl: bool) -> tuple[list[BarGroup], int]:
    """Bars of SLA attainment per report row (one per metric that has finished clocks), laid out
    from the inline-start side: in a right-to-left page the label column is on the right and the
    bars grow leftwards. Returns the groups and the chart's height."""

    def at(x: float, width: float = 0) -> float:
        return CHART_WIDTH - x - width if rtl else x

    groups: list[BarGroup] = []
    y = 4.0
    for row in rows:
        bars = []
        for i, m in enumerate(row["metrics"]):
            length = CHART_BARS * (m["share"] or 0)
            top = y + i * (BAR_HEIGHT + BAR_GAP)
            start = CHART_LABEL
            bars.append(Bar(m["metric"], at(start, length), top, length, m["text"], at(start + length + 4)))
        height = len(bars) * (BAR_HEIGHT + BAR_GAP)
        groups.append(BarGroup(row["label"], at(4), y + height / 2, tuple(bars)))
        y += height + GROUP_GAP
    return groups, int(y)


def ticket_form(form: Mapping[str, Any]) -> dict[str, str]:
    return {name: str(form.get(name, "")).strip() for name in (*TICKET_FIELDS, "request_id")}


# ------------------------------------------------------------------ tickets list


def desk(session: Session) -> bool:
    return session.has_any(*DESK_ROLES)


@router.get("/service/tickets", response_class=HTMLResponse)
async def tickets(request: Request) -> Response:
    session = ctx(request).require(request)
    params = request.query_params
    chosen = [s for s in params.getlist("status") if s in STATUSES]
    query: dict[str, Any] = {
        "status": chosen,
        "queue_id": params.get("queue_id", ""),
        "priority": params.get("priority", "") if params.get("priority", "") in PRIORITIES else "",
        "at_risk": "true" if params.get("at_risk") == "true" else "",
        "assignee_id": session.subject if params.get("mine") == "true" else "",
    }
    gateway = api(request)
    found, queues = await asyncio.gather(
        gateway.call(
            "listTickets",
            session.token,
            query={**query, "page_size": PAGE_SIZE, "page_token": params.get("page_token", "")},
        ),
        gateway.call("listSupportQueues", session.token),
    )
    t = Translator(ctx(request).locale_of(request))
    now = datetime.now(UTC)
    rows = [
        {**ticket, "clock": clock_view(t, resolution_clock(ticket), now), "level": escalation_level(ticket)}
        for ticket in found.body["tickets"]
    ]
    filters = {k: v for k, v in params.multi_items() if k != "page_token"}
    kept: dict[str, str | list[str]] = {k: v for k, v in filters.items() if k != "status"}
    if chosen:
        kept["status"] = chosen
    token = found.body["next_page_token"]
    return ctx(request).render(
        request,
        "service_tickets.html",
        session,
        tickets=rows,
        queues=queues.body["queues"],
        queue_names=names_by_id(queues.body["queues"], t.locale),
        statuses=STATUSES,
        priorities=PRIORITIES,
        chosen=chosen,
        filters=params,
        next_page=next_href("/service/tickets", kept, token) if token else "",
    )


# ------------------------------------------------------------------ opening a ticket


async def new_ticket_page(
    request: Request, session: Session, sent: Mapping[str, str], refusal: Refusal | None = None
) -> HTMLResponse:
    gateway = api(request)
    t = Translator(ctx(request).locale_of(request))
    categories = (await gateway.call("listTicketCategories", session.token)).body["categories"]
    customer: dict[str, Any] = {}
    if sent.get("customer_id"):
        try:
            customer = (
                await gateway.call("getCustomer", session.token, path={"customer_id": sent["customer_id"]})
            ).body
        except ApiError as exc:
            if exc.status not in (403, 404):
                raise
    return ctx(request).render(
        request,
        "service_new.html",
        session,
        status_code=refusal.status if refusal else 200,
        form=sent,
        customer=customer,
        errors=refusal.errors if refusal else {},
        notice=refusal.notice if refusal else "",
        categories=category_options(categories, t.locale),
        kinds=KINDS,
        channels=CHANNELS,
        priorities=PRIORITIES,
    )


@router.get("/service/tickets/new", response_class=HTMLResponse)
async def new_ticket(
    request: Request, customer_id: str = "", order_id: str = "", lead_id: str = "", kind: str = ""
) -> Response:
    """The form, the customer (and order) filled from the link. An order's page knows the order's
    lead, not its customer: the customer is the one that lead became (listCustomers by lead)."""
    session = ctx(request).require(request)
    if not customer_id and lead_id:
        found = (
            await api(request).call("listCustomers", session.token, query={"lead_id": lead_id, "page_size": 1})
        ).body["customers"]
        customer_id = str(found[0]["id"]) if found else ""
    sent = {
        "customer_id": customer_id,
        "order_id": order_id,
        "kind": kind if kind in KINDS else ("complaint" if order_id else "question"),
        "channel": "phone",
        "priority": "normal",
        "request_id": secrets.token_urlsafe(16),
    }
    return await new_ticket_page(request, session, sent)


@router.post("/service/tickets/new")
async def open_ticket(request: Request) -> Response:
    session, form = await ctx(request).signed_form(request)
    t = Translator(ctx(request).locale_of(request))
    sent = ticket_form(form)
    answer = await answer_or_refusal(
        api(request).call("openTicket", session.token, body={k: v for k, v in sent.items() if v or k == "subject"}),
        TICKET_FIELDS,
        t,
        refusals=(404, 409, 422),
    )
    if isinstance(answer, Refusal):
        return await new_ticket_page(request, session, sent, answer)
    return RedirectResponse(f"/service/tickets/{quote(str(answer.body['id']))}", status_code=303)


# ------------------------------------------------------------------ one ticket


async def ticket_page(request: Request, session: Session, ticket_id: str, **extra: Any) -> HTMLResponse:
    gateway = api(request)
    path = {"ticket_id": ticket_id}
    read, messages, categories = await asyncio.gather(
        gateway.call("getTicket", session.token, path=path),
        gateway.call("listTicketMessages", session.token, path=path),
        gateway.call("listTicketCategories", session.token),
    )
    queues: list[dict[str, Any]] = []
    if desk(session):
        queues = (await gateway.call("listSupportQueues", session.token)).body["queues"]
    t = Translator(ctx(request).locale_of(request))
    ticket = read.body
    now = datetime.now(UTC)
    clocks = [{**c, "view": clock_view(t, c, now)} for c in ticket.get("sla") or []]
    clocks.sort(key=lambda c: METRICS.index(c["metric"]) if c["metric"] in METRICS else len(METRICS))
    return ctx(request).render(
        request,
        "service_ticket.html",
        session,
        status_code=extra.get("status_code", 200),
        ticket=ticket,
        etag=read.headers.get("etag", ""),
        clocks=clocks,
        level=escalation_level(ticket),
        messages=messages.body["messages"],
        category_names=names_by_id(categories.body["categories"], t.locale),
        queues=queues,
        queue_names=names_by_id(queues, t.locale),
        works=desk(session),
        manages=session.has_any(*MANAGER_ROLES),
        moves=status_moves(str(ticket.get("status", ""))),
        visibilities=VISIBILITIES,
        reply=extra.get("reply", {"visibility": "public_reply"}),
        reply_errors=extra.get("reply_errors", {}),
        status_notice=extra.get("status_notice", ""),
        assign_errors=extra.get("assign_errors", {}),
        assign_notice=extra.get("assign_notice", ""),
        request_id=secrets.token_urlsafe(16),
    )


@router.get("/service/tickets/{ticket_id}", response_class=HTMLResponse)
async def ticket(request: Request, ticket_id: str) -> Response:
    return await ticket_page(request, ctx(request).require(request), ticket_id)


def back_to(ticket_id: str, anchor: str) -> RedirectResponse:
    return RedirectResponse(f"/service/tickets/{quote(ticket_id)}#{anchor}", status_code=303)


@router.post("/service/tickets/{ticket_id}/messages")
async def add_message(request: Request, ticket_id: str) -> Response:
    """A reply, a note or the customer's words; the form's request id makes a double submit one."""
    session, form = await ctx(request).signed_form(request)
    t = Translator(ctx(request).locale_of(request))
    sent = {name: str(form.get(name, "")).strip() for name in ("visibility", "body", "request_id")}
    answer = await answer_or_refusal(
        api(request).call("addTicketMessage", session.token, path={"ticket_id": ticket_id}, body=sent),
        ("visibility", "body"),
        t,
    )
    if isinstance(answer, Refusal):
        errors = dict(answer.errors)
        if answer.notice:
            errors.setdefault("body", answer.notice)
        return await ticket_page(
            request, session, ticket_id, reply=sent, reply_errors=errors, status_code=answer.status
        )
    return back_to(ticket_id, "conversation")


@router.post("/service/tickets/{ticket_id}/status")
async def change_status(request: Request, ticket_id: str) -> Response:
    """A status move on the version the page showed (If-Match): a 409 (a move the lifecycle does
    not allow, open child tasks) or a 412 (changed meanwhile) comes back above the buttons."""
    session, form = await ctx(request).signed_form(request)
    t = Translator(ctx(request).locale_of(request))
    etag = str(form.get("etag", ""))
    answer = await answer_or_refusal(
        api(request).call(
            "changeTicketStatus",
            session.token,
            path={"ticket_id": ticket_id},
            headers={"If-Match": etag} if etag else {},
            body={"status": str(form.get("status", ""))},
        ),
        ("status",),
        t,
    )
    if isinstance(answer, Refusal):
        notice = answer.notice or " ".join(answer.errors.values())
        return await ticket_page(request, session, ticket_id, status_notice=notice, status_code=answer.status)
    return back_to(ticket_id, "status")


@router.post("/service/tickets/{ticket_id}/assign")
async def assign(request: Request, ticket_id: str) -> Response:
    session, form = await ctx(request).signed_form(request)
    t = Translator(ctx(request).locale_of(request))
    etag = str(form.get("etag", ""))
    body = {name: str(form.get(name, "")).strip() for name in ("queue_id", "assignee_id")}
    answer = await answer_or_refusal(
        api(request).call(
            "assignTicket",
            session.token,
            path={"ticket_id": ticket_id},
            headers={"If-Match": etag} if etag else {},
            body=body,
        ),
        ("queue_id", "assignee_id"),
        t,
    )
    if isinstance(answer, Refusal):
        return await ticket_page(
            request,
            session,
            ticket_id,
            assign_errors=answer.errors,
            assign_notice=answer.notice,
            status_code=answer.status,
        )
    return back_to(ticket_id, "assign")


# ------------------------------------------------------------------ support report


@router.get("/service/report", response_class=HTMLResponse)
async def report(request: Request, group_by: str = "queue") -> Response:
    session = ctx(request).require(request)
    group_by = group_by if group_by in GROUPINGS else "queue"
    gateway = api(request)
    found, queues, categories = await asyncio.gather(
        gateway.call("supportReport", session.token, query={"group_by": group_by}),
        gateway.call("listSupportQueues", session.token),
        gateway.call("listTicketCategories", session.token),
    )
    t = Translator(ctx(request).locale_of(request))
    names = {
        "queue": names_by_id(queues.body["queues"], t.locale),
        "category": names_by_id(categories.body["categories"], t.locale),
    }.get(group_by, {})
    rows = [report_row(t, r, names.get(str(r["key"]), str(r["key"]))) for r in found.body["rows"]]
    total = found.body.get("total")
    groups, height = attainment_chart(rows, t.dir == "rtl")
    return ctx(request).render(
        request,
        "service_report.html",
        session,
        group_by=group_by,
        groupings=GROUPINGS,
        rows=rows,
        total=report_row(t, total, t("total")) if total else None,
        metrics=METRICS,
        chart=groups,
        chart_width=CHART_WIDTH,
        chart_height=height,
        bar_height=BAR_HEIGHT,
        by_agent=group_by == "agent",
    )


# ------------------------------------------------------------------ the customer's survey (no session)


def survey_locale(lang: str) -> str:
    return lang if lang in LOCALES else "he"


def survey_render(request: Request, lang: str, token: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """The survey's pages outside the signed-in layout: no menu, no session, the language from the
    link (?lang=), which the customer's SMS names."""
    t = Translator(survey_locale(lang))
    response: HTMLResponse = ctx(request).templates.TemplateResponse(
        request,
        "service_survey.html",
        {"t": t, "token": token, "lang": t.locale, "scores": SCORES, "locales": LOCALES, **context},
        status_code=status_code,
    )
    return response


@router.get("/s/{token}", response_class=HTMLResponse)
async def survey(request: Request, token: str, lang: str = "he") -> Response:
    return survey_render(request, lang, token, state="ask")


@router.post("/s/{token}")
async def answer_survey(request: Request, token: str, lang: str = "he") -> Response:
    """One tap: the button's score goes to the gateway's public route (the token is the only
    credential); a link the gateway does not know (404, or a malformed token: 422) is "not valid"."""
    form = await request.form(max_fields=5)
    score = str(form.get("score", ""))
    if score not in {str(s) for s in SCORES}:
        return survey_render(request, lang, token, status_code=422, state="ask", error=True)
    try:
        # No user's token: Gateway.call always sends a bearer, and an empty one is no legal header,
        # so a word that is no token at all; the public route reads none.
        answer = await api(request).call("submitSurvey", None, path={"token": token}, body={"score": int(score)})
    except ApiError as exc:
        if exc.status not in (404, 422):
            raise
        return survey_render(request, lang, token, status_code=404, state="invalid")
    return survey_render(request, lang, token, state="thanks", number=answer.body.get("ticket_number", 0))
