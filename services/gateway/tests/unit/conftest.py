"""An in-process gRPC backend (fake leads, deals, pipelines and orders servicers plus health) and a gateway
wired to it, driven over HTTP through httpx's ASGI transport."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from fastapi import FastAPI
from google.protobuf import any_pb2
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from crm.common.v1 import types_pb2
from crm.leads.v1 import leads_pb2, leads_pb2_grpc
from crm.orders.v1 import orders_pb2, orders_pb2_grpc
from crm.sales.v1 import deals_pb2, deals_pb2_grpc, pipelines_pb2, pipelines_pb2_grpc
from crm.support.v1 import support_pb2, support_pb2_grpc
from crm_gateway.app import create_app
from crm_gateway.settings import GatewaySettings
from crm_kit import telemetry
from crm_kit.dev_issuer import DevIssuer

MAX_BODY_BYTES = 4096
GATEWAY_URL = "http://gateway"


def timestamp(seconds: int) -> Timestamp:
    return Timestamp(seconds=seconds)


@dataclass
class Recorder:
    """What the fake backend received, and the status it must fail the next calls with."""

    fail_with: status_pb2.Status | None = None
    calls: list[tuple[str, Any, dict[str, str]]] = field(default_factory=list)

    async def record(self, method: str, request: Any, context: grpc.aio.ServicerContext) -> None:
        metadata = {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
        self.calls.append((method, request, metadata))
        if self.fail_with is not None:
            await context.abort_with_status(rpc_status.to_status(self.fail_with))

    def requests(self, method: str) -> list[Any]:
        return [request for name, request, _ in self.calls if name == method]


class FakeLeads(leads_pb2_grpc.LeadsServiceServicer):
    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.converted: set[str] = set()

    @staticmethod
    def lead(lead_id: str, request: leads_pb2.CaptureLeadRequest | None = None) -> leads_pb2.Lead:
        request = request or leads_pb2.CaptureLeadRequest(
            full_name="דנה כהן", phone_number="+972501234567", source="radio", locale="he-IL"
        )
        return leads_pb2.Lead(
            id=lead_id,
            full_name=request.full_name,
            phone_number=request.phone_number,
            email=request.email,
            source=request.source,
            campaign=request.campaign,
            locale=request.locale,
            product_line=request.product_line,
            status=leads_pb2.LEAD_STATUS_NEW,
            assignment=leads_pb2.Assignment(
                rep_id="rep-1",
                rep_name="Yossi",
                team_id="team-north",
                rule_id="rule-radio",
                reason="source=radio",
                assign_time=timestamp(1_700_000_001),
            ),
            create_time=timestamp(1_700_000_000),
        )

    async def CaptureLead(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self.recorder.record("CaptureLead", request, context)
        # A request id "dup-…" plays a person who is already a lead (of rep-1, team-north).
        if request.request_id.startswith("dup-"):
            return leads_pb2.CaptureLeadResponse(lead=self.lead("lead-1"), duplicate=True, matched_on="phone_number")
        # "replay-…": a repeat of a request that made lead-1 (of rep-1, team-north), as it is now.
        if request.request_id.startswith("replay-"):
            return leads_pb2.CaptureLeadResponse(lead=self.lead("lead-1"), replayed=True)
        return leads_pb2.CaptureLeadResponse(lead=self.lead("lead-1", request))

    async def VerifyWebFormKey(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        # Keys this fake knows: "wfk_<id>_…"; anything else is refused as the leads service does.
        await self.recorder.record("VerifyWebFormKey", request, context)
        key_id, sep, _ = request.web_form_key.removeprefix("wfk_").partition("_")
        if not request.web_form_key.startswith("wfk_") or not sep:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "web_form_key is not a valid web-to-lead key")
        return leads_pb2.VerifyWebFormKeyResponse(web_form_key_id=key_id)

    async def GetLead(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self.recorder.record("GetLead", request, context)
        return leads_pb2.GetLeadResponse(lead=self.lead(request.lead_id))

    async def ListLeads(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self.recorder.record("ListLeads", request, context)
        return leads_pb2.ListLeadsResponse(leads=[self.lead("lead-1"), self.lead("lead-2")], next_page_token="p2")

    async def ConvertLead(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        """The first convert of a lead records it; later ones answer the same conversion. Lead
        "legacy-…" was converted before sales owned deals; "taken-…" carries another team's deal."""
        await self.recorder.record("ConvertLead", request, context)
        lead_id = request.lead_id
        created = lead_id not in self.converted and not lead_id.startswith("legacy-")
        self.converted.add(lead_id)
        others = lead_id.startswith("taken-")
        conversion = leads_pb2.LeadConversion(
            lead_id=lead_id,
            deal_id=f"legacy-deal-of-{lead_id}" if lead_id.startswith("legacy-") else "deal-1",
            title=request.title,
            owner_rep_id="rep-9" if others else "rep-1",
            owner_team_id="team-south" if others else "team-north",
            source="radio",
            legacy=lead_id.startswith("legacy-"),
        )
        return leads_pb2.ConvertLeadResponse(conversion=conversion, created=created)


class FakeDeals(deals_pb2_grpc.DealsServiceServicer):
    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    async def OpenDeal(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self.recorder.record("OpenDeal", request, context)
        deal = deals_pb2.Deal(
            id=request.deal_id,
            lead_id=request.lead_id,
            title=request.title,
            owner_rep_id=request.owner_rep_id,
            owner_team_id=request.owner_team_id,
            status=deals_pb2.DEAL_STATUS_OPEN,
        )
        return deals_pb2.OpenDealResponse(deal=deal)

    async def GetDeal(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self.recorder.record("GetDeal", request, context)
        if request.deal_id.startswith("legacy-deal-of-"):
            await context.abort(grpc.StatusCode.NOT_FOUND, f"deal {request.deal_id} not found")
        return deals_pb2.GetDealResponse(deal=self.deal(request.deal_id))

    @staticmethod
    def deal(deal_id: str, **fields: Any) -> deals_pb2.Deal:
        """An open deal of rep-1 (team-north) in the default pipeline's first stage, at version 3."""
        values: dict[str, Any] = {
            "id": deal_id,
            "lead_id": "lead-1",
            "title": "Sofa",
            "owner_rep_id": "rep-1",
            "owner_team_id": "team-north",
            "status": deals_pb2.DEAL_STATUS_OPEN,
            "pipeline_id": "default",
            "stage_id": "default-new",
            "probability": 10,
            "etag": '"3"',
        }
        return deals_pb2.Deal(**{**values, **fields})

    async def MoveDealStage(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        """Stage "needs-amount" requires the amount this fake's deals never have."""
        await self.recorder.record("MoveDealStage", request, context)
        if request.stage_id == "needs-amount":
            await context.abort_with_status(rpc_status.to_status(required_fields_missing("amount")))
        moved = self.deal(request.deal_id, stage_id=request.stage_id, probability=30, etag='"4"')
        return deals_pb2.MoveDealStageResponse(deal=moved)

    async def UpdateDeal(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self.recorder.record("UpdateDeal", request, context)
        paths = request.update_mask.paths
        fields = {p: getattr(request.deal, p) for p in paths if p == "title" or request.deal.HasField(p)}
        return deals_pb2.UpdateDealResponse(deal=self.deal(request.deal.id, etag='"4"', **fields))

    async def ListDealStageHistory(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self.recorder.record("ListDealStageHistory", request, context)
        entries = [
            deals_pb2.DealStageHistoryEntry(
                to_stage_id="default-new", actor="rep-1", move_time=timestamp(1_700_000_000)
            ),
            deals_pb2.DealStageHistoryEntry(
                from_stage_id="default-new",
                to_stage_id="default-qualified",
                actor="rep-1",
                move_time=timestamp(1_700_000_600),
                seconds_in_previous_stage=600,
            ),
        ]
        return deals_pb2.ListDealStageHistoryResponse(entries=entries)

    async def CloseDeal(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self.recorder.record("CloseDeal", request, context)
        total = sum(item.quantity * item.unit_price.amount_minor for item in request.items)
        won = request.outcome == deals_pb2.DEAL_OUTCOME_WON
        return deals_pb2.CloseDealResponse(
            deal=deals_pb2.Deal(
                id=request.deal_id,
                lead_id="lead-1",
                title="Sofa",
                owner_rep_id="rep-1",
                status=deals_pb2.DEAL_STATUS_WON if won else deals_pb2.DEAL_STATUS_LOST,
                items=request.items,
                total=types_pb2.Money(amount_minor=total, currency_code="ILS"),
                create_time=timestamp(1_700_000_000),
                close_time=timestamp(1_700_000_100),
                lost_reason=request.lost_reason,
            )
        )

    async def ListDeals(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self.recorder.record("ListDeals", request, context)
        return deals_pb2.ListDealsResponse(deals=[self.deal("deal-1"), self.deal("deal-2")], next_page_token="p2")

    async def GetPipelineBoard(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        """The default pipeline's first stage with one ILS deal (pipeline "nope" does not exist)."""
        await self.recorder.record("GetPipelineBoard", request, context)
        if request.pipeline_id == "nope":
            await context.abort(grpc.StatusCode.NOT_FOUND, "pipeline nope not found")
        stage = pipelines_pb2.Stage(
            id="default-new",
            name="New",
            probability=10,
            outcome=pipelines_pb2.STAGE_OUTCOME_OPEN,
            forecast_category=pipelines_pb2.FORECAST_CATEGORY_PIPELINE,
        )
        amount = deals_pb2.StageAmount(currency_code="ILS", deal_count=1, amount_minor=1_000, weighted_amount_minor=100)
        column = deals_pb2.BoardStage(
            stage=stage,
            deal_count=2,
            amounts=[amount],
            deals=[self.deal("deal-1")],
            next_page_token="next-of-new",
            order_by="expected_close_date",
        )
        return deals_pb2.GetPipelineBoardResponse(stages=[column], close_time_from=timestamp(1_700_000_000))

    async def GetForecast(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self.recorder.record("GetForecast", request, context)
        row = deals_pb2.ForecastRow(
            group="rep-1",
            currency_code="ILS",
            open_deals=2,
            pipeline_amount_minor=3_000,
            weighted_amount_minor=900,
            best_case_amount_minor=2_000,
            commit_amount_minor=1_000,
            won_deals=1,
            closed_won_amount_minor=5_000,
        )
        return deals_pb2.GetForecastResponse(rows=[row])


def required_fields_missing(*fields: str) -> status_pb2.Status:
    """The sales service's answer to entering a stage whose required fields are empty."""
    info = any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason="REQUIRED_FIELDS_MISSING", domain="crm.sales"))
    bad = any_pb2.Any()
    violations = [error_details_pb2.BadRequest.FieldViolation(field=f, description="required by stage") for f in fields]
    bad.Pack(error_details_pb2.BadRequest(field_violations=violations))
    message = f"stage requires {', '.join(fields)}"
    return status_pb2.Status(code=code_pb2.FAILED_PRECONDITION, message=message, details=[info, bad])


class FakePipelines(pipelines_pb2_grpc.PipelinesServiceServicer):
    """Pipeline "default" exists at version 5; its etag is '"5"' and any other is stale."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    @staticmethod
    def pipeline(pipeline_id: str = "default", **fields: Any) -> pipelines_pb2.Pipeline:
        stages = [
            pipelines_pb2.Stage(id="default-new", name="New", probability=10, outcome=pipelines_pb2.STAGE_OUTCOME_OPEN),
            pipelines_pb2.Stage(id="default-won", name="Won", probability=100, outcome=pipelines_pb2.STAGE_OUTCOME_WON),
            pipelines_pb2.Stage(
                id="default-lost", name="Lost", probability=0, outcome=pipelines_pb2.STAGE_OUTCOME_LOST
            ),
        ]
        values: dict[str, Any] = {"id": pipeline_id, "name": "Default", "active": True, "stages": stages, "etag": '"5"'}
        return pipelines_pb2.Pipeline(**{**values, **fields})

    async def CreatePipeline(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self.recorder.record("CreatePipeline", request, context)
        created = pipelines_pb2.Pipeline()
        created.CopyFrom(request.pipeline)
        created.id, created.etag = "pipe-1", '"1"'
        for i, stage in enumerate(created.stages):
            stage.id = f"pipe-1-{i}"
        return pipelines_pb2.CreatePipelineResponse(pipeline=created)

    async def GetPipeline(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self.recorder.record("GetPipeline", request, context)
        if request.pipeline_id != "default":
            await context.abort(grpc.StatusCode.NOT_FOUND, f"pipeline {request.pipeline_id} not found")
        return pipelines_pb2.GetPipelineResponse(pipeline=self.pipeline())

    async def ListPipelines(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self.recorder.record("ListPipelines", request, context)
        return pipelines_pb2.ListPipelinesResponse(pipelines=[self.pipeline()], next_page_token="p2")

    async def UpdatePipeline(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self.recorder.record("UpdatePipeline", request, context)
        if request.etag and request.etag != '"5"':
            info = any_pb2.Any()
            info.Pack(error_details_pb2.ErrorInfo(reason="STALE_ETAG", domain="crm.sales"))
            status = status_pb2.Status(code=code_pb2.ABORTED, message="pipeline default changed", details=[info])
            await context.abort_with_status(rpc_status.to_status(status))
        return pipelines_pb2.UpdatePipelineResponse(pipeline=self.pipeline(name=request.pipeline.name, etag='"6"'))

    async def ListLostReasons(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self.recorder.record("ListLostReasons", request, context)
        reason = pipelines_pb2.LostReason(code="price", names={"he": "מחיר", "en": "Price", "fa": "قیمت"})
        return pipelines_pb2.ListLostReasonsResponse(lost_reasons=[reason])


class FakeOrders(orders_pb2_grpc.OrdersServiceServicer):
    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    async def GetOrder(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self.recorder.record("GetOrder", request, context)
        # A backend bug: a shipment whose date does not exist.
        broken = orders_pb2.Shipment(estimated_delivery_date=types_pb2.Date(year=2025, month=13, day=1))
        return orders_pb2.GetOrderResponse(order=orders_pb2.Order(id=request.order_id, shipment=broken))

    async def ShipOrder(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self.recorder.record("ShipOrder", request, context)
        return orders_pb2.ShipOrderResponse(
            order=orders_pb2.Order(
                id=request.order_id,
                deal_id="deal-1",
                lead_id="lead-1",
                status=orders_pb2.ORDER_STATUS_SHIPPED,
                shipment=orders_pb2.Shipment(
                    carrier=request.carrier,
                    tracking_number=request.tracking_number,
                    estimated_delivery_date=request.estimated_delivery_date,
                    ship_time=timestamp(1_700_000_200),
                ),
                create_time=timestamp(1_700_000_150),
            )
        )


class FakeSupport(support_pb2_grpc.SupportServiceServicer):
    """Knows one survey link (RIGHT_SURVEY_TOKEN); any other is NOT_FOUND, as support answers."""

    async def SubmitSurvey(
        self, request: support_pb2.SubmitSurveyRequest, context: grpc.aio.ServicerContext
    ) -> support_pb2.SubmitSurveyResponse:
        if request.token != RIGHT_SURVEY_TOKEN:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no survey with this link")
        return support_pb2.SubmitSurveyResponse(score=request.score, ticket_number=1042)


RIGHT_SURVEY_TOKEN = "right-survey-token-0123456789"


@dataclass
class Backend:
    address: str
    recorder: Recorder
    health: health.aio.HealthServicer


async def start_backend(serving: bool = True) -> tuple[grpc.aio.Server, Backend]:
    recorder = Recorder()
    server = grpc.aio.server()
    leads_pb2_grpc.add_LeadsServiceServicer_to_server(FakeLeads(recorder), server)
    orders_pb2_grpc.add_OrdersServiceServicer_to_server(FakeOrders(recorder), server)
    deals_pb2_grpc.add_DealsServiceServicer_to_server(FakeDeals(recorder), server)
    pipelines_pb2_grpc.add_PipelinesServiceServicer_to_server(FakePipelines(recorder), server)
    support_pb2_grpc.add_SupportServiceServicer_to_server(FakeSupport(), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
    await health_servicer.set("", status)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, Backend(f"127.0.0.1:{port}", recorder, health_servicer)


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    server, running = await start_backend()
    yield running
    await server.stop(None)


@pytest.fixture
async def not_serving_backend() -> AsyncIterator[Backend]:
    server, running = await start_backend(serving=False)
    yield running
    await server.stop(None)


@pytest.fixture(scope="session")
def dev_key_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("dev-issuer") / "signing-key.pem")


@pytest.fixture(scope="session")
def issuer(dev_key_file: str) -> DevIssuer:
    """The development issuer whose JWKS the gateway under test serves and trusts."""
    return DevIssuer.load_or_create(Path(dev_key_file))


def bearer(issuer: DevIssuer, role: str = "admin", **kwargs: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {issuer.mint_demo(role, **kwargs)}"}


def gateway_settings(address: str, dev_key_file: str, **overrides: Any) -> GatewaySettings:
    values: dict[str, Any] = {
        "environment": "test",
        "auth_dev_issuer_key_file": dev_key_file,
        "auth_jwks_url": f"{GATEWAY_URL}/.well-known/jwks.json",
        "leads_addr": address,
        "customers_addr": address,
        "orders_addr": address,
        "support_addr": address,
        "notifications_addr": address,
        "reporting_addr": address,
        "sales_addr": address,
        "max_body_bytes": MAX_BODY_BYTES,
        "grpc_client_timeout_seconds": 5.0,
        # One in-process gateway: the store every replica shares is tested against real NATS.
        "idempotency_store": "memory",
    }
    values.update(overrides)
    return GatewaySettings(**values)


@pytest.fixture
def settings(backend: Backend, settings_for: Callable[..., GatewaySettings]) -> GatewaySettings:
    return settings_for(backend.address)


@asynccontextmanager
async def running_gateway(app: FastAPI, headers: dict[str, str] | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan entered (ASGITransport does not run it), and a client for it.
    The gateway fetches the dev issuer's JWKS from itself, over the same ASGI transport."""
    transport = httpx.ASGITransport(app=app)
    app.state.verifier.keys.transport = transport
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url=GATEWAY_URL, headers=headers) as http,
    ):
        yield http


@pytest.fixture
def gateway(issuer: DevIssuer) -> Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]:
    """Runs an app; its client carries an admin's token unless headers are given."""

    def run(app: FastAPI, headers: dict[str, str] | None = None) -> AbstractAsyncContextManager[httpx.AsyncClient]:
        return running_gateway(app, bearer(issuer) if headers is None else headers)

    return run


@pytest.fixture
def settings_for(dev_key_file: str) -> Callable[..., GatewaySettings]:
    """Settings for a gateway in front of the backends at an address, trusting the dev issuer."""
    return functools.partial(gateway_settings, dev_key_file=dev_key_file)


@pytest.fixture
async def client(settings: GatewaySettings, issuer: DevIssuer) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the gateway carrying an admin's bearer token."""
    # As `serve` does: spans continue the caller's traceparent and reach the backends (recorded,
    # for the test that adds its own exporter).
    telemetry.setup_tracing("gateway", record_without_exporter=True)
    async with running_gateway(create_app(settings), bearer(issuer)) as http:
        yield http
