"""/me: the caller as the gateway sees it."""

from __future__ import annotations

from crm_gateway.deps import Caller, api_router
from crm_gateway.features.me.schemas import Me

router = api_router()


@router.get("/me", tags=["identity"], operation_id="getMe")
async def get_me(principal: Caller) -> Me:
    """The caller as the gateway sees it: subject, roles, team."""
    return Me(
        subject=principal.subject,
        roles=sorted(principal.roles),
        team_id=principal.team_id,
        rep_id=principal.rep_id,
    )
