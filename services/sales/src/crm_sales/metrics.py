"""Business metrics of sales."""

from prometheus_client import Counter

DEALS_OPENED = Counter("crm_deals_opened_total", "Deals opened from converted leads")
DEALS_CLOSED = Counter("crm_deals_closed_total", "Deals closed", ["outcome"])
for _outcome in ("won", "lost"):
    DEALS_CLOSED.labels(_outcome)
# A move between stages, or a close into the won or lost stage, per pipeline id.
STAGE_CHANGES = Counter("crm_deals_stage_changes_total", "Deals that entered another stage", ["pipeline"])
STAGE_CHANGES.labels("default")
