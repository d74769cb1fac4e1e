"""Whose facts a caller's reports count: admins and marketing everyone's, a manager their team's,
a rep their own, a token naming neither refused; and who reads customer records at all (marketing
does not: customer value's list of customers is withheld from them)."""

from __future__ import annotations

import pytest
from fastapi import HTTPException

from crm_gateway.platform.auth import Principal
from crm_gateway.platform.authz import Role, reads_customers, report_reach

pytestmark = pytest.mark.unit


def caller(*roles: Role, team_id: str = "", rep_id: str = "") -> Principal:
    return Principal(subject="someone", roles=frozenset(roles), team_id=team_id, rep_id=rep_id)


def test_reach_by_role() -> None:
    assert report_reach(caller(Role.ADMIN)) == ("", "")
    assert report_reach(caller(Role.MARKETING)) == ("", "")
    assert report_reach(caller(Role.SALES_MANAGER, team_id="team-media")) == ("", "team-media")
    assert report_reach(caller(Role.SALES_REP, rep_id="rep-dana")) == ("rep-dana", "")
    with pytest.raises(HTTPException) as refused:
        report_reach(caller(Role.SALES_MANAGER))
    assert refused.value.status_code == 403


def test_marketing_reads_no_customer_record() -> None:
    assert not reads_customers(caller(Role.MARKETING))
    assert reads_customers(caller(Role.SALES_REP, rep_id="r")) and reads_customers(caller(Role.MARKETING, Role.ADMIN))
