"""The leads_pb2 messages several features' servicers answer with (Lead, Source): one mapping,
kept out of any grpc_api so no feature's servicer imports another's."""

from __future__ import annotations

from typing import Any

from crm.leads.v1 import leads_pb2
from crm_kit.protoconv import to_timestamp
from crm_leads.leads.domain import LeadStatus
from crm_leads.leads.queries import LeadView

_LEAD_STATUS = {
    LeadStatus.NEW.value: leads_pb2.LEAD_STATUS_NEW,
    LeadStatus.CONVERTED.value: leads_pb2.LEAD_STATUS_CONVERTED,
}


def lead_to_proto(view: LeadView) -> leads_pb2.Lead:
    r = view.row
    return leads_pb2.Lead(
        id=r.id,
        full_name=r.full_name,
        phone_number=r.phone_number,
        email=r.email,
        source=r.source,
        campaign=r.campaign,
        locale=r.locale,
        product_line=r.product_line,
        status=_LEAD_STATUS[r.status],
        assignment=leads_pb2.Assignment(
            rep_id=r.rep_id or "",
            rep_name=view.rep_name,
            team_id=r.team_id or "",
            rule_id=r.rule_id or "",
            reason=r.assign_reason,
            assign_time=to_timestamp(r.assigned_at),
        ),
        deal_id=view.deal_id,
        create_time=to_timestamp(r.created_at),
        campaign_id=r.campaign_id or "",
        city=r.city,
        region=r.region,
        first_response_due_time=to_timestamp(r.first_response_due_at),
        first_response_time=to_timestamp(r.first_response_at),
        sla_breached=r.sla_breached_at is not None,
        merged_into_lead_id=r.merged_into_id or "",
        missing_fields=list(r.missing_fields),
        touch_count=r.touch_count,
        escalated_to=r.escalated_to or "",
        sla_reassign_count=r.reassign_count,
        routing_explanation=_routing_explanation(r.routing_explanation or {}),
        sla_breach_time=to_timestamp(r.sla_breached_at),
    )


def _routing_explanation(explanation: dict[str, Any]) -> leads_pb2.RoutingExplanation:
    """The structured why of an assignment (stored as JSON by crm_leads.routing.commands)."""
    return leads_pb2.RoutingExplanation(
        outcome=str(explanation.get("outcome", "")),
        rules=[
            leads_pb2.RuleConsidered(
                rule_id=str(t.get("rule_id", "")),
                strategy=str(t.get("strategy", "")),
                team_id=str(t.get("team_id", "")),
                turn=int(t.get("turn", 0)),
                picked_rep_id=str(t.get("picked_rep_id", "")),
                candidates=[
                    leads_pb2.CandidateConsidered(
                        rep_id=str(c.get("rep_id", "")),
                        open_leads=int(c.get("open_leads", 0)),
                        skip_reason=str(c.get("skipped", "")),
                    )
                    for c in t.get("candidates", [])
                ],
            )
            for t in [*explanation.get("rules", []), *explanation.get("reassignments", [])]
        ],
    )


def source_to_proto(r: Any) -> leads_pb2.Source:
    return leads_pb2.Source(
        code=r.code,
        display_name=r.display_name,
        built_in=r.built_in,
        active=r.active,
        create_time=to_timestamp(r.created_at),
    )
