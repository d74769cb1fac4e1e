"""The leads service's one settings class (CRM_* environment, see crm_kit.settings)."""

from __future__ import annotations

from pydantic import Field

from crm_kit.settings import ServiceSettings


class LeadsSettings(ServiceSettings):
    service_name: str = "leads"
    # How often open tasks whose reminder time passed are looked for (TaskReminderDue).
    task_reminder_interval_seconds: float = 10.0
    # How often leads past their first-response deadline are looked for, and how many per run.
    sla_scan_interval_seconds: float = 5.0
    sla_scan_batch_size: int = 100
    # CSV lead imports: most rows per file, rows per staging commit / capture transaction, how
    # long a worker owns an import between batches, and how often stalled imports are resumed.
    import_max_rows: int = Field(default=1_000_000, ge=1)
    import_batch_rows: int = Field(default=300, ge=1, le=5_000)
    import_lease_seconds: float = Field(default=60.0, gt=0)
    # How long an upload waits for its rows to be routed before answering (the rest goes on in
    # the background); 0 answers as soon as the file is validated.
    import_wait_seconds: float = Field(default=20.0, ge=0, le=600)
    import_resume_interval_seconds: float = Field(default=10.0, gt=0)
