"""One customer: the profile (edited on the version read), consent per channel and purpose (given
or withdrawn, with how and its evidence), the leads and the whole timeline.

Every department works on the one profile: the gateway decides who may read or change it (a rep
only the customers of their own leads) and refuses a stale edit (412), a bad field (422, shown
beside it) or a consent to advertising without proof.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from crm_console.api import Answer, ApiError, Gateway
from crm_console.forms import Refusal, answer_or_refusal, changed_fields, form_original
from crm_console.i18n import Translator, words
from crm_console.pages_retention import reason_text
from crm_console.session import Session
from crm_console.web import PAGE_SIZE, api, ctx, next_href

router = APIRouter()

PROFILE_FIELDS = ("full_name", "phone_number", "email", "locale")
PROFILE_LOCALES = ("he-IL", "fa-IR", "en-US")
CONSENT_CHANNELS = ("sms", "email", "phone")
CONSENT_PURPOSES = ("service", "marketing")
CONSENT_SOURCES = ("web_form", "recorded_call", "written", "reply", "agent")
CONSENT_FIELDS = ("channel", "purpose", "granted", "source", "evidence", "occur_time")
TOUCH_KINDS = ("call", "meeting", "note", "email", "sms")
CALL_OUTCOMES = ("answered", "no_answer", "busy", "voicemail", "wrong_number", "callback_requested")
TOUCH_FIELDS = ("kind", "text", "outcome", "duration_seconds", "occur_time")
# The timeline's filter: which department's touches (the gateway filters by kind).
DEPARTMENTS: dict[str, tuple[str, ...]] = {
    "sales": (
        "lead_captured",
        "deal_stage_changed",
        "quote_sent",
        "quote_accepted",
        "deal_won",
        "deal_lost",
        "risk_changed",
        "call_logged",
        "meeting_logged",
        "note_logged",
        "task_logged",
        "email_logged",
        "sms_logged",
    ),
    "orders": ("order_shipped",),
    "messages": ("sms_sent",),
    "consent": ("consent_changed",),
    "service": ("ticket_opened", "ticket_resolved", "survey_answered", "ticket_sla_breached"),
}

words(
    {
        "c360": {"he": "במבט אחד", "fa": "در یک نگاه", "en": "At a glance"},
        "c360_value": {
            "he": "ערך לקוח (עסקאות שנסגרו)",
            "fa": "ارزش مشتری (معاملات موفق)",
            "en": "Lifetime value (won deals)",
        },
        "c360_deals": {"he": "עסקאות: זכייה / הפסד", "fa": "معاملات: موفق / ناموفق", "en": "Deals won / lost"},
        "c360_open_deals": {"he": "עסקאות פתוחות", "fa": "معاملات باز", "en": "Open deals"},
        "c360_orders": {"he": "הזמנות שנשלחו", "fa": "سفارش‌های ارسال‌شده", "en": "Orders shipped"},
        "c360_messages": {"he": "הודעות שנשלחו", "fa": "پیام‌های ارسال‌شده", "en": "Messages sent"},
        "c360_tickets": {"he": "פניות: פתוחות / סה״כ", "fa": "درخواست‌ها: باز / کل", "en": "Tickets open / all"},
        "c360_csat": {"he": "שביעות רצון", "fa": "رضایت", "en": "Satisfaction"},
        "c360_last": {"he": "מגע אחרון", "fa": "آخرین تماس", "en": "Last contact"},
        "c360_none": {"he": "אין", "fa": "ندارد", "en": "None"},
        "c360_tags": {"he": "תגיות", "fa": "برچسب‌ها", "en": "Tags"},
        "c360_people": {"he": "אנשי קשר", "fa": "افراد رابط", "en": "Contact persons"},
        "c360_primary": {"he": "ראשי", "fa": "اصلی", "en": "primary"},
        "c360_addresses": {"he": "כתובות", "fa": "نشانی‌ها", "en": "Addresses"},
        "address_billing": {"he": "חיוב", "fa": "صورت‌حساب", "en": "Billing"},
        "address_shipping": {"he": "משלוח", "fa": "ارسال", "en": "Shipping"},
        "address_home": {"he": "בית", "fa": "منزل", "en": "Home"},
        "address_office": {"he": "משרד", "fa": "دفتر", "en": "Office"},
        "address_other": {"he": "אחר", "fa": "دیگر", "en": "Other"},
    }
)
words(
    {
        "edit_profile": {"he": "עריכת פרטי הלקוח", "fa": "ویرایش مشخصات مشتری", "en": "Edit the profile"},
        "locale_he-IL": {"he": "עברית", "fa": "عبری", "en": "Hebrew"},
        "locale_fa-IR": {"he": "פרסית", "fa": "فارسی", "en": "Persian"},
        "locale_en-US": {"he": "אנגלית", "fa": "انگلیسی", "en": "English"},
        "profile_saved": {"he": "הפרטים נשמרו.", "fa": "مشخصات ذخیره شد.", "en": "The profile was saved."},
        "consents": {"he": "הסכמות", "fa": "رضایت‌ها", "en": "Consent"},
        "consent_purpose": {"he": "מטרה", "fa": "هدف", "en": "Purpose"},
        "purpose_service": {"he": "שירות", "fa": "خدمات", "en": "Service"},
        "purpose_marketing": {"he": "דיוור שיווקי", "fa": "تبلیغات", "en": "Marketing"},
        "consent_state": {"he": "מצב", "fa": "وضعیت", "en": "State"},
        "consent_yes": {"he": "מסכים", "fa": "موافق", "en": "Yes"},
        "consent_no": {"he": "לא מסכים", "fa": "مخالف", "en": "No"},
        "consent_default": {"he": "ברירת מחדל", "fa": "پیش‌فرض", "en": "Default"},
        "consent_since": {"he": "מאז", "fa": "از", "en": "Since"},
        "record_consent": {"he": "תיעוד הסכמה", "fa": "ثبت رضایت", "en": "Record consent"},
        "consent_give": {"he": "נתן הסכמה", "fa": "رضایت داد", "en": "Gave consent"},
        "consent_withdraw": {"he": "ביטל הסכמה", "fa": "رضایت را پس گرفت", "en": "Withdrew consent"},
        "consent_source": {"he": "איך ניתנה", "fa": "چگونه داده شد", "en": "How it was given"},
        "csource_web_form": {"he": "טופס באתר", "fa": "فرم وب", "en": "Web form"},
        "csource_recorded_call": {"he": "שיחה מוקלטת", "fa": "تماس ضبط‌شده", "en": "Recorded call"},
        "csource_written": {"he": "בכתב", "fa": "کتبی", "en": "Written"},
        "csource_reply": {"he": "תשובה להודעה", "fa": "پاسخ به پیام", "en": "Reply to a message"},
        "csource_agent": {"he": "נמסר לנציג", "fa": "به کارشناس گفته شد", "en": "Told to an agent"},
        "consent_evidence": {"he": "אסמכתה", "fa": "مدرک", "en": "Evidence"},
        "consent_evidence_hint": {
            "he": "גרסת נוסח תיבת הסימון, מזהה ההקלטה או המסמך. חובה להסכמה לדיוור שיווקי.",
            "fa": "نسخه‌ی متن گزینه، شناسه‌ی ضبط یا سند. برای رضایت تبلیغاتی لازم است.",
            "en": "The checkbox text's version, the recording's or the document's reference. "
            "Required for a consent to marketing.",
        },
        "consent_history": {"he": "היסטוריית הסכמות", "fa": "تاریخچه‌ی رضایت", "en": "Consent history"},
        "consent_by": {"he": "תועד על ידי", "fa": "ثبت توسط", "en": "Recorded by"},
        # A timeline entry's line, from its facts (crm.customers.v1.TimelineEntry.facts).
        "log_touch": {"he": "תיעוד פנייה", "fa": "ثبت تماس با مشتری", "en": "Log a touch"},
        "touch_text": {"he": "מה נאמר או נעשה", "fa": "چه گفته یا انجام شد", "en": "What was said or done"},
        "touch_minutes": {"he": "משך (דקות)", "fa": "مدت (دقیقه)", "en": "Length (minutes)"},
        "dept_sales": {"he": "מכירות", "fa": "فروش", "en": "Sales"},
        "dept_orders": {"he": "הזמנות", "fa": "سفارش‌ها", "en": "Orders"},
        "dept_messages": {"he": "הודעות", "fa": "پیام‌ها", "en": "Messages"},
        "dept_consent": {"he": "הסכמות", "fa": "رضایت‌ها", "en": "Consent"},
        "dept_service": {"he": "שירות", "fa": "پشتیبانی", "en": "Service"},
        "tl_ticket_opened": {"he": "נפתחה פנייה", "fa": "درخواست ثبت شد", "en": "Ticket opened"},
        "tl_ticket_resolved": {"he": "פנייה טופלה", "fa": "درخواست رسیدگی شد", "en": "Ticket resolved"},
        "tl_survey_answered": {"he": "סקר שביעות רצון", "fa": "نظرسنجی رضایت", "en": "Satisfaction survey"},
        "tl_ticket_sla_breached": {"he": "חריגה מיעד שירות", "fa": "عبور از مهلت خدمت", "en": "SLA target missed"},
        "tl_risk_changed": {"he": "סיכון נטישה", "fa": "ریسک ریزش", "en": "Churn risk"},
        "tlf_risk": {
            "he": "{before} ← {band} ({risk})",
            "fa": "{before} ← {band} ({risk})",
            "en": "{before} → {band} ({risk})",
        },
        "tlf_risk_first": {"he": "נמדד לראשונה", "fa": "نخستین سنجش", "en": "first scored"},
        "tlf_ticket": {"he": "פנייה #{number}", "fa": "درخواست #{number}", "en": "Ticket #{number}"},
        "tlf_sla_met": {"he": "בזמן", "fa": "به‌موقع", "en": "within SLA"},
        "tlf_sla_missed": {"he": "באיחור", "fa": "با تأخیر", "en": "SLA missed"},
        "tlf_score": {"he": "ציון {score} מתוך 5", "fa": "امتیاز {score} از ۵", "en": "score {score} of 5"},
        "timeline_filter": {"he": "הצגת", "fa": "نمایش", "en": "Show"},
        "tlf_source": {"he": "מקור: {source}", "fa": "منبع: {source}", "en": "Source: {source}"},
        "tlf_campaign": {"he": "קמפיין: {campaign}", "fa": "کمپین: {campaign}", "en": "Campaign: {campaign}"},
        "tlf_again": {"he": "פנייה חוזרת", "fa": "مراجعه‌ی دوباره", "en": "Came in again"},
        "tlf_reason": {"he": "סיבה: {reason}", "fa": "دلیل: {reason}", "en": "Reason: {reason}"},
        "tlf_stage": {"he": "לשלב {stage}", "fa": "به مرحله‌ی {stage}", "en": "To {stage}"},
        "tlf_quote": {
            "he": "הצעה {number} גרסה {version}: {total}",
            "fa": "پیش‌فاکتور {number} نسخه‌ی {version}: {total}",
            "en": "Quote {number} v{version}: {total}",
        },
        "tlf_carrier": {"he": "חברת שילוח: {carrier}", "fa": "شرکت حمل: {carrier}", "en": "Carrier: {carrier}"},
        "tlf_tracking": {"he": "מעקב: {tracking}", "fa": "رهگیری: {tracking}", "en": "Tracking: {tracking}"},
        "tlf_arrives": {"he": "מועד הגעה: {date}", "fa": "تحویل: {date}", "en": "Arrives {date}"},
        "tlf_minutes": {"he": "{minutes} דק׳", "fa": "{minutes} دقیقه", "en": "{minutes} min"},
        "tlf_by": {"he": "על ידי {who}", "fa": "توسط {who}", "en": "by {who}"},
        "risk": {"he": "סיכון עזיבה", "fa": "ریسک ترک", "en": "Risk of leaving"},
        "risk_model": {
            "he": "מודל שלמד מההיסטוריה; נבדק על {n} לקוחות בתקופה מאוחרת יותר: AUC {auc}, פי {lift} בעשירון העליון",
            "fa": "مدل آموخته از سابقه؛ آزموده روی {n} مشتری در دوره بعد: AUC {auc}، {lift} برابر در دهک بالا",
            "en": "Learned from the history; checked on {n} later customers: AUC {auc}, {lift}× in the top tenth",
        },
        "risk_rules": {
            "he": "לפי כללים קבועים (עדיין אין מספיק היסטוריה למודל)",
            "fa": "بر پایه قواعد ثابت (هنوز سابقه کافی برای مدل نیست)",
            "en": "By fixed rules (not enough history for a learned model yet)",
        },
        "risk_none": {
            "he": "הלקוח/ה עוד לא קנה/תה: אין ממה לעזוב",
            "fa": "این مشتری هنوز خرید نکرده است",
            "en": "No purchase yet: nothing to leave",
        },
        "cv": {"he": "ערך הלקוח", "fa": "ارزش مشتری", "en": "Customer value"},
        "cv_lifetime": {"he": "קנה/תה עד היום", "fa": "خرید تا امروز", "en": "Bought to date"},
        "cv_yearly": {"he": "לשנה", "fa": "در سال", "en": "Per year"},
        "cv_purchases": {"he": "רכישות", "fa": "خریدها", "en": "Purchases"},
        "cv_rfm": {
            "he": "עדכניות {r}, תדירות {f}, סכום {m} (מתוך 5, מול {n} קונים)",
            "fa": "تازگی {r}، تکرار {f}، مبلغ {m} (از ۵، در برابر {n} خریدار)",
            "en": "Recency {r}, frequency {f}, spend {m} (of 5, against {n} buyers)",
        },
        "cv_too_few": {
            "he": "עוד אין מספיק קונים כדי לדרג (צריך 20)",
            "fa": "هنوز خریدار کافی برای رتبه‌بندی نیست (۲۰ لازم است)",
            "en": "Not enough buyers to rank yet (20 needed)",
        },
        "seg_champions": {"he": "אלופים", "fa": "قهرمانان", "en": "Champions"},
        "seg_loyal": {"he": "נאמנים", "fa": "وفادار", "en": "Loyal"},
        "seg_cannot_lose": {"he": "אסור לאבד", "fa": "نباید از دست داد", "en": "Cannot lose them"},
        "seg_at_risk": {"he": "בסיכון", "fa": "در خطر", "en": "At risk"},
        "seg_potential_loyalist": {"he": "נאמנים בפוטנציה", "fa": "وفادار بالقوه", "en": "Potential loyalist"},
        "seg_new": {"he": "חדשים", "fa": "تازه", "en": "New"},
        "seg_promising": {"he": "מבטיחים", "fa": "امیدوارکننده", "en": "Promising"},
        "seg_needs_attention": {"he": "דורשים תשומת לב", "fa": "نیازمند توجه", "en": "Needs attention"},
        "seg_about_to_sleep": {"he": "עומדים להירדם", "fa": "در آستانه خواب", "en": "About to sleep"},
        "seg_hibernating": {"he": "רדומים", "fa": "خفته", "en": "Hibernating"},
        "seg_lost": {"he": "אבודים", "fa": "از دست رفته", "en": "Lost"},
        "seg_others": {"he": "אחרים", "fa": "دیگر", "en": "Others"},
        "xs": {"he": "כדאי להציע", "fa": "پیشنهاد برای فروش بیشتر", "en": "Worth offering"},
        "xs_because": {
            "he": "קנה/תה {because} ב-{date}; {pct}% מ-{n} הקונים של {because} קנו גם את זה",
            "fa": "{because} را در {date} خرید؛ {pct}٪ از {n} خریدار {because} این را هم خریدند",
            "en": "Bought {because} on {date}; {pct}% of its {n} buyers also bought this",
        },
        "xs_lift": {"he": "פי {lift} מהרגיל", "fa": "{lift} برابر معمول", "en": "{lift}× the usual rate"},
        "xs_accepted": {"he": "הלקוח/ה רוצה", "fa": "مشتری می‌خواهد", "en": "Customer wants it"},
        "xs_declined": {"he": "לא מעוניין/ת", "fa": "نمی‌خواهد", "en": "Not interested"},
        "xs_last_accepted": {
            "he": "הוצע ב-{date}: רצה",
            "fa": "در {date} پیشنهاد شد: پذیرفت",
            "en": "Offered {date}: wanted it",
        },
        "xs_last_declined": {
            "he": "הוצע ב-{date}: לא רצה",
            "fa": "در {date} پیشنهاد شد: نپذیرفت",
            "en": "Offered {date}: not interested",
        },
        "xs_none": {
            "he": "אין הצעה: מה שהלקוח/ה קנה לא מוביל למוצר נוסף",
            "fa": "پیشنهادی نیست: خریدهای این مشتری به محصول دیگری راه نمی‌برد",
            "en": "Nothing to suggest: what this customer bought leads to no other product",
        },
        "xs_too_little": {
            "he": "עדיין אין מספיק היסטוריה: {buyers} קונים (צריך {needed}).",
            "fa": "هنوز سابقه کافی نیست: {buyers} خریدار ({needed} لازم است).",
            "en": "Not enough history yet: {buyers} buyers ({needed} needed).",
        },
    }
)


def _money(t: Translator, facts: dict[str, str], amount: str) -> str:
    return t.money({"amount_minor": int(facts.get(amount, "0")), "currency_code": facts.get("currency_code", "")})


def _consent(t: Translator, facts: dict[str, str]) -> str:
    state = t("consent_yes") if facts.get("granted") == "yes" else t("consent_no")
    what = f"{t('channel_' + facts.get('channel', ''))} · {t('purpose_' + facts.get('purpose', ''))}"
    return f"{what}: {state} ({t('csource_' + facts.get('source', ''))})"


def _risk(t: Translator, facts: dict[str, str]) -> str:
    """A churn risk entry: the band before and now, the risk, and its strongest reasons."""
    before = t("band_" + facts["previous_band"]) if facts.get("previous_band") else t("tlf_risk_first")
    risk = t.digits(f"{facts.get('risk_percent', '0')}%")
    line = t("tlf_risk").format(before=before, band=t("band_" + facts.get("band", "")), risk=risk)
    reasons = []
    for reason in filter(None, facts.get("reasons", "").split(",")):
        signal, _, value = reason.partition(":")
        reasons.append(t(f"sig_{signal}").replace("{value}", t.number(int(value or 0))))
    return " · ".join([line, *reasons])


def _ticket(t: Translator, facts: dict[str, str]) -> str:
    """A service desk entry: the ticket's number, kind and subject; whether it met its SLA; a score."""
    parts = [t("tlf_ticket").format(number=facts.get("number", ""))]
    if kind := facts.get("ticket_kind"):
        parts.append(t("svc_kind_" + kind))
    if metric := facts.get("sla_metric"):
        parts.append(t("svc_metric_" + metric))
    if "sla_met" in facts:
        parts.append(t("tlf_sla_met") if facts["sla_met"] == "yes" else t("tlf_sla_missed"))
    if "score" in facts:
        parts.append(t("tlf_score").format(score=t.number(int(facts["score"]))))
    line = " · ".join(parts)
    subject = facts.get("subject", "")
    return f"{line}: {subject}" if subject else line


# A fact present on an entry → its words, in this order (the kind's label is shown beside it).
_FACT_PARTS: tuple[tuple[str, Callable[[Translator, dict[str, str]], str]], ...] = (
    ("again", lambda t, f: t("tlf_again")),
    ("source", lambda t, f: t("tlf_source").format(source=f["source"])),
    ("campaign", lambda t, f: t("tlf_campaign").format(campaign=f["campaign"])),
    ("amount_minor", lambda t, f: _money(t, f, "amount_minor")),
    ("lost_reason", lambda t, f: t("tlf_reason").format(reason=f["lost_reason"])),
    ("stage", lambda t, f: t("tlf_stage").format(stage=f["stage"])),
    (
        "number",
        lambda t, f: t("tlf_quote").format(
            number=f["number"], version=t.number(int(f.get("version", "1"))), total=_money(t, f, "total_minor")
        ),
    ),
    ("carrier", lambda t, f: t("tlf_carrier").format(carrier=f["carrier"])),
    ("tracking_number", lambda t, f: t("tlf_tracking").format(tracking=f["tracking_number"])),
    ("delivery_date", lambda t, f: t("tlf_arrives").format(date=t.date(f["delivery_date"]))),
    ("outcome", lambda t, f: t("outcome_" + f["outcome"])),
    (
        "duration_seconds",
        lambda t, f: t("tlf_minutes").format(minutes=t.number(max(1, round(int(f["duration_seconds"]) / 60)))),
    ),
    ("who", lambda t, f: t("tlf_by").format(who=f["who"])),
)


def timeline_line(t: Translator, entry: dict[str, Any]) -> str:
    """A timeline entry's details in the reader's language, from its facts; an entry without facts
    (recorded before they were kept) shows its English summary."""
    facts: dict[str, str] = entry.get("facts") or {}
    if not facts:
        return str(entry.get("summary", ""))
    if entry.get("kind") == "consent_changed":
        return _consent(t, facts)
    if entry.get("kind") == "risk_changed":
        return _risk(t, facts)
    if str(entry.get("kind", "")) in DEPARTMENTS["service"]:
        return _ticket(t, facts)
    line = " · ".join(render(t, facts) for name, render in _FACT_PARTS if name in facts)
    text = facts.get("text", "")
    return f"{line}: {text}" if line and text else line or text


async def customer_tickets(gateway: Gateway, token: str, customer_id: str) -> list[dict[str, Any]] | None:
    """The customer's service tickets, newest first (reps read them too); None when the caller's
    role has no tickets to read (403) or the service desk does not answer: the rest of the page
    does not depend on it."""
    try:
        found = await gateway.call("listTickets", token, query={"customer_id": customer_id, "page_size": 20})
    except ApiError as exc:
        if exc.status == 401 or (400 <= exc.status < 500 and exc.status not in (403, 404)):
            raise
        return None
    tickets: list[dict[str, Any]] = found.body["tickets"]
    return tickets


async def optional_read(gateway: Gateway, token: str, operation: str, customer_id: str) -> dict[str, Any] | None:
    """One of the customer's side panels (the 360 figures, contact persons, addresses); None when
    it cannot be read now: the rest of the page does not depend on it."""
    try:
        found = await gateway.call(operation, token, path={"customer_id": customer_id})
    except ApiError as exc:
        if exc.status == 401 or (400 <= exc.status < 500 and exc.status not in (403, 404)):
            raise
        return None
    body: dict[str, Any] = found.body
    return body


def chosen_departments(request: Request) -> list[str]:
    """The departments the timeline filter asks for (all when none, or none known)."""
    return [d for d in request.query_params.getlist("dept") if d in DEPARTMENTS]


async def _main_reads(
    gateway: Gateway, token: str, customer_id: str, page_token: str, kinds: list[str]
) -> tuple[Answer, Answer, Answer, list[dict[str, Any]] | None]:
    """The customer, a page of the timeline, the consents and the tickets, at once."""
    path = {"customer_id": customer_id}
    found, timeline, consents, tickets = await asyncio.gather(
        gateway.call("getCustomer", token, path=path),
        gateway.call(
            "listCustomerTimeline",
            token,
            path=path,
            query={"page_size": PAGE_SIZE, "page_token": page_token, "kind": kinds},
        ),
        gateway.call("listCustomerConsents", token, path=path),
        customer_tickets(gateway, token, customer_id),
    )
    return found, timeline, consents, tickets


async def customer_page(
    request: Request, session: Session, customer_id: str, page_token: str = "", **extra: Any
) -> HTMLResponse:
    """The customer page; a refused form comes back with its errors and the input it was sent with."""
    gateway = api(request)
    departments = chosen_departments(request)
    kinds = [kind for d in departments for kind in DEPARTMENTS[d]]
    # The reads at once: each is checked against the caller by the gateway on its own.
    main_reads, side_reads = await asyncio.gather(
        _main_reads(gateway, session.token, customer_id, page_token, kinds),
        asyncio.gather(
            optional_read(gateway, session.token, "getCustomerSummary", customer_id),
            optional_read(gateway, session.token, "listContactPersons", customer_id),
            optional_read(gateway, session.token, "listAddresses", customer_id),
            optional_read(gateway, session.token, "listProductSuggestions", customer_id),
            optional_read(gateway, session.token, "getCustomerRisk", customer_id),
            optional_read(gateway, session.token, "getCustomerValue", customer_id),
        ),
    )
    customer_read, timeline, consents, tickets = main_reads
    summary, people, addresses, suggestions, risk, value = side_reads
    found = customer_read.body
    token = timeline.body["next_page_token"]
    filters = {"dept": departments} if departments else {}
    profile = {name: found.get(name, "") for name in PROFILE_FIELDS}
    t = Translator(ctx(request).locale_of(request))
    return ctx(request).render(
        request,
        "people_customer.html",
        session,
        status_code=extra.get("status_code", 200),
        customer=found,
        entries=[{**e, "line": timeline_line(t, e)} for e in timeline.body["entries"]],
        consents=consents.body,
        tickets=tickets,
        summary=summary,
        contact_persons=(people or {}).get("contact_persons", []),
        addresses=(addresses or {}).get("addresses", []),
        suggestions=suggestions,
        risk=risk,
        value=value,
        risk_reasons=[reason_text(t, r) for r in (risk or {}).get("reasons", [])],
        offer_request=uuid.uuid4().hex,
        next_page=next_href(f"/customers/{quote(customer_id)}", filters, token) if token else "",
        first_page=next_href(f"/customers/{quote(customer_id)}", filters, "") if page_token else "",
        departments=DEPARTMENTS,
        chosen=departments,
        profile={**profile, **extra.get("profile", {})},
        original=extra.get("original") or profile,
        profile_errors=extra.get("profile_errors", {}),
        profile_notice=extra.get("profile_notice", ""),
        consent_form=extra.get("consent_form", {}),
        consent_errors=extra.get("consent_errors", {}),
        consent_notice=extra.get("consent_notice", ""),
        offer_notice=extra.get("offer_notice", ""),
        touch_form=extra.get("touch_form", {}),
        touch_errors=extra.get("touch_errors", {}),
        touch_kinds=TOUCH_KINDS,
        outcomes=CALL_OUTCOMES,
        locales=PROFILE_LOCALES,
        channels=CONSENT_CHANNELS,
        purposes=CONSENT_PURPOSES,
        sources=CONSENT_SOURCES,
    )


@router.get("/customers/{customer_id}", response_class=HTMLResponse)
async def customer(request: Request, customer_id: str, page_token: str = "") -> Response:
    return await customer_page(request, ctx(request).require(request), customer_id, page_token)


@router.post("/customers/{customer_id}/profile")
async def edit_profile(request: Request, customer_id: str) -> Response:
    """PATCH only the fields changed since the page was read, on that version (If-Match)."""
    session, form = await ctx(request).signed_form(request)
    t = Translator(ctx(request).locale_of(request))
    sent = {name: str(form.get(name, "")).strip() for name in PROFILE_FIELDS}
    original = form_original(form)
    body = changed_fields(sent, original)
    if body:
        answer = await answer_or_refusal(
            api(request).call(
                "updateCustomer",
                session.token,
                path={"customer_id": customer_id},
                headers={"If-Match": str(form.get("etag", "")) or "*"},
                body=body,
            ),
            PROFILE_FIELDS,
            t,
        )
        if isinstance(answer, Refusal):
            return await customer_page(
                request,
                session,
                customer_id,
                profile=sent,
                original=original,
                profile_errors=answer.errors,
                profile_notice=answer.notice,
                status_code=answer.status,
            )
    return RedirectResponse(f"/customers/{quote(customer_id)}#profile", status_code=303)


@router.post("/customers/{customer_id}/consents")
async def record_consent(request: Request, customer_id: str) -> Response:
    session, form = await ctx(request).signed_form(request)
    t = Translator(ctx(request).locale_of(request))
    sent = {name: str(form.get(name, "")).strip() for name in ("channel", "purpose", "granted", "source", "evidence")}
    body: dict[str, Any] = {**sent, "granted": sent["granted"] == "yes"}
    answer = await answer_or_refusal(
        api(request).call("recordCustomerConsent", session.token, path={"customer_id": customer_id}, body=body),
        CONSENT_FIELDS,
        t,
    )
    if isinstance(answer, Refusal):
        return await customer_page(
            request,
            session,
            customer_id,
            consent_form=sent,
            consent_errors=answer.errors,
            consent_notice=answer.notice,
            status_code=answer.status,
        )
    return RedirectResponse(f"/customers/{quote(customer_id)}#consents", status_code=303)


@router.post("/customers/{customer_id}/suggestions/offers")
async def record_offer(request: Request, customer_id: str) -> Response:
    """A suggestion offered and the customer's answer; the request id makes a double submit one
    record. A refusal shows the page again with its notice."""
    session, form = await ctx(request).signed_form(request)
    t = Translator(ctx(request).locale_of(request))
    body = {name: str(form.get(name, "")).strip() for name in ("sku", "response", "request_id")}
    answer = await answer_or_refusal(
        api(request).call("recordCrossSellOffer", session.token, path={"customer_id": customer_id}, body=body),
        ("sku", "response", "request_id"),
        t,
    )
    if isinstance(answer, Refusal):
        notice = answer.notice or "; ".join(answer.errors.values())
        return await customer_page(request, session, customer_id, offer_notice=notice, status_code=answer.status)
    return RedirectResponse(f"/customers/{quote(customer_id)}#suggestions", status_code=303)


@router.post("/customers/{customer_id}/touches")
async def log_touch(request: Request, customer_id: str) -> Response:
    """A touch with the customer on their timeline; the request id makes a double submit one entry."""
    session, form = await ctx(request).signed_form(request)
    t = Translator(ctx(request).locale_of(request))
    sent = {name: str(form.get(name, "")).strip() for name in ("kind", "text", "outcome", "minutes", "request_id")}
    minutes = sent["minutes"].translate(str.maketrans("۰۱۲۳۴۵۶۷۸۹", "0123456789"))
    if minutes and not minutes.isdigit():
        errors = {"duration_seconds": t("touch_minutes")}
        return await customer_page(request, session, customer_id, touch_form=sent, touch_errors=errors, status_code=422)
    body: dict[str, Any] = {"kind": sent["kind"], "text": sent["text"], "request_id": sent["request_id"]}
    if sent["kind"] == "call" and sent["outcome"]:
        body["outcome"] = sent["outcome"]
    if minutes:
        body["duration_seconds"] = int(minutes) * 60
    answer = await answer_or_refusal(
        api(request).call("logCustomerTouch", session.token, path={"customer_id": customer_id}, body=body),
        TOUCH_FIELDS,
        t,
    )
    if isinstance(answer, Refusal):
        return await customer_page(
            request, session, customer_id, touch_form=sent, touch_errors=answer.errors, status_code=answer.status
        )
    return RedirectResponse(f"/customers/{quote(customer_id)}#timeline", status_code=303)
