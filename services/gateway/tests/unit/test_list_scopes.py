"""List scopes fail closed: a token whose rep_id claim is empty, or a manager's without a team,
lists nothing of anyone's — never the whole company (the backends read an empty filter as none)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from crm_gateway.app import create_app
from crm_kit.dev_issuer import DevIssuer

pytestmark = pytest.mark.unit

# Every list whose scope comes from the caller's rep or team claims.
SCOPED_LISTS = [
    "/api/v1/leads",
    "/api/v1/incomplete-leads",
    "/api/v1/tasks",
    "/api/v1/reps",
    "/api/v1/my-leads",
    "/api/v1/sla-breaches",
    "/api/v1/lead-queue",
    "/api/v1/possible-duplicates",
    "/api/v1/targets",
    "/api/v1/reports/targets",
    "/api/v1/deals",
    "/api/v1/pipelines/default/board",
    "/api/v1/reports/forecast",
]


def token(issuer: DevIssuer, roles: list[str], **claims: Any) -> dict[str, str]:
    team_id = claims.pop("team_id", "")
    return {"Authorization": f"Bearer {issuer.mint('user-x', roles, team_id=team_id, extra=claims)}"}


NAMING_NOBODY = {
    "rep-with-empty-rep_id": {"roles": ["sales_rep"], "rep_id": ""},
    "rep-with-blank-rep_id": {"roles": ["sales_rep"], "rep_id": "   "},
    "rep-with-non-string-rep_id": {"roles": ["sales_rep"], "rep_id": 42},
    "rep-with-team-only": {"roles": ["sales_rep"], "rep_id": "", "team_id": "team-north"},
    "manager-without-team": {"roles": ["sales_manager"], "rep_id": ""},
    # Without a rep_id claim the subject is the rep id, so only /my-leads (that one person's work
    # list) answers; every team- or rep-wide list is refused.
    "manager-without-team-with-subject": {"roles": ["sales_manager"]},
}
CASES = [
    pytest.param(path, claims, id=f"{name}-{path.rsplit('/', 1)[1]}")
    for name, claims in NAMING_NOBODY.items()
    for path in SCOPED_LISTS
    if not (path == "/api/v1/my-leads" and "rep_id" not in claims)
]


@pytest.mark.parametrize(("path", "who"), CASES)
async def test_a_token_naming_no_rep_or_team_lists_nothing(
    client: httpx.AsyncClient, backend, issuer: DevIssuer, path: str, who: dict[str, Any]
) -> None:
    claims = dict(who)
    roles = claims.pop("roles")

    response = await client.get(path, headers=token(issuer, roles, **claims))

    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert backend.recorder.calls == []  # nothing was asked of any backend


async def test_a_missing_rep_id_claim_means_the_subject(client: httpx.AsyncClient, backend, issuer: DevIssuer) -> None:
    response = await client.get("/api/v1/leads", headers=token(issuer, ["sales_rep"]))

    assert response.status_code == 200, response.text
    [sent] = backend.recorder.requests("ListLeads")
    assert sent.rep_id == "user-x"


async def test_a_manager_with_a_team_lists_the_team(client: httpx.AsyncClient, backend, issuer: DevIssuer) -> None:
    response = await client.get("/api/v1/leads", headers=token(issuer, ["sales_manager"], team_id="team-north"))

    assert response.status_code == 200, response.text
    [sent] = backend.recorder.requests("ListLeads")
    assert (sent.rep_id, sent.team_id) == ("", "team-north")


async def test_a_rep_with_an_empty_rep_id_sees_no_lead_record(
    client: httpx.AsyncClient, backend, issuer: DevIssuer
) -> None:
    # The fake backend's lead belongs to rep-1 in team-north; an empty rep_id matches no owner,
    # and neither does an unassigned lead's empty owner.
    response = await client.get("/api/v1/leads/lead-1", headers=token(issuer, ["sales_rep"], rep_id=""))

    assert response.status_code == 404


async def test_me_shows_the_empty_rep_id(client: httpx.AsyncClient, issuer: DevIssuer) -> None:
    response = await client.get("/api/v1/me", headers=token(issuer, ["sales_rep"], rep_id=""))

    assert response.status_code == 200
    assert response.json()["rep_id"] == ""


async def test_a_manager_whose_token_names_no_team_reaches_no_ticket(
    backend, gateway, settings: Any, issuer: DevIssuer
) -> None:
    """An empty reach is never widened: such a manager is not a rep, so the customer's tickets are
    not theirs either (the directory is company-wide for managers, the service desk is not)."""
    token = issuer.mint("manager-nobody", ["sales_manager"])
    async with gateway(create_app(settings), headers={"Authorization": f"Bearer {token}"}) as http:
        listed = await http.get("/api/v1/tickets", params={"customer_id": "customer-1"})
        one = await http.get("/api/v1/tickets/ticket-1")
        messages = await http.get("/api/v1/tickets/ticket-1/messages")
    assert (listed.status_code, one.status_code, messages.status_code) == (403, 404, 404)
