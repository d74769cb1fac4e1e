"""Business metrics of sales."""

from prometheus_client import Counter

DEALS_OPENED = Counter("crm_deals_opened_total", "Deals opened from converted leads")
DEALS_CLOSED = Counter("crm_deals_closed_total", "Deals closed", ["outcome"])
for _outcome in ("won", "lost"):
    DEALS_CLOSED.labels(_outcome)
