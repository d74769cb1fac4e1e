"""Business metrics of leads."""

from prometheus_client import Counter

LEADS_CAPTURED = Counter("crm_leads_captured_total", "Leads captured", ["source"])
DEALS_CLOSED = Counter("crm_deals_closed_total", "Deals closed", ["outcome"])
# Both outcomes exported from 0, so rate()/increase() see the first close of each.
for _outcome in ("won", "lost"):
    DEALS_CLOSED.labels(_outcome)
