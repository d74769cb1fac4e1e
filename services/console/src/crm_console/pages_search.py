"""Finding a customer: the search box in every page's header and its results. A name in any
spelling (Hebrew, Persian or Latin letters, any word order, the last word while it is typed), a
phone number in any format or an e-mail address; the gateway's searchCustomers ranks, and a rep
sees only the customers of their own leads."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from crm_console.api import ApiError
from crm_console.i18n import words
from crm_console.web import api, ctx

router = APIRouter()

MAX_QUERY = 200

words(
    {
        "search": {"he": "חיפוש", "fa": "جستجو", "en": "Search"},
        "search_customers": {"he": "חיפוש לקוח", "fa": "جستجوی مشتری", "en": "Find a customer"},
        "search_hint": {
            "he": "שם בכל כתיב, טלפון בכל צורה או דוא״ל",
            "fa": "نام با هر املایی، تلفن با هر قالبی یا ایمیل",
            "en": "A name in any spelling, a phone number in any format, or an e-mail",
        },
        "search_none": {"he": "לא נמצא לקוח מתאים.", "fa": "مشتری‌ای پیدا نشد.", "en": "No customer matches."},
        "search_found": {"he": "נמצאו", "fa": "پیدا شد", "en": "Found"},
        "match": {"he": "התאמה", "fa": "تطابق", "en": "Match"},
        "match_phone": {"he": "טלפון", "fa": "تلفن", "en": "Phone"},
        "match_email": {"he": "דוא״ל", "fa": "ایمیل", "en": "E-mail"},
        "match_name": {"he": "שם", "fa": "نام", "en": "Name"},
        "match_name_prefix": {"he": "תחילת שם", "fa": "آغاز نام", "en": "Start of a name"},
        "match_name_sounds_like": {"he": "כתיב אחר", "fa": "املای دیگر", "en": "Another spelling"},
        "match_ticket_number": {"he": "מספר פנייה", "fa": "شماره درخواست", "en": "Ticket number"},
        "match_order": {"he": "מספר הזמנה", "fa": "شماره سفارش", "en": "Order number"},
    }
)


@router.get("/search", response_class=HTMLResponse)
async def search(request: Request, query: str = "") -> Response:
    session = ctx(request).require(request)
    query = query.strip()[:MAX_QUERY]
    matches: list[dict[str, object]] = []
    errors: dict[str, str] = {}
    status = 200
    if query:
        try:
            reply = await api(request).call("searchCustomers", session.token, query={"query": query})
            matches = reply.body["matches"]
        except ApiError as exc:
            if exc.status != 422:
                raise
            errors, status = exc.field_errors or {"query": exc.problem.get("detail", "")}, 422
    return ctx(request).render(
        request, "search.html", session, status_code=status, query=query, matches=matches, errors=errors
    )
