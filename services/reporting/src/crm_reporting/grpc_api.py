"""ReportingService and TargetsService: proto ↔ commands and queries. Errors are mapped by the
chassis interceptor."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import grpc

from crm.common.v1 import types_pb2
from crm.reporting.v1 import reporting_pb2, reporting_pb2_grpc, targets_pb2, targets_pb2_grpc
from crm_kit import caller
from crm_kit.db import Database
from crm_kit.errors import InvalidArgument, require
from crm_kit.protoconv import (
    encode_page_token,
    from_date,
    from_timestamp,
    page_position,
    page_size,
    to_date,
    to_timestamp,
)
from crm_reporting import (
    attribution,
    commands,
    crosssell,
    domain,
    funnel,
    funnel_store,
    queries,
    scoring,
    targets,
    value_api,
)
from crm_reporting.retrained import Retrained

log = logging.getLogger(__name__)

ATTRIBUTION_DIMENSIONS = ("source", "campaign")
MAX_MODELS = 4


def _attribution_request(request: reporting_pb2.GetAttributionReportRequest) -> tuple[list[str], float]:
    """The models (in the order asked, each once) and the half-life; INVALID_ARGUMENT naming
    every wrong field."""
    problems = []
    models = list(dict.fromkeys(request.models))
    if not 1 <= len(models) <= MAX_MODELS or any(m not in attribution.MODELS for m in models):
        problems.append(("models", f"1 to {MAX_MODELS} of {', '.join(attribution.MODELS)}"))
    if request.dimension not in ATTRIBUTION_DIMENSIONS:
        problems.append(("dimension", "source or campaign"))
    half_life = request.half_life_days or attribution.DEFAULT_HALF_LIFE_DAYS
    if not 0.5 <= half_life <= 365:
        problems.append(("half_life_days", "0.5 to 365 (0: 7)"))
    if problems:
        raise InvalidArgument("the attribution report cannot be made", field_violations=problems)
    return models, half_life


def attribution_row(
    key: str, named_cost: tuple[str, dict[str, int]], credits: dict[str, dict[str, attribution.ChannelCredit]]
) -> reporting_pb2.AttributionRow:
    name, cost = named_cost
    row = reporting_pb2.AttributionRow(
        key=key,
        name=name,
        cost=[types_pb2.Money(amount_minor=a, currency_code=c) for c, a in sorted(cost.items())],
    )
    for model, found in credits.items():
        got = found.get(key, attribution.ChannelCredit(0.0, {}))
        spent = [(c, a) for c, a in sorted(cost.items()) if a]
        row.credits.append(
            reporting_pb2.AttributionCredit(
                model=model,
                deals=got.deals,
                revenue=[
                    types_pb2.Money(amount_minor=round(a), currency_code=c) for c, a in sorted(got.revenue.items())
                ],
                cost_per_deal=[
                    types_pb2.Money(amount_minor=round(a / got.deals), currency_code=c) for c, a in spent if got.deals
                ],
                return_on_cost=(got.revenue.get(spent[0][0], 0.0) / spent[0][1]) if spent else 0.0,
            )
        )
    return row


def source_row_to_proto(row: domain.SourceRow, cost: dict[str, int] | None = None) -> reporting_pb2.SourceReportRow:
    return reporting_pb2.SourceReportRow(
        cost=[types_pb2.Money(amount_minor=a, currency_code=c) for c, a in sorted((cost or {}).items())],
        source=row.source,
        leads=row.leads,
        won_deals=row.won_deals,
        lost_deals=row.lost_deals,
        revenue=[
            types_pb2.Money(amount_minor=amount, currency_code=currency)
            for currency, amount in row.revenue_by_currency()
        ],
        tickets=row.tickets,
        complaints=row.complaints,
    )


def campaign_row_to_proto(row: domain.CampaignRow) -> reporting_pb2.CampaignReportRow:
    per_lead = row.cost_per_lead_minor()
    return reporting_pb2.CampaignReportRow(
        campaign_id=row.campaign_id,
        source=row.source,
        name=row.name,
        budget=types_pb2.Money(amount_minor=row.budget_minor, currency_code=row.currency_code),
        cost=types_pb2.Money(amount_minor=row.cost_minor, currency_code=row.currency_code),
        leads=row.leads,
        won_deals=row.won_deals,
        lost_deals=row.lost_deals,
        revenue=[types_pb2.Money(amount_minor=a, currency_code=c) for c, a in row.revenue_by_currency()],
        cost_per_lead=(
            types_pb2.Money(amount_minor=per_lead, currency_code=row.currency_code) if per_lead is not None else None
        ),
        return_on_cost=row.return_on_cost(),
    )


# A promotion's results count deals closed this many days after a recipient's message.
DEFAULT_RESULTS_WINDOW_DAYS = 30
MAX_RESULTS_WINDOW_DAYS = 365


LeadScoring = Retrained[scoring.LeadModel | scoring.TooLittleHistory]
CrossSelling = Retrained[crosssell.Affinities | crosssell.TooLittleHistory]


def lead_scoring(db: Database, *, refresh_seconds: float, max_leads: int) -> LeadScoring:
    """Naive Bayes from the most recent `max_leads` decided leads."""
    return Retrained(
        db,
        refresh_seconds=refresh_seconds,
        load=lambda uow: queries.decided_leads(uow, max_leads),
        train=scoring.train,
        too_little=scoring.TooLittleHistory,
    )


def cross_selling(db: Database, *, refresh_seconds: float, max_buyers: int) -> CrossSelling:
    """Association rules from the products of the most recent `max_buyers` buyers."""
    return Retrained(
        db,
        refresh_seconds=refresh_seconds,
        load=lambda uow: queries.purchases(uow, max_buyers),
        train=crosssell.learn,
        too_little=crosssell.TooLittleHistory,
    )


def lead_score_to_proto(
    lead_id: str, trained_at: datetime, model: scoring.LeadModel | scoring.TooLittleHistory, lead: dict[str, str]
) -> reporting_pb2.ScoreLeadResponse:
    described = reporting_pb2.LeadScoringModel(
        train_time=to_timestamp(trained_at),
        won=model.won,
        lost=model.lost,
        needed_per_outcome=scoring.MIN_PER_OUTCOME,
    )
    if isinstance(model, scoring.TooLittleHistory):
        return reporting_pb2.ScoreLeadResponse(lead_id=lead_id, status="too_little_data", model=described)
    described.holdout_leads = model.holdout_leads
    described.kind = model.kind
    if model.holdout_auc is not None:
        described.has_holdout_auc, described.holdout_auc = True, round(model.holdout_auc, 4)
    if model.naive_bayes_auc is not None:
        described.naive_bayes_auc = round(model.naive_bayes_auc, 4)
    if model.challenger_auc is not None:
        described.logistic_regression_auc = round(model.challenger_auc, 4)
    found = model.score(lead)
    return reporting_pb2.ScoreLeadResponse(
        lead_id=lead_id,
        status="scored",
        probability=round(found.probability, 4),
        reasons=[
            reporting_pb2.LeadScoreReason(field=name, value=value, factor=round(factor, 3))
            for name, value, factor in found.reasons
        ],
        model=described,
    )


CROSS_SELL_RESPONSES = ("accepted", "declined")
DEFAULT_CROSS_SELL_WINDOW_DAYS = 90
MAX_LEAD_IDS = 100


def _lead_ids(values: Any) -> list[str]:
    """The customer's leads as the gateway passes them; INVALID_ARGUMENT beyond the limit."""
    if len(values) > MAX_LEAD_IDS:
        raise InvalidArgument("too many leads", field_violations=[("lead_ids", f"at most {MAX_LEAD_IDS}")])
    return [v for v in values if v]


def cross_sell_offer_to_proto(row: Any) -> reporting_pb2.CrossSellOffer:
    return reporting_pb2.CrossSellOffer(
        id=row.id,
        customer_id=row.customer_id,
        sku=row.sku,
        response=row.response,
        offer_time=to_timestamp(row.offered_at),
        user_id=row.user_id,
        antecedent_sku=row.antecedent_sku,
        confidence=row.confidence or 0.0,
    )


def suggestion_to_proto(
    found: crosssell.Suggestion, names: dict[str, str] | Any, last_offer: Any
) -> reporting_pb2.ProductSuggestion:
    rule = found.rule
    return reporting_pb2.ProductSuggestion(
        sku=rule.consequent,
        name=names.get(rule.consequent, ""),
        because_sku=rule.antecedent,
        because_name=names.get(rule.antecedent, ""),
        because_bought_time=to_timestamp(found.because_bought_at),
        confidence=round(rule.confidence, 4),
        lift=round(rule.lift, 3),
        support=round(rule.support, 4),
        buyers_of_both=rule.together,
        buyers_of_because=rule.antecedent_buyers,
        last_offer=cross_sell_offer_to_proto(last_offer) if last_offer is not None else None,
    )


class ReportingServicer(reporting_pb2_grpc.ReportingServiceServicer):
    def __init__(
        self,
        db: Database,
        lead_scoring: LeadScoring,
        cross_selling: CrossSelling,
        customer_valuing: value_api.CustomerValuing | None = None,
    ) -> None:
        self.db = db
        self.lead_scoring = lead_scoring
        self.cross_selling = cross_selling
        self.customer_valuing = customer_valuing or value_api.customer_valuing(db, refresh_seconds=600)

    async def SuggestProducts(
        self, request: reporting_pb2.SuggestProductsRequest, context: grpc.aio.ServicerContext
    ) -> reporting_pb2.SuggestProductsResponse:
        require({"customer_id": request.customer_id})
        lead_ids = _lead_ids(request.lead_ids)
        trained_at, model = await self.cross_selling.current()
        described = reporting_pb2.CrossSellModel(
            train_time=to_timestamp(trained_at),
            buyers=model.buyers,
            needed_buyers=crosssell.MIN_BUYERS,
            min_buyers_of_both=crosssell.MIN_PAIR_BUYERS,
        )
        if isinstance(model, crosssell.TooLittleHistory):
            return reporting_pb2.SuggestProductsResponse(
                customer_id=request.customer_id, status="too_little_data", model=described
            )
        described.rules = model.rule_count
        async with self.db.unit_of_work() as uow:
            owned = await queries.owned_products(uow, lead_ids)
            found = model.suggest(owned)
            offers = await queries.last_cross_sell_offers(uow, request.customer_id) if found else {}
        return reporting_pb2.SuggestProductsResponse(
            customer_id=request.customer_id,
            status="suggested",
            suggestions=[suggestion_to_proto(s, model.names, offers.get(s.rule.consequent)) for s in found],
            model=described,
        )

    async def RecordCrossSellOffer(
        self, request: reporting_pb2.RecordCrossSellOfferRequest, context: grpc.aio.ServicerContext
    ) -> reporting_pb2.RecordCrossSellOfferResponse:
        require({"customer_id": request.customer_id, "sku": request.sku, "response": request.response})
        problems = []
        if request.response not in CROSS_SELL_RESPONSES:
            problems.append(("response", "accepted or declined"))
        if len(request.sku) > 100:
            problems.append(("sku", "at most 100 characters"))
        if problems:
            named = ", ".join(name for name, _ in problems)
            raise InvalidArgument(f"the offer cannot be recorded: {named}", field_violations=problems)
        lead_ids = _lead_ids(request.lead_ids)
        _, model = await self.cross_selling.current()
        rule = None
        if isinstance(model, crosssell.Affinities):
            async with self.db.unit_of_work() as uow:
                owned = await queries.owned_products(uow, lead_ids)
            rule = next((s.rule for s in model.suggest(owned, limit=None) if s.rule.consequent == request.sku), None)
        who = caller.current()
        offer = commands.CrossSellOffer(
            customer_id=request.customer_id,
            lead_ids=lead_ids,
            sku=request.sku,
            response=request.response,
            antecedent_sku=rule.antecedent if rule else "",
            confidence=round(rule.confidence, 4) if rule else None,
            user_id=who.actor[:64] if who else "",
            offered_at=datetime.now(UTC),
        )
        async with self.db.unit_of_work() as uow:
            row = await commands.record_cross_sell_offer(uow, offer, request_id=request.request_id[:200])
        return reporting_pb2.RecordCrossSellOfferResponse(offer=cross_sell_offer_to_proto(row))

    async def GetCrossSellReport(
        self, request: reporting_pb2.GetCrossSellReportRequest, context: grpc.aio.ServicerContext
    ) -> reporting_pb2.GetCrossSellReportResponse:
        if not 0 <= request.window_days <= MAX_RESULTS_WINDOW_DAYS:
            raise InvalidArgument(
                "window", field_violations=[("window_days", f"1 to {MAX_RESULTS_WINDOW_DAYS} (0: 90)")]
            )
        period = domain.validate_period(
            from_timestamp(request.start_time, request.HasField("start_time")),
            from_timestamp(request.end_time, request.HasField("end_time")),
        )
        window = request.window_days or DEFAULT_CROSS_SELL_WINDOW_DAYS
        _, model = await self.cross_selling.current()
        names = model.names if isinstance(model, crosssell.Affinities) else {}
        async with self.db.unit_of_work() as uow:
            rows = await queries.cross_sell_report(uow, period, window)
        return reporting_pb2.GetCrossSellReportResponse(
            window_days=window,
            rows=[
                reporting_pb2.CrossSellReportRow(
                    sku=r.sku,
                    name=names.get(r.sku, ""),
                    offers=r.offers,
                    accepted=r.accepted,
                    declined=r.declined,
                    bought_after=r.bought_after,
                )
                for r in rows
            ],
        )

    async def GetSpeedToLeadReport(
        self, request: reporting_pb2.GetSpeedToLeadReportRequest, context: grpc.aio.ServicerContext
    ) -> reporting_pb2.GetSpeedToLeadReportResponse:
        period = domain.validate_period(
            from_timestamp(request.start_time, request.HasField("start_time")),
            from_timestamp(request.end_time, request.HasField("end_time")),
        )
        async with self.db.unit_of_work() as uow:
            bands = await funnel_store.speed_to_lead(
                uow, period.start, period.end, rep_id=request.rep_id, team_id=request.team_id
            )
        return reporting_pb2.GetSpeedToLeadReportResponse(
            bands=[
                reporting_pb2.SpeedBand(
                    band=b.band,
                    leads=b.leads,
                    won=b.won,
                    lost=b.lost,
                    win_rate=b.win_rate,
                    median_seconds=b.median_seconds,
                )
                for b in bands
            ]
        )

    async def GetCustomerValue(
        self, request: reporting_pb2.GetCustomerValueRequest, context: grpc.aio.ServicerContext
    ) -> reporting_pb2.GetCustomerValueResponse:
        return await value_api.customer_value(self.db, self.customer_valuing, request.customer_id)

    async def GetCustomerValueReport(
        self, request: reporting_pb2.GetCustomerValueReportRequest, context: grpc.aio.ServicerContext
    ) -> reporting_pb2.GetCustomerValueReportResponse:
        return await value_api.value_report(self.db, self.customer_valuing, request)

    async def GetFunnelReport(
        self, request: reporting_pb2.GetFunnelReportRequest, context: grpc.aio.ServicerContext
    ) -> reporting_pb2.GetFunnelReportResponse:
        require({"pipeline_id": request.pipeline_id})
        funnel.check_funnel(request.stage_ids, request.dimension)
        period = domain.validate_period(
            from_timestamp(request.start_time, request.HasField("start_time")),
            from_timestamp(request.end_time, request.HasField("end_time")),
        )
        async with self.db.unit_of_work() as uow:
            counted = await funnel_store.funnel_counts(
                uow,
                request.pipeline_id,
                request.stage_ids,
                period.start,
                period.end,
                dimension=request.dimension,
                rep_id=request.rep_id,
                team_id=request.team_id,
            )
        rows, total = funnel.funnel(counted, len(request.stage_ids))
        return reporting_pb2.GetFunnelReportResponse(
            rows=[reporting_pb2.FunnelRow(group=r.group, reached=r.reached) for r in rows],
            total=reporting_pb2.FunnelRow(reached=total.reached),
        )

    async def ScoreLead(
        self, request: reporting_pb2.ScoreLeadRequest, context: grpc.aio.ServicerContext
    ) -> reporting_pb2.ScoreLeadResponse:
        require({"lead_id": request.lead_id})
        lead = {"source": request.source, "campaign": request.campaign_id, "product_line": request.product_line}
        trained_at, model = await self.lead_scoring.current()
        return lead_score_to_proto(request.lead_id, trained_at, model, lead)

    async def GetSourceReport(
        self, request: reporting_pb2.GetSourceReportRequest, context: grpc.aio.ServicerContext
    ) -> reporting_pb2.GetSourceReportResponse:
        period = domain.validate_period(
            from_timestamp(request.start_time, request.HasField("start_time")),
            from_timestamp(request.end_time, request.HasField("end_time")),
        )
        async with self.db.unit_of_work() as uow:
            rows = await queries.source_report(uow, period)
            costs = await queries.source_costs(uow)
        return reporting_pb2.GetSourceReportResponse(rows=[source_row_to_proto(r, costs.get(r.source)) for r in rows])

    async def GetPromotionResults(
        self, request: reporting_pb2.GetPromotionResultsRequest, context: grpc.aio.ServicerContext
    ) -> reporting_pb2.GetPromotionResultsResponse:
        require({"promotion_id": request.promotion_id})
        if not 0 <= request.window_days <= MAX_RESULTS_WINDOW_DAYS:
            raise InvalidArgument(
                "window", field_violations=[("window_days", f"1 to {MAX_RESULTS_WINDOW_DAYS} (0: 30)")]
            )
        window = request.window_days or DEFAULT_RESULTS_WINDOW_DAYS
        async with self.db.unit_of_work() as uow:
            found = await queries.promotion_results(uow, request.promotion_id, window)
        return reporting_pb2.GetPromotionResultsResponse(
            window_days=window,
            recipients=found.recipients,
            buyers=found.buyers,
            deals_won=found.deals_won,
            revenue=[types_pb2.Money(amount_minor=v, currency_code=c) for c, v in found.revenue.items()],
            leads=found.leads,
            variants=[
                reporting_pb2.PromotionVariantResults(
                    variant=variant,
                    recipients=r.recipients,
                    buyers=r.buyers,
                    deals_won=r.deals_won,
                    revenue=[types_pb2.Money(amount_minor=v, currency_code=c) for c, v in r.revenue.items()],
                    leads=r.leads,
                )
                for variant, r in found.variants.items()
            ],
        )

    async def GetAttributionReport(
        self, request: reporting_pb2.GetAttributionReportRequest, context: grpc.aio.ServicerContext
    ) -> reporting_pb2.GetAttributionReportResponse:
        models, half_life = _attribution_request(request)
        period = domain.validate_period(
            from_timestamp(request.start_time, request.HasField("start_time")),
            from_timestamp(request.end_time, request.HasField("end_time")),
        )
        async with self.db.unit_of_work() as uow:
            facts = await queries.journeys(uow, period, request.dimension)
            costs = await queries.attribution_costs(uow, request.dimension)
        journeys = [(f.journey, f.currency_code) for f in facts]
        credits: dict[str, dict[str, attribution.ChannelCredit]] = {}
        unavailable = []
        for model in models:
            try:
                credits[model] = attribution.credit_by_channel(model, journeys, half_life_days=half_life)
            except attribution.TooLittleData as exc:
                unavailable.append(reporting_pb2.UnavailableModel(model=model, reason=str(exc)))
        keys = sorted({k for found in credits.values() for k in found} | {k for k in costs if k})
        return reporting_pb2.GetAttributionReportResponse(
            rows=[attribution_row(key, costs.get(key, (key, {})), credits) for key in keys],
            unavailable=unavailable,
            journeys=len(facts),
            conversions=sum(1 for f in facts if f.journey.converted_at is not None),
        )

    async def GetCampaignReport(
        self, request: reporting_pb2.GetCampaignReportRequest, context: grpc.aio.ServicerContext
    ) -> reporting_pb2.GetCampaignReportResponse:
        period = domain.validate_period(
            from_timestamp(request.start_time, request.HasField("start_time")),
            from_timestamp(request.end_time, request.HasField("end_time")),
        )
        async with self.db.unit_of_work() as uow:
            rows = await queries.campaign_report(uow, period, request.source.strip().lower())
        return reporting_pb2.GetCampaignReportResponse(rows=[campaign_row_to_proto(r) for r in rows])


# ---------------------------------------------------------------- targets

_SUBJECT_KINDS = {
    targets_pb2.TARGET_SUBJECT_KIND_REP: targets.SubjectKind.REP,
    targets_pb2.TARGET_SUBJECT_KIND_TEAM: targets.SubjectKind.TEAM,
    targets_pb2.TARGET_SUBJECT_KIND_SOURCE: targets.SubjectKind.SOURCE,
    targets_pb2.TARGET_SUBJECT_KIND_PRODUCT_LINE: targets.SubjectKind.PRODUCT_LINE,
}
_PERIOD_KINDS = {
    targets_pb2.PERIOD_KIND_MONTH: targets.PeriodKind.MONTH,
    targets_pb2.PERIOD_KIND_QUARTER: targets.PeriodKind.QUARTER,
    targets_pb2.PERIOD_KIND_YEAR: targets.PeriodKind.YEAR,
}
_METRICS = {
    targets_pb2.TARGET_METRIC_WON_AMOUNT: targets.Metric.WON_AMOUNT,
    targets_pb2.TARGET_METRIC_WON_DEALS: targets.Metric.WON_DEALS,
    targets_pb2.TARGET_METRIC_LEADS: targets.Metric.LEADS,
}
_SUBJECT_KINDS_TO_PROTO = {v: k for k, v in _SUBJECT_KINDS.items()}
_PERIOD_KINDS_TO_PROTO = {v: k for k, v in _PERIOD_KINDS.items()}
_METRICS_TO_PROTO = {v: k for k, v in _METRICS.items()}
_REQUEST_ID_MAX = 200
# Deal metrics read won deals, the lead metric leads.
_DEAL_METRICS = frozenset({targets.Metric.WON_AMOUNT, targets.Metric.WON_DEALS})


def target_to_proto(row: Any) -> targets_pb2.Target:
    t = queries.stored_target(row).target
    amount = t.metric is targets.Metric.WON_AMOUNT
    return targets_pb2.Target(
        id=row.id,
        subject_kind=_SUBJECT_KINDS_TO_PROTO[t.subject_kind],
        subject_id=t.subject_id,
        period_kind=_PERIOD_KINDS_TO_PROTO[t.period_kind],
        period_start=to_date(t.period_start),
        metric=_METRICS_TO_PROTO[t.metric],
        amount=types_pb2.Money(amount_minor=t.value, currency_code=t.currency_code) if amount else None,
        count=0 if amount else t.value,
        create_time=to_timestamp(row.created_at),
        update_time=to_timestamp(row.updated_at),
    )


def _draft(target: targets_pb2.Target, *, with_period: bool = True) -> targets.TargetDraft:
    has_day = with_period and target.HasField("period_start")
    return targets.TargetDraft(
        subject_kind=_SUBJECT_KINDS.get(target.subject_kind),
        subject_id=target.subject_id,
        period_kind=_PERIOD_KINDS.get(target.period_kind),
        period_day=from_date(target.period_start, "period_start") if has_day else None,
        metric=_METRICS.get(target.metric),
        amount_minor=target.amount.amount_minor,
        currency_code=target.amount.currency_code,
        has_amount=target.HasField("amount"),
        count=target.count,
    )


def _scope(scope: targets_pb2.TargetScope) -> targets.TargetScope:
    violations = [
        (f"scope.subjects[{i}].kind", "must be rep, team, source or product_line")
        for i, s in enumerate(scope.subjects)
        if s.kind not in _SUBJECT_KINDS
    ]
    violations += [
        (f"scope.kinds[{i}]", "must be rep, team, source or product_line")
        for i, k in enumerate(scope.kinds)
        if k not in _SUBJECT_KINDS
    ]
    if violations:
        raise InvalidArgument("invalid scope", field_violations=violations)
    return targets.TargetScope(
        every_target=scope.every_target,
        subjects=frozenset(targets.Subject(_SUBJECT_KINDS[s.kind], s.id) for s in scope.subjects),
        kinds=frozenset(_SUBJECT_KINDS[k] for k in scope.kinds),
    )


def _optional_subject_kind(value: targets_pb2.TargetSubjectKind.ValueType) -> targets.SubjectKind | None:
    """The subject kind filter: none when unset."""
    kind = _SUBJECT_KINDS.get(value)
    if kind is None and value != targets_pb2.TARGET_SUBJECT_KIND_UNSPECIFIED:
        raise InvalidArgument("unknown subject_kind", field_violations=[("subject_kind", "unknown value")])
    return kind


def _list_filter(request: targets_pb2.ListTargetsRequest) -> queries.TargetFilter:
    period_kind = _PERIOD_KINDS.get(request.period_kind)
    if request.period_kind and period_kind is None:
        raise InvalidArgument("unknown period_kind", field_violations=[("period_kind", "unknown value")])
    period_start = None
    if request.HasField("period_date"):
        if period_kind is None:
            raise InvalidArgument(
                "period_date needs period_kind", field_violations=[("period_kind", "is required with period_date")]
            )
        period_start = targets.first_day_of(period_kind, from_date(request.period_date, "period_date"))
    return queries.TargetFilter(
        subject_kind=_optional_subject_kind(request.subject_kind), period_kind=period_kind, period_start=period_start
    )


def _period_to_proto(period: targets.LocalPeriod, now: datetime) -> targets_pb2.ReportPeriod:
    return targets_pb2.ReportPeriod(
        kind=_PERIOD_KINDS_TO_PROTO[period.kind],
        start_date=to_date(period.first_day),
        end_date=to_date(period.last_day),
        start_time=to_timestamp(period.start),
        end_time=to_timestamp(period.end),
        time_zone=period.time_zone,
        elapsed_fraction=targets.elapsed_fraction(period, now),
    )


def _report_row_to_proto(row: targets.ReportRow, proto: targets_pb2.Target) -> targets_pb2.TargetReportRow:
    currency = row.target.target.currency_code
    if row.target.target.metric is targets.Metric.WON_AMOUNT:
        return targets_pb2.TargetReportRow(
            target=proto,
            actual_amount=types_pb2.Money(amount_minor=row.actual, currency_code=currency),
            achieved_percent=row.achieved_percent,
            projected_amount=types_pb2.Money(amount_minor=row.projected, currency_code=currency),
            other_currencies=[types_pb2.Money(amount_minor=a, currency_code=c) for c, a in row.other_currencies],
        )
    return targets_pb2.TargetReportRow(
        target=proto, actual_count=row.actual, achieved_percent=row.achieved_percent, projected_count=row.projected
    )


def _subjects(stored: list[targets.StoredTarget], *, deals: bool) -> set[targets.Subject]:
    """The subjects whose won deals (deals=True) or leads the targets need."""
    return {
        targets.Subject(s.target.subject_kind, s.target.subject_id)
        for s in stored
        if (s.target.metric in _DEAL_METRICS) == deals
    }


class TargetsServicer(targets_pb2_grpc.TargetsServiceServicer):
    """Targets and the targets-vs-actual report; periods in the company's time zone."""

    def __init__(self, db: Database, zone: ZoneInfo) -> None:
        self.db = db
        self.zone = zone

    async def CreateTarget(
        self, request: targets_pb2.CreateTargetRequest, context: grpc.aio.ServicerContext
    ) -> targets_pb2.CreateTargetResponse:
        if len(request.request_id) > _REQUEST_ID_MAX:
            raise InvalidArgument(
                "request_id is too long", field_violations=[("request_id", f"at most {_REQUEST_ID_MAX} characters")]
            )
        target = targets.validate_target(_draft(request.target))
        async with self.db.unit_of_work() as uow:
            row = await commands.create_target(uow, target, request_id=request.request_id)
        return targets_pb2.CreateTargetResponse(target=target_to_proto(row))

    async def GetTarget(
        self, request: targets_pb2.GetTargetRequest, context: grpc.aio.ServicerContext
    ) -> targets_pb2.GetTargetResponse:
        require({"target_id": request.target_id})
        async with self.db.unit_of_work() as uow:
            row = await queries.get_target(uow, request.target_id)
        return targets_pb2.GetTargetResponse(target=target_to_proto(row))

    async def ListTargets(
        self, request: targets_pb2.ListTargetsRequest, context: grpc.aio.ServicerContext
    ) -> targets_pb2.ListTargetsResponse:
        scope = _scope(request.scope)
        where = _list_filter(request)
        after = page_position(request.page_token, date.fromisoformat, str)
        async with self.db.unit_of_work() as uow:
            rows, position = await queries.list_targets(
                uow, scope, where, limit=page_size(request.page_size), after=after
            )
        return targets_pb2.ListTargetsResponse(
            targets=[target_to_proto(r) for r in rows],
            next_page_token=encode_page_token(*position) if position else "",
        )

    async def UpdateTarget(
        self, request: targets_pb2.UpdateTargetRequest, context: grpc.aio.ServicerContext
    ) -> targets_pb2.UpdateTargetResponse:
        require({"target.id": request.target.id})
        draft = _draft(request.target, with_period=False)
        async with self.db.unit_of_work() as uow:
            row = await commands.update_target(uow, request.target.id, draft, list(request.update_mask.paths))
        return targets_pb2.UpdateTargetResponse(target=target_to_proto(row))

    async def DeleteTarget(
        self, request: targets_pb2.DeleteTargetRequest, context: grpc.aio.ServicerContext
    ) -> targets_pb2.DeleteTargetResponse:
        require({"target_id": request.target_id})
        async with self.db.unit_of_work() as uow:
            await commands.delete_target(uow, request.target_id)
        return targets_pb2.DeleteTargetResponse()

    async def GetTargetReport(
        self, request: targets_pb2.GetTargetReportRequest, context: grpc.aio.ServicerContext
    ) -> targets_pb2.GetTargetReportResponse:
        kind = _PERIOD_KINDS.get(request.period_kind)
        if kind is None:
            raise InvalidArgument(
                "period_kind is required", field_violations=[("period_kind", "month, quarter or year")]
            )
        scope = _scope(request.scope)
        subject_kind = _optional_subject_kind(request.subject_kind)
        now = datetime.now(UTC)
        if request.HasField("date"):
            day = targets.check_day(from_date(request.date, "date"), "date")
        else:
            day = targets.local_today(now, self.zone)
        period = targets.period_of(kind, day, self.zone)
        where = queries.TargetFilter(subject_kind=subject_kind, period_kind=kind, period_start=period.first_day)
        async with self.db.unit_of_work() as uow:
            rows = await queries.period_targets(uow, scope, where)
            stored = [queries.stored_target(r) for r in rows]
            won = await queries.won_deals(uow, _subjects(stored, deals=True), period)
            leads = await queries.lead_counts(uow, _subjects(stored, deals=False), period)
        report = targets.report_rows(stored, won, leads, period, now)
        return targets_pb2.GetTargetReportResponse(
            period=_period_to_proto(period, now),
            rows=[_report_row_to_proto(r, target_to_proto(row)) for r, row in zip(report, rows, strict=True)],
        )
