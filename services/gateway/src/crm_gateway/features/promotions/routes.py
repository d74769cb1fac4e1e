"""/promotions: advertising by SMS or e-mail to an audience of consenting customers, sent once per
person in batches that survive restarts (notifications' PromotionsService), with its report; the
audience's preview (/audience-previews, customers' CountAudience); and the recipient's unsubscribe
(/public/unsubscribe/{token}: the link in the e-mail and RFC 8058's one-click POST).

Marketing and admins create, schedule, pause, resume and cancel; a promotion whose audience is
larger than notifications' CRM_PROMOTION_APPROVAL_ABOVE waits for a sales manager's or an admin's
approval, never the scheduler's own. Sales managers read promotions and their reports.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import grpc
from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import RedirectResponse

from crm.customers.v1 import customers_pb2
from crm.notifications.v1 import promotions_pb2
from crm.reporting.v1 import reporting_pb2
from crm_gateway import records
from crm_gateway.clients import BackendClients
from crm_gateway.convert import Money, to_model, to_timestamp
from crm_gateway.deps import Caller, Clients, IdempotencyKey, PageSize, PageToken, ResourceId, api_router
from crm_gateway.features.promotions.schemas import (
    AudiencePreview,
    AudiencePreviewIn,
    CreatePromotionIn,
    Promotion,
    PromotionEstimate,
    PromotionList,
    PromotionReport,
    PromotionResults,
    PromotionScheduled,
    SchedulePromotionIn,
)
from crm_gateway.platform.problems import PROBLEM_RESPONSES
from crm_gateway.records import read
from crm_kit import protoconv

router = api_router()
# No bearer token: the signed token in the link is the credential.
public_router = APIRouter(prefix="/api/v1/public", responses=PROBLEM_RESPONSES)
# A recipient's short tracked link, at the root (a short link in an SMS costs characters).
short_link_router = APIRouter(responses=PROBLEM_RESPONSES)
LinkCode = Annotated[str, Path(min_length=6, max_length=16, pattern=r"^[A-Za-z0-9_-]+$")]
UnsubscribeToken = Annotated[str, Path(min_length=40, max_length=200, pattern=r"^[A-Za-z0-9_.-]+$")]
SAMPLE_SIZE = 5


def mask(address: str) -> str:
    """An address as a preview shows it: enough to recognise, not to use (+9725•••••567, d•••@x.com)."""
    if "@" in address:
        local, _, domain = address.partition("@")
        return f"{local[:1]}•••@{domain}"
    return f"{address[:5]}{'•' * max(len(address) - 8, 0)}{address[-3:]}" if len(address) > 8 else "•••"


@router.post("/audience-previews", tags=["promotions"], operation_id="previewAudience")
async def preview_audience(body: AudiencePreviewIn, clients: Clients, principal: Caller) -> AudiencePreview:
    """How many customers the audience matches, how many of them may receive advertising on the
    channel (and why the others may not), and a few of them, their addresses masked. Sends nothing."""
    reply = await read(
        clients.customers.CountAudience,
        customers_pb2.CountAudienceRequest(
            filter=body.audience.to_proto(), channel=body.channel, purpose="marketing", sample_size=SAMPLE_SIZE
        ),
    )
    preview = to_model(AudiencePreview, reply)
    for member in preview.sample:
        member.address = mask(member.address)
    return preview


@router.post("/promotions", status_code=201, tags=["promotions"], operation_id="createPromotion")
async def create_promotion(
    body: CreatePromotionIn, clients: Clients, principal: Caller, idempotency_key: IdempotencyKey = None
) -> Promotion:
    """A draft promotion: 422 naming each text's problem (an unknown placeholder, what the
    country's advertising rules find missing) and each wrong audience criterion."""
    reply = await clients.promotions.CreatePromotion(body.to_proto(idempotency_key or ""))
    return to_model(Promotion, reply.promotion)


@router.get("/promotions", tags=["promotions"], operation_id="listPromotions")
async def list_promotions(
    clients: Clients, principal: Caller, page_size: PageSize = 0, page_token: PageToken = ""
) -> PromotionList:
    reply = await read(
        clients.promotions.ListPromotions,
        promotions_pb2.ListPromotionsRequest(page_size=protoconv.page_size(page_size), page_token=page_token),
    )
    return to_model(PromotionList, reply)


@router.get("/promotions/{promotion_id}", tags=["promotions"], operation_id="getPromotion")
async def get_promotion(promotion_id: ResourceId, clients: Clients, principal: Caller) -> Promotion:
    """The promotion and its progress (recipients resolved, processed) while it sends."""
    reply = await records.get(
        "promotion",
        promotion_id,
        clients.promotions.GetPromotion,
        promotions_pb2.GetPromotionRequest(promotion_id=promotion_id),
    )
    return to_model(Promotion, reply.promotion)


@router.get("/promotions/{promotion_id}/estimate", tags=["promotions"], operation_id="estimatePromotion")
async def estimate_promotion(promotion_id: ResourceId, clients: Clients, principal: Caller) -> PromotionEstimate:
    """What the promotion would cost if it were sent now, before it is scheduled: who its audience
    reaches per language and, for SMS, the parts each one's message takes (rendered for sampled
    recipients; the longest A/B variant), priced."""
    reply = await records.get(
        "promotion",
        promotion_id,
        clients.promotions.EstimatePromotion,
        promotions_pb2.EstimatePromotionRequest(promotion_id=promotion_id),
    )
    return to_model(PromotionEstimate, reply)


@router.get("/promotions/{promotion_id}/report", tags=["promotions"], operation_id="getPromotionReport")
async def get_promotion_report(
    promotion_id: ResourceId,
    clients: Clients,
    principal: Caller,
    window_days: Annotated[int, Query(ge=1, le=365)] = 30,
) -> PromotionReport:
    """Per text locale and in total: sent, delivered, undelivered, failed, suppressed at the last
    moment, opted out after it, clicked, SMS parts and their cost; and what it brought (reporting):
    recipients who won a deal within `window_days` after their message, and the revenue per shekel
    spent. The results are null while reporting cannot be reached."""
    reply = await records.get(
        "promotion",
        promotion_id,
        clients.promotions.GetPromotionReport,
        promotions_pb2.GetPromotionReportRequest(promotion_id=promotion_id),
    )
    report = to_model(PromotionReport, reply)
    report.results = await _results(clients, promotion_id, window_days, report)
    return report


async def _results(
    clients: BackendClients, promotion_id: str, window_days: int, report: PromotionReport
) -> PromotionResults | None:
    request = reporting_pb2.GetPromotionResultsRequest(promotion_id=promotion_id, window_days=window_days)
    try:
        found = to_model(PromotionResults, await read(clients.reporting.GetPromotionResults, request))
    except grpc.aio.AioRpcError as exc:
        if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            return None
        raise
    cost, currency = report.total.cost_minor, report.promotion.currency_code
    earned = sum(r.amount_minor for r in found.revenue if r.currency_code == currency)
    found.revenue_per_cost = round(earned / cost, 2) if cost and currency else None
    if cost and currency:
        if found.buyers:
            found.cost_per_buyer = Money(amount_minor=round(cost / found.buyers), currency_code=currency)
        if found.deals_won:
            found.cost_per_deal = Money(amount_minor=round(cost / found.deals_won), currency_code=currency)
    return found


@router.post("/promotions/{promotion_id}/schedule", tags=["promotions"], operation_id="schedulePromotion")
async def schedule_promotion(
    promotion_id: ResourceId, body: SchedulePromotionIn, clients: Clients, principal: Caller
) -> PromotionScheduled:
    """Draft → scheduled (or awaiting approval for a large audience). 422 for a time in the past or
    texts the rules refuse now; 409 when the audience reaches nobody or the status is not draft."""
    reply = await records.change(
        "promotion",
        promotion_id,
        clients.promotions.SchedulePromotion,
        promotions_pb2.SchedulePromotionRequest(
            promotion_id=promotion_id, send_time=to_timestamp(body.send_time), row_version=body.row_version
        ),
    )
    return to_model(PromotionScheduled, reply)


Action = (
    promotions_pb2.PausePromotionRequest
    | promotions_pb2.ResumePromotionRequest
    | promotions_pb2.CancelPromotionRequest
    | promotions_pb2.ApprovePromotionRequest
)


async def _change(promotion_id: str, method: Callable[[Any], Awaitable[Any]], request: Action) -> Promotion:
    reply = await records.change("promotion", promotion_id, method, request)
    return to_model(Promotion, reply.promotion)


@router.post("/promotions/{promotion_id}/pause", tags=["promotions"], operation_id="pausePromotion")
async def pause_promotion(promotion_id: ResourceId, clients: Clients, principal: Caller) -> Promotion:
    """Stops after the batch in flight; nothing sent is sent again on resume."""
    return await _change(
        promotion_id,
        clients.promotions.PausePromotion,
        promotions_pb2.PausePromotionRequest(promotion_id=promotion_id),
    )


@router.post("/promotions/{promotion_id}/resume", tags=["promotions"], operation_id="resumePromotion")
async def resume_promotion(promotion_id: ResourceId, clients: Clients, principal: Caller) -> Promotion:
    return await _change(
        promotion_id,
        clients.promotions.ResumePromotion,
        promotions_pb2.ResumePromotionRequest(promotion_id=promotion_id),
    )


@router.post("/promotions/{promotion_id}/cancel", tags=["promotions"], operation_id="cancelPromotion")
async def cancel_promotion(promotion_id: ResourceId, clients: Clients, principal: Caller) -> Promotion:
    """Final: the recipients not reached yet get nothing."""
    return await _change(
        promotion_id,
        clients.promotions.CancelPromotion,
        promotions_pb2.CancelPromotionRequest(promotion_id=promotion_id),
    )


@router.post("/promotions/{promotion_id}/approve", tags=["promotions"], operation_id="approvePromotion")
async def approve_promotion(promotion_id: ResourceId, clients: Clients, principal: Caller) -> Promotion:
    """Awaiting approval → scheduled; 403 for whoever scheduled it."""
    return await _change(
        promotion_id,
        clients.promotions.ApprovePromotion,
        promotions_pb2.ApprovePromotionRequest(promotion_id=promotion_id),
    )


@public_router.post("/unsubscribe/{token}", status_code=204, tags=["promotions"], operation_id="unsubscribe")
async def unsubscribe(token: UnsubscribeToken, clients: Clients, request: Request) -> Response:
    """The recipient refuses further advertising on the channel the promotion reached them by:
    the e-mail's unsubscribe page posts here, and so does a mail client's one-click unsubscribe
    (RFC 8058: `List-Unsubscribe=One-Click` in the body, ignored). 204 whether or not the address
    was already unsubscribed; 404 for a link that is not one, counted against the address like a
    bad credential."""
    await records.change_by_token(
        request, "unsubscribe link", clients.promotions.Unsubscribe, promotions_pb2.UnsubscribeRequest(token=token)
    )
    return Response(status_code=204)


@short_link_router.get("/r/{code}", status_code=302, tags=["promotions"], operation_id="followLink")
async def follow_link(code: LinkCode, clients: Clients, request: Request) -> RedirectResponse:
    """A promotion recipient's own short link: 302 to the promotion's page (with UTM parameters);
    the first follow counts as the message's click. 404 for a code that is not one, counted
    against the address like a bad credential."""
    reply = await records.change_by_token(
        request, "link", clients.promotions.FollowLink, promotions_pb2.FollowLinkRequest(code=code)
    )
    # A link's target was checked when the promotion was made (http or https).
    return RedirectResponse(reply.url, status_code=302, headers={"Cache-Control": "no-store"})


# A transparent 1×1 GIF: what a tracked e-mail's open image answers.
OPEN_IMAGE = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


@short_link_router.get(
    "/o/{code}",
    tags=["promotions"],
    operation_id="openImage",
    response_class=Response,
    responses={200: {"content": {"image/gif": {}}, "description": "a transparent 1×1 image"}},
)
async def open_image(code: LinkCode, clients: Clients, request: Request) -> Response:
    """A tracked e-mail's open image (the promotion chose track_opens): its first fetch records the
    message's open. 404 for a code that is not one of a tracked message, counted against the
    address like a bad credential. Never cached, so each mail client asks."""
    await records.change_by_token(
        request, "message", clients.promotions.RecordOpen, promotions_pb2.RecordOpenRequest(code=code)
    )
    return Response(OPEN_IMAGE, media_type="image/gif", headers={"Cache-Control": "no-store, private"})
