"""QuotesService: validation and proto mapping; the work is in commands/queries. Errors are
mapped by the chassis interceptor."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import grpc

from crm.sales.v1 import quotes_pb2, quotes_pb2_grpc
from crm_kit.db import Database
from crm_kit.errors import FailedPrecondition, InvalidArgument, require
from crm_kit.protoconv import encode_page_token, page_position, page_size
from crm_sales.quotes import commands, domain, queries
from crm_sales.quotes.document import CompanyDetails
from crm_sales.quotes.pdf import RenderedPdfs, render_quote_pdf_async
from crm_sales.quotes.quote_document import quote_document
from crm_sales.quotes.quote_proto import draft_of, quote_to_proto

_REQUEST_ID_MAX = 200
# Under gRPC's default 4 MiB receive limit of the gateway's channel, with room for the envelope.
MAX_PDF_BYTES = 3_500_000
# A version's document never changes once it left draft (every later change is a new version);
# a draft's document changes with each edit, so keeping it would only evict the others.
_FINAL_STATUSES = frozenset(s.value for s in domain.QuoteStatus if s is not domain.QuoteStatus.DRAFT)


@dataclass(frozen=True)
class QuoteSettings:
    # IANA: the company's calendar (quote dates, expiry).
    time_zone: str
    # The seller printed on every document.
    company: CompanyDetails


def _request_id(value: str) -> str:
    if len(value) > _REQUEST_ID_MAX:
        raise InvalidArgument(
            "request_id is too long", field_violations=[("request_id", f"at most {_REQUEST_ID_MAX} characters")]
        )
    return value.strip()


class QuotesServicer(quotes_pb2_grpc.QuotesServiceServicer):
    def __init__(self, db: Database, settings: QuoteSettings) -> None:
        self.db = db
        self.settings = settings
        self.rendered = RenderedPdfs()

    def _today(self) -> date:
        return domain.today_in(self.settings.time_zone, datetime.now(UTC))

    async def CreateQuote(
        self, request: quotes_pb2.CreateQuoteRequest, context: grpc.aio.ServicerContext
    ) -> quotes_pb2.CreateQuoteResponse:
        require({"quote.deal_id": request.quote.deal_id, "quote.price_list_id": request.quote.price_list_id})
        request_id = _request_id(request.request_id)
        draft = draft_of(request.quote)
        today = self._today()
        async with self.db.unit_of_work() as uow:
            view = await commands.create_quote(
                uow, request.quote.deal_id, request.quote.price_list_id, draft, today=today, request_id=request_id
            )
        return quotes_pb2.CreateQuoteResponse(quote=quote_to_proto(view, today))

    async def GetQuote(
        self, request: quotes_pb2.GetQuoteRequest, context: grpc.aio.ServicerContext
    ) -> quotes_pb2.GetQuoteResponse:
        require({"quote_id": request.quote_id})
        async with self.db.unit_of_work() as uow:
            view = await queries.get_quote(uow, request.quote_id)
        return quotes_pb2.GetQuoteResponse(quote=quote_to_proto(view, self._today()))

    async def ListQuotes(
        self, request: quotes_pb2.ListQuotesRequest, context: grpc.aio.ServicerContext
    ) -> quotes_pb2.ListQuotesResponse:
        require({"deal_id": request.deal_id})
        after = page_position(request.page_token, datetime.fromisoformat, str)
        async with self.db.unit_of_work() as uow:
            views, position = await queries.list_quotes(
                uow, request.deal_id, limit=page_size(request.page_size), after=after
            )
        today = self._today()
        return quotes_pb2.ListQuotesResponse(
            quotes=[quote_to_proto(v, today) for v in views],
            next_page_token=encode_page_token(*position) if position else "",
        )

    async def UpdateQuote(
        self, request: quotes_pb2.UpdateQuoteRequest, context: grpc.aio.ServicerContext
    ) -> quotes_pb2.UpdateQuoteResponse:
        require({"quote.id": request.quote.id})
        draft = draft_of(request.quote)
        today = self._today()
        async with self.db.unit_of_work() as uow:
            view = await commands.update_quote(
                uow, request.quote.id, draft, list(request.update_mask.paths), today=today, etag=request.etag
            )
        return quotes_pb2.UpdateQuoteResponse(quote=quote_to_proto(view, today))

    async def ReviseQuote(
        self, request: quotes_pb2.ReviseQuoteRequest, context: grpc.aio.ServicerContext
    ) -> quotes_pb2.ReviseQuoteResponse:
        require({"quote_id": request.quote_id})
        request_id = _request_id(request.request_id)
        today = self._today()
        async with self.db.unit_of_work() as uow:
            view = await commands.revise_quote(
                uow, request.quote_id, today=today, etag=request.etag, request_id=request_id
            )
        return quotes_pb2.ReviseQuoteResponse(quote=quote_to_proto(view, today))

    async def SendQuote(
        self, request: quotes_pb2.SendQuoteRequest, context: grpc.aio.ServicerContext
    ) -> quotes_pb2.SendQuoteResponse:
        require({"quote_id": request.quote_id})
        today = self._today()
        async with self.db.unit_of_work() as uow:
            view = await commands.send_quote(uow, request.quote_id, today=today, etag=request.etag)
        return quotes_pb2.SendQuoteResponse(quote=quote_to_proto(view, today))

    async def AcceptQuote(
        self, request: quotes_pb2.AcceptQuoteRequest, context: grpc.aio.ServicerContext
    ) -> quotes_pb2.AcceptQuoteResponse:
        require({"quote_id": request.quote_id})
        today = self._today()
        async with self.db.unit_of_work() as uow:
            view = await commands.accept_quote(uow, request.quote_id, today=today, etag=request.etag)
        return quotes_pb2.AcceptQuoteResponse(quote=quote_to_proto(view, today))

    async def RejectQuote(
        self, request: quotes_pb2.RejectQuoteRequest, context: grpc.aio.ServicerContext
    ) -> quotes_pb2.RejectQuoteResponse:
        require({"quote_id": request.quote_id})
        today = self._today()
        async with self.db.unit_of_work() as uow:
            view = await commands.reject_quote(
                uow, request.quote_id, today=today, reason=request.reason, etag=request.etag
            )
        return quotes_pb2.RejectQuoteResponse(quote=quote_to_proto(view, today))

    async def RenderQuotePdf(
        self, request: quotes_pb2.RenderQuotePdfRequest, context: grpc.aio.ServicerContext
    ) -> quotes_pb2.RenderQuotePdfResponse:
        """Rendered outside the transaction (in a worker thread: it is CPU-bound), from the version
        as read; a document past the size cap is refused rather than cut. A version past draft is
        rendered once per process (its row_version changes with any change to it); when every
        render slot is taken, RESOURCE_EXHAUSTED (RENDER_BUSY)."""
        require({"quote_id": request.quote_id})
        async with self.db.unit_of_work() as uow:
            view = await queries.get_quote(uow, request.quote_id)
        row = view.row
        key = (row.id, row.row_version, row.locale)
        pdf = self.rendered.get(key)
        if pdf is None:
            pdf = await render_quote_pdf_async(quote_document(row, view.lines, self.settings.company))
            if len(pdf) > MAX_PDF_BYTES:
                raise FailedPrecondition(
                    f"the document is {len(pdf)} bytes, above the {MAX_PDF_BYTES} a download carries",
                    reason="QUOTE_DOCUMENT_TOO_LARGE",
                    field_violations=[("lines", "too many or too long: split the quote")],
                )
            if row.status in _FINAL_STATUSES:
                self.rendered.put(key, pdf)
        return quotes_pb2.RenderQuotePdfResponse(pdf=pdf, file_name=domain.file_name(row.number, row.version))
