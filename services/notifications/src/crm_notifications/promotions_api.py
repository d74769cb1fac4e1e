"""PromotionsService: proto ↔ promotions, and what comes back from the SMS provider (replies and
delivery receipts, authenticated by the gateway). Errors are mapped by the chassis interceptor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import grpc
from google.protobuf import json_format

from crm.customers.v1 import customers_pb2, customers_pb2_grpc
from crm.notifications.v1 import events_pb2, promotions_pb2, promotions_pb2_grpc
from crm_kit.company import company_zone
from crm_kit.db import Database
from crm_kit.errors import FailedPrecondition, InvalidArgument, NotFound, raise_all, remote_field_violations, require
from crm_kit.grpc_client import call_idempotent
from crm_kit.protoconv import encode_page_token, page_position, page_size, to_timestamp
from crm_notifications import advertising, domain, promotion_store, replies
from crm_notifications.promotions import (
    CANCELLABLE,
    DEFAULT_WINNER_WAIT_MINUTES,
    MAX_NAME,
    PAUSABLE,
    VARIANTS,
    LocaleEstimate,
    Personalizer,
    PromotionStatus,
    Recipient,
    Text,
    check_test,
    check_texts,
    estimate_sms,
    landing_url,
    recipient_groups,
    stored_texts,
    variants_in,
)
from crm_notifications.sms_provider import SmsGateway

# The recipients whose messages an estimate renders (CountAudience's largest sample).
ESTIMATE_SAMPLE = 20
# A send time this far in the past is a mistake, not "now" (clocks and a slow form allow a little).
PAST_TOLERANCE = timedelta(minutes=1)
MAX_PRICE_MINOR = 1_000_000
MAX_LINK = 500

REPORT_COUNTS = (
    "clicked",
    "opened",
    "recipients",
    "sent",
    "delivered",
    "undelivered",
    "failed",
    "suppressed",
    "opted_out",
    "sms_parts",
    "cost_minor",
)


def _cost(row: Any, counts: dict[str, Any]) -> int:
    """What a report row's messages cost: SMS parts × the price per part, or e-mails sent × theirs."""
    if row.channel == domain.EMAIL:
        return int(counts["sent"]) * int(row.email_price_minor)
    return int(counts["sms_parts"]) * int(row.sms_part_price_minor)


def _ab(row: Any) -> bool:
    """Whether the promotion's texts are of more than one variant."""
    return len(variants_in(stored_texts(row.texts))) > 1


_STATUS = {s.value: getattr(promotions_pb2, f"PROMOTION_STATUS_{s.name}") for s in PromotionStatus}


def promotion_to_proto(row: Any, processed: int = 0) -> promotions_pb2.Promotion:
    promotion = promotions_pb2.Promotion(
        id=row.id,
        name=row.name,
        channel=row.channel,
        audience=json_format.ParseDict(row.audience, customers_pb2.AudienceFilter()),
        texts=[
            promotions_pb2.PromotionText(
                locale=t["locale"], subject=t.get("subject", ""), body=t["body"], variant=t.get("variant", "A")
            )
            for t in row.texts
        ],
        status=_STATUS[row.status],
        recipients=row.recipients,
        processed=processed,
        audience_resolved=row.audience_resolved,
        sms_part_price_minor=row.sms_part_price_minor,
        currency_code=row.currency_code,
        created_by=row.created_by,
        scheduled_by=row.scheduled_by,
        approved_by=row.approved_by,
        link_url=row.link_url or "",
        create_time=to_timestamp(row.created_at),
        update_time=to_timestamp(row.updated_at),
        send_time=to_timestamp(row.send_at),
        complete_time=to_timestamp(row.completed_at),
        row_version=row.row_version,
        test_percent=row.test_percent,
        winner_rule=row.winner_rule,
        winner_wait_minutes=row.winner_wait_minutes,
        winner_variant=row.winner_variant,
        winner_time=to_timestamp(row.winner_at),
        email_price_minor=row.email_price_minor,
        track_opens=row.track_opens,
    )
    return promotion


def _texts(request: promotions_pb2.CreatePromotionRequest) -> list[Text]:
    return [Text(t.locale, t.subject, t.body, t.variant or VARIANTS[0]) for t in request.texts]


def _web_address(url: str) -> bool:
    """An http(s) URL with a host, no spaces or control characters, at most MAX_LINK characters."""
    try:
        parts = urlsplit(url)
    except ValueError:  # "https://x]": an unbalanced IPv6 bracket
        return False
    printable = all(ch.isprintable() and not ch.isspace() for ch in url)
    return len(url) <= MAX_LINK and parts.scheme in ("http", "https") and bool(parts.netloc) and printable


def _basics(request: promotions_pb2.CreatePromotionRequest) -> list[InvalidArgument]:
    problems = []
    if not 0 < len(request.name.strip()) <= MAX_NAME:
        problems.append(InvalidArgument("no name", field_violations=[("name", f"1 to {MAX_NAME} characters")]))
    if request.channel not in (domain.SMS, domain.EMAIL):
        problems.append(InvalidArgument("unknown channel", field_violations=[("channel", "must be sms or email")]))
    if not 0 <= request.sms_part_price_minor <= MAX_PRICE_MINOR:
        problems.append(
            InvalidArgument("price", field_violations=[("sms_part_price_minor", f"0 to {MAX_PRICE_MINOR}")])
        )
    if request.link_url and not _web_address(request.link_url):
        problems.append(
            InvalidArgument("link", field_violations=[("link_url", f"an http(s) URL of at most {MAX_LINK} characters")])
        )
    if not 0 <= request.email_price_minor <= MAX_PRICE_MINOR:
        problems.append(InvalidArgument("price", field_violations=[("email_price_minor", f"0 to {MAX_PRICE_MINOR}")]))
    if request.track_opens and request.channel != domain.EMAIL:
        problems.append(
            InvalidArgument("opens", field_violations=[("track_opens", "e-mail only: an SMS has no image")])
        )
    priced = request.sms_part_price_minor or request.email_price_minor
    if priced and not (len(request.currency_code) == 3 and request.currency_code.isupper()):
        problems.append(
            InvalidArgument("currency", field_violations=[("currency_code", "an ISO 4217 code with a price")])
        )
    return problems


class PromotionsServicer(promotions_pb2_grpc.PromotionsServiceServicer):
    def __init__(
        self,
        db: Database,
        customers: customers_pb2_grpc.CustomersServiceStub,
        sms: SmsGateway,
        *,
        rules: advertising.AdvertisingRules,
        advertiser: advertising.Advertiser,
        sms_sender: str,
        unsubscribe_secret: bytes,
        approval_above: int,
        time_zone: str = "Asia/Jerusalem",
        unsubscribe_page_url: str = "http://localhost:8081",
        short_link_url: str = "http://localhost:8080/r",
    ) -> None:
        self.db = db
        self.customers = customers
        self.rules = rules
        self.advertiser = advertiser
        self.zone = company_zone(time_zone)
        self.approval_above = approval_above
        # Renders a sampled recipient's message as the runner would, for the estimate's SMS parts.
        self.personal = Personalizer(unsubscribe_secret, advertiser, unsubscribe_page_url, short_link_url)
        self.replies = replies.Replies(
            db, sms, rules=rules, advertiser=advertiser, sender=sms_sender, unsubscribe_secret=unsubscribe_secret
        )

    def _text_problems(self, channel: str, texts: list[Text], has_link: bool) -> list[InvalidArgument]:
        found = check_texts(
            channel,
            texts,
            rules=self.rules,
            advertiser=self.advertiser,
            today=datetime.now(self.zone).date(),
            unsubscribe_link="https://example.invalid/u/sample",
            has_link=has_link,
        )
        return [InvalidArgument(p.description, field_violations=[(p.field, p.description)]) for p in found]

    async def _count(
        self, audience: customers_pb2.AudienceFilter, channel: str, sample_size: int = 0
    ) -> customers_pb2.CountAudienceResponse:
        """Who the audience reaches now; its INVALID_ARGUMENT named under `audience.`."""
        request = customers_pb2.CountAudienceRequest(
            filter=audience, channel=channel, purpose="marketing", sample_size=sample_size
        )
        try:
            reply: customers_pb2.CountAudienceResponse = await call_idempotent(
                lambda: self.customers.CountAudience(request)
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.INVALID_ARGUMENT:
                raise
            violations = [(f"audience.{f}", d) for f, d in remote_field_violations(exc)] or [
                ("audience", exc.details() or "")
            ]
            raise InvalidArgument("the audience cannot be resolved", field_violations=violations) from exc
        return reply

    async def CreatePromotion(
        self, request: promotions_pb2.CreatePromotionRequest, context: grpc.aio.ServicerContext
    ) -> promotions_pb2.CreatePromotionResponse:
        problems = _basics(request)
        if request.channel in (domain.SMS, domain.EMAIL):
            problems += self._text_problems(request.channel, _texts(request), bool(request.link_url))
        wait = request.winner_wait_minutes or DEFAULT_WINNER_WAIT_MINUTES
        problems += [
            InvalidArgument(p.description, field_violations=[(p.field, p.description)])
            for p in check_test(
                _texts(request), request.test_percent, request.winner_rule, wait, track_opens=request.track_opens
            )
        ]
        raise_all(problems)
        await self._count(request.audience, request.channel)
        new = promotion_store.NewPromotion(
            name=request.name.strip(),
            channel=request.channel,
            audience=json_format.MessageToDict(request.audience),
            texts=[
                {"locale": t.locale, "subject": t.subject, "body": t.body, "variant": t.variant}
                for t in _texts(request)
            ],
            test_percent=request.test_percent,
            winner_rule=request.winner_rule,
            winner_wait_minutes=wait,
            email_price_minor=request.email_price_minor,
            track_opens=request.track_opens,
            sms_part_price_minor=request.sms_part_price_minor,
            currency_code=request.currency_code,
            request_id=request.request_id,
            link_url=request.link_url or None,
        )
        async with self.db.unit_of_work() as uow:
            row = await promotion_store.create(uow, new, datetime.now(UTC))
        return promotions_pb2.CreatePromotionResponse(promotion=promotion_to_proto(row))

    async def GetPromotion(
        self, request: promotions_pb2.GetPromotionRequest, context: grpc.aio.ServicerContext
    ) -> promotions_pb2.GetPromotionResponse:
        require({"promotion_id": request.promotion_id})
        async with self.db.unit_of_work() as uow:
            row = await promotion_store.get(uow, request.promotion_id)
            done = await promotion_store.processed(uow, [row.id])
        return promotions_pb2.GetPromotionResponse(promotion=promotion_to_proto(row, done.get(row.id, 0)))

    async def ListPromotions(
        self, request: promotions_pb2.ListPromotionsRequest, context: grpc.aio.ServicerContext
    ) -> promotions_pb2.ListPromotionsResponse:
        async with self.db.unit_of_work() as uow:
            rows, next_key = await promotion_store.page(
                uow,
                limit=page_size(request.page_size),
                after=page_position(request.page_token, datetime.fromisoformat, str),
            )
            done = await promotion_store.processed(uow, [r.id for r in rows])
        return promotions_pb2.ListPromotionsResponse(
            promotions=[promotion_to_proto(r, done.get(r.id, 0)) for r in rows],
            next_page_token=encode_page_token(*next_key) if next_key else "",
        )

    async def SchedulePromotion(
        self, request: promotions_pb2.SchedulePromotionRequest, context: grpc.aio.ServicerContext
    ) -> promotions_pb2.SchedulePromotionResponse:
        require({"promotion_id": request.promotion_id})
        now = datetime.now(UTC)
        send_at = request.send_time.ToDatetime(tzinfo=UTC) if request.HasField("send_time") else now
        if send_at < now - PAST_TOLERANCE:
            raise InvalidArgument(
                "the send time has passed", field_violations=[("send_time", "must not be in the past")]
            )
        async with self.db.unit_of_work() as uow:
            row = await promotion_store.get(uow, request.promotion_id)
        # The rules may have changed since the draft: a promotion starts only if its texts meet them now.
        raise_all(self._text_problems(row.channel, stored_texts(row.texts), bool(row.link_url)))
        count = await self._count(json_format.ParseDict(row.audience, customers_pb2.AudienceFilter()), row.channel)
        if count.reachable == 0:
            raise FailedPrecondition(
                "the audience reaches nobody who may receive advertising on this channel",
                reason="AUDIENCE_EMPTY",
                field_violations=[("audience", f"matches {count.matched}, reachable 0")],
            )
        async with self.db.unit_of_work() as uow:
            locked = await promotion_store.get(uow, request.promotion_id, lock=True)
            promotion_store.check_version(locked, request.row_version)
            scheduled = await promotion_store.schedule(
                uow, locked, max(send_at, now), count.reachable, self.approval_above, now
            )
        return promotions_pb2.SchedulePromotionResponse(
            promotion=promotion_to_proto(scheduled), reachable=count.reachable
        )

    async def _change(
        self, promotion_id: str, action: str, allowed: frozenset[PromotionStatus]
    ) -> promotions_pb2.Promotion:
        require({"promotion_id": promotion_id})
        async with self.db.unit_of_work() as uow:
            if action == "resumed":
                current = await promotion_store.get(uow, promotion_id)
                # A promotion paused before its time resumes as scheduled; one that had started, sending.
                target = PromotionStatus.SENDING if current.recipients else PromotionStatus.SCHEDULED
            else:
                target = PromotionStatus.PAUSED if action == "paused" else PromotionStatus.CANCELLED
            row = await promotion_store.change_status(uow, promotion_id, action, allowed, target, datetime.now(UTC))
            done = await promotion_store.processed(uow, [row.id])
        return promotion_to_proto(row, done.get(row.id, 0))

    async def PausePromotion(
        self, request: promotions_pb2.PausePromotionRequest, context: grpc.aio.ServicerContext
    ) -> promotions_pb2.PausePromotionResponse:
        changed = await self._change(request.promotion_id, "paused", PAUSABLE)
        return promotions_pb2.PausePromotionResponse(promotion=changed)

    async def ResumePromotion(
        self, request: promotions_pb2.ResumePromotionRequest, context: grpc.aio.ServicerContext
    ) -> promotions_pb2.ResumePromotionResponse:
        changed = await self._change(request.promotion_id, "resumed", frozenset({PromotionStatus.PAUSED}))
        return promotions_pb2.ResumePromotionResponse(promotion=changed)

    async def CancelPromotion(
        self, request: promotions_pb2.CancelPromotionRequest, context: grpc.aio.ServicerContext
    ) -> promotions_pb2.CancelPromotionResponse:
        changed = await self._change(request.promotion_id, "cancelled", CANCELLABLE)
        return promotions_pb2.CancelPromotionResponse(promotion=changed)

    async def GetPromotionReport(
        self, request: promotions_pb2.GetPromotionReportRequest, context: grpc.aio.ServicerContext
    ) -> promotions_pb2.GetPromotionReportResponse:
        require({"promotion_id": request.promotion_id})
        async with self.db.unit_of_work() as uow:
            row = await promotion_store.get(uow, request.promotion_id)
            by_locale = await promotion_store.report(uow, row.id)
            by_variant = await promotion_store.report(uow, row.id, by="variant") if _ab(row) else []
            done = await promotion_store.processed(uow, [row.id])
        reports = [promotions_pb2.PromotionVariantReport(**v, cost_minor=_cost(row, v)) for v in by_locale]
        split = [promotions_pb2.PromotionVariantReport(**v, cost_minor=_cost(row, v)) for v in by_variant]
        total = promotions_pb2.PromotionVariantReport(locale="")
        for v in reports:
            for name in REPORT_COUNTS:
                setattr(total, name, getattr(total, name) + getattr(v, name))
        processed = done.get(row.id, 0)
        return promotions_pb2.GetPromotionReportResponse(
            promotion=promotion_to_proto(row, processed),
            total=total,
            variants=reports,
            remaining=max(row.recipients - processed, 0),
            split=split,
        )

    async def ApprovePromotion(
        self, request: promotions_pb2.ApprovePromotionRequest, context: grpc.aio.ServicerContext
    ) -> promotions_pb2.ApprovePromotionResponse:
        require({"promotion_id": request.promotion_id})
        async with self.db.unit_of_work() as uow:
            row = await promotion_store.get(uow, request.promotion_id)
        count = await self._count(json_format.ParseDict(row.audience, customers_pb2.AudienceFilter()), row.channel)
        async with self.db.unit_of_work() as uow:
            approved = await promotion_store.approve(uow, request.promotion_id, count.reachable, datetime.now(UTC))
        return promotions_pb2.ApprovePromotionResponse(promotion=promotion_to_proto(approved))

    async def Unsubscribe(
        self, request: promotions_pb2.UnsubscribeRequest, context: grpc.aio.ServicerContext
    ) -> promotions_pb2.UnsubscribeResponse:
        return promotions_pb2.UnsubscribeResponse(applied=await self.replies.unsubscribe(request.token))

    async def ReceiveInboundSms(
        self, request: promotions_pb2.ReceiveInboundSmsRequest, context: grpc.aio.ServicerContext
    ) -> promotions_pb2.ReceiveInboundSmsResponse:
        action, applied = await self.replies.receive(request)
        return promotions_pb2.ReceiveInboundSmsResponse(action=action, applied=applied)

    async def RecordDeliveryReceipt(
        self, request: promotions_pb2.RecordDeliveryReceiptRequest, context: grpc.aio.ServicerContext
    ) -> promotions_pb2.RecordDeliveryReceiptResponse:
        return promotions_pb2.RecordDeliveryReceiptResponse(applied=await self.replies.receipt(request))

    async def RecordOpen(
        self, request: promotions_pb2.RecordOpenRequest, context: grpc.aio.ServicerContext
    ) -> promotions_pb2.RecordOpenResponse:
        require({"code": request.code})
        async with self.db.unit_of_work() as uow:
            first = await promotion_store.record_open(uow, request.code, datetime.now(UTC))
        if first is None:
            raise NotFound("no such tracked message", reason="LINK_NOT_FOUND")
        return promotions_pb2.RecordOpenResponse(first=first)

    async def FollowLink(
        self, request: promotions_pb2.FollowLinkRequest, context: grpc.aio.ServicerContext
    ) -> promotions_pb2.FollowLinkResponse:
        require({"code": request.code})
        now = datetime.now(UTC)
        async with self.db.unit_of_work() as uow:
            row = await promotion_store.follow_link(uow, request.code, now)
            if row is None or not row.link_url:
                raise NotFound("no such link", reason="LINK_NOT_FOUND")
            if row.first_click:
                await uow.record_event(
                    events_pb2.MessageClicked(
                        message_id=row.id,
                        promotion_id=row.promotion_id,
                        customer_id=row.customer_id,
                        click_time=to_timestamp(now),
                    ),
                    time=now,
                )
        return promotions_pb2.FollowLinkResponse(url=landing_url(row.link_url, row.channel, row.name))

    async def EstimatePromotion(
        self, request: promotions_pb2.EstimatePromotionRequest, context: grpc.aio.ServicerContext
    ) -> promotions_pb2.EstimatePromotionResponse:
        require({"promotion_id": request.promotion_id})
        async with self.db.unit_of_work() as uow:
            row = await promotion_store.get(uow, request.promotion_id)
        audience = json_format.ParseDict(row.audience, customers_pb2.AudienceFilter())
        counted = await self._count(audience, row.channel, sample_size=ESTIMATE_SAMPLE)
        locales = self._locale_estimates(row, counted)
        sms_parts = sum(e.sms_parts for e in locales)
        return promotions_pb2.EstimatePromotionResponse(
            promotion_id=row.id,
            channel=row.channel,
            reachable=counted.reachable,
            sms_parts=sms_parts,
            cost_minor=_cost(row, {"sent": counted.reachable, "sms_parts": sms_parts}),
            currency_code=row.currency_code or "",
            locales=[
                promotions_pb2.LocaleEstimate(
                    locale=e.locale,
                    recipients=e.recipients,
                    parts_per_message=e.parts_per_message,
                    sms_parts=e.sms_parts,
                )
                for e in locales
            ],
        )

    def _locale_estimates(self, row: Any, counted: customers_pb2.CountAudienceResponse) -> list[LocaleEstimate]:
        """Per recipients' locale: how many, and (SMS) the parts of the longest message one gets."""
        by_locale = dict(counted.reachable_by_locale)
        if row.channel != domain.SMS:
            groups = recipient_groups(counted.reachable, by_locale)
            return [LocaleEstimate(locale, n, 0) for locale, n in groups.items()]
        today = datetime.now(self.zone).date()
        sample = [Recipient(m.customer_id, m.address, m.locale, m.full_name) for m in counted.sample]

        def body_of(text: Text, recipient: Recipient) -> str:
            return self.personal.message(row.id, text, recipient, today=today, with_link=bool(row.link_url))[1]

        return estimate_sms(stored_texts(row.texts), counted.reachable, by_locale, sample, body_of)
