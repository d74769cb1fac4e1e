"""Request and response bodies of /teams (sales teams: a name, the manager SLA breaches go to, active)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from google.protobuf import field_mask_pb2
from pydantic import BaseModel, Field, StrictBool, StringConstraints

from crm.leads.v1 import routing_pb2
from crm_gateway.convert import RequestBody, RequiredText
from crm_gateway.features.reps.schemas import NewDirectoryId

# A user id of the identity provider (e-mail addresses and "idp|123" included); empty: nobody.
ManagerId = Annotated[str, StringConstraints(pattern=r"^[^\s\x00-\x1f\x7f]{0,64}$")]


class CreateTeamIn(RequestBody):
    """A team; reps join it with POST /reps or a move. The id is the team_id claim of its manager's
    token (generated when left out); one that exists is 409."""

    id: NewDirectoryId = Field("", description="The team_id claim of its managers' tokens; empty: generated")
    name: RequiredText
    manager_id: ManagerId = Field("", description="Who the team's SLA breaches escalate to")
    active: StrictBool = True

    def to_proto(self) -> routing_pb2.CreateTeamRequest:
        team = routing_pb2.Team(name=self.name, manager_id=self.manager_id, active=self.active)
        return routing_pb2.CreateTeamRequest(team=team, team_id=self.id)


class UpdateTeamIn(RequestBody):
    """Only the fields sent change (they make the update_mask, AIP-134). Deactivating a team with
    active reps, or one routing rules give leads to, is 409 naming the rule."""

    name: RequiredText = Field("", description="Not empty")
    manager_id: ManagerId = Field("", description="Empty: nobody (breaches are recorded, not escalated)")
    active: StrictBool = Field(True, description="An inactive team has no active reps and no routing rules")

    def to_proto(self, team_id: str, etag: str) -> routing_pb2.UpdateTeamRequest:
        return routing_pb2.UpdateTeamRequest(
            team=routing_pb2.Team(id=team_id, name=self.name, manager_id=self.manager_id, active=self.active),
            update_mask=field_mask_pb2.FieldMask(paths=sorted(self.model_fields_set)),
            etag=etag,
        )


class Team(BaseModel):
    id: str
    name: str
    manager_id: str
    active: bool
    active_reps: int
    etag: str = Field(description="The ETag header's value: send it back in If-Match")
    create_time: datetime | None
    update_time: datetime | None


class TeamList(BaseModel):
    teams: list[Team]
    next_page_token: str
