"""/sources: the catalogue of lead sources everyone reads and admins add to."""

from __future__ import annotations

from crm.leads.v1 import leads_pb2
from crm_gateway.convert import to_model
from crm_gateway.deps import Caller, Clients, api_router
from crm_gateway.features.sources.schemas import CreatedSource, CreateSourceIn, SourceList
from crm_gateway.records import read

router = api_router()


@router.get("/sources", tags=["leads"], operation_id="listSources")
async def list_sources(clients: Clients, principal: Caller) -> SourceList:
    reply = await read(clients.leads.ListSources, leads_pb2.ListSourcesRequest())
    return to_model(SourceList, reply)


@router.post("/sources", status_code=201, tags=["campaigns"], operation_id="createSource")
async def create_source(body: CreateSourceIn, clients: Clients, principal: Caller) -> CreatedSource:
    """Add a source to the catalogue; an existing code is 409."""
    reply = await clients.campaigns.CreateSource(body.to_proto())
    return to_model(CreatedSource, reply.source)
