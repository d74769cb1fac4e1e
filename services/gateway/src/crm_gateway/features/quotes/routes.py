"""Quotes on deals: made on a deal (/deals/{deal_id}/quotes), then read, changed while a draft,
sent, accepted (which wins the deal, and an order follows), rejected or revised into the next
version (/quotes/{quote_id}…), and printed (/quotes/{quote_id}.pdf). Served by the sales service
(crm.sales.v1.QuotesService); docs/selling.md has the rules.

A quote is visible with its deal (crm_gateway.records.quote): a caller who may not read the deal
gets 404 for its quotes. A draft's change must send its ETag in If-Match (428 without, 412 when
it changed since); the other actions take one optionally."""

from __future__ import annotations

import functools
import re

from fastapi import HTTPException, Response
from starlette.convertors import StringConvertor, register_url_convertor

from crm.sales.v1 import quotes_pb2
from crm_gateway import records
from crm_gateway.convert import to_model, with_etag
from crm_gateway.deps import (
    Caller,
    Clients,
    IdempotencyKey,
    IfMatch,
    PageSize,
    PageToken,
    ResourceId,
    api_router,
    etag_of,
)
from crm_gateway.features.quotes.schemas import CreateQuoteIn, Quote, QuoteList, RejectQuoteIn, UpdateQuoteIn
from crm_gateway.records import read
from crm_kit import protoconv


class _NotADocument(StringConvertor):
    """A quote id in /quotes/{quote_id}: a path segment not ending in ".pdf". That URL is the
    quote's document (/quotes/{quote_id}.pdf); without this both routes would match it, and
    PATCH /quotes/x.pdf would reach the quote's update."""

    regex = r"[^/]+?(?<!\.pdf)"


register_url_convertor("not_pdf", _NotADocument())
router = api_router()

_RENDER_TIMEOUT_SECONDS = 60.0
_PDF = {200: {"content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}}}


def _safe_file_name(name: str) -> str:
    """Only letters, digits, dot, dash and underscore reach the Content-Disposition header."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:100].lstrip(".")
    return cleaned if cleaned.endswith(".pdf") else "quote.pdf"


@router.post("/deals/{deal_id}/quotes", status_code=201, tags=["quotes"], operation_id="createQuote")
async def create_quote(
    deal_id: ResourceId,
    body: CreateQuoteIn,
    clients: Clients,
    principal: Caller,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> Quote:
    """Version 1 of a new quote on an open deal, its lines priced from one price list valid today.
    A repeated request_id (or Idempotency-Key) answers the first quote; a bad line is 422 naming it."""
    await records.deal(clients, principal, deal_id)
    reply = await clients.quotes.CreateQuote(body.to_proto(deal_id, (idempotency_key or "").strip()))
    return with_etag(Quote, reply.quote, response)


@router.get("/deals/{deal_id}/quotes", tags=["quotes"], operation_id="listQuotes")
async def list_quotes(
    deal_id: ResourceId, clients: Clients, principal: Caller, page_size: PageSize = 0, page_token: PageToken = ""
) -> QuoteList:
    """The deal's quote versions, newest first."""
    await records.deal(clients, principal, deal_id)
    request = quotes_pb2.ListQuotesRequest(
        deal_id=deal_id, page_size=protoconv.page_size(page_size), page_token=page_token
    )
    return to_model(QuoteList, await read(clients.quotes.ListQuotes, request))


@router.get(
    "/quotes/{quote_id}.pdf",
    tags=["quotes"],
    operation_id="renderQuotePdf",
    response_class=Response,
    responses=_PDF,  # type: ignore[arg-type]
)
async def render_quote_pdf(quote_id: ResourceId, clients: Clients, principal: Caller) -> Response:
    """The quote as a PDF in its language (Hebrew and Persian right to left)."""
    await records.quote(clients, principal, quote_id)
    # Rendering is CPU work of up to seconds: it may use the request's whole budget, not the
    # default per-call timeout (the chassis caps the call at what is left of the budget).
    render = functools.partial(clients.quotes.RenderQuotePdf, timeout=_RENDER_TIMEOUT_SECONDS)
    reply = await read(render, quotes_pb2.RenderQuotePdfRequest(quote_id=quote_id))
    disposition = f'inline; filename="{_safe_file_name(reply.file_name)}"'
    return Response(reply.pdf, media_type="application/pdf", headers={"Content-Disposition": disposition})


@router.get("/quotes/{quote_id:not_pdf}", tags=["quotes"], operation_id="getQuote")
async def get_quote(quote_id: ResourceId, clients: Clients, principal: Caller, response: Response) -> Quote:
    """The quote version; a sent one past its valid_until reads as expired. Its ETag is the
    version to send back in If-Match."""
    return with_etag(Quote, await records.quote(clients, principal, quote_id), response)


@router.patch("/quotes/{quote_id:not_pdf}", tags=["quotes"], operation_id="updateQuote")
async def update_quote(
    quote_id: ResourceId,
    body: UpdateQuoteIn,
    clients: Clients,
    principal: Caller,
    response: Response,
    if_match: IfMatch = None,
) -> Quote:
    """Change the fields the body names on a draft (a sent quote is 409: revise it)."""
    if not body.model_fields_set:
        raise HTTPException(422, "Name at least one field to change.")
    etag = etag_of(if_match, required=True)
    await records.quote(clients, principal, quote_id)
    reply = await clients.quotes.UpdateQuote(body.to_proto(quote_id, etag))
    return with_etag(Quote, reply.quote, response)


@router.post("/quotes/{quote_id}/revise", status_code=201, tags=["quotes"], operation_id="reviseQuote")
async def revise_quote(
    quote_id: ResourceId,
    clients: Clients,
    principal: Caller,
    response: Response,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Quote:
    """Copy the latest version (sent, rejected or expired) into the next one, a draft; a sent
    version becomes superseded. Answers the new draft."""
    await records.quote(clients, principal, quote_id)
    request = quotes_pb2.ReviseQuoteRequest(
        quote_id=quote_id, etag=etag_of(if_match), request_id=(idempotency_key or "").strip()
    )
    return with_etag(Quote, (await clients.quotes.ReviseQuote(request)).quote, response)


@router.post("/quotes/{quote_id}/send", tags=["quotes"], operation_id="sendQuote")
async def send_quote(
    quote_id: ResourceId, clients: Clients, principal: Caller, response: Response, if_match: IfMatch = None
) -> Quote:
    """Send a draft: it is dated today and can no longer change."""
    await records.quote(clients, principal, quote_id)
    request = quotes_pb2.SendQuoteRequest(quote_id=quote_id, etag=etag_of(if_match))
    return with_etag(Quote, (await clients.quotes.SendQuote(request)).quote, response)


@router.post("/quotes/{quote_id}/accept", tags=["quotes"], operation_id="acceptQuote")
async def accept_quote(
    quote_id: ResourceId, clients: Clients, principal: Caller, response: Response, if_match: IfMatch = None
) -> Quote:
    """The customer accepted: the deal is won with the quote's lines (an order follows). An
    expired or superseded quote, or one on a closed deal, is 409 naming why."""
    await records.quote(clients, principal, quote_id)
    request = quotes_pb2.AcceptQuoteRequest(quote_id=quote_id, etag=etag_of(if_match))
    return with_etag(Quote, (await clients.quotes.AcceptQuote(request)).quote, response)


@router.post("/quotes/{quote_id}/reject", tags=["quotes"], operation_id="rejectQuote")
async def reject_quote(
    quote_id: ResourceId,
    clients: Clients,
    principal: Caller,
    response: Response,
    body: RejectQuoteIn | None = None,
    if_match: IfMatch = None,
) -> Quote:
    """The customer said no (revise it to try again)."""
    await records.quote(clients, principal, quote_id)
    reason = body.reason if body else ""
    request = quotes_pb2.RejectQuoteRequest(quote_id=quote_id, etag=etag_of(if_match), reason=reason)
    return with_etag(Quote, (await clients.quotes.RejectQuote(request)).quote, response)
