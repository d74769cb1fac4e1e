"""Bodies of /promotions (advertising by SMS or e-mail to an audience) and /audience-previews."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints, ValidationInfo, field_validator

from crm.customers.v1 import customers_pb2
from crm.notifications.v1 import promotions_pb2
from crm_gateway.convert import NOT_BLANK, STRIPPED, IsoDateTime, Money, RequestBody, to_timestamp

Locale = Literal["he-IL", "fa-IR", "en-US"]
# Lengths are of the text as sent (the published schema's maxLength), then it is trimmed and must
# not be blank: trimming first would accept a longer text than the schema allows.
Word = Annotated[str, StringConstraints(min_length=1, max_length=100), STRIPPED, NOT_BLANK]
Words = Annotated[list[Word], Field(max_length=50)]
PromotionStatus = Literal[
    "unspecified", "draft", "scheduled", "sending", "paused", "completed", "cancelled", "awaiting_approval"
]


class Audience(BaseModel):
    """Who a promotion goes to: customers matching every criterion given (an empty audience is
    every customer), who consented to advertising on the promotion's channel and have an address
    for it. Customers with an open complaint, or whose latest survey score is 1 or 2, are left out
    unless included."""

    tags: list[str] = []
    cities: list[str] = []
    sources: list[str] = []
    # Bought a product whose SKU or product line is this, or whose description contains it.
    products: list[str] = []
    # A purchase (of the products, when given) closed in [purchased_after, purchased_before).
    purchased_after: datetime | None = None
    purchased_before: datetime | None = None
    min_lifetime_value_minor: int = 0
    currency_code: str = ""
    include_open_complaints: bool = False
    include_low_satisfaction: bool = False
    locales: list[str] = []
    # Members of this static list (POST /audience-lists) only; "" for none.
    list_id: str = ""
    # The latest purchase (of anything) closed in [last_purchased_after, last_purchased_before):
    # last_purchased_before alone is the win-back segment (bought, but not since).
    last_purchased_after: datetime | None = None
    last_purchased_before: datetime | None = None
    # "some": only customers with an open ticket of any kind; "none": only those without; "" either.
    open_tickets: str = ""


def _as_utc(moment: datetime) -> datetime:
    """A time without an offset is UTC (as to_timestamp reads it)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class AudienceIn(RequestBody):
    tags: Words = []
    cities: Words = []
    sources: Words = []
    products: Words = []
    purchased_after: IsoDateTime | None = None
    purchased_before: IsoDateTime | None = None
    min_lifetime_value_minor: Annotated[int, Field(ge=0, le=10**15)] = 0
    currency_code: Annotated[str, StringConstraints(pattern=r"^([A-Z]{3})?$")] = ""
    include_open_complaints: bool = False
    include_low_satisfaction: bool = False
    locales: Annotated[list[Locale], Field(max_length=3)] = []
    list_id: Annotated[
        str,
        StringConstraints(max_length=64, pattern=r"^[A-Za-z0-9_-]*$"),
        Field(description="only the members of this static list (POST /audience-lists)"),
    ] = ""
    last_purchased_after: Annotated[
        IsoDateTime | None, Field(description="the customer's latest purchase closed at or after this")
    ] = None
    last_purchased_before: Annotated[
        IsoDateTime | None,
        Field(description="the customer's latest purchase closed before this (bought, but not since: win-back)"),
    ] = None
    open_tickets: Annotated[
        Literal["", "some", "none"],
        Field(description='"some": only customers with an open ticket of any kind; "none": only those without'),
    ] = ""

    @field_validator("purchased_before", "last_purchased_before")
    @classmethod
    def _after_its_start(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        """A window's end after its start: refused here, on the end's own name, before any call."""
        start = info.data.get(str(info.field_name).replace("_before", "_after"))
        if value is not None and start is not None and _as_utc(value) <= _as_utc(start):
            raise ValueError(f"must be after {str(info.field_name).replace('_before', '_after')}")
        return value

    def to_proto(self) -> customers_pb2.AudienceFilter:
        return customers_pb2.AudienceFilter(
            tags=self.tags,
            cities=self.cities,
            sources=self.sources,
            products=self.products,
            purchased_after=to_timestamp(self.purchased_after),
            purchased_before=to_timestamp(self.purchased_before),
            min_lifetime_value_minor=self.min_lifetime_value_minor,
            currency_code=self.currency_code,
            include_open_complaints=self.include_open_complaints,
            include_low_satisfaction=self.include_low_satisfaction,
            locales=self.locales,
            list_id=self.list_id,
            last_purchased_after=to_timestamp(self.last_purchased_after),
            last_purchased_before=to_timestamp(self.last_purchased_before),
            open_tickets=self.open_tickets,
        )


class AudiencePreviewIn(RequestBody):
    channel: Literal["sms", "email"]
    audience: AudienceIn = AudienceIn()


class AudienceMember(BaseModel):
    customer_id: str
    full_name: str
    # Masked: the preview shows who, not how to reach them (marketing reads no customer record).
    address: str
    locale: str


class AudiencePreview(BaseModel):
    # Matching the filter; of them, reachable (consent and an address for the channel).
    matched: int
    reachable: int
    no_consent: int
    no_address: int
    open_complaint: int
    low_satisfaction: int
    sample: list[AudienceMember]


Variant = Literal["A", "B", "C"]


class PromotionTextIn(RequestBody):
    locale: Locale
    # E-mail only; an SMS has none.
    subject: Annotated[str, StringConstraints(max_length=300)] = ""
    body: Annotated[str, StringConstraints(min_length=1, max_length=100_000)]
    # The A/B variant the text belongs to; every variant has its own texts.
    variant: Variant = "A"


class CreatePromotionIn(RequestBody):
    """A draft. Texts: placeholders {name}, {date} ({date:long}, {date:gregorian}, {date:latn}…),
    {advertiser}, {advertiser_contact}, and in an e-mail {unsubscribe_link}; each text must meet the
    country's advertising rules (see POST /message-previews). The first text goes to recipients of
    a locale without one."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=200), STRIPPED, NOT_BLANK]
    channel: Literal["sms", "email"]
    audience: AudienceIn = AudienceIn()
    texts: Annotated[list[PromotionTextIn], Field(min_length=1, max_length=9)]
    # What one SMS part, or one e-mail, costs (minor units of currency_code), for the report's cost.
    sms_part_price_minor: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    email_price_minor: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    currency_code: Annotated[str, StringConstraints(pattern=r"^([A-Z]{3})?$")] = ""
    # Where a text's {link} leads: each recipient gets their own short link to it (/r/<code>), and
    # the first follow of each counts as a click.
    link_url: Annotated[str, StringConstraints(max_length=500, pattern=r"^(https?://\S+)?$")] = ""
    # A retry with the same id (or Idempotency-Key) returns the first promotion.
    request_id: Annotated[str, StringConstraints(max_length=100)] = ""
    # A/B test, with texts of two or three variants: this share of the audience (1 to 50 %) gets the
    # variants first, evenly; winner_wait_minutes after (0: 240) the winner by winner_rule goes to
    # the rest. 0: no test, the variants split everyone evenly. "opens" only with track_opens.
    test_percent: Annotated[int, Field(ge=0, le=50)] = 0
    winner_rule: Literal["", "clicks", "revenue", "opens"] = ""
    track_opens: Annotated[
        bool,
        Field(
            description="e-mail only, off unless chosen: each message's HTML carries a 1×1 image "
            "(/o/<code>) whose first fetch counts as its open. A weak signal: mail clients that fetch "
            "images for privacy open every message, others load none"
        ),
    ] = False
    winner_wait_minutes: Annotated[int, Field(ge=0, le=10_080)] = 0

    def to_proto(self, idempotency_key: str) -> promotions_pb2.CreatePromotionRequest:
        return promotions_pb2.CreatePromotionRequest(
            name=self.name,
            channel=self.channel,
            audience=self.audience.to_proto(),
            texts=[
                promotions_pb2.PromotionText(locale=t.locale, subject=t.subject, body=t.body, variant=t.variant)
                for t in self.texts
            ],
            test_percent=self.test_percent,
            winner_rule=self.winner_rule,
            winner_wait_minutes=self.winner_wait_minutes,
            sms_part_price_minor=self.sms_part_price_minor,
            email_price_minor=self.email_price_minor,
            currency_code=self.currency_code,
            request_id=self.request_id or idempotency_key,
            link_url=self.link_url,
            track_opens=self.track_opens,
        )


class PromotionText(BaseModel):
    locale: str
    subject: str
    body: str
    variant: str


class Promotion(BaseModel):
    id: str
    name: str
    channel: str
    audience: Audience
    texts: list[PromotionText]
    status: PromotionStatus
    send_time: datetime | None
    # Recipients resolved so far, and how many of them have their message recorded.
    recipients: int
    processed: int
    audience_resolved: bool
    sms_part_price_minor: int
    email_price_minor: int
    currency_code: str
    created_by: str
    scheduled_by: str
    approved_by: str
    link_url: str
    create_time: datetime | None
    update_time: datetime | None
    complete_time: datetime | None
    row_version: int
    test_percent: int
    winner_rule: str
    winner_wait_minutes: int
    # The A/B test's winner ("" until chosen) and when.
    winner_variant: str
    winner_time: datetime | None
    # Its e-mails carry an open image (CreatePromotionIn.track_opens).
    track_opens: bool


class PromotionList(BaseModel):
    promotions: list[Promotion]
    next_page_token: str


class SchedulePromotionIn(RequestBody):
    # Unset: now. In the past: 422.
    send_time: IsoDateTime | None = None
    # The version the caller saw (409 when it changed since); 0: any.
    row_version: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0


class PromotionScheduled(BaseModel):
    promotion: Promotion
    reachable: int


class LocaleEstimate(BaseModel):
    # The recipients' locale; "" for those without one (they get the first text).
    locale: str
    recipients: int
    # SMS: the most parts one message in this locale takes (its text rendered for sampled
    # recipients, the longest variant); 0 for e-mail.
    parts_per_message: int
    sms_parts: int


class PromotionEstimate(BaseModel):
    """What the promotion would cost if it were sent now. An upper bound per message; consent,
    quiet hours and frequency caps may send fewer by then."""

    promotion_id: str
    channel: str
    reachable: int
    sms_parts: int
    # SMS parts × the price per part, or reachable × the price per e-mail, in minor units of
    # currency_code (0 and "" when the promotion names no price).
    cost_minor: int
    currency_code: str
    locales: list[LocaleEstimate]


class VariantReport(BaseModel):
    # The text's locale; "" for the total and the A/B split.
    locale: str
    # The A/B variant, in `split`; "" elsewhere.
    variant: str
    recipients: int
    sent: int
    delivered: int
    undelivered: int
    failed: int
    suppressed: int
    opted_out: int
    clicked: int
    # Messages whose open image was fetched (only with track_opens; a weak signal).
    opened: int
    sms_parts: int
    cost_minor: int


class VariantResults(BaseModel):
    variant: str
    recipients: int
    leads: int
    buyers: int
    deals_won: int
    revenue: list[Money]


class PromotionResults(BaseModel):
    """What the promotion brought (reporting): recipients who came in again as a lead, and who won
    a deal, within the window after their message; those deals and their revenue per currency."""

    window_days: int
    recipients: int
    # Recipients who came in again as a lead (any source) within the window after their message.
    leads: int
    buyers: int
    deals_won: int
    revenue: list[Money]
    # Revenue in the promotion's currency per unit of what its messages cost (null without a cost).
    revenue_per_cost: float | None = None
    # What the messages cost per buyer and per won deal, in the promotion's currency (null without
    # a cost or a buyer).
    cost_per_buyer: Money | None = None
    cost_per_deal: Money | None = None
    # The same per A/B variant (empty without variants).
    variants: list[VariantResults] = []


class PromotionReport(BaseModel):
    promotion: Promotion
    total: VariantReport
    variants: list[VariantReport]
    remaining: int
    # Per A/B variant (empty without variants); recipients waiting for the winner are in none.
    split: list[VariantReport] = []
    # Null while reporting cannot be reached: the delivery figures still answer.
    results: PromotionResults | None = None
