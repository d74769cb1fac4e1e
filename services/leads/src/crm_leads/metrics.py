"""Business metrics of leads."""

from prometheus_client import Counter, Histogram

# The built-in catalogue: every source label is exported from 0, so rate()/increase() see the first one.
from crm_leads.leads.domain import SOURCES

LEADS_CAPTURED = Counter("crm_leads_captured_total", "Leads captured", ["source"])

# ---------------------------------------------------------------- activities
# Speed to lead: capture → first call, e-mail, SMS or meeting, per source (seconds to days).
FIRST_RESPONSE_SECONDS = Histogram(
    "crm_lead_first_response_seconds",
    "Time from a lead's capture to its first response",
    ["source"],
    buckets=(30, 60, 300, 900, 1800, 3600, 4 * 3600, 86400, 3 * 86400),
)
ACTIVITIES_LOGGED = Counter("crm_activities_logged_total", "Activities logged", ["kind"])
TASK_REMINDERS = Counter("crm_task_reminders_total", "Task reminders published")
for _source in SOURCES:
    FIRST_RESPONSE_SECONDS.labels(_source)
for _kind in ("call", "meeting", "note", "task", "email", "sms"):
    ACTIVITIES_LOGGED.labels(_kind)

# ---------------------------------------------------------------- routing and SLA
SLA_BREACHES = Counter(
    "crm_lead_sla_breaches_total", "Leads whose first response was not logged by the deadline", ["source", "action"]
)
# Every source × action exported from 0, so the alert's increase() sees the first breach.
for _source in SOURCES:
    for _action in ("reassign", "escalate"):
        SLA_BREACHES.labels(_source, _action)

# ---------------------------------------------------------------- duplicates and merge
LEAD_TOUCHES = Counter("crm_lead_touches_total", "Captures attached to an existing lead as a touch", ["matched_on"])
for _matched_on in ("phone_number", "email"):
    LEAD_TOUCHES.labels(_matched_on)
POSSIBLE_DUPLICATES = Counter("crm_possible_duplicates_total", "Name-only possible-duplicate pairs recorded for review")
LEADS_MERGED = Counter("crm_leads_merged_total", "Leads merged into another lead")

# ---------------------------------------------------------------- campaigns and imports
LEAD_IMPORTS = Counter("crm_lead_imports_total", "CSV lead imports finished, by outcome", ["status"])
LEAD_IMPORT_ROWS = Counter("crm_lead_import_rows_total", "CSV lead import rows, by what became of them", ["outcome"])
for _status in ("completed", "rejected"):
    LEAD_IMPORTS.labels(_status)
for _row_outcome in ("imported", "duplicate", "error"):
    LEAD_IMPORT_ROWS.labels(_row_outcome)
