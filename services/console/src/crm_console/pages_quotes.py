"""Quotes on the deal page: build one from the price list's products, preview its PDF, send it,
record the customer's acceptance (which wins the deal with the quote's lines)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from crm_console.api import ApiError
from crm_console.i18n import words
from crm_console.session import Session
from crm_console.web import api, ctx

router = APIRouter()
LINES_ON_FORM = 3

words(
    {
        "quotes": {"he": "הצעות מחיר", "fa": "پیش‌فاکتورها", "en": "Quotes"},
        "new_quote": {"he": "הצעת מחיר חדשה", "fa": "پیش‌فاکتور جدید", "en": "New quote"},
        "price_list": {"he": "מחירון", "fa": "فهرست قیمت", "en": "Price list"},
        "product": {"he": "מוצר", "fa": "کالا", "en": "Product"},
        "line_n": {"he": "שורה", "fa": "ردیف", "en": "Line"},
        "discount_pct": {"he": "הנחה (%)", "fa": "تخفیف (٪)", "en": "Discount (%)"},
        "quote_pdf": {"he": "תצוגת PDF", "fa": "پیش‌نمایش PDF", "en": "PDF preview"},
        "send_quote": {"he": "שליחה ללקוח", "fa": "ارسال برای مشتری", "en": "Send to the customer"},
        "accept_quote": {"he": "הלקוח אישר", "fa": "مشتری پذیرفت", "en": "Customer accepted"},
        "quote_number": {"he": "מספר", "fa": "شماره", "en": "Number"},
        "status_draft": {"he": "טיוטה", "fa": "پیش‌نویس", "en": "Draft"},
        "status_accepted": {"he": "אושרה", "fa": "پذیرفته شد", "en": "Accepted"},
        "status_rejected": {"he": "נדחתה", "fa": "رد شد", "en": "Rejected"},
        "status_expired": {"he": "פגה", "fa": "منقضی", "en": "Expired"},
        "status_superseded": {"he": "הוחלפה", "fa": "جایگزین شد", "en": "Superseded"},
        "none_yet": {"he": "אין עדיין.", "fa": "هنوز چیزی نیست.", "en": "None yet."},
    }
)


async def builder(request: Request, session: Session, deal: dict[str, Any]) -> dict[str, Any]:
    """What the deal page shows of quotes: the deal's quotes, and for an open deal the form's
    price lists and products (three calls at once, not one after another)."""
    gateway, token = api(request), session.token
    listed = gateway.call("listQuotes", token, path={"deal_id": deal["id"]}, query={"page_size": 20})
    if deal["status"] != "open":
        return {"quotes": (await listed).body["quotes"], "price_lists": [], "products": []}
    quotes, price_lists, products = await asyncio.gather(
        listed,
        gateway.call("listPriceLists", token, query={"page_size": 50}),
        gateway.call("listProducts", token, query={"page_size": 200}),
        return_exceptions=True,
    )
    return {
        "quotes": _or_empty(quotes, "quotes"),
        "price_lists": _or_empty(price_lists, "price_lists"),
        "products": _or_empty(products, "products"),
    }


def _or_empty(answer: Any, key: str) -> list[dict[str, Any]]:
    """A list the caller's role may not read shows empty; any other failure is the page's."""
    if isinstance(answer, ApiError) and answer.status == 403:
        return []
    if isinstance(answer, BaseException):
        raise answer
    found: list[dict[str, Any]] = answer.body.get(key, [])
    return found


@router.post("/deals/{deal_id}/quotes")
async def create_quote(request: Request, deal_id: str) -> Response:
    session, form = await ctx(request).signed_form(request)
    lines = []
    for i in range(LINES_ON_FORM):
        product = str(form.get(f"product_id_{i}", ""))
        if product:
            lines.append({"product_id": product, "quantity": _int(form.get(f"quantity_{i}"), 1)})
    body: dict[str, Any] = {
        "price_list_id": str(form.get("price_list_id", "")),
        "lines": lines,
        "discount_bp": _int(form.get("discount_pct"), 0) * 100,
        "notes": str(form.get("notes", "")),
        "locale": ctx(request).locale_of(request),
        "request_id": str(form.get("request_id") or uuid.uuid4()),
    }
    try:
        await api(request).call("createQuote", session.token, path={"deal_id": deal_id}, body=body)
    except ApiError as exc:
        if exc.status not in (409, 422):
            raise
        return await _deal_with(request, session, deal_id, exc)
    return RedirectResponse(f"/deals/{quote(deal_id)}#quotes", status_code=303)


@router.post("/quotes/{quote_id}/{action}")
async def quote_action(request: Request, quote_id: str, action: str) -> Response:
    """Send a draft or record its acceptance, with the quote's ETag (If-Match)."""
    session, form = await ctx(request).signed_form(request)
    operation = {"send": "sendQuote", "accept": "acceptQuote"}.get(action)
    if operation is None:
        return Response(status_code=404)
    deal_id = str(form.get("deal_id", ""))
    headers = {"If-Match": str(form["etag"])} if form.get("etag") else {}
    try:
        await api(request).call(operation, session.token, path={"quote_id": quote_id}, headers=headers)
    except ApiError as exc:
        if exc.status not in (409, 412, 422):
            raise
        return await _deal_with(request, session, deal_id, exc)
    return RedirectResponse(f"/deals/{quote(deal_id)}#quotes", status_code=303)


@router.get("/quotes/{quote_id}/pdf")
async def quote_pdf(request: Request, quote_id: str) -> Response:
    """The quote's PDF as the gateway renders it, shown inline (the browser's own viewer)."""
    session = ctx(request).require(request)
    answer = await api(request).call("renderQuotePdf", session.token, path={"quote_id": quote_id})
    disposition = answer.headers.get("content-disposition", "").replace("attachment", "inline")
    return Response(
        answer.raw,
        media_type="application/pdf",
        headers={"Content-Disposition": disposition or "inline"},
    )


async def _deal_with(request: Request, session: Session, deal_id: str, error: ApiError) -> Response:
    from crm_console.pages_sales import deal_page

    notice = "conflict" if error.status == 412 else str(error.problem.get("detail", ""))
    return await deal_page(
        request, session, deal_id, notice=notice, errors=error.field_errors, status_code=error.status
    )


def _int(value: Any, default: int) -> int:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return default
