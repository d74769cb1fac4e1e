"""/routing-rules: the ordered rule set that routes each new lead (admins replace it; managers
read it). Optimistic concurrency: the ETag is the set's version, sent back in If-Match."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

import grpc
from fastapi import Header, HTTPException, Response

from crm.leads.v1 import routing_pb2
from crm_gateway.convert import to_model
from crm_gateway.deps import Caller, Clients, api_router
from crm_gateway.features.routing_rules.schemas import RoutingRule, RoutingRuleSet, RoutingRulesIn
from crm_gateway.records import read

router = api_router()


def _etag(version: int) -> str:
    return f'"{version}"'


def _expected_version(if_match: str) -> int:
    """The version If-Match names (0: none, replace whatever is there); 412 for anything else."""
    if not if_match:
        return 0
    tag = if_match.removeprefix("W/").strip('"')
    if not tag.isdigit() or not 0 < int(tag) < 2**62:
        raise HTTPException(412, "If-Match does not name a version of the rule set.")
    return int(tag)


def _rule_set(rules: Iterable[routing_pb2.RoutingRule], version: int, response: Response) -> RoutingRuleSet:
    response.headers["ETag"] = _etag(version)
    return RoutingRuleSet(rules=[to_model(RoutingRule, rule) for rule in rules], version=version)


@router.get("/routing-rules", tags=["routing"], operation_id="listRoutingRules")
async def list_routing_rules(clients: Clients, principal: Caller, response: Response) -> RoutingRuleSet:
    """The ordered rule set; its ETag is the version to send back in If-Match."""
    reply = await read(clients.routing.ListRoutingRules, routing_pb2.ListRoutingRulesRequest())
    return _rule_set(reply.rules, reply.version, response)


@router.put("/routing-rules", tags=["routing"], operation_id="replaceRoutingRules")
async def replace_routing_rules(
    body: RoutingRulesIn,
    clients: Clients,
    principal: Caller,
    response: Response,
    if_match: Annotated[
        str | None,
        Header(alias="If-Match", max_length=100, description="The ETag read; 412 when the rules changed since"),
    ] = None,
) -> RoutingRuleSet:
    """Replace the whole ordered rule set at once (all or nothing), effective for the next capture.
    Two rules with one priority: 409; a bad field: 422 naming it (rules[2].team_id)."""
    expected = _expected_version((if_match or "").strip())
    try:
        reply = await clients.routing.ReplaceRoutingRules(
            routing_pb2.ReplaceRoutingRulesRequest(rules=[r.to_proto() for r in body.rules], expected_version=expected)
        )
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.ABORTED:
            raise HTTPException(412, "The rule set changed since it was read: read it again.") from exc
        raise
    return _rule_set(reply.rules, reply.version, response)
