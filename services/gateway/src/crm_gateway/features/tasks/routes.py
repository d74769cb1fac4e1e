"""/tasks: open tasks, overdue and soonest due first (reps their own, managers their team's)."""

from __future__ import annotations

from crm.leads.v1 import activities_pb2
from crm_gateway.deps import Caller, Clients, FilterId, PageSize, PageToken, api_router
from crm_gateway.features.activities.schemas import activity_model
from crm_gateway.features.tasks.schemas import TaskList
from crm_gateway.platform import authz
from crm_gateway.records import read
from crm_kit import protoconv

router = api_router()


@router.get("/tasks", tags=["activities"], operation_id="listTasks")
async def list_tasks(
    clients: Clients,
    principal: Caller,
    rep_id: FilterId = "",
    team_id: FilterId = "",
    page_size: PageSize = 0,
    page_token: PageToken = "",
) -> TaskList:
    """Open tasks, overdue and soonest due first: a rep's own (the default for a rep), a manager's
    team's, any for an admin."""
    rep_id, team_id = authz.list_scope(principal, rep_id, team_id, "tasks")
    reply = await read(
        clients.activities.ListTasks,
        activities_pb2.ListTasksRequest(
            rep_id=rep_id, team_id=team_id, page_size=protoconv.page_size(page_size), page_token=page_token
        ),
    )
    return TaskList(tasks=[activity_model(t) for t in reply.tasks], next_page_token=reply.next_page_token)
