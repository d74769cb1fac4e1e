"""The service desk's settings and results: the category tree, the queues (members, strategy,
team, calendar), the SLA policy (versioned) and business calendars, the support report (SLA
attainment, CSAT, backlog), and the customer's public one-tap survey answer. The tickets
themselves are /tickets (crm_gateway.features.tickets)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from crm.support.v1 import support_pb2
from crm_gateway import records
from crm_gateway.convert import IsoDateTime, enum_value, to_model, to_timestamp
from crm_gateway.deps import Caller, Clients, ResourceId, api_router
from crm_gateway.features.support.schemas import Calendar as CalendarOut
from crm_gateway.features.support.schemas import (
    CalendarList,
    CategoryList,
    PutCalendarIn,
    QueueList,
    SlaPolicy,
    SupportReport,
    SurveyAnswered,
    SurveyAnswerIn,
    UpdateQueueIn,
    UpdateSlaPolicyIn,
)
from crm_gateway.features.support.schemas import Queue as QueueOut
from crm_gateway.platform.problems import PROBLEM_RESPONSES
from crm_gateway.records import read

router = api_router()
# No bearer token: the survey link's token is the credential.
public_router = APIRouter(prefix="/api/v1/public", responses=PROBLEM_RESPONSES)
SurveyToken = Annotated[str, Path(min_length=16, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")]


@router.get("/support/categories", tags=["tickets"], operation_id="listTicketCategories")
async def list_ticket_categories(clients: Clients, principal: Caller) -> CategoryList:
    """The category tree, parents first, with names in he/fa/en."""
    return to_model(CategoryList, await read(clients.support.ListCategories, support_pb2.ListCategoriesRequest()))


@router.get("/support/queues", tags=["tickets"], operation_id="listSupportQueues")
async def list_support_queues(clients: Clients, principal: Caller) -> QueueList:
    return to_model(QueueList, await read(clients.support.ListQueues, support_pb2.ListQueuesRequest()))


@router.put("/support/queues/{queue_id}", tags=["tickets"], operation_id="updateSupportQueue")
async def update_support_queue(
    queue_id: ResourceId, body: UpdateQueueIn, clients: Clients, principal: Caller
) -> QueueOut:
    """A queue's members (agent ids), assignment strategy, team and calendar."""
    reply = await records.change(
        "queue",
        queue_id,
        clients.support.UpdateQueue,
        support_pb2.UpdateQueueRequest(
            queue_id=queue_id,
            strategy=enum_value(support_pb2.AssignmentStrategy, body.strategy),
            member_ids=body.member_ids,
            team_id=body.team_id,
            calendar_code=body.calendar_code,
        ),
    )
    return to_model(QueueOut, reply.queue)


@router.get("/support/sla-policy", tags=["tickets"], operation_id="getSlaPolicy")
async def get_sla_policy(
    clients: Clients, principal: Caller, version: Annotated[int, Query(ge=0, le=10**6)] = 0
) -> SlaPolicy:
    """The version in force (or an older one, by version)."""
    reply = await records.get(
        "SLA policy version",
        str(version),
        clients.support.GetSlaPolicy,
        support_pb2.GetSlaPolicyRequest(version=version),
    )
    return to_model(SlaPolicy, reply.policy)


@router.put("/support/sla-policy", tags=["tickets"], operation_id="updateSlaPolicy")
async def update_sla_policy(body: UpdateSlaPolicyIn, clients: Clients, principal: Caller) -> SlaPolicy:
    reply = await clients.support.UpdateSlaPolicy(body.to_proto())
    return to_model(SlaPolicy, reply.policy)


@router.get("/support/sla-calendars", tags=["tickets"], operation_id="listSlaCalendars")
async def list_sla_calendars(clients: Clients, principal: Caller) -> CalendarList:
    return to_model(CalendarList, await read(clients.support.ListCalendars, support_pb2.ListCalendarsRequest()))


@router.put("/support/sla-calendars/{code}", tags=["tickets"], operation_id="putSlaCalendar")
async def put_sla_calendar(
    code: Annotated[str, Path(pattern=r"^[A-Z][A-Z0-9_-]{1,19}$")],
    body: PutCalendarIn,
    clients: Clients,
    principal: Caller,
) -> CalendarOut:
    """Replace a calendar's hours and holidays; 422 naming the field for overlapping hours."""
    reply = await clients.support.PutCalendar(body.to_proto(code))
    return to_model(CalendarOut, reply.calendar)


@router.get("/support/report", tags=["tickets"], operation_id="supportReport")
async def support_report(
    clients: Clients,
    principal: Caller,
    group_by: Annotated[str, Query(pattern="^(queue|agent|category)$")] = "queue",
    from_time: IsoDateTime | None = None,
    to_time: IsoDateTime | None = None,
) -> SupportReport:
    """Tickets opened in the period (default the last 30 days), per queue, agent or category:
    opened, resolved, backlog now, SLA attainment per metric, CSAT — within the caller's reach."""
    request = support_pb2.GetSupportReportRequest(
        reach=records.ticket_reach(principal),
        group_by=enum_value(support_pb2.ReportGrouping, group_by),
        from_time=to_timestamp(from_time),
        to_time=to_timestamp(to_time),
    )
    return to_model(SupportReport, await read(clients.support.GetSupportReport, request))


@public_router.post("/support/surveys/{token}", tags=["tickets"], operation_id="submitSurvey")
async def submit_survey(token: SurveyToken, body: SurveyAnswerIn, clients: Clients, request: Request) -> SurveyAnswered:
    """The customer's score (1-5) from the survey link; the latest answer counts. 404 for a link
    that is not one, counted like a request without a valid token (429 once an address has spent
    its budget), so guessing links costs the guesser, not the database."""
    reply = await records.change_by_token(
        request,
        "survey",
        clients.support.SubmitSurvey,
        support_pb2.SubmitSurveyRequest(token=token, score=body.score, comment=body.comment),
    )
    return to_model(SurveyAnswered, reply)
