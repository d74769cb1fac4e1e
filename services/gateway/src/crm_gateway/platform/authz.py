"""Who may do what: the one permission table of the gateway, and the record-level rules.

Two checks, both here:

1. Route level — `POLICIES` maps every /api/v1 route (by its name) to the roles that may call it.
   `authorize` (a dependency of the whole router) enforces it: a role outside the set gets 403.
   A route missing from the table is refused for everyone (and a unit test fails the suite).
2. Record level — the `*_visible` functions say whether a caller allowed on the route may see one
   record: a rep only leads and deals they own, a manager those of their team. Routes fetch the
   record through `crm_gateway.records`, which turns "not visible" into 404, so a caller learns
   nothing about records that exist but are not theirs.
3. List level — `list_scope` turns the caller into the rep/team filters of a list. The backends
   read an empty filter as "no filter" (that is what an admin's list is), so a scope is never
   allowed to come out empty for anyone else: a manager without a `team_id` claim or a rep with an
   empty `rep_id` claim is refused (403), never shown the whole company.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from fastapi import HTTPException

if TYPE_CHECKING:
    from crm.leads.v1 import leads_pb2
    from crm.sales.v1 import deals_pb2
    from crm_gateway.platform.auth import Principal


class Role(StrEnum):
    ADMIN = "admin"
    SALES_MANAGER = "sales_manager"
    SALES_REP = "sales_rep"
    ORDERS_CLERK = "orders_clerk"
    SERVICE_AGENT = "service_agent"
    MARKETING = "marketing"


ALL_ROLES = frozenset(Role)
SALES = frozenset({Role.ADMIN, Role.SALES_MANAGER, Role.SALES_REP})
# Who works tickets: agents, managers (of a service team) and admins.
SERVICE_DESK = frozenset({Role.ADMIN, Role.SALES_MANAGER, Role.SERVICE_AGENT})
# Who builds reports: each in their reach (report_reach).
REPORTERS = frozenset({Role.ADMIN, Role.MARKETING, Role.SALES_MANAGER, Role.SALES_REP})


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
    "move_deal_stage": Policy(SALES, "reps: own; managers: team"),
    "update_deal": Policy(SALES, "reps: own; managers: team"),
    "list_deal_stage_history": Policy(SALES, "reps: own; managers: team"),
    "list_deals": Policy(SALES, "reps: own; managers: team (the owner filter is forced)"),
    "get_pipeline_board": Policy(SALES, "the pipeline's deals the caller lists: reps own, managers team"),
    "get_forecast": Policy(SALES, "reps: own; managers: team (the owner filter is forced)"),
    # pipelines: whoever works deals reads them; admins and managers shape the sales process
    "list_pipelines": Policy(SALES, "the company's sales processes, no personal data"),
    "get_pipeline": Policy(SALES, "the company's sales processes, no personal data"),
    "create_pipeline": Policy(frozenset({Role.ADMIN, Role.SALES_MANAGER})),
    "update_pipeline": Policy(frozenset({Role.ADMIN, Role.SALES_MANAGER})),
    "list_lost_reasons": Policy(SALES, "the fixed list a lost deal's reason is chosen from"),
    # the catalog: every sales role reads prices (reps build quotes); admins and managers keep it
    "list_products": Policy(SALES, "the company's catalog, no personal data"),
    "get_product": Policy(SALES, "the company's catalog, no personal data"),
    "create_product": Policy(frozenset({Role.ADMIN, Role.SALES_MANAGER})),
    "update_product": Policy(frozenset({Role.ADMIN, Role.SALES_MANAGER})),
    "list_price_lists": Policy(SALES, "the company's prices, no personal data"),
    "get_price_list": Policy(SALES, "the company's prices, no personal data"),
    "create_price_list": Policy(frozenset({Role.ADMIN, Role.SALES_MANAGER})),
    "update_price_list": Policy(frozenset({Role.ADMIN, Role.SALES_MANAGER})),
    "set_price_list_item": Policy(frozenset({Role.ADMIN, Role.SALES_MANAGER})),
    "remove_price_list_item": Policy(frozenset({Role.ADMIN, Role.SALES_MANAGER})),
    "list_tax_rates": Policy(SALES, "the VAT rates quotes apply"),
    "create_tax_rate": Policy(frozenset({Role.ADMIN}), "a legal setting, reviewed when the law changes"),
    # quotes: visible with their deal (reps: own deals; managers: team); a hidden deal's quote is 404
    "create_quote": Policy(SALES, "on deals the caller sees"),
    "list_quotes": Policy(SALES, "of deals the caller sees"),
    "get_quote": Policy(SALES, "of deals the caller sees"),
    "render_quote_pdf": Policy(SALES, "of deals the caller sees"),
    "update_quote": Policy(SALES, "of deals the caller sees"),
    "revise_quote": Policy(SALES, "of deals the caller sees"),
    "send_quote": Policy(SALES, "of deals the caller sees"),
    "accept_quote": Policy(SALES, "of deals the caller sees; wins the deal"),
    "reject_quote": Policy(SALES, "of deals the caller sees"),
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
    "get_customer_summary": Policy(
        frozenset(Role) - {Role.MARKETING}, "reps: customers of leads they own; open deals the caller sees"
    ),
    "log_touch": Policy(frozenset(Role) - {Role.MARKETING}, "reps: customers of leads they own"),
    # cross-sell: who sells to or serves the customer (not orders, not marketing's bulk view)
    "list_product_suggestions": Policy(SALES | {Role.SERVICE_AGENT}, "reps: customers of leads they own"),
    "record_cross_sell_offer": Policy(SALES | {Role.SERVICE_AGENT}, "reps: customers of leads they own"),
    "get_customer_risk": Policy(SALES | {Role.SERVICE_AGENT}, "reps: customers of leads they own"),
    "get_customer_value": Policy(SALES | {Role.SERVICE_AGENT}, "reps: customers of leads they own"),
    # retention call lists: managers make them for their team; reps read and answer their calls
    "create_retention_list": Policy(frozenset({Role.ADMIN, Role.SALES_MANAGER}), "managers: their team's"),
    "list_retention_lists": Policy(SALES, "reps: lists with their calls; managers: team"),
    "get_retention_list": Policy(SALES, "reps: their own calls; managers: team"),
    "record_retention_response": Policy(SALES, "reps: their own calls; managers: team"),
    "get_retention_report": Policy(frozenset({Role.ADMIN, Role.SALES_MANAGER}), "managers: their team's lists"),
    "list_consents": Policy(frozenset(Role) - {Role.MARKETING}, "reps: customers of leads they own"),
    "record_consent": Policy(frozenset(Role) - {Role.MARKETING}, "reps: customers of leads they own"),
    "update_customer": Policy(frozenset(Role) - {Role.MARKETING}, "reps: customers of leads they own"),
    "list_contact_persons": Policy(frozenset(Role) - {Role.MARKETING}, "reps: customers of leads they own"),
    "add_contact_person": Policy(frozenset(Role) - {Role.MARKETING}, "reps: customers of leads they own"),
    "remove_contact_person": Policy(frozenset(Role) - {Role.MARKETING}, "reps: customers of leads they own"),
    "list_addresses": Policy(frozenset(Role) - {Role.MARKETING}, "reps: customers of leads they own"),
    "add_address": Policy(frozenset(Role) - {Role.MARKETING}, "reps: customers of leads they own"),
    "remove_address": Policy(frozenset(Role) - {Role.MARKETING}, "reps: customers of leads they own"),
    # the consent history across customers: personal data of everyone, for the regulator
    "list_consent_records": Policy(frozenset({Role.ADMIN}), "every customer's consent history"),
    "export_consent_records": Policy(frozenset({Role.ADMIN}), "every customer's consent history, as CSV"),
    "search_customers": Policy(frozenset(Role) - {Role.MARKETING}, "reps: only customers of leads they own"),
    # messages sent to customers
    "list_messages": Policy(frozenset({Role.ADMIN, Role.ORDERS_CLERK, Role.SERVICE_AGENT})),
    "get_message": Policy(frozenset({Role.ADMIN, Role.ORDERS_CLERK, Role.SERVICE_AGENT})),
    "preview_message": Policy(frozenset({Role.ADMIN, Role.MARKETING}), "writes promotions; reads no record"),
    # promotions: marketing sends them; a manager approves a large one and reads the results
    "preview_audience": Policy(frozenset({Role.ADMIN, Role.MARKETING}), "counts, and a sample with masked addresses"),
    "create_promotion": Policy(frozenset({Role.ADMIN, Role.MARKETING})),
    "list_promotions": Policy(frozenset({Role.ADMIN, Role.MARKETING, Role.SALES_MANAGER})),
    "get_promotion": Policy(frozenset({Role.ADMIN, Role.MARKETING, Role.SALES_MANAGER})),
    "get_promotion_report": Policy(frozenset({Role.ADMIN, Role.MARKETING, Role.SALES_MANAGER})),
    "estimate_promotion": Policy(frozenset({Role.ADMIN, Role.MARKETING, Role.SALES_MANAGER}), "counts and prices"),
    "schedule_promotion": Policy(frozenset({Role.ADMIN, Role.MARKETING}), "a large audience then waits for approval"),
    "pause_promotion": Policy(frozenset({Role.ADMIN, Role.MARKETING})),
    "resume_promotion": Policy(frozenset({Role.ADMIN, Role.MARKETING})),
    "cancel_promotion": Policy(frozenset({Role.ADMIN, Role.MARKETING})),
    "approve_promotion": Policy(frozenset({Role.ADMIN, Role.SALES_MANAGER}), "never the one who scheduled it"),
    "import_audience_list": Policy(frozenset({Role.ADMIN, Role.MARKETING}), "counts and line errors; no customer"),
    "get_audience_list": Policy(frozenset({Role.ADMIN, Role.MARKETING})),
    "list_audience_lists": Policy(frozenset({Role.ADMIN, Role.MARKETING})),
    # marketing
    "source_report": Policy(frozenset({Role.ADMIN, Role.MARKETING, Role.SALES_MANAGER})),
    # targets vs actual: reps see their own, managers their team and its reps, marketing sources'
    "target_report": Policy(SALES | {Role.MARKETING}, "reps: own; managers: team and its reps; marketing: sources"),
    "list_targets": Policy(SALES | {Role.MARKETING}, "reps: own; managers: team and its reps; marketing: sources"),
    "create_target": Policy(frozenset({Role.ADMIN, Role.SALES_MANAGER}), "managers: their team and its reps"),
    "update_target": Policy(frozenset({Role.ADMIN, Role.SALES_MANAGER}), "managers: their team and its reps"),
    "delete_target": Policy(frozenset({Role.ADMIN, Role.SALES_MANAGER}), "managers: their team and its reps"),
    "create_web_form_key": Policy(frozenset({Role.ADMIN, Role.MARKETING})),
    "list_web_form_keys": Policy(frozenset({Role.ADMIN, Role.MARKETING})),
    "revoke_web_form_key": Policy(frozenset({Role.ADMIN, Role.MARKETING})),
    # sources, campaigns and CSV lead imports
    "create_source": Policy(frozenset({Role.ADMIN}), "the catalogue is the company's"),
    "create_campaign": Policy(frozenset({Role.ADMIN, Role.MARKETING})),
    "update_campaign": Policy(frozenset({Role.ADMIN, Role.MARKETING})),
    "list_campaigns": Policy(frozenset({Role.ADMIN, Role.MARKETING, Role.SALES_MANAGER}), "no personal data"),
    "get_campaign": Policy(frozenset({Role.ADMIN, Role.MARKETING, Role.SALES_MANAGER}), "no personal data"),
    "import_leads": Policy(frozenset({Role.ADMIN, Role.MARKETING}), "routing decides each lead's owner"),
    "get_lead_import": Policy(frozenset({Role.ADMIN, Role.MARKETING}), "counts and row errors, no leads"),
    "list_lead_imports": Policy(frozenset({Role.ADMIN, Role.MARKETING})),
    "campaign_report": Policy(frozenset({Role.ADMIN, Role.MARKETING, Role.SALES_MANAGER}), "like source_report"),
    "attribution_report": Policy(frozenset({Role.ADMIN, Role.MARKETING, Role.SALES_MANAGER}), "like campaign_report"),
    "cross_sell_report": Policy(frozenset({Role.ADMIN, Role.MARKETING, Role.SALES_MANAGER}), "like campaign_report"),
    # the report builder: results held to the caller's reach (report_reach); saved reports are
    # their owner's and shared by role
    "report_catalog": Policy(REPORTERS, "all"),
    "speed_to_lead_report": Policy(REPORTERS, "like run_report"),
    "customer_value_report": Policy(REPORTERS, "reps: buyers of their leads; managers: team"),
    "funnel_report": Policy(REPORTERS, "like run_report"),
    "run_report": Policy(REPORTERS, "reps: own facts; managers: team; admin, marketing: all"),
    "export_report": Policy(REPORTERS, "like run_report"),
    "create_saved_report": Policy(REPORTERS, "their own; shared within their team"),
    "list_saved_reports": Policy(REPORTERS, "own and shared with their roles"),
    "get_saved_report": Policy(REPORTERS, "own and shared with their roles"),
    "create_report_schedule": Policy(REPORTERS, "reports they can open, in their reach, to company addresses"),
    "list_report_schedules": Policy(REPORTERS, "their own; admin: all"),
    "delete_report_schedule": Policy(REPORTERS, "their own; admin: any"),
    "send_report_schedule_now": Policy(REPORTERS, "their own; admin: any"),
    "delete_saved_report": Policy(REPORTERS, "owner or admin"),
    "run_saved_report": Policy(REPORTERS, "visible ones, in the caller's reach"),
    "export_saved_report": Policy(REPORTERS, "like run_saved_report"),
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
    "update_rep": Policy(SALES, "admins: all; managers: team's availability, capacity; reps: own availability"),
    # the sales organisation: admins create, move and deactivate; managers read their own team
    "create_rep": Policy(frozenset({Role.ADMIN})),
    "create_team": Policy(frozenset({Role.ADMIN})),
    "list_teams": Policy(frozenset({Role.ADMIN, Role.SALES_MANAGER}), "managers: their own team"),
    "get_team": Policy(frozenset({Role.ADMIN, Role.SALES_MANAGER}), "managers: their own team"),
    "update_team": Policy(frozenset({Role.ADMIN})),
    "list_lead_queue": Policy(frozenset({Role.ADMIN, Role.SALES_MANAGER}), "managers: team and unmatched"),
    "assign_lead": Policy(frozenset({Role.ADMIN, Role.SALES_MANAGER}), "managers: team leads to team reps"),
    "get_lead_routing": Policy(SALES, "reps: own; managers: team"),
    "get_lead_score": Policy(SALES, "reps: own; managers: team"),
    "list_sla_breaches": Policy(frozenset({Role.ADMIN, Role.SALES_MANAGER}), "managers: team"),
    "list_my_leads": Policy(SALES, "reps: own; managers: a rep of their team"),
    # administration
    "list_audit_records": Policy(frozenset({Role.ADMIN})),
    # events a service's consumers gave up on: payloads carry personal data, and a replay acts
    "list_dead_letters": Policy(frozenset({Role.ADMIN})),
    "get_dead_letter": Policy(frozenset({Role.ADMIN})),
    "replay_dead_letter": Policy(frozenset({Role.ADMIN}), "republishes the stored event once"),
    "get_me": Policy(ALL_ROLES, "who the token says the caller is"),
    # activities: like the lead or deal they are logged on; tasks: reps own, managers team
    "log_lead_activity": Policy(SALES, "reps: own leads; managers: team"),
    "list_lead_activities": Policy(SALES, "reps: own leads; managers: team"),
    "log_deal_activity": Policy(SALES, "reps: own deals; managers: team"),
    "list_deal_activities": Policy(SALES, "reps: own deals; managers: team"),
    "complete_activity": Policy(SALES, "tasks on leads/deals the caller sees"),
    "list_tasks": Policy(SALES, "reps: own; managers: team"),
    # the service desk: agents work their queues' tickets, managers their team's queues; sales reps
    # read (never change) the tickets of customers they may read
    "open_ticket": Policy(SERVICE_DESK, "on customers the caller may read; agents: into any queue"),
    "list_tickets": Policy(SERVICE_DESK | {Role.SALES_REP}, "agents: their queues; managers: team; reps: a customer's"),
    "get_ticket": Policy(SERVICE_DESK | {Role.SALES_REP}, "agents: their queues; managers: team; reps: a customer's"),
    "list_ticket_messages": Policy(SERVICE_DESK | {Role.SALES_REP}, "like get_ticket; reps: no internal notes"),
    "add_ticket_message": Policy(SERVICE_DESK, "agents: their queues; managers: team"),
    "add_ticket_attachment": Policy(SERVICE_DESK, "agents: their queues; managers: team; open tickets, 10 MiB"),
    "list_ticket_attachments": Policy(SERVICE_DESK | {Role.SALES_REP}, "like get_ticket"),
    "get_ticket_attachment": Policy(SERVICE_DESK | {Role.SALES_REP}, "like get_ticket; served as a download"),
    "change_ticket_status": Policy(SERVICE_DESK, "agents: their queues; managers: team"),
    "assign_ticket": Policy(SERVICE_DESK, "agents: their queues; managers: team"),
    "list_ticket_categories": Policy(SERVICE_DESK | {Role.SALES_REP}, "the company's category tree"),
    "list_support_queues": Policy(SERVICE_DESK, "queues, their members and load"),
    "update_support_queue": Policy(frozenset({Role.ADMIN})),
    "get_sla_policy": Policy(SERVICE_DESK, "the company's targets"),
    "update_sla_policy": Policy(frozenset({Role.ADMIN}), "a new version; past tickets keep theirs"),
    "list_sla_calendars": Policy(SERVICE_DESK, "business hours and holidays"),
    "put_sla_calendar": Policy(frozenset({Role.ADMIN})),
    "support_report": Policy(SERVICE_DESK, "agents: their queues; managers: team; admins: all"),
}

# Routes outside /api/v1's bearer authentication, each with why.
PUBLIC_ROUTES: dict[str, str] = {
    "healthz": "liveness probe",
    "readyz": "readiness probe",
    "jwks": "the development issuer's public keys",
    # The development issuer's OIDC sign-in (crm_gateway.platform.dev_oidc), like jwks only when it is on.
    "dev_openid_configuration": "the development issuer's discovery document",
    "dev_sign_in_page": "the development issuer's sign-in page (demo users, no password)",
    "dev_sign_in": "the development issuer's sign-in; answers with an authorization code",
    "dev_token": "the development issuer's token endpoint; a code and its PKCE verifier",
    "submit_web_form": "public lead capture; requires its web-to-lead key",
    "submit_survey": "a customer's one-tap satisfaction score; the link's unguessable token is the credential",
    "unsubscribe": "a promotion recipient's unsubscribe; the link's signed token is the credential",
    "follow_link": "a promotion recipient's short link (a redirect); the random code is the credential",
    "open_image": "a tracked promotion e-mail's open image; the random code is the credential",
    "receive_delivery_receipt": "the SMS provider's delivery receipt; its HMAC signature is the credential",
    "receive_sms_reply": "a reply to an SMS, from the provider; its HMAC signature is the credential",
}


def sees_every_lead(principal: Principal) -> bool:
    return principal.has_role(Role.ADMIN)


@dataclass(frozen=True)
class LeadReach:
    """The leads a caller may read and work on, by owner: every lead, a team's, a rep's own.
    Sent with a capture, so the leads service lets a duplicate fill in only a lead within it."""

    all_leads: bool = False
    team_id: str = ""
    rep_id: str = ""


def lead_reach(principal: Principal) -> LeadReach:
    return LeadReach(
        all_leads=sees_every_lead(principal), team_id=managed_team(principal), rep_id=own_rep_id(principal)
    )


def _within(reach: LeadReach, team_id: str, rep_id: str) -> bool:
    """Whether a record owned by (team_id, rep_id) is in the reach; an empty reach holds nothing."""
    return (
        reach.all_leads
        or (bool(reach.team_id) and team_id == reach.team_id)
        or (bool(reach.rep_id) and rep_id == reach.rep_id)
    )


def lead_visible(principal: Principal, lead: leads_pb2.Lead) -> bool:
    return _within(lead_reach(principal), lead.assignment.team_id, lead.assignment.rep_id)


def deal_visible(principal: Principal, deal: deals_pb2.Deal) -> bool:
    return _within(lead_reach(principal), deal.owner_team_id, deal.owner_rep_id)


def list_scope(principal: Principal, rep_id: str, team_id: str, what: str) -> tuple[str, str]:
    """The (rep_id, team_id) filters a caller's list of `what` is held to, from the filters it asked
    for: an admin's as asked; a manager's team (403 for another team); a rep's own (403 for another
    rep). Fails closed: a caller whose token names no team (manager) and no rep id (rep) gets 403 —
    an empty filter would mean every record of the company."""
    reach = lead_reach(principal)
    if reach.all_leads:
        return rep_id, team_id
    if reach.team_id:
        if team_id and team_id != reach.team_id:
            raise HTTPException(403, f"Managers list the {what} of their own team only.")
        return rep_id, reach.team_id
    if reach.rep_id:
        if rep_id and rep_id != reach.rep_id:
            raise HTTPException(403, f"Reps list their own {what} only.")
        return reach.rep_id, team_id
    raise HTTPException(403, f"Your token names no team (team_id) or rep (rep_id) to list {what} of.")


def reads_customers(principal: Principal) -> bool:
    """Whether the caller's roles read customer records at all (get_customer's policy)."""
    return any(principal.has_role(role) for role in POLICIES["get_customer"].roles)


def report_reach(principal: Principal) -> tuple[str, str]:
    """The (rep_id, team_id) a caller's built reports count: admins' and marketing's everything
    (marketing reads every source's and campaign's figures), else as list_scope (a manager's
    team, a rep's own; 403 for a token naming neither)."""
    if principal.has_role(Role.ADMIN) or principal.has_role(Role.MARKETING):
        return "", ""
    return list_scope(principal, "", "", "reports")


def own_rep_id(principal: Principal) -> str:
    """The rep a sales_rep token acts as, or "" when it is not a rep's or names none (fail closed)."""
    return principal.rep_id if principal.has_role(Role.SALES_REP) else ""


def managed_team(principal: Principal) -> str:
    """The team a manager's token manages, or "" (a manager without a team manages nothing)."""
    return principal.team_id if principal.has_role(Role.SALES_MANAGER) else ""


@dataclass(frozen=True)
class TargetReach:
    """The sales targets a caller may read or change: every target, a team's and its reps', a
    rep's own, every source's. The gateway turns it into the reporting service's scope; an empty
    reach holds nothing."""

    every_target: bool = False
    team_id: str = ""
    rep_id: str = ""
    sources: bool = False


def target_reach(principal: Principal) -> TargetReach:
    """What a caller reads: admins every target; a manager their team's and its reps'; a rep their
    own; marketing every source's (roles add up)."""
    if principal.has_role(Role.ADMIN):
        return TargetReach(every_target=True)
    return TargetReach(
        team_id=managed_team(principal), rep_id=own_rep_id(principal), sources=principal.has_role(Role.MARKETING)
    )


def target_manage_reach(principal: Principal) -> TargetReach:
    """What a caller sets, changes and deletes: admins every target; a manager their team's and its reps'."""
    if principal.has_role(Role.ADMIN):
        return TargetReach(every_target=True)
    return TargetReach(team_id=managed_team(principal))


def sees_every_order(principal: Principal) -> bool:
    return bool(principal.roles & {Role.ADMIN, Role.ORDERS_CLERK, Role.SERVICE_AGENT})


def sees_every_customer(principal: Principal) -> bool:
    return bool(principal.roles & {Role.ADMIN, Role.SALES_MANAGER, Role.ORDERS_CLERK, Role.SERVICE_AGENT})


@dataclass(frozen=True)
class TicketReach:
    """The service desk's tickets a caller works on: every ticket (admins), those in the queues an
    agent is a member of or assigned to them, those in the queues of a manager's team. Sales reps
    have none of their own: they read (never change) the tickets of customers they may read."""

    all_tickets: bool = False
    agent_id: str = ""
    team_id: str = ""

    @property
    def empty(self) -> bool:
        return not (self.all_tickets or self.agent_id or self.team_id)


def ticket_reach(principal: Principal) -> TicketReach:
    if principal.has_role(Role.ADMIN):
        return TicketReach(all_tickets=True)
    return TicketReach(
        agent_id=principal.subject if principal.has_role(Role.SERVICE_AGENT) else "",
        team_id=managed_team(principal),
    )
