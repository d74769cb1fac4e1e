"""Response body of /me."""

from __future__ import annotations

from pydantic import BaseModel


class Me(BaseModel):
    subject: str
    roles: list[str]
    team_id: str
    rep_id: str
