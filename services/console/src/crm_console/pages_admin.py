"""The administrator's screens over every backend service: the audit log (who did what to which
record, per service) and the dead letters (events a service's consumers gave up on), read and
replayed one at a time.

Both ask the gateway as the signed-in user, and the gateway lets only admins call them
(list_audit_records, list_dead_letters, replay_dead_letter), so the menu offers them to admins only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from crm_console.api import ApiError
from crm_console.i18n import words
from crm_console.session import Session
from crm_console.web import PAGE_SIZE, api, ctx, menu_item, next_href

router = APIRouter()
menu_item("audit_log", "/admin/audit", "admin")
# Events a service's consumers gave up on, per backend service: the administrator reads them and
# replays one at a time (replayDeadLetter; 409 once replayed).
menu_item("dead_letters", "/admin/dead-letters", "admin")

# The services with an audit trail and dead letters: the enum of both listAuditRecords' and
# listDeadLetters' `service` (every backend service gets both from the chassis).
BACKEND_SERVICES = ("leads", "sales", "customers", "orders", "notifications", "reporting")
AUDIT_FILTERS = ("record_type", "record_id", "actor")
# The gateway's limit on the consumer filter (listDeadLetters' `consumer`, maxLength).
CONSUMER_MAX_CHARS = 100
# An error shown in the table is cut here; the whole text is in a <details> under it.
ERROR_SHORT_CHARS = 90
# The only notice a redirect may name (anything else in ?notice= is ignored, never echoed).
DEAD_LETTER_NOTICES = ("dl_replayed_notice",)

words(
    {
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


# ------------------------------------------------------------------ pure helpers (no I/O)


def audit_query(params: Mapping[str, str]) -> dict[str, str]:
    """The audit filters of a request, trimmed; the service is required by the gateway, so an
    unknown or missing one falls back to the first (leads) rather than answering with an error."""
    service = params.get("service", "")
    query = {"service": service if service in BACKEND_SERVICES else BACKEND_SERVICES[0]}
    for name in AUDIT_FILTERS:
        value = params.get(name, "").strip()
        if value:
            query[name] = value
    return query


def dead_letter_query(params: Mapping[str, Any]) -> dict[str, str]:
    """The dead-letter filters of a request or a replay form: a known service (the first, leads,
    when missing or unknown, as the audit screen does), the consumer trimmed and cut to the
    gateway's limit, and open_only ("1") when asked for; the page token is not a filter."""
    service = str(params.get("service", ""))
    query = {"service": service if service in BACKEND_SERVICES else BACKEND_SERVICES[0]}
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


# ------------------------------------------------------------------ the audit log


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
        services=BACKEND_SERVICES,
        records=listed["audit_records"],
        next_page=next_href("/admin/audit", query, token) if token else "",
    )


# ------------------------------------------------------------------ dead letters


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
        services=BACKEND_SERVICES,
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
    if service not in BACKEND_SERVICES:
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
