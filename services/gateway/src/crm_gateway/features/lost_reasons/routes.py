"""/lost-reasons: the reasons a deal can be lost for, in display order (the sales service's fixed
list, named in Hebrew, English and Persian)."""

from __future__ import annotations

from crm.sales.v1 import pipelines_pb2
from crm_gateway.convert import to_model
from crm_gateway.deps import Caller, Clients, api_router
from crm_gateway.features.lost_reasons.schemas import LostReasonList
from crm_gateway.records import read

router = api_router()


@router.get("/lost-reasons", tags=["deals"], operation_id="listLostReasons")
async def list_lost_reasons(clients: Clients, principal: Caller) -> LostReasonList:
    reply = await read(clients.pipelines.ListLostReasons, pipelines_pb2.ListLostReasonsRequest())
    return to_model(LostReasonList, reply)
