"""The rep's and manager's pages: work list, lead, deal (stages, close), pipelines and the board."""

from __future__ import annotations

import asyncio
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from crm_console import pages_quotes
from crm_console.api import ApiError
from crm_console.dates import picked_datetime
from crm_console.i18n import Translator
from crm_console.session import Session
from crm_console.web import (
    PAGE_SIZE,
    api,
    ctx,
    local_datetime,
    menu_item,
)

router = APIRouter()
menu_item("work", "/work", "sales_rep", "sales_manager", "admin")
menu_item("pipelines", "/pipelines", "sales_rep", "sales_manager", "admin")


async def work_items(request: Request, session: Session, page_token: str) -> dict[str, Any]:
    answer = await api(request).call(
        "listMyLeads", session.token, query={"page_size": PAGE_SIZE, "page_token": page_token}
    )
    body: dict[str, Any] = answer.body
    # Unanswered first, the least time left first; answered ones last.
    body["items"].sort(key=lambda i: (i["responded"], not i["has_deadline"], i["seconds_left"]))
    return body


@router.get("/work", response_class=HTMLResponse)
async def work(request: Request, page_token: str = "") -> Response:
    session = ctx(request).require(request)
    return ctx(request).render(
        request, "work.html", session, work=await work_items(request, session, page_token), page_token=page_token
    )


@router.get("/work/rows", response_class=HTMLResponse)
async def work_rows(request: Request, page_token: str = "") -> Response:
    session = ctx(request).require(request)
    return ctx(request).render(request, "work_rows.html", session, work=await work_items(request, session, page_token))


# ------------------------------------------------------------------ lead


async def lead_page(request: Request, session: Session, lead_id: str, **extra: Any) -> HTMLResponse:
    lead = (await api(request).call("getLeadRouting", session.token, path={"lead_id": lead_id})).body
    activities = (
        await api(request).call("listLeadActivities", session.token, path={"lead_id": lead_id}, query={"page_size": 50})
    ).body["activities"]
    pipelines: list[dict[str, Any]] = []
    if not lead.get("deal_id"):
        try:
            pipelines = (await api(request).call("listPipelines", session.token, query={"page_size": 100})).body[
                "pipelines"
            ]
        except ApiError as exc:
            if exc.status != 403:
                raise
    score: dict[str, Any] | None = None
    try:
        score = (await api(request).call("getLeadScore", session.token, path={"lead_id": lead_id})).body
    except ApiError as exc:
        if exc.status not in (403, 404, 503, 504):  # reporting away: the page without its score
            raise
    duplicates: list[dict[str, Any]] = []
    try:
        duplicates = (
            await api(request).call(
                "listPossibleDuplicates",
                session.token,
                query={"lead_id": lead_id, "status": "open", "page_size": 5},
            )
        ).body.get("possible_duplicates", [])
    except ApiError as exc:
        if exc.status not in (403, 404):
            raise
    return ctx(request).render(
        request,
        "lead.html",
        session,
        lead=lead,
        activities=activities,
        pipelines=pipelines,
        duplicates=duplicates,
        score=score,
        errors=extra.get("errors", {}),
        notice=extra.get("notice", ""),
        status_code=extra.get("status_code", 200),
    )


@router.get("/leads/{lead_id}", response_class=HTMLResponse)
async def lead(request: Request, lead_id: str) -> Response:
    return await lead_page(request, ctx(request).require(request), lead_id)


@router.post("/leads/{lead_id}/activities")
async def log_activity(request: Request, lead_id: str) -> Response:
    session, form = await ctx(request).signed_form(request)
    body: dict[str, Any] = {
        "kind": str(form.get("kind", "")),
        "subject": str(form.get("subject", "")),
        "body": str(form.get("body", "")),
        "request_id": str(form.get("request_id", "")),
    }
    if body["kind"] == "call":
        body["outcome"] = str(form.get("outcome", ""))
    locale = ctx(request).locale_of(request)
    refused: dict[str, str] = {}
    for name in ("start_time", "end_time", "due_time"):
        # Persian: the day picked in the Solar Hijri calendar and a time (templates/_date.html).
        wall_clock, ok = picked_datetime(form, name)
        if not ok:
            refused[name] = Translator(locale)("no_such_date")
        elif wall_clock:
            body[name] = local_datetime(wall_clock, locale)
    if refused:
        return await lead_page(request, session, lead_id, errors=refused, status_code=422)
    try:
        await api(request).call("logLeadActivity", session.token, path={"lead_id": lead_id}, body=body)
    except ApiError as exc:
        if exc.status != 422:
            raise
        return await lead_page(request, session, lead_id, errors=exc.field_errors, status_code=422)
    return RedirectResponse(f"/leads/{quote(lead_id)}", status_code=303)


@router.post("/leads/{lead_id}/convert")
async def convert(request: Request, lead_id: str) -> Response:
    session, form = await ctx(request).signed_form(request)
    body = {k: str(form[k]) for k in ("title", "pipeline_id") if form.get(k)}
    try:
        deal = (await api(request).call("convertLead", session.token, path={"lead_id": lead_id}, body=body)).body
    except ApiError as exc:
        if exc.status not in (409, 422):
            raise
        return await lead_page(
            request,
            session,
            lead_id,
            errors=exc.field_errors or {"": exc.problem.get("detail", "")},
            status_code=exc.status,
        )
    return RedirectResponse(f"/deals/{quote(deal['id'])}", status_code=303)


# ------------------------------------------------------------------ deal


async def deal_page(request: Request, session: Session, deal_id: str, **extra: Any) -> HTMLResponse:
    gateway, token = api(request), session.token
    deal = (await gateway.call("getDeal", token, path={"deal_id": deal_id})).body

    async def lost_reasons() -> list[dict[str, Any]]:
        if deal["status"] != "open":
            return []
        found: list[dict[str, Any]] = (await gateway.call("listLostReasons", token)).body["lost_reasons"]
        return found

    async def orders() -> list[dict[str, Any]]:
        if deal["status"] != "won":
            return []
        try:
            found: list[dict[str, Any]] = (await gateway.call("listOrders", token, query={"deal_id": deal_id})).body[
                "orders"
            ]
        except ApiError as exc:
            if exc.status != 403:
                raise
            return []
        return found

    # What the page needs besides the deal, asked at once.
    pipeline_answer, reasons, deal_orders, quoting = await asyncio.gather(
        gateway.call("getPipeline", token, path={"pipeline_id": deal["pipeline_id"]}),
        lost_reasons(),
        orders(),
        pages_quotes.builder(request, session, deal),
    )
    pipeline = pipeline_answer.body
    return ctx(request).render(
        request,
        "deal.html",
        session,
        deal=deal,
        pipeline=pipeline,
        lost_reasons=reasons,
        orders=deal_orders,
        lines_on_form=pages_quotes.LINES_ON_FORM,
        **quoting,
        errors=extra.get("errors", {}),
        notice=extra.get("notice", request.query_params.get("notice", "")),
        status_code=extra.get("status_code", 200),
    )


@router.get("/deals/{deal_id}", response_class=HTMLResponse)
async def deal(request: Request, deal_id: str) -> Response:
    return await deal_page(request, ctx(request).require(request), deal_id)


async def deal_action(request: Request, deal_id: str, operation: str, body: dict[str, Any], etag: str) -> Response:
    """A stage move or a close, with If-Match: JSON for the board's script, a redirect for a form."""
    session = ctx(request).require(request)
    wants_json = request.headers.get("accept", "").startswith("application/json")
    headers = {"If-Match": etag} if etag else {}
    try:
        answer = await api(request).call(
            operation, session.token, path={"deal_id": deal_id}, headers=headers, body=body
        )
    except ApiError as exc:
        if exc.status not in (409, 412, 422):
            raise
        notice = "conflict" if exc.status == 412 else str(exc.problem.get("detail", ""))
        if wants_json:
            t = Translator(ctx(request).locale_of(request))
            return JSONResponse({"ok": False, "message": t(notice) if notice == "conflict" else notice}, exc.status)
        return await deal_page(
            request, session, deal_id, notice=notice, errors=exc.field_errors, status_code=exc.status
        )
    if wants_json:
        return JSONResponse({"ok": True, "etag": answer.body.get("etag", ""), "stage_id": answer.body.get("stage_id")})
    return RedirectResponse(f"/deals/{quote(deal_id)}", status_code=303)


@router.post("/deals/{deal_id}/stage")
async def move_stage(request: Request, deal_id: str) -> Response:
    _session, form = await ctx(request).signed_form(request)
    return await deal_action(
        request, deal_id, "moveDealStage", {"stage_id": str(form.get("stage_id", ""))}, str(form.get("etag", ""))
    )


@router.post("/deals/{deal_id}/close")
async def close(request: Request, deal_id: str) -> Response:
    _session, form = await ctx(request).signed_form(request)
    body: dict[str, Any] = {"outcome": str(form.get("outcome", ""))}
    if form.get("lost_reason_code"):
        body["lost_reason_code"] = str(form["lost_reason_code"])
    if body["outcome"] == "won" and form.get("sku"):
        body["items"] = [_line_item(form)]
    return await deal_action(request, deal_id, "closeDeal", body, str(form.get("etag", "")))


# ------------------------------------------------------------------ manager: pipelines and board


@router.get("/pipelines", response_class=HTMLResponse)
async def pipelines(request: Request) -> Response:
    session = ctx(request).require(request)
    found = (await api(request).call("listPipelines", session.token, query={"page_size": 100})).body["pipelines"]
    return ctx(request).render(request, "pipelines.html", session, pipelines=found)


@router.get("/pipelines/{pipeline_id}/board", response_class=HTMLResponse)
async def board(request: Request, pipeline_id: str) -> Response:
    session = ctx(request).require(request)
    gateway = api(request)
    pipeline, found = await asyncio.gather(
        gateway.call("getPipeline", session.token, path={"pipeline_id": pipeline_id}),
        gateway.call(
            "getPipelineBoard", session.token, path={"pipeline_id": pipeline_id}, query={"deals_per_stage": 50}
        ),
    )
    return ctx(request).render(request, "board.html", session, pipeline=pipeline.body, board=found.body)


@router.get("/pipelines/{pipeline_id}/stages/{stage_id}/cards", response_class=HTMLResponse)
async def more_cards(
    request: Request, pipeline_id: str, stage_id: str, page_token: str, order_by: str = "", close_time_from: str = ""
) -> Response:
    """A column's next cards (the board shows 50 per stage; the column's "more" asks for these):
    the deals list's page that the board's next_page_token names, as <li> cards to append."""
    session = ctx(request).require(request)
    gateway = api(request)
    query = {"pipeline_id": pipeline_id, "stage_id": stage_id, "page_token": page_token, "page_size": 100}
    if order_by:
        query["order_by"] = order_by
    if close_time_from:
        query["close_time_from"] = close_time_from
    pipeline, page = await asyncio.gather(
        gateway.call("getPipeline", session.token, path={"pipeline_id": pipeline_id}),
        gateway.call("listDeals", session.token, query=query),
    )
    return ctx(request).render(
        request,
        "board_cards.html",
        session,
        pipeline=pipeline.body,
        deals=page.body["deals"],
        next_page_token=page.body["next_page_token"],
        stage_id=stage_id,
        order_by=order_by,
        close_time_from=close_time_from,
    )


# ------------------------------------------------------------------ orders clerk


def _line_item(form: Any) -> dict[str, Any]:
    """One order line from the close-won form; the price is typed in major units (₪ 12.50)."""
    try:
        minor = int((Decimal(str(form.get("unit_price", "0"))) * 100).to_integral_value())
        quantity = int(str(form.get("quantity", "1")))
    except (InvalidOperation, ValueError):
        minor, quantity = -1, 0  # the gateway names the field in its 422
    return {
        "sku": str(form.get("sku", "")),
        "description": str(form.get("description", "")),
        "quantity": quantity,
        "unit_price": {"amount_minor": minor, "currency_code": str(form.get("currency_code", "ILS"))},
    }
