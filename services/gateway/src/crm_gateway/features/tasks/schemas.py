"""Response body of /tasks (open tasks are activities of kind task)."""

from __future__ import annotations

from pydantic import BaseModel

from crm_gateway.features.activities.schemas import Activity


class TaskList(BaseModel):
    tasks: list[Activity]
    next_page_token: str
