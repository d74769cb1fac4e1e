"""Who may do what: the one permission table of the gateway, and the record-level rules.

Two checks, both here:

1. Route level — `POLICIES` maps every /api/v1 route (by its name) to the roles that may call it.
   `authorize` (a dependency of the whole router) enforces it: a role outside the set gets 403.
   A route missing from the table is refused for everyone (and a unit test fails the suite).
2. Record level — the `*_visible` functions say whether a caller allowed on the route may see one
   record: a rep only leads and deals they own, a manager those of their team. Routes fetch the
   record through `crm_gateway.records`, which turns "not visible" into 404, so a caller learns
   nothing about records that exist but are not theirs.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crm.leads.v1 import leads_pb2
    from crm_gateway.auth import Principal


class Role(StrEnum):
    ADMIN = "admin"
    SALES_MANAGER = "sales_manager"
    SALES_REP = "sales_rep"
    ORDERS_CLERK = "orders_clerk"
    SERVICE_AGENT = "service_agent"
    MARKETING = "marketing"


ALL_ROLES = frozenset(Role)
SALES = frozenset({Role.ADMIN, Role.SALES_MANAGER, Role.SALES_REP})


@dataclass(frozen=True)
class Policy:
    roles: frozenset[Role]
    # What a caller allowed on the route sees: "all", or "owned" (record-level rules apply).
    note: str = ""


POLICIES: dict[str, Policy] = {
    # leads and deals: reps own theirs, managers their team's
    "capture_lead": Policy(SALES | {Role.MARKETING}, "anyone who takes leads in; routing decides the owner"),
    "list_leads": Policy(SALES, "reps: own; managers: team"),
    "get_lead": Policy(SALES, "reps: own; managers: team"),
    "convert_lead": Policy(SALES, "reps: own; managers: team"),
    "get_deal": Policy(SALES, "reps: own; managers: team"),
    "close_deal": Policy(SALES, "reps: own; managers: team"),
    "list_sources": Policy(ALL_ROLES, "the catalogue is not sensitive"),
    # orders: the orders department; sales see orders of deals they see; service reads
    "list_orders": Policy(
        SALES | {Role.ORDERS_CLERK, Role.SERVICE_AGENT}, "sales: only with a deal_id filter of a deal they see"
    ),
    "get_order": Policy(SALES | {Role.ORDERS_CLERK, Role.SERVICE_AGENT}, "sales: orders of deals they see"),
    "ship_order": Policy(frozenset({Role.ADMIN, Role.ORDERS_CLERK})),
    # customers: the company's directory; reps see customers of leads they own
    "list_customers": Policy(frozenset(Role) - {Role.MARKETING}, "reps: only with a lead_id filter of a lead they own"),
    "get_customer": Policy(frozenset(Role) - {Role.MARKETING}, "reps: customers of leads they own"),
    "list_timeline": Policy(frozenset(Role) - {Role.MARKETING}, "reps: customers of leads they own"),
    # messages sent to customers
    "list_messages": Policy(frozenset({Role.ADMIN, Role.ORDERS_CLERK, Role.SERVICE_AGENT})),
    "get_message": Policy(frozenset({Role.ADMIN, Role.ORDERS_CLERK, Role.SERVICE_AGENT})),
    # marketing
    "source_report": Policy(frozenset({Role.ADMIN, Role.MARKETING, Role.SALES_MANAGER})),
    "create_web_form_key": Policy(frozenset({Role.ADMIN, Role.MARKETING})),
    "list_web_form_keys": Policy(frozenset({Role.ADMIN, Role.MARKETING})),
    "revoke_web_form_key": Policy(frozenset({Role.ADMIN, Role.MARKETING})),
    # sources, campaigns and CSV lead imports (crm_gateway.routes_campaigns)
    "create_source": Policy(frozenset({Role.ADMIN}), "the catalogue is the company's"),
    "create_campaign": Policy(frozenset({Role.ADMIN, Role.MARKETING})),
    "update_campaign": Policy(frozenset({Role.ADMIN, Role.MARKETING})),
    "list_campaigns": Policy(frozenset({Role.ADMIN, Role.MARKETING, Role.SALES_MANAGER}), "no personal data"),
    "get_campaign": Policy(frozenset({Role.ADMIN, Role.MARKETING, Role.SALES_MANAGER}), "no personal data"),
    "import_leads": Policy(frozenset({Role.ADMIN, Role.MARKETING}), "routing decides each lead's owner"),
    "get_lead_import": Policy(frozenset({Role.ADMIN, Role.MARKETING}), "counts and row errors, no leads"),
    "list_lead_imports": Policy(frozenset({Role.ADMIN, Role.MARKETING})),
    "campaign_report": Policy(frozenset({Role.ADMIN, Role.MARKETING, Role.SALES_MANAGER}), "like source_report"),
    # duplicates: managers review and merge their team's; admins everything
    "list_possible_duplicates": Policy(frozenset({Role.ADMIN, Role.SALES_MANAGER}), "managers: pairs in their team"),
    "dismiss_possible_duplicate": Policy(frozenset({Role.ADMIN, Role.SALES_MANAGER}), "managers: both leads in team"),
    "merge_leads": Policy(frozenset({Role.ADMIN, Role.SALES_MANAGER}), "managers: both leads in team"),
    "list_incomplete_leads": Policy(SALES, "reps: own; managers: team"),
    "merge_customers": Policy(frozenset({Role.ADMIN, Role.SALES_MANAGER}), "the company's directory"),
    # routing and SLA: admins set the rules; managers run their team's queue, reps, breaches
    "list_routing_rules": Policy(frozenset({Role.ADMIN, Role.SALES_MANAGER}), "read-only for managers"),
    "replace_routing_rules": Policy(frozenset({Role.ADMIN})),
    "list_reps": Policy(SALES, "reps: themselves; managers: team"),
    "update_rep": Policy(SALES, "reps: own availability; managers: team"),
    "list_lead_queue": Policy(frozenset({Role.ADMIN, Role.SALES_MANAGER}), "managers: team and unmatched"),
    "assign_lead": Policy(frozenset({Role.ADMIN, Role.SALES_MANAGER}), "managers: team leads to team reps"),
    "get_lead_routing": Policy(SALES, "reps: own; managers: team"),
    "list_sla_breaches": Policy(frozenset({Role.ADMIN, Role.SALES_MANAGER}), "managers: team"),
    "list_my_leads": Policy(SALES, "reps: own; managers: a rep of their team"),
    # administration
    "list_audit_records": Policy(frozenset({Role.ADMIN})),
    "get_me": Policy(ALL_ROLES, "who the token says the caller is"),
    # activities: like the lead or deal they are logged on; tasks: reps own, managers team
    "log_lead_activity": Policy(SALES, "reps: own leads; managers: team"),
    "list_lead_activities": Policy(SALES, "reps: own leads; managers: team"),
    "log_deal_activity": Policy(SALES, "reps: own deals; managers: team"),
    "list_deal_activities": Policy(SALES, "reps: own deals; managers: team"),
    "complete_activity": Policy(SALES, "tasks on leads/deals the caller sees"),
    "list_tasks": Policy(SALES, "reps: own; managers: team"),
}

# Routes outside /api/v1's bearer authentication, each with why.
PUBLIC_ROUTES: dict[str, str] = {
    "healthz": "liveness probe",
    "readyz": "readiness probe",
    "jwks": "the development issuer's public keys",
    "submit_web_form": "public lead capture; requires its web-to-lead key",
}


def sees_every_lead(principal: Principal) -> bool:
    return principal.has_role(Role.ADMIN)


def lead_visible(principal: Principal, lead: leads_pb2.Lead) -> bool:
    if sees_every_lead(principal):
        return True
    if principal.has_role(Role.SALES_MANAGER) and principal.team_id and lead.assignment.team_id == principal.team_id:
        return True
    return (
        principal.has_role(Role.SALES_REP)
        and bool(lead.assignment.rep_id)
        and lead.assignment.rep_id == principal.rep_id
    )


def deal_visible(principal: Principal, deal: leads_pb2.Deal) -> bool:
    if sees_every_lead(principal):
        return True
    if principal.has_role(Role.SALES_MANAGER) and principal.team_id and deal.owner_team_id == principal.team_id:
        return True
    return principal.has_role(Role.SALES_REP) and bool(deal.owner_rep_id) and deal.owner_rep_id == principal.rep_id


def sees_every_order(principal: Principal) -> bool:
    return bool(principal.roles & {Role.ADMIN, Role.ORDERS_CLERK, Role.SERVICE_AGENT})


def sees_every_customer(principal: Principal) -> bool:
    return bool(principal.roles & {Role.ADMIN, Role.SALES_MANAGER, Role.ORDERS_CLERK, Role.SERVICE_AGENT})
