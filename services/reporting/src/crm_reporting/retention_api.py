"""RetentionService: at-risk customers and retention call lists, proto ↔ crm_reporting.churn and
the retention store. Errors are mapped by the chassis interceptor."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc

from crm.common.v1 import types_pb2
from crm.reporting.v1 import events_pb2, retention_pb2, retention_pb2_grpc
from crm_kit import caller
from crm_kit.db import Database, UnitOfWork
from crm_kit.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, require
from crm_kit.protoconv import to_timestamp
from crm_reporting import churn, churn_model, crosssell, queries, retention_store
from crm_reporting.grpc_api import CrossSelling
from crm_reporting.retrained import Retrained

DEFAULT_THRESHOLD = churn.HIGH
DEFAULT_CONTROL_SHARE = 0.1
DEFAULT_ENTRIES, MAX_ENTRIES = 500, 5000
MAX_CONTROL_SHARE = 0.5
# A customer on a list made this recently is not put on another.
RELISTED_AFTER = timedelta(days=7)
RESPONSES = ("reached", "offer_accepted", "declined", "unreachable", "churned")
MAX_LISTS = 100

ChurnModelling = Retrained[churn_model.ChurnModel | churn_model.TooLittleHistory]


async def churn_history(uow: UnitOfWork) -> tuple[int, churn_model.Snapshot, churn_model.Snapshot]:
    """What the churn model learns from: the days of purchase history, and the snapshots two
    windows and one window ago with who churned in the window after each."""
    now = datetime.now(UTC)
    window = timedelta(days=churn_model.WINDOW_DAYS)
    first = await retention_store.first_purchase(uow)
    snapshots = []
    for start, end in ((now - 2 * window, now - window), (now - window, now)):
        customers = await retention_store.signals(uow, start)
        stayed = await retention_store.buyers_between(uow, start, end)
        snapshots.append(
            churn_model.Snapshot([c.signals for c in customers], [c.customer_id not in stayed for c in customers])
        )
    history_days = (now - first).days if first else 0
    return history_days, snapshots[0], snapshots[1]


def churn_modelling(db: Database, *, refresh_seconds: float) -> ChurnModelling:
    """The learned churn model, relearned from the history every `refresh_seconds`."""
    return Retrained(
        db,
        refresh_seconds=refresh_seconds,
        load=churn_history,
        train=lambda found: churn_model.train(*found),
        too_little=churn_model.TooLittleHistory,
    )


async def scan_risks(db: Database, churn_modelling: ChurnModelling, *, every_seconds: float = 0) -> int:
    """The scheduled scoring of every customer who bought: each customer whose risk band changed
    since the last scoring is kept, and a CustomerAtRisk event published for it (outbox, same
    transaction). One replica per `every_seconds` (retention_store.take_scan), in one transaction
    that reads the signals after taking its turn. Returns the events published."""
    scorer = Scorer(*await churn_modelling.current())
    now = datetime.now(UTC)
    # The interval less a little: a replica's run a moment early is still its turn.
    every = timedelta(seconds=every_seconds * 0.9)
    async with db.unit_of_work() as uow:
        if not await retention_store.take_scan(uow, now, every):
            return 0
        customers = await retention_store.signals(uow, now)
        risks = scorer.risks([c.signals for c in customers])
        scored = [(c.customer_id, r) for c, r in zip(customers, risks, strict=True) if r is not None]
        keep, changes = churn.band_changes(await retention_store.bands(uow), scored)
        await retention_store.save_bands(uow, keep, now)
        for change in changes:
            await uow.record_event(
                events_pb2.CustomerAtRisk(
                    customer_id=change.customer_id,
                    band=change.band.value,
                    previous_band=change.previous,
                    risk=change.risk.risk,
                    reasons=_reasons(change.risk.reasons),
                    model=scorer.name,
                    score_time=to_timestamp(now),
                ),
                time=now,
            )
    return len(changes)


class Scorer:
    """The learned model when it is trained, else the rules (and why)."""

    def __init__(self, trained_at: datetime, model: churn_model.ChurnModel | churn_model.TooLittleHistory) -> None:
        self.trained_at = trained_at
        self.model = model

    @property
    def name(self) -> str:
        return "logistic_regression" if isinstance(self.model, churn_model.ChurnModel) else "rules"

    def risks(self, customers: list[churn.Signals]) -> list[churn.Risk | None]:
        if isinstance(self.model, churn_model.ChurnModel):
            return self.model.risks(customers)
        return [churn.rule_risk(s) for s in customers]

    def describe(self, reply: retention_pb2.GetCustomerRiskResponse) -> None:
        reply.model = self.name
        if isinstance(self.model, churn_model.TooLittleHistory):
            reply.fallback_reason = str(self.model)
            return
        v = self.model.validation
        reply.validation.CopyFrom(
            retention_pb2.ChurnValidation(
                train_time=to_timestamp(self.trained_at),
                customers=v.customers,
                churned=v.churned,
                auc=v.auc,
                top_decile_lift=v.top_decile_lift,
                brier=v.brier,
                calibration=[
                    retention_pb2.CalibrationBin(predicted=p, observed=o, customers=n) for p, o, n in v.calibration
                ],
                window_days=churn_model.WINDOW_DAYS,
            )
        )


def _reasons(found: Any) -> list[retention_pb2.RiskReason]:
    return [
        retention_pb2.RiskReason(signal=r["signal"], points=r["points"], value=r["value"])
        if isinstance(r, dict)
        else retention_pb2.RiskReason(signal=r.signal, points=r.points, value=r.value)
        for r in found
    ]


def list_to_proto(row: Any) -> retention_pb2.RetentionList:
    return retention_pb2.RetentionList(
        id=row.id,
        name=row.name,
        team_id=row.team_id,
        threshold=row.threshold,
        control_share=row.control_share,
        called=row.called,
        control=row.control,
        created_by=row.created_by,
        create_time=to_timestamp(row.created_at),
        model=row.model,
    )


def entry_to_proto(row: Any) -> retention_pb2.RetentionEntry:
    return retention_pb2.RetentionEntry(
        customer_id=row.customer_id,
        rep_id=row.rep_id,
        control=row.control,
        risk=row.risk,
        band=row.band,
        reasons=_reasons(row.reasons),
        offer=row.offer,
        response=row.response,
        response_time=to_timestamp(row.responded_at) if row.responded_at else None,
        position=row.position,
    )


def _money(amounts: dict[str, int] | None) -> list[types_pb2.Money]:
    return [types_pb2.Money(amount_minor=a, currency_code=c) for c, a in sorted((amounts or {}).items())]


def _list_request(request: retention_pb2.CreateRetentionListRequest) -> tuple[str, float, float, int]:
    """Name, threshold, control share and size; INVALID_ARGUMENT naming every wrong field."""
    problems = []
    threshold = request.threshold or DEFAULT_THRESHOLD
    if not 0.01 <= threshold <= 1:
        problems.append(("threshold", "0.01 to 1 (0: 0.6)"))
    share = request.control_share if request.has_control_share else DEFAULT_CONTROL_SHARE
    if not 0 <= share <= MAX_CONTROL_SHARE:
        problems.append(("control_share", f"0 to {MAX_CONTROL_SHARE}"))
    size = request.max_entries or DEFAULT_ENTRIES
    if not 1 <= size <= MAX_ENTRIES:
        problems.append(("max_entries", f"1 to {MAX_ENTRIES} (0: {DEFAULT_ENTRIES})"))
    name = " ".join(request.name.split())
    if len(name) > 200:
        problems.append(("name", "at most 200 characters"))
    if problems:
        named = ", ".join(n for n, _ in problems)
        raise InvalidArgument(f"the retention list cannot be made: {named}", field_violations=problems)
    return name, threshold, share, size


def _same_request(earlier: Any, request: retention_pb2.CreateRetentionListRequest) -> Any:
    """The list a repeated request_id answers with — only for the same team: the key is global
    across callers, and another team's list is never shown (ALREADY_EXISTS naming nothing of it)."""
    if earlier is not None and earlier.team_id != request.team_id:
        raise AlreadyExists("request_id was already used for another list", reason="REQUEST_ID_IN_USE")
    return earlier


class RetentionServicer(retention_pb2_grpc.RetentionServiceServicer):
    def __init__(self, db: Database, cross_selling: CrossSelling, churn_modelling: ChurnModelling) -> None:
        self.db = db
        self.cross_selling = cross_selling
        self.churn_modelling = churn_modelling

    async def _scorer(self) -> Scorer:
        return Scorer(*await self.churn_modelling.current())

    async def GetCustomerRisk(
        self, request: retention_pb2.GetCustomerRiskRequest, context: grpc.aio.ServicerContext
    ) -> retention_pb2.GetCustomerRiskResponse:
        require({"customer_id": request.customer_id})
        scorer = await self._scorer()
        async with self.db.unit_of_work() as uow:
            found = await retention_store.signals(uow, datetime.now(UTC), customer_id=request.customer_id)
        risk = scorer.risks([found[0].signals])[0] if found else None
        reply = retention_pb2.GetCustomerRiskResponse(customer_id=request.customer_id, status="no_purchases")
        if risk is not None:
            reply.status, reply.risk, reply.band = "scored", risk.risk, risk.band.value
            reply.reasons.extend(_reasons(risk.reasons))
        scorer.describe(reply)
        return reply

    async def _offers(self, candidates: list[tuple[retention_store.CustomerSignals, churn.Risk]]) -> dict[str, str]:
        """The suggested offer per customer: their strongest cross-sell suggestion if any."""
        _, model = await self.cross_selling.current()
        products: dict[str, str] = {}
        if isinstance(model, crosssell.Affinities):
            async with self.db.unit_of_work() as uow:
                owned = await queries.owned_by_lead(uow, [c.lead_id for c, _ in candidates])
            for c, _ in candidates:
                found = model.suggest(owned.get(c.lead_id, {}), limit=1)
                if found:
                    products[c.customer_id] = found[0].rule.consequent
        return {c.customer_id: churn.suggested_offer(r.reasons, products.get(c.customer_id, "")) for c, r in candidates}

    async def CreateRetentionList(
        self, request: retention_pb2.CreateRetentionListRequest, context: grpc.aio.ServicerContext
    ) -> retention_pb2.CreateRetentionListResponse:
        name, threshold, share, size = _list_request(request)
        scorer = await self._scorer()
        now = datetime.now(UTC)
        async with self.db.unit_of_work() as uow:
            earlier = _same_request(await retention_store.list_by_request(uow, request.request_id[:200]), request)
            if earlier is not None:
                return retention_pb2.CreateRetentionListResponse(list=list_to_proto(earlier))
            found = await retention_store.signals(uow, now, team_id=request.team_id or None)
            recent = await retention_store.listed_since(uow, now - RELISTED_AFTER)
        candidates = [c for c in found if c.customer_id not in recent]
        scored = list(zip(candidates, scorer.risks([c.signals for c in candidates]), strict=True))
        at_risk = sorted(
            ((c, r) for c, r in scored if r is not None and r.risk >= threshold),
            key=lambda cr: (-cr[1].risk, cr[0].customer_id),
        )[:size]
        offers = await self._offers(at_risk)
        split = churn.split(
            [churn.Candidate(c.customer_id, c.owner_rep_id, r.risk) for c, r in at_risk],
            control_share=share,
            reps=list(request.rep_ids),
            seed=(list_id := str(uuid.uuid4())),
        )
        entries = [
            retention_store.NewEntry(c.customer_id, c.lead_id, e.control, e.rep_id, r, offers[c.customer_id])
            for (c, r), e in zip(at_risk, split, strict=True)
        ]
        who = caller.current()
        values = {
            "id": list_id,
            "name": name or f"Retention {now:%Y-%m-%d}",
            "team_id": request.team_id,
            "threshold": threshold,
            "control_share": share,
            "called": sum(not e.control for e in entries),
            "control": sum(e.control for e in entries),
            "created_by": who.actor[:64] if who else "",
            "created_at": now,
            "request_id": request.request_id[:200] or None,
            "model": scorer.name,
        }
        async with self.db.unit_of_work() as uow:
            created = await retention_store.create_list(uow, values, entries)
        if created is None:  # the same request made it meanwhile
            async with self.db.unit_of_work() as uow:
                created = _same_request(await retention_store.list_by_request(uow, request.request_id[:200]), request)
        assert created is not None
        return retention_pb2.CreateRetentionListResponse(list=list_to_proto(created))

    async def ListRetentionLists(
        self, request: retention_pb2.ListRetentionListsRequest, context: grpc.aio.ServicerContext
    ) -> retention_pb2.ListRetentionListsResponse:
        limit = min(request.page_size or 20, MAX_LISTS)
        async with self.db.unit_of_work() as uow:
            rows = await retention_store.lists(uow, team_id=request.team_id, rep_id=request.rep_id, limit=limit)
        return retention_pb2.ListRetentionListsResponse(lists=[list_to_proto(r) for r in rows])

    async def GetRetentionList(
        self, request: retention_pb2.GetRetentionListRequest, context: grpc.aio.ServicerContext
    ) -> retention_pb2.GetRetentionListResponse:
        require({"list_id": request.list_id})
        async with self.db.unit_of_work() as uow:
            found = await retention_store.get_list(uow, request.list_id, team_id=request.team_id, rep_id=request.rep_id)
            if found is None:
                raise NotFound(f"retention list {request.list_id} not found")
            rows = await retention_store.entries(uow, request.list_id, rep_id=request.rep_id)
        return retention_pb2.GetRetentionListResponse(
            list=list_to_proto(found), entries=[entry_to_proto(r) for r in rows]
        )

    async def RecordRetentionResponse(
        self, request: retention_pb2.RecordRetentionResponseRequest, context: grpc.aio.ServicerContext
    ) -> retention_pb2.RecordRetentionResponseResponse:
        require({"list_id": request.list_id, "customer_id": request.customer_id, "response": request.response})
        if request.response not in RESPONSES:
            raise InvalidArgument(
                "the response is not one of the answers", field_violations=[("response", ", ".join(RESPONSES))]
            )
        who = caller.current()
        async with self.db.unit_of_work() as uow:
            found = await retention_store.get_list(uow, request.list_id, team_id=request.team_id, rep_id=request.rep_id)
            row = await retention_store.entry(uow, request.list_id, request.customer_id) if found else None
            if row is None or (request.rep_id and (row.rep_id != request.rep_id or row.control)):
                raise NotFound(f"no entry for customer {request.customer_id} on retention list {request.list_id}")
            if row.control:
                raise FailedPrecondition(
                    "the customer is in the control group: they are not called",
                    reason="CONTROL_GROUP",
                    field_violations=[("customer_id", "in the control group")],
                )
            changed = await retention_store.record_response(
                uow,
                request.list_id,
                request.customer_id,
                request.response,
                who.actor[:64] if who else "",
                datetime.now(UTC),
            )
        return retention_pb2.RecordRetentionResponseResponse(entry=entry_to_proto(changed))

    async def GetRetentionReport(
        self, request: retention_pb2.GetRetentionReportRequest, context: grpc.aio.ServicerContext
    ) -> retention_pb2.GetRetentionReportResponse:
        require({"list_id": request.list_id})
        async with self.db.unit_of_work() as uow:
            found = await retention_store.get_list(uow, request.list_id, team_id=request.team_id, rep_id="")
            if found is None:
                raise NotFound(f"retention list {request.list_id} not found")
            groups = await retention_store.report(uow, request.list_id, found.created_at)
        called, control = groups[False], groups[True]
        per_customer = {
            key: {c: a // g.customers for c, a in g.revenue.items()} if g.customers else {} for key, g in groups.items()
        }
        currencies = set(per_customer[False]) | set(per_customer[True])
        retained = {
            c: (per_customer[False].get(c, 0) - per_customer[True].get(c, 0)) * called.customers for c in currencies
        }
        return retention_pb2.GetRetentionReportResponse(
            list=list_to_proto(found),
            groups=[
                retention_pb2.RetentionGroup(
                    group="control" if key else "called",
                    customers=g.customers,
                    responses=g.responses,
                    buyers=g.buyers,
                    revenue=_money(g.revenue),
                    revenue_per_customer=_money(per_customer[key]),
                )
                for key, g in ((False, called), (True, control))
            ],
            retained_revenue=_money(retained),
        )
