"""The orders desk: orders, one order with its messages, shipping."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from crm_console.api import ApiError
from crm_console.dates import picked_date
from crm_console.i18n import Translator
from crm_console.session import Session
from crm_console.web import (
    PAGE_SIZE,
    api,
    ctx,
    menu_item,
)

router = APIRouter()
menu_item("orders", "/orders", "orders_clerk", "admin")


@router.get("/orders", response_class=HTMLResponse)
async def orders(request: Request, page_token: str = "") -> Response:
    session = ctx(request).require(request)
    found = (
        await api(request).call("listOrders", session.token, query={"page_size": PAGE_SIZE, "page_token": page_token})
    ).body
    return ctx(request).render(request, "orders.html", session, orders=found)


async def order_page(request: Request, session: Session, order_id: str, **extra: Any) -> HTMLResponse:
    order = (await api(request).call("getOrder", session.token, path={"order_id": order_id})).body
    messages: list[dict[str, Any]] = []
    try:
        messages = (
            await api(request).call("listMessages", session.token, query={"order_id": order_id, "page_size": 20})
        ).body["messages"]
    except ApiError as exc:
        if exc.status != 403:
            raise
    default_date = (date.today() + timedelta(days=3)).isoformat()
    return ctx(request).render(
        request,
        "order.html",
        session,
        order=order,
        messages=messages,
        default_date=default_date,
        form=extra.get("form", {}),
        errors=extra.get("errors", {}),
        status_code=extra.get("status_code", 200),
    )


@router.get("/orders/{order_id}", response_class=HTMLResponse)
async def order(request: Request, order_id: str) -> Response:
    return await order_page(request, ctx(request).require(request), order_id)


@router.post("/orders/{order_id}/ship")
async def ship(request: Request, order_id: str) -> Response:
    session, form = await ctx(request).signed_form(request)
    body = {k: str(form.get(k, "")) for k in ("carrier", "tracking_number")}
    # Persian: picked in the Solar Hijri calendar (templates/_date.html), sent as Gregorian.
    body["estimated_delivery_date"], ok = picked_date(form, "estimated_delivery_date")
    if not ok:
        t = Translator(ctx(request).locale_of(request))
        errors = {"estimated_delivery_date": t("no_such_date")}
        return await order_page(request, session, order_id, form=body, errors=errors, status_code=422)
    try:
        await api(request).call("shipOrder", session.token, path={"order_id": order_id}, body=body)
    except ApiError as exc:
        if exc.status not in (409, 422):
            raise
        errors = exc.field_errors or {"": str(exc.problem.get("detail", ""))}
        return await order_page(request, session, order_id, form=body, errors=errors, status_code=exc.status)
    return RedirectResponse(f"/orders/{quote(order_id)}", status_code=303)
